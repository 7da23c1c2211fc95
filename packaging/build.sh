#!/usr/bin/env bash
# Configures and builds berth into BUILD_DIR (default ./build). Shared by the
# main-job and test scripts so both build the same way.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$here/build}
jobs=${BERTH_JOBS:-$(nproc)}
cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
ninja -C "$build_dir" -j "$jobs"
