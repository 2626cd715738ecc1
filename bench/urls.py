#!/usr/bin/env python3
"""The tile list of the server benchmark: reads `level x y` lines (tiles.py, level 0 = full
resolution) and keeps the first COUNT tiles that every peer can serve, so that the three URL
lists name exactly the same tiles:

- gigatile and Deep Zoom (vips dzsave) halve with ceil, as tiles.py does;
- iipsrv serves the levels libvips stored in the TIFF, which are floor-halved, and
  bench/iip_paths.py skips tiles outside that grid; such tiles are dropped here for everyone.

Then writes, for those tiles, one path per line (every gigatile list names the same tiles
through another protocol, ID percent-encoded):
  OUT/tiles.txt          `level x y`            (feed to bench/iip_paths.py for iipsrv)
  OUT/gigatile.txt       /api/images/{ID}/tiles/{z}/{x}/{y}.jpg      z = K - level
  OUT/gigatile-dzi.txt   /dzi/{ID}_files/{dzlevel}/{x}_{y}.jpg       dzlevel = ceil(log2(max(W,H))) - level
  OUT/gigatile-iiif.txt  /iiif/3/{ID}/{rx},{ry},{rw},{rh}/{sw},/0/default.jpg
                         the tile's full-resolution region at scale factor s = 2^level, and
                         sw = ceil(rw / s), as IIIF clients ask for the tiles info.json advertises
  OUT/static.txt         /{NAME}_files/{dzlevel}/{x}_{y}.jpg         (vips dzsave's tree)
If DZ_ROOT is given, every static tile must exist under it (a wrong level mapping fails here,
not as 404s in the middle of a measurement).

usage: urls.py WIDTH HEIGHT COUNT ID NAME OUT [DZ_ROOT] < tiles.txt
"""
import math
import os
import sys
import urllib.parse

TILE = 256


def iiif_tile(width, height, level, x, y):
    """The IIIF path after the id of tile (x, y) of `level` at scale factor 2^level."""
    scale = 1 << level
    rx, ry = x * TILE * scale, y * TILE * scale
    rw, rh = min(TILE * scale, width - rx), min(TILE * scale, height - ry)
    return f"{rx},{ry},{rw},{rh}/{-(-rw // scale)},/0/default.jpg"


def main():
    width, height, count = (int(a) for a in sys.argv[1:4])
    image_id, name, out = sys.argv[4:7]
    dz_root = sys.argv[7] if len(sys.argv) > 7 else None

    ceil_sizes = [(width, height)]
    while max(ceil_sizes[-1]) > TILE:
        w, h = ceil_sizes[-1]
        ceil_sizes.append((-(-w // 2), -(-h // 2)))
    top = len(ceil_sizes) - 1  # K
    floor_sizes = [(width, height)]
    while max(floor_sizes[-1]) > TILE:
        w, h = floor_sizes[-1]
        floor_sizes.append((w // 2, h // 2))
    dz_top = math.ceil(math.log2(max(width, height)))

    def in_grid(sizes, level, x, y):
        return level < len(sizes) and x < -(-sizes[level][0] // TILE) and y < -(-sizes[level][1] // TILE)

    kept = []
    dropped = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        level, x, y = map(int, line.split())
        if in_grid(ceil_sizes, level, x, y) and in_grid(floor_sizes, level, x, y):
            kept.append((level, x, y))
            if len(kept) == count:
                break
        else:
            dropped += 1
    if len(kept) < count:
        sys.exit(f"urls.py: only {len(kept)} tiles common to every peer, {count} wanted")

    quoted_id = urllib.parse.quote(image_id, safe="")
    missing = 0
    with open(os.path.join(out, "tiles.txt"), "w") as tiles, \
            open(os.path.join(out, "gigatile.txt"), "w") as gigatile, \
            open(os.path.join(out, "gigatile-dzi.txt"), "w") as dzi, \
            open(os.path.join(out, "gigatile-iiif.txt"), "w") as iiif, \
            open(os.path.join(out, "static.txt"), "w") as static:
        for level, x, y in kept:
            tiles.write(f"{level} {x} {y}\n")
            gigatile.write(f"/api/images/{quoted_id}/tiles/{top - level}/{x}/{y}.jpg\n")
            dzi.write(f"/dzi/{quoted_id}_files/{dz_top - level}/{x}_{y}.jpg\n")
            iiif.write(f"/iiif/3/{quoted_id}/{iiif_tile(width, height, level, x, y)}\n")
            rel = f"{name}_files/{dz_top - level}/{x}_{y}.jpg"
            static.write(f"/{rel}\n")
            if dz_root and not os.path.exists(os.path.join(dz_root, rel)):
                missing += 1
    if missing:
        sys.exit(f"urls.py: {missing} of {count} static tiles missing under {dz_root}")
    print(f"kept={len(kept)} dropped={dropped}")


if __name__ == "__main__":
    main()
