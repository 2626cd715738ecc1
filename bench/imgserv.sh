#!/usr/bin/env bash
# Fitted images: gigatile's /imgserv.cgi beside `vips thumbnail SRC out.jpg 800 --height 600`,
# on the same mosaics of real photographs, as baseline JPEG, strip TIFF and pyramidal TIFF.
#
# First request: the time from asking for a fitted size not made yet to having its file (curl
# follows the redirect and downloads it), once the image's pyramid exists, with the page cache
# dropped before each try; vips's time is its whole command, also from a dropped page cache.
# Each try asks for a new size (widths 800, 750, 700, ...: boxes WIDTHx600), so no try is a cache
# hit; the median of TRIES is shown, and the ratio gigatile/vips (target ≤ 0.5).
# Cached redirect: wrk with CONNECTIONS (16) connections for DURATION on one fitted URL already
# made (no redirect followed): requests/s (target ≥ 20,000). The server runs on $SERVER_CPUS, wrk
# and curl on $LOAD_CPUS.
#
# usage: bench/imgserv.sh [20000x15000] [60000x40000]     (default both)
# env:   BENCH_WORK (default bench/work, made by bench/make-images.sh), GIGATILE_BIN (default
#        target/release/gigatile), TRIES (3), CONNECTIONS (16), DURATION (10s), SERVER_CPUS (0),
#        LOAD_CPUS (1), GIGATILE_PORT (9113).
# Needs root to drop the page cache; runs without it too (and says so). The first run builds
# the pyramids of the JPEG and strip TIFF sources (minutes for 60000x40000); they are kept in
# BENCH_WORK/.imgserv-data for later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(realpath "${BENCH_WORK:-bench/work}")"
bin="$(realpath "${GIGATILE_BIN:-target/release/gigatile}")"
tries="${TRIES:-3}"
conns="${CONNECTIONS:-16}"
duration="${DURATION:-10s}"
server_cpus="${SERVER_CPUS:-0}"
load_cpus="${LOAD_CPUS:-1}"
port="${GIGATILE_PORT:-9113}"
images="${*:-20000x15000 60000x40000}"
kinds=".jpg -strip.tif -pyramid.tif"

# gigatile's DATA_DIR holds hard links to the sources (same filesystem), and keeps its built
# pyramids between runs; its fitted-image cache is emptied at each start.
data="$work/.imgserv-data"
mkdir -p "$data"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/gigatile-bench-imgserv.XXXXXX")"
server=
cleanup() {
    [ -z "$server" ] || { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dropped=yes
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || dropped=no; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
source_name() { echo "mosaic-$1$2"; }

for image in $images; do
    for kind in $kinds; do
        name=$(source_name "$image" "$kind")
        [ -f "$work/$name" ] || { echo "missing $work/$name: run bench/make-images.sh" >&2; exit 1; }
        [ -e "$data/$name" ] || ln "$work/$name" "$data/$name"
    done
done

rm -rf "$data/.gigatile/imgcache"
DATA_DIR="$data" HOST=127.0.0.1 PORT="$port" WARMUP_LEVELS=0 LOG_LEVEL=warn PYRAMID_BUILDS=1 \
    taskset -c "$server_cpus" "$bin" serve >"$tmp/gigatile.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for image in $images; do
    for kind in $kinds; do
        name=$(source_name "$image" "$kind")
        echo "waiting for the pyramid of $name" >&2
        until curl -sf "$base/api/images/$name/meta" 2>/dev/null | grep -q '"status":"ready"'; do
            kill -0 "$server" 2>/dev/null || { echo "gigatile stopped:" >&2; tail "$tmp/gigatile.log" >&2; exit 1; }
            sleep 2
        done
    done
done

printf '%-36s %12s %12s %8s\n' "source (first 800x600 request)" "vips s" "gigatile s" "ratio"
for image in $images; do
    for kind in $kinds; do
        name=$(source_name "$image" "$kind")
        vips_times=() ours=()
        for try in $(seq "$tries"); do
            drop_caches
            start=$(date +%s.%N)
            taskset -c "$server_cpus" vips thumbnail "$work/$name" "$tmp/vips.jpg" 800 --height 600
            vips_times+=("$(echo "$(date +%s.%N) - $start" | bc)")
            drop_caches
            width=$((850 - 50 * try))
            ours+=("$(taskset -c "$load_cpus" curl -sfL -o "$tmp/ours.jpg" -w '%{time_total}' \
                "$base/imgserv.cgi?src=/$name&width=$width&height=600")")
        done
        v=$(printf '%s\n' "${vips_times[@]}" | median)
        o=$(printf '%s\n' "${ours[@]}" | median)
        printf '%-36s %12.3f %12.3f %8s\n' "$name" "$v" "$o" "$(ratio "$o" "$v")"
    done
done

name=$(source_name "${images%% *}" .jpg)
url="$base/imgserv.cgi?src=/$name&width=800&height=600"
status=$(curl -s -o /dev/null -w '%{http_code}' "$url")
[ "$status" = 302 ] || { echo "$url answered $status, not 302" >&2; exit 1; }
taskset -c "$load_cpus" wrk -c"$conns" -t2 -d"$duration" "$url" >"$tmp/wrk.out"
rps=$(awk '/Requests\/sec/ { print $2 }' "$tmp/wrk.out")
errors=$(awk '/Non-2xx|Socket errors/' "$tmp/wrk.out")
echo
echo "cached redirect, $conns connections, $duration: $rps requests/s (target ≥ 20000) ${errors}"
[ "$dropped" = yes ] || echo "note: the page cache could not be dropped (not root): first requests were not cold" >&2
