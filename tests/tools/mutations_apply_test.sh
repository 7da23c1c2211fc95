#!/usr/bin/env bash
# mutations_apply: every tools/mutations/*.patch still plants its inversion.
# tools/mutate.sh counts a patch that no longer applies as not caught, but it
# is not part of CI: code that moves under a patch went unnoticed until the
# next full mutation run. This check is fast and runs with the others: each
# patch has its two header lines, applies to the source tree as it is
# (`git apply --check`, nothing is written), and its Tests regex names at
# least one registered test (a regex that matches nothing catches nothing).
#
# usage: mutations_apply_test.sh SOURCE_DIR BUILD_DIR
set -uo pipefail
src=$(cd "${1:?usage: $0 SOURCE_DIR BUILD_DIR}" && pwd)
build=${2:?usage: $0 SOURCE_DIR BUILD_DIR}
. "$src/tests/integration/lib.sh"

shopt -s nullglob
patches=("$src"/tools/mutations/*.patch)
((${#patches[@]})) || { bad setup "no patch under $src/tools/mutations"; finish; }

# The registered tests, one name a line ("Test #12: NAME"). Catch2's tests
# are listed once unit_tests is built, as they are when ctest runs.
tests=$(ctest --test-dir "$build" -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: //p')
[ -n "$tests" ] || { bad setup "ctest -N listed no test in $build"; finish; }

# The source tree's own repository (a clone, a worktree, or none for an
# unpacked tarball): never one above it, where git apply would skip the
# paths outside the current directory and report success.
export GIT_CEILING_DIRECTORIES=${src%/*}

for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  decision=$(sed -n '1s/^# Decision: *//p' "$p")
  regex=$(sed -n '2s/^# Tests: *//p' "$p")
  if [ -z "$decision" ] || [ -z "$regex" ]; then
    bad "$name" "line 1 must be '# Decision: <what the code guarantees>' and line 2 '# Tests: <ctest -R regex>'"
    continue
  fi
  if ! err=$(git -C "$src" apply --check "$p" 2>&1 | paste -sd';'; exit "${PIPESTATUS[0]}"); then
    bad "$name" "tools/mutations/$name.patch no longer applies (re-make it against today's code, see docs/testing.md): ${err:0:300}"
    continue
  fi
  if ! grep -Eq -- "$regex" <<<"$tests"; then
    bad "$name" "its '# Tests: $regex' matches no registered test"
    continue
  fi
  ok "$name"
done
finish
