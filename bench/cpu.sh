#!/usr/bin/env bash
# Prints the summed user+system CPU seconds of the given process ids (from /proc).
total=0
for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    ticks=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
    total=$((total + ticks))
done
awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f\n", t / hz }'
