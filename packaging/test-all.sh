#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: dependencies,
# build, unit + integration tests (CTest, which also runs tests as an
# unprivileged user it creates), then a short fuzzing run of the parsers.
# Exits non-zero when any test fails or when no test ran.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fuzz_seconds=${BERTH_FUZZ_SECONDS:-60}

step() { printf '\n== %s (at %ss)\n' "$*" "$SECONDS"; }

step "installing Debian packages"
bash "$here/packaging/install-deps.sh"

# Before the build: a formatting slip fails in seconds, not after it.
step "clang-format check"
bash "$here/packaging/check-format.sh"

step "building"
BUILD_DIR=$here/build bash "$here/packaging/build.sh" -DBERTH_TESTS=ON

step "tests"
bash "$here/tests/lib/ensure-test-user.sh" berthtest
# The unprivileged test user must be able to reach the build tree.
chmod o+rx "$here" "$here/build" 2>/dev/null || true
# The fuzz targets (a clang build of their own) build meanwhile at the
# lowest priority: the tests mostly wait on daemons, mounts and registries.
fuzz_build_log=$(mktemp /tmp/berth-fuzz-build.XXXXXX)
nice -n 19 bash "$here/tests/fuzz/run-fuzz.sh" --build-only >"$fuzz_build_log" 2>&1 &
fuzz_build=$!
ctest --test-dir "$here/build" --output-on-failure -j "$(nproc)" --no-tests=error

step "fuzzing the SIF and definition-file parsers for ${fuzz_seconds}s"
if ! wait "$fuzz_build"; then
  cat "$fuzz_build_log"
  echo "error: building the fuzz targets failed" >&2
  exit 1
fi
rm -f "$fuzz_build_log"
bash "$here/tests/fuzz/run-fuzz.sh" "$fuzz_seconds"

# Reached only when every step passed (set -e): one closing line for CI.
count=$(ctest --test-dir "$here/build" -N | sed -n 's/^Total Tests: //p')
echo "summary: $((count + 1)) passed, 0 failed"
