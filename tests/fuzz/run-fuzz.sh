#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, BERTH_FUZZ=ON) and fuzzes the SIF
# parser for a fixed time. The seed corpus is copied to a temporary directory
# so that neither new corpus entries nor crash files ever land in the repo;
# on a finding the temporary directory is kept and its path printed.
#
# Usage: run-fuzz.sh [SECONDS]      (default 60)
# Env:   BERTH_FUZZ_BUILD_DIR       build directory (default <repo>/build-fuzz)
#        CC, CXX                    compilers for a fresh build dir (clang-14)
# The last line is always "fuzz: N runs, M crashes"; the exit status is
# non-zero when the fuzzer found anything or could not run.
set -euo pipefail

duration=${1:-60}
if ! [[ $duration =~ ^[0-9]+$ ]] || [[ $duration -eq 0 ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BERTH_FUZZ_BUILD_DIR:-$repo/build-fuzz}

summary() {
  echo "fuzz: $1 runs, $2 crashes"
}

# A cache from another compiler cannot be switched to clang in place.
if [[ ! -f $build/CMakeCache.txt ]]; then
  CC=${CC:-clang-14} CXX=${CXX:-clang++-14} \
    cmake -S "$repo" -B "$build" -G Ninja -DBERTH_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
elif ! grep -q '^BERTH_FUZZ:BOOL=ON$' "$build/CMakeCache.txt"; then
  echo "error: $build is not a BERTH_FUZZ build dir; set BERTH_FUZZ_BUILD_DIR" >&2
  summary 0 0
  exit 2
fi
if ! cmake --build "$build" --target sif_fuzz; then
  echo "error: building sif_fuzz failed" >&2
  summary 0 0
  exit 2
fi
fuzzer=$build/tests/fuzz/sif_fuzz

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz.XXXXXX")
keep=0
cleanup() { [[ $keep -eq 1 ]] || rm -rf "$work"; }
trap cleanup EXIT
mkdir "$work/corpus" "$work/artifacts"
cp "$repo"/tests/fuzz/corpus/* "$work/corpus/"

# UB is already fatal (-fno-sanitize-recover); this adds where it happened.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

echo "fuzzing for ${duration}s in $work"
rc=0
(cd "$work" && "$fuzzer" -max_total_time="$duration" -rss_limit_mb=2048 -max_len=65536 \
  -timeout=25 -print_final_stats=1 -artifact_prefix="$work/artifacts/" corpus) \
  >"$work/fuzz.log" 2>&1 || rc=$?

# Slow units are only reported, not failures.
crashes=$(find "$work/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/fuzz.log" | tail -n 1)
if [[ -z $runs ]]; then
  # Stopped before the final stats: take the last status line ("#1234 ...").
  runs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$work/fuzz.log" | tail -n 1)
fi
runs=${runs:-0}

if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
  keep=1
  tail -n 60 "$work/fuzz.log"
  echo "fuzzer exit status $rc; log and inputs kept in $work"
  for f in "$work"/artifacts/*; do
    [[ -e $f ]] && echo "  reproduce: $fuzzer $f"
  done
  # A non-zero status with no saved input is still a failure.
  [[ $crashes -eq 0 ]] && crashes=1
  summary "$runs" "$crashes"
  exit 1
fi
grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' "$work/fuzz.log" || true
summary "$runs" 0
