#!/usr/bin/env bash
# tools/mutate.sh: proves that the tests guard the security decisions. Each
# tools/mutations/NAME.patch plants the inversion of one decision; this script
# applies it in a scratch copy of the tree, rebuilds what changed, runs the
# tests its header names, and reports whether they caught it (failed).
#
# A patch file starts with two header lines, then a `git diff`:
#   # Decision: <one line: what the code guarantees>
#   # Tests: <a ctest -R regex naming the test(s) that must fail>
#
# usage: tools/mutate.sh [--only NAME]... [--all-tests] [--no-baseline] [--list]
#   --only NAME    run only tools/mutations/NAME.patch (repeatable)
#   --all-tests    run every matching test (default: stop at the first that fails)
#   --no-baseline  skip running the tests on the unmutated tree first
#   --list         print the decisions and their tests, run nothing
# Environment: MUTATE_DIR (scratch copy and build, default <repo>/.mutate),
# MUTATE_JOBS (ninja and ctest parallelism, default 2).
#
# Prints a markdown table (decision | patch | result | tests that failed) and
# exits non-zero when any patch was not caught. Not part of .ci/run: it runs
# the guarding tests once per patch. Needs root, like the tests themselves.
# Between runs, the CTest test mutations_apply (fast, in CI) checks that every
# patch still applies and names a registered test.
# The scratch tree and its build are kept between runs, so a second run only
# recompiles what changed (ccache also serves objects built elsewhere).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${MUTATE_DIR:-$repo/.mutate}
jobs=${MUTATE_JOBS:-2}
tree=$work/tree
build=$tree/build
logs=$work/logs

only=() stop=(--stop-on-failure) baseline=1 list=0
while (($#)); do
  case $1 in
    --only) only+=("${2:?--only needs a patch name}"); shift 2 ;;
    --all-tests) stop=(); shift ;;
    --no-baseline) baseline=0; shift ;;
    --list) list=1; shift ;;
    *) echo "usage: $0 [--only NAME]... [--all-tests] [--no-baseline] [--list]" >&2; exit 2 ;;
  esac
done

die() { echo "mutate: $*" >&2; exit 2; }
say() { echo "mutate: $*" >&2; }

# header FILE KEY: the value of the "# KEY:" line among the file's first lines.
header() { sed -n "1,5{s/^# $2: *//p}" "$1" | head -1; }

