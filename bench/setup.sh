#!/usr/bin/env bash
# Installs the benchmark peers and inputs from Debian: libvips (vips tiffsave/thumbnail/dzsave),
# iipsrv behind lighttpd, wrk, GNU time (peak RSS), and the KDE wallpapers whose camera
# photographs are mosaicked into the test images.
set -euo pipefail
packages=(libvips-tools iipimage-server lighttpd wrk time plasma-workspace-wallpapers python3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
    $sudo_cmd apt-get update -qq
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
