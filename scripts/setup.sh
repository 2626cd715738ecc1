#!/usr/bin/env bash
# Installs what building and testing gigatile needs on Debian 12: the C toolchain pieces the
# bundled codecs build with (cmake, nasm: without nasm libjpeg-turbo silently loses its SIMD),
# and the real tools the tests compare against (libvips, libtiff, ImageMagick, libwebp tools).
# Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail

packages=(build-essential cmake nasm pkg-config curl libvips-tools libtiff-tools imagemagick webp
    iipimage-server lighttpd time)

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
echo "setup: ready"
