#!/usr/bin/env python3
"""Simulated pan/zoom sessions over a pyramid: the distinct 256x256 tiles a viewer in a
1920x1080 window asks for while people open an image, zoom in and out and pan.

Prints `level x y` lines (level 0 = full resolution), distinct, in request order, until COUNT
tiles. Deterministic for a given seed, so every peer gets the same list.

usage: tiles.py WIDTH HEIGHT COUNT [SEED]
"""
import math
import random
import sys

TILE = 256
VIEW_W, VIEW_H = 1920, 1080


def level_size(width, height, k):
    return (-(-width // (1 << k)), -(-height // (1 << k)))


def max_level(width, height):
    k = 0
    while max(level_size(width, height, k)) > TILE:
        k += 1
    return k


def visible(width, height, k, cx, cy):
    """Tiles of level k seen in a window centred on (cx, cy), in full-resolution pixels."""
    lw, lh = level_size(width, height, k)
    cols, rows = -(-lw // TILE), -(-lh // TILE)
    x0 = cx / (1 << k) - VIEW_W / 2
    y0 = cy / (1 << k) - VIEW_H / 2
    for ty in range(max(0, int(y0 // TILE)), min(rows, int((y0 + VIEW_H) // TILE) + 1)):
        for tx in range(max(0, int(x0 // TILE)), min(cols, int((x0 + VIEW_W) // TILE) + 1)):
            yield (k, tx, ty)


def sessions(width, height, rng):
    top = max_level(width, height)
    while True:
        # A session opens at the whole image, then zooms towards a point of interest, pans,
        # zooms out a little, pans again.
        k = top
        cx, cy = width / 2, height / 2
        target = (rng.uniform(0, width), rng.uniform(0, height))
        for _ in range(rng.randint(20, 60)):
            yield from visible(width, height, k, cx, cy)
            move = rng.random()
            if move < 0.35 and k > 0:
                k -= 1
                cx += (target[0] - cx) * 0.5
                cy += (target[1] - cy) * 0.5
            elif move < 0.45 and k < top:
                k += 1
            else:
                step = (1 << k) * rng.uniform(200, 700)
                angle = rng.uniform(0, 2 * math.pi)
                cx = min(max(cx + step * math.cos(angle), 0), width)
                cy = min(max(cy + step * math.sin(angle), 0), height)


def main():
    width, height, count = (int(a) for a in sys.argv[1:4])
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    seen = set()
    for tile in sessions(width, height, rng):
        if tile not in seen:
            seen.add(tile)
            print(*tile)
            if len(seen) >= count:
                break


if __name__ == "__main__":
    main()
