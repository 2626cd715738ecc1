#!/usr/bin/env bash
# Installs what building and testing gigatile needs on Debian 12: the C toolchain pieces the
# bundled codecs build with (cmake, nasm: without nasm libjpeg-turbo silently loses its SIMD),
# the real tools the tests compare against (libvips, libtiff, ImageMagick, libwebp tools, iipsrv),
# Chromium and Node for the browser tests, and the npm packages of package-lock.json (Leaflet,
# embedded in the binary; playwright-core and OpenSeadragon for the tests).
# Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail

packages=(build-essential cmake nasm pkg-config curl libvips-tools libtiff-tools imagemagick webp
    iipimage-server lighttpd time chromium nodejs python3-venv)
# Node packaged elsewhere (NodeSource) carries its own npm, which Debian's npm conflicts with.
command -v npm >/dev/null 2>&1 || packages+=(npm)

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: Rust is missing; install it with rustup (https://rustup.rs), then run this again" >&2
    exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: ready"
