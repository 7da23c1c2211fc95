#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build,
# install berth and berthd to /usr/local/bin, start the daemon, make a small
# SIF image from busybox-static, show it with `berth sif` and run it. Run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

step() { printf '\n== %s\n' "$*"; }

step "installing Debian packages"
bash "$here/packaging/install-deps.sh"

step "building"
BUILD_DIR=$here/build BUILD_TYPE=Release bash "$here/packaging/build.sh" -DBERTH_TESTS=OFF

step "installing to ${PREFIX:-/usr/local}"
cmake --install "$here/build" --prefix "${PREFIX:-/usr/local}" >/dev/null
command -v berth berthd

step "starting berthd"
bash "$here/packaging/start-daemon.sh"
berth version

step "making a busybox image"
work=$(mktemp -d /tmp/berth-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
bash "$here/packaging/make-busybox-image.sh" "$work/busybox.sif"

step "berth sif list"
berth sif header "$work/busybox.sif"
berth sif list "$work/busybox.sif"
mkdir -p "$here/build/demo" && cp "$work/busybox.sif" "$here/build/demo/busybox.sif"
echo "image kept at $here/build/demo/busybox.sif"

step "running it: berth run, then berth exec"
berth run "$here/build/demo/busybox.sif" uname -sr
berth exec "$here/build/demo/busybox.sif" sh -c 'echo "inside: $(id -un) in $(pwd), pid $$"'
