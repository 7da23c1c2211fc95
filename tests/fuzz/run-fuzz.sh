#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, BERTH_FUZZ=ON) and fuzzes the
# parsers of untrusted bytes for a fixed total time, split between them:
# sif_fuzz (SIF images, seeds in tests/fuzz/corpus) and deffile_fuzz
# (definition files and JSON definitions, seeded with the golden corpus
# tests/build/defs/*.def and *.json).
# Seeds are copied to a temporary directory so that neither new corpus
# entries nor crash files ever land in the repo; on a finding the temporary
# directory is kept and its path printed.
#
# Usage: run-fuzz.sh [--build-only] [SECONDS]   (default 60, for all targets
#        together; --build-only builds the targets and stops)
# Env:   BERTH_FUZZ_BUILD_DIR       build directory (default <repo>/build-fuzz)
#        CC, CXX                    compilers for a fresh build dir (clang-14)
# The last line is always "fuzz: N runs, M crashes" (all targets); the exit
# status is non-zero when a fuzzer found anything or could not run.
set -euo pipefail

build_only=0
if [[ ${1:-} == --build-only ]]; then
  build_only=1
  shift
fi
duration=${1:-60}
if ! [[ $duration =~ ^[0-9]+$ ]] || [[ $duration -lt 2 ]]; then
  echo "usage: $0 [--build-only] [SECONDS] (at least 2)" >&2
  exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BERTH_FUZZ_BUILD_DIR:-$repo/build-fuzz}

# TARGET:SEEDS (a glob) and its share of the time; SIF images are the larger
# surface, so sif_fuzz gets the odd second.
targets=("sif_fuzz:$repo/tests/fuzz/corpus/*" "deffile_fuzz:$repo/tests/build/defs/*.def $repo/tests/build/defs/*.json")
shares=($(((duration + 1) / 2)) $((duration / 2)))

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
if ! cmake --build "$build" --target sif_fuzz deffile_fuzz; then
  echo "error: building the fuzz targets failed" >&2
  summary 0 0
  exit 2
fi
[[ $build_only -eq 1 ]] && exit 0

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz.XXXXXX")
keep=0
cleanup() { [[ $keep -eq 1 ]] || rm -rf "$work"; }
trap cleanup EXIT

# UB is already fatal (-fno-sanitize-recover); this adds where it happened.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# fuzz_one NAME SEEDS SECONDS: runs one target; sets $runs and $crashes.
fuzz_one() {
  local name=$1 seeds=$2 seconds=$3 dir=$work/$1 rc=0
  local fuzzer=$build/tests/fuzz/$name
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # shellcheck disable=SC2086 # the glob is meant to expand
  cp $seeds "$dir/corpus/"
  echo "fuzzing $name for ${seconds}s in $dir"
  (cd "$dir" && "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
    -timeout=25 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" corpus) \
    >"$dir/fuzz.log" 2>&1 || rc=$?
  # Slow units are only reported, not failures.
  crashes=$(find "$dir/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/fuzz.log" | tail -n 1)
  if [[ -z $runs ]]; then
    # Stopped before the final stats: take the last status line ("#1234 ...").
    runs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$dir/fuzz.log" | tail -n 1)
  fi
  runs=${runs:-0}
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    keep=1
    tail -n 60 "$dir/fuzz.log"
    echo "$name: fuzzer exit status $rc; log and inputs kept in $dir"
    for f in "$dir"/artifacts/*; do
      [[ -e $f ]] && echo "  reproduce: $fuzzer $f"
    done
    # A non-zero status with no saved input is still a failure.
    [[ $crashes -eq 0 ]] && crashes=1
    return
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|Done )' "$dir/fuzz.log" || true
}

total_runs=0
total_crashes=0
for i in "${!targets[@]}"; do
  fuzz_one "${targets[$i]%%:*}" "${targets[$i]#*:}" "${shares[$i]}"
  total_runs=$((total_runs + runs))
  total_crashes=$((total_crashes + crashes))
done
summary "$total_runs" "$total_crashes"
[[ $total_crashes -eq 0 ]]
