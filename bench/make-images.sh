#!/usr/bin/env bash
# Builds the realistic test images: camera photographs (twelve of the KDE wallpapers; the others
# are illustrations, whose flat areas compress and decode unrealistically fast) cut into
# 2000×1250 cells, flipped for variety, and mosaicked with `vips arrayjoin` to 20000×15000 and
# 60000×40000, each saved as a pyramidal JPEG BigTIFF, a strip TIFF, a baseline JPEG and a PNG
# (all JPEG at quality 85). Idempotent: existing outputs are kept.
#
# usage: [SIZES="20000x15000 ..."] bench/make-images.sh [WORK_DIR]     (default bench/work)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-bench/work}"
mkdir -p "$work/cells"
ulimit -n 8192

photographs=(BytheWater ColdRipple ColorfulCups DarkestHour EveningGlow FallenLeaf Grey Kite
    OneStandsOut Path Volna summer_1am)

# One cell per photograph (the largest size of each wallpaper), and its mirror image.
cells=()
for name in "${photographs[@]}"; do
    photo=$(ls -S /usr/share/wallpapers/"$name"/contents/images/*.jpg 2>/dev/null | head -n 1) || true
    [ -n "$photo" ] || continue
    cell="$work/cells/$name.v"
    [ -f "$cell" ] || vips thumbnail "$photo" "$cell" 2000 --height 1250 --crop centre --size both
    [ -f "$work/cells/$name-flip.v" ] || vips flip "$cell" "$work/cells/$name-flip.v" horizontal
    cells+=("$cell" "$work/cells/$name-flip.v")
done
[ ${#cells[@]} -ge 8 ] || { echo "make-images: no wallpapers found (run bench/setup.sh)" >&2; exit 1; }

# mosaic COLS ROWS OUT: arrayjoin with cells picked so that neighbours differ.
mosaic() {
    local cols=$1 rows=$2 out=$3 list=() n=${#cells[@]}
    for ((r = 0; r < rows; r++)); do
        for ((c = 0; c < cols; c++)); do
            list+=("${cells[$(((r * 7 + c * 3 + r * c) % n))]}")
        done
    done
    vips arrayjoin "${list[*]}" "$out" --across "$cols"
}

for size in ${SIZES:-20000x15000 60000x40000}; do
    w=${size%x*}; h=${size#*x}
    base="$work/mosaic-$size"
    if [ ! -f "$base.jpg" ]; then
        echo "make-images: $base.jpg"
        mosaic $((w / 2000)) $((h / 1250)) "$base.jpg[Q=85,optimize_coding=false,interlace=false]"
    fi
    if [ ! -f "$base-pyramid.tif" ]; then
        echo "make-images: $base-pyramid.tif"
        vips tiffsave "$base.jpg" "$base-pyramid.tif" --tile --pyramid --bigtiff \
            --compression jpeg --Q 85 --tile-width 256 --tile-height 256
    fi
    if [ ! -f "$base-strip.tif" ]; then
        echo "make-images: $base-strip.tif"
        vips tiffsave "$base.jpg" "$base-strip.tif" --bigtiff --compression jpeg --Q 85
    fi
    if [ ! -f "$base.png" ]; then
        echo "make-images: $base.png"
        vips pngsave "$base.jpg" "$base.png" --compression 1
    fi
done
ls -l "$work"/mosaic-*
