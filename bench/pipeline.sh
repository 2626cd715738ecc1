#!/usr/bin/env bash
# The image pipeline's benchmark: gigatile beside libvips and iipsrv, in one run, on the same
# mosaics of real photographs, printed as ratios (these machines are noisy: only ratios from
# one run mean anything).
#
#  1. pyramid build of the 60000×40000 baseline JPEG: wall time and peak RSS, beside
#     `vips tiffsave --tile --pyramid --bigtiff --compression jpeg` (cold page cache);
#  2. time until a whole-image view 1024 px wide exists, beside `vips thumbnail SRC out 1024`;
#  3. CPU time per tile over 5000 distinct tiles from simulated pan/zoom sessions on the
#     20000×15000 pyramidal TIFF, beside iipsrv (2 FastCGI workers behind lighttpd).
#
# usage: bench/pipeline.sh [build] [view] [tiles]     (default: all three)
# Needs root to drop the page cache between cold runs; runs without it too.
set -euo pipefail
cd "$(dirname "$0")/.."
work=bench/work
out="$work/out"
bench/setup.sh
bench/make-images.sh "$work" >/dev/null
cargo build --release --quiet --bin gigatile --example render_tiles --example first_view
mkdir -p "$out"
bin=target/release/gigatile
src60="$work/mosaic-60000x40000.jpg"
pyr20="$(realpath "$work/mosaic-20000x15000-pyramid.tif")"

sections="${*:-build view tiles}"
want() { [[ " $sections " == *" $1 "* ]]; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# timed CMD...: prints "wall_seconds peak_rss_kib" of the command.
timed() {
    /usr/bin/time -f "%e %M" -o "$out/time.txt" "$@" >"$out/stdout.txt" 2>"$out/stderr.txt" || {
        cat "$out/stderr.txt" >&2
        return 1
    }
    cat "$out/time.txt"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

echo "# bench/pipeline.sh — $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo

# 1. Pyramid build.
if want build; then
rm -f "$out"/build-*.tif
drop_caches
read -r vips_wall vips_rss < <(timed vips tiffsave "$src60" "$out/build-vips.tif" --tile --pyramid \
    --bigtiff --compression jpeg --Q 85 --tile-width 256 --tile-height 256)
drop_caches
read -r gt_wall gt_rss < <(timed "$bin" convert "$src60" "$out/build-gigatile.tif" --quality 85)
echo "## 1. Pyramid build, 60000×40000 baseline JPEG"
echo
echo "| | wall s | peak RSS MiB |"
echo "|---|---|---|"
echo "| vips tiffsave | $vips_wall | $(mib "$vips_rss") |"
echo "| gigatile convert | $gt_wall | $(mib "$gt_rss") |"
echo "| ratio gigatile/vips | $(ratio "$gt_wall" "$vips_wall") | |"
echo
rm -f "$out"/build-*.tif
fi

# 2. First whole-image view.
if want view; then
drop_caches
read -r vt_wall _ < <(timed vips thumbnail "$src60" "$out/view-vips.jpg" 1024)
drop_caches
read -r gv_wall _ < <(timed target/release/examples/first_view "$src60" "$out/view-gigatile.jpg" 1024)
echo "## 2. First 1024-px whole-image view, 60000×40000 baseline JPEG"
echo
echo "| | wall s |"
echo "|---|---|"
echo "| vips thumbnail | $vt_wall |"
echo "| gigatile preview pyramid + render | $gv_wall |"
echo "| ratio gigatile/vips | $(ratio "$gv_wall" "$vt_wall") |"
echo
fi

# 3. CPU per tile over 5000 distinct tiles.
want tiles || exit 0
python3 bench/tiles.py 20000 15000 5000 >"$out/tiles.txt"
cat "$pyr20" >/dev/null
target/release/examples/render_tiles "$pyr20" 85 <"$out/tiles.txt" >"$out/gigatile-tiles.txt"
target/release/examples/render_tiles "$pyr20" 85 reencode <"$out/tiles.txt" >"$out/gigatile-reencode.txt"
per_tile() { sed 's/.*cpu_ms_per_tile=\([0-9.]*\).*/\1/' "$1"; }
gt_ms=$(per_tile "$out/gigatile-tiles.txt")
gr_ms=$(per_tile "$out/gigatile-reencode.txt")
python3 bench/iip_paths.py "$pyr20" 20000 15000 <"$out/tiles.txt" >"$out/iipsrv-paths.txt"
bench/iipsrv.sh stop
bench/iipsrv.sh start
trap 'bench/iipsrv.sh stop' EXIT
head -n 1 "$out/iipsrv-paths.txt" | python3 bench/fetch.py 127.0.0.1 "${IIPSRV_PORT:-9010}" >/dev/null
head -n 1 "$out/iipsrv-paths.txt" | python3 bench/fetch.py 127.0.0.1 "${IIPSRV_PORT:-9010}" >/dev/null
read -ra pids < <(bench/iipsrv.sh pids | xargs)
before=$(bench/cpu.sh "${pids[@]}")
fetched=$(python3 bench/fetch.py 127.0.0.1 "${IIPSRV_PORT:-9010}" <"$out/iipsrv-paths.txt")
after=$(bench/cpu.sh "${pids[@]}")
n=$(wc -l <"$out/iipsrv-paths.txt")
iip_ms=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.4f", (b - a) * 1000 / n }')
echo "## 3. CPU per tile, 5000 distinct tiles from pan/zoom sessions, 20000×15000 pyramidal TIFF"
echo
echo "| | tiles | CPU ms per tile | |"
echo "|---|---|---|---|"
echo "| iipsrv 1.1 (FastCGI, lighttpd) | $n | $iip_ms | $fetched |"
echo "| gigatile render (in process) | $(wc -l <"$out/tiles.txt") | $gt_ms | $(cut -d' ' -f5- "$out/gigatile-tiles.txt") |"
echo "| gigatile, every tile decoded and re-encoded | $(wc -l <"$out/tiles.txt") | $gr_ms | $(cut -d' ' -f6- "$out/gigatile-reencode.txt") |"
echo "| ratio gigatile/iipsrv | | $(ratio "$gt_ms" "$iip_ms") | |"
echo "| ratio gigatile re-encoding/iipsrv | | $(ratio "$gr_ms" "$iip_ms") | |"
