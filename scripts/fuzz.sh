#!/usr/bin/env bash
# Fuzzes every target for N seconds each (default 60) with cargo-fuzz on stable Rust
# (RUSTC_BOOTSTRAP=1 lets stable build with the sanitizer flags cargo-fuzz needs).
# Crashes are written to fuzz/artifacts/; keep each under tests/fuzz_cases/ so the ordinary
# tests replay it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    # Seed the corpus with the inputs kept in the repo for this target (crash cases, and the
    # http target's seed requests).
    if [ -d "tests/fuzz_cases/$target" ]; then cp -n "tests/fuzz_cases/$target"/* "$corpus/" 2>/dev/null || true; fi
    echo "fuzz: $target for ${seconds}s"
    log="fuzz/$target.log"
    if ! cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target failed (crash inputs in fuzz/artifacts/$target)"
        exit 1
    fi
    grep -E "^#[0-9]+ +DONE" "$log" || tail -n 1 "$log"
done
