#!/usr/bin/env bash
# Runs every image of the malformed-SIF corpus (make_corpus.py) through the
# read-only `berth sif` verbs and checks the failure is a clean one: a normal
# non-zero exit (no signal, no hang), nothing on stdout, and exactly one
# "FATAL:   " line on stderr that names the problem (NAME.err).
#
# Usage: malformed_test.sh BERTH_BINARY CORPUS_DIR
set -u

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BERTH_BINARY CORPUS_DIR" >&2
  exit 2
fi
berth=$1
corpus=$2
if [[ ! -x $berth ]]; then
  echo "error: $berth is not an executable" >&2
  exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check_run CASE_FILE EXPECTED VERB...: prints why the run is wrong, or nothing.
check_run() {
  local image=$1 expected=$2
  shift 2
  local rc=0
  timeout -k 5 10 "$berth" sif "$@" "$image" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
  local what="sif $*"
  if [[ $rc -eq 0 ]]; then
    echo "$what: exit status 0"
    return
  fi
  if [[ $rc -eq 124 ]]; then
    echo "$what: timed out after 10 s"
    return
  fi
  # 255 is berth's own failure status; other values >= 128 mean a signal.
  if [[ $rc -ge 128 && $rc -ne 255 ]]; then
    echo "$what: killed by signal $((rc - 128)) (exit status $rc)"
    return
  fi
  if [[ -s $tmp/out ]]; then
    echo "$what: wrote $(wc -c <"$tmp/out") bytes to stdout"
    return
  fi
  local lines
  mapfile -t lines <"$tmp/err"
  if [[ ${#lines[@]} -ne 1 || $(wc -l <"$tmp/err") -ne 1 ]]; then
    echo "$what: stderr is not exactly one line: $(head -c 300 "$tmp/err" | tr '\n' '|')"
    return
  fi
  if [[ ${lines[0]} != "FATAL:   "* ]]; then
    echo "$what: stderr does not start with 'FATAL:   ': ${lines[0]}"
    return
  fi
  if [[ ${lines[0]} != *"$expected"* ]]; then
    echo "$what: expected '$expected' in: ${lines[0]}"
    return
  fi
}

passed=0
failed=0
shopt -s nullglob
images=("$corpus"/*.sif)
if [[ ${#images[@]} -eq 0 ]]; then
  echo "FAIL: no *.sif images in $corpus"
  echo "0 passed, 1 failed"
  exit 1
fi

for image in "${images[@]}"; do
  name=$(basename "$image" .sif)
  errfile=${image%.sif}.err
  problems=()
  if [[ ! -s $errfile ]]; then
    problems+=("missing or empty $name.err")
  else
    expected=$(head -n 1 "$errfile")
    for verb in "list" "header" "info 1" "dump 1"; do
      # shellcheck disable=SC2086 # "info 1" is meant to split into verb + ID
      why=$(check_run "$image" "$expected" $verb)
      [[ -n $why ]] && problems+=("$why")
    done
  fi
  if [[ ${#problems[@]} -eq 0 ]]; then
    echo "ok $name"
    passed=$((passed + 1))
  else
    joined=$(printf '%s; ' "${problems[@]}")
    echo "FAIL $name: ${joined%; }"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
