#!/usr/bin/env bash
# Installs what building and testing gigatile needs on Debian 12: the C toolchain pieces the
# bundled codecs build with (cmake, nasm: without nasm libjpeg-turbo silently loses its SIMD),
# the real tools the tests compare against (libvips, libtiff, ImageMagick, libwebp tools, iipsrv),
# Chromium and Node for the browser tests, the npm packages of package-lock.json (Leaflet,
# embedded in the binary; playwright-core and OpenSeadragon for the tests), and the official IIIF
# Image API validator (a Python venv in target/iiif-venv).
# Rust itself comes from rustup (https://rustup.rs).
set -euo pipefail

packages=(build-essential cmake nasm pkg-config curl libvips-tools libtiff-tools imagemagick webp
    iipimage-server lighttpd time chromium nodejs python3-venv libmagic1)
# Node packaged elsewhere (NodeSource) carries its own npm, which Debian's npm conflicts with.
# Debian 12's Node is 18: package.json pins playwright-core 1.61, the last release that runs on it.
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
# The official IIIF Image API validator for tests/iiif_validator.rs, in a venv inside the clone
# (CI caches nothing outside it); pinned with its dependencies. python-magic needs libmagic1.
venv=target/iiif-venv
if [ ! -x "$venv/bin/iiif-validate.py" ]; then
    echo "setup: installing the IIIF validator"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        iiif-validator==1.0.5 bottle==0.13.4 lxml==6.1.3 pillow==13.0.0 python-magic==0.4.27
fi
echo "setup: ready"
