#!/usr/bin/env python3
"""Turns `level x y` tile lines (level 0 = full resolution) into iipsrv JTL request paths for
a libvips pyramid of WIDTH x HEIGHT: iipsrv numbers resolutions from the smallest, and the
levels libvips writes are floor-halved. Tiles outside iipsrv's grid are skipped.

usage: iip_paths.py FILE WIDTH HEIGHT < tiles.txt
"""
import sys


def main():
    path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sizes = [(width, height)]
    while max(sizes[-1]) > 256:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    for line in sys.stdin:
        level, x, y = map(int, line.split())
        cols = -(-sizes[level][0] // 256)
        rows = -(-sizes[level][1] // 256)
        if x < cols and y < rows:
            print(f"/fcgi-bin/iipsrv.fcgi?FIF={path}&JTL={len(sizes) - 1 - level},{y * cols + x}")


if __name__ == "__main__":
    main()