# The patches to run: every one in name order, or those named, in that order.
patches=()
if ((${#only[@]})); then
  for o in "${only[@]}"; do
    [ -f "$repo/tools/mutations/$o.patch" ] || die "no tools/mutations/$o.patch"
    patches+=("$repo/tools/mutations/$o.patch")
  done
else
  for p in "$repo"/tools/mutations/*.patch; do [ -e "$p" ] && patches+=("$p"); done
fi
((${#patches[@]})) || die "no patch under tools/mutations/"

if ((list)); then
  for p in "${patches[@]}"; do
    printf '%s\t%s\t%s\n' "$(basename "$p" .patch)" "$(header "$p" Decision)" "$(header "$p" Tests)"
  done
  exit 0
fi
[ "$(id -u)" = 0 ] || die "run as root: the guarding tests start daemons and mount images"

# --- the scratch copy: the repository's files (tracked, and new ones not
# ignored), copied only where their contents differ, so that unchanged
# sources keep their timestamps and do not rebuild, while a changed file gets
# a fresh one (even when it goes back to older contents).
sync_tree() {
  mkdir -p "$tree"
  # A repository of its own: git apply run inside another repository's
  # work tree would apply paths relative to that one (and skip them here).
  [ -d "$tree/.git" ] || git init -q "$tree" || die "git init $tree"
  git -C "$repo" ls-files -z --cached --others --exclude-standard | sort -z >"$work/files"
  (cd "$repo" && xargs -0 -r sha1sum -- <"$work/files" 2>/dev/null | sort) >"$work/want.sums"
  (cd "$tree" && xargs -0 -r sha1sum -- <"$work/files" 2>/dev/null | sort) >"$work/have.sums"
  comm -23 "$work/want.sums" "$work/have.sums" | cut -c43- >"$work/changed"
  if [ -s "$work/changed" ]; then
    (cd "$repo" && tar -cf - --no-recursion -T "$work/changed") | (cd "$tree" && tar -xpf - --touch) ||
      die "copying the changed files to $tree"
  fi
  # Files the repository no longer has (not the build).
  (cd "$tree" && find . \( -path ./build -o -path ./.git \) -prune -o -type f -printf '%P\0' | sort -z) |
    comm -z -23 - "$work/files" | (cd "$tree" && xargs -0 -r rm -f)
}

build_tree() {
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$tree" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_TESTS=ON \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache >"$logs/cmake.log" 2>&1 ||
      return 1
  fi
  ninja -C "$build" -j "$jobs" >"$1" 2>&1
}

# run_tests REGEX LOG: ctest; prints the names of the tests that failed, and
# returns 2 when no test matched.
run_tests() {
  ctest --test-dir "$build" -R "$1" -j "$jobs" "${@:3}" --output-on-failure >"$2" 2>&1
  grep -q 'No tests were found' "$2" && return 2
  grep -q '^Total Test time' "$2" || { echo "(ctest did not finish)"; return 0; }
  sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(Failed\|Timeout\|Not Run\|SEGFAULT\|Subprocess aborted\|Exception\).*/\1/p' "$2" |
    paste -sd';' - | sed 's/;/; /g'
}

mkdir -p "$logs"
say "syncing the scratch tree $tree"
sync_tree
# The unprivileged test user must reach the build tree (as packaging/test-all.sh does).
chmod o+rx "$repo" "$work" "$tree" 2>/dev/null
say "building (ninja -j $jobs; log $logs/build.log)"
build_tree "$logs/build.log" || die "the unmutated tree does not build: see $logs/build.log"
chmod o+rx "$build"

if ((baseline)); then
  union=$(for p in "${patches[@]}"; do printf '(%s)|' "$(header "$p" Tests)"; done)
  union=${union%|}
  say "baseline: the guarding tests on the unmutated tree"
  failed=$(run_tests "$union" "$logs/baseline.log")
  [ -z "$failed" ] || die "baseline: tests fail without any mutation ($failed): see $logs/baseline.log"
fi

rows=() missed=0
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  decision=$(header "$p" Decision) regex=$(header "$p" Tests)
  log=$logs/$name.log
  result="" caught_by=""
  if [ -z "$decision" ] || [ -z "$regex" ]; then
    result="malformed (needs '# Decision:' and '# Tests:' lines)"
  elif ! (cd "$tree" && git apply --check "$p") 2>"$log"; then
    result="does not apply"
  else
    (cd "$tree" && git apply "$p" && git apply -R --check "$p") 2>>"$log" ||
      die "$name: git apply did not change $tree"
    say "$name: building"
    if ! build_tree "$log.build"; then
      result="does not build"
    else
      say "$name: ctest -R '$regex'"
      caught_by=$(run_tests "$regex" "$log" "${stop[@]}")
      case $? in
        2) result="no test matches" ;;
        *) [ -n "$caught_by" ] && result=caught || result="NOT caught" ;;
      esac
    fi
    (cd "$tree" && git apply -R "$p") || die "$name: could not take the patch back out of $tree"
  fi
  [ "$result" = caught ] || missed=$((missed + 1))
  say "$name: $result${caught_by:+ by $caught_by}"
  rows+=("| ${decision:-?} | \`$name\` | $result | ${caught_by:--} |")
done

echo "| decision | patch | result | failing tests |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "$(( ${#patches[@]} - missed )) of ${#patches[@]} caught"
# Leave the scratch build matching the tree again for the next run.
build_tree "$logs/build.log" >/dev/null 2>&1
((missed == 0))
