#!/usr/bin/env bash
# Runs every check and test: formatting, lints, a short fuzzing run of each decoder and
# parser, then the unit and integration tests (last, so their summary closes the output).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
cargo test --locked
