#!/usr/bin/env bash
# Overload and the memory budget: gigatile at its default settings (MEMORY_LIMIT=1G unless set)
# over the 20000×15000 real-photo mosaic and hostile inputs (a progressive JPEG, an interlaced
# PNG and a WebP of 10000×7500 that must be decoded whole, a TIFF of 4096² deflate tiles that
# decode to 48 MiB each, a deflate bomb, a truncated JPEG), then CLIENTS concurrent clients
# asking for distinct cold renders for SECONDS (bench/overload.py). Prints peak RSS against
# MEMORY_LIMIT, the share of 503s, /healthz latency under load and how soon renders come back.
#
# usage: [MEMORY_LIMIT=1G] [CLIENTS=256] [SECONDS_LOAD=60] [GIGATILE=path/to/binary] bench/overload.sh
# (GIGATILE runs another build, say an older commit's, on the same inputs and load.)
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
cargo build --release --locked
work=bench/work
SIZES=20000x15000 bench/make-images.sh "$work"
mosaic="$work/mosaic-20000x15000"
data="$work/overload"
rm -rf "$data"
mkdir -p "$data"
ln -f "$mosaic.jpg" "$data/mosaic.jpg"
ln -f "$mosaic-pyramid.tif" "$data/mosaic-pyramid.tif"
half="$work/overload-half.v"
[ -f "$half" ] || vips resize "$mosaic.jpg" "$half" 0.5
vips jpegsave "$half" "$data/progressive.jpg" --Q 85 --interlace
vips pngsave "$half" "$data/interlaced.png" --interlace --compression 1
vips webpsave "$half" "$data/whole.webp" --Q 80
vips tiffsave "$half" "$data/big-tiles.tif" --tile --tile-width 4096 --tile-height 4096 \
    --compression deflate
head -c $(($(stat -c %s "$mosaic.jpg") * 2 / 5)) "$mosaic.jpg" > "$data/truncated.jpg"
python3 - "$data/bomb.tif" <<'EOF'
# A 30000×30000 RGB TIFF in one deflate strip of zeros: 2.5 GiB decoded from a few MiB.
import struct, sys, zlib
w = h = 30000
z = zlib.compressobj(9)
row = bytes(w * 3)
strip = b"".join(z.compress(row) for _ in range(h)) + z.flush()
entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 2),
           (273, 4, 1, 0), (277, 3, 1, 3), (278, 4, 1, h), (279, 4, 1, len(strip))]
ifd_at = 8 + len(strip)
out = bytearray(b"II*\0" + struct.pack("<I", ifd_at) + strip)
out += struct.pack("<H", len(entries))
for tag, kind, count, value in entries:
    value = 8 if tag == 273 else value
    out += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
out += struct.pack("<I", 0)
open(sys.argv[1], "wb").write(out)
EOF
ls -l "$data"

port=9391
limit="${MEMORY_LIMIT:-1G}"
limit_mib=$(python3 -c "import sys; s=sys.argv[1].upper().rstrip('B').rstrip('I'); u={'K':1/1024,'M':1,'G':1024,'T':1048576}; print(int(float(s[:-1])*u[s[-1]]) if s[-1] in u else int(s)//1048576)" "$limit")
pyramids=$(mktemp -d)
MEMORY_LIMIT="$limit" PYRAMID_DIR="$pyramids" LOG_LEVEL=warn \
    "${GIGATILE:-target/release/gigatile}" serve --data-dir "$data" --port $port &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$pyramids"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "overload: waiting for the pyramids to be built"
for _ in $(seq 1800); do
    building=$(curl -sf "http://127.0.0.1:$port/api/images" | python3 -c \
        "import json,sys; print(sum(e['status']=='building' for e in json.load(sys.stdin)))")
    [ "$building" = 0 ] && break
    sleep 1
done
echo "overload: build peak RSS $(awk '/VmHWM/ {print int($2/1024)}' /proc/$server/status) MiB"
python3 bench/overload.py --base "127.0.0.1:$port" --pid $server --memory-limit-mib "$limit_mib" \
    --clients "${CLIENTS:-256}" --seconds "${SECONDS_LOAD:-60}"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^gigatile_(memory|overloaded)'
