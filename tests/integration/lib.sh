# Shared helpers for the integration tests (sourced). Each test prints
# "ok   NAME" or "FAIL NAME: why" and, via finish, "N passed, M failed".
pass=0
fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
finish() {
  # A test may define before_finish (closing checks that must also run when
  # it stops early); it runs once.
  if [ -z "${finishing:-}" ] && declare -F before_finish >/dev/null; then
    finishing=1; before_finish
  fi
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
  exit $?
}

# test_prologue NAME: the set-up every daemon test shares: root (to start
# daemons and make the test user), the unprivileged test user $TUSER, and a
# world-searchable $TEST_TMP (/tmp/berth-NAME-XXXXXX) for the test's files.
test_prologue() {
  TUSER=${BERTH_TEST_USER:-berthtest}
  [ "$(id -u)" = 0 ] || { bad setup "needs root to set up"; finish; }
  bash "$(dirname "${BASH_SOURCE[0]}")/../lib/ensure-test-user.sh" "$TUSER"
  TEST_TMP=$(mktemp -d "/tmp/berth-$1-XXXXXX")
  chmod 0755 "$TEST_TMP"
}

# must WHAT CMD...: a set-up step. When it fails the test stops there, failing
# and naming the step (a set-up whose failure went unnoticed would let later
# checks pass against the wrong thing).
must() {
  local what=$1; shift
  local err
  if ! err=$("$@" 2>&1 >/dev/null); then
    bad "setup: $what" "failed: $* ${err:0:400}"; finish
  fi
}

# check NAME CMD...: passes when CMD succeeds.
check() {
  local name=$1; shift
  if "$@"; then ok "$name"; else bad "$name" "command failed: $*"; fi
}

# expect_out NAME EXPECTED CMD...: stdout (trailing newline stripped) equals EXPECTED.
expect_out() {
  local name=$1 want=$2; shift 2
  local got
  got=$("$@" 2>"$TEST_TMP/stderr")
  local rc=$?
  if [ "$got" = "$want" ] && [ "$rc" -eq 0 ]; then ok "$name"
  else bad "$name" "rc=$rc got '$got' want '$want' stderr: $(head -c 300 "$TEST_TMP/stderr")"; fi
}

# expect_rc NAME RC CMD...
expect_rc() {
  local name=$1 want=$2; shift 2
  "$@" >/dev/null 2>"$TEST_TMP/stderr"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"
  else bad "$name" "rc=$rc want $want stderr: $(head -c 300 "$TEST_TMP/stderr")"; fi
}

# expect_fatal NAME SUBSTRING CMD...: non-zero exit, one FATAL line naming the problem.
expect_fatal() {
  local name=$1 want=$2; shift 2
  "$@" >/dev/null 2>"$TEST_TMP/stderr"
  local rc=$?
  local err lines
  err=$(cat "$TEST_TMP/stderr")
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ "$rc" -eq 0 ]; then bad "$name" "exit 0"
  elif [ "$lines" -ne 1 ]; then bad "$name" "stderr is $lines lines: $err"
  else case "$err" in FATAL:*"$want"*) ok "$name" ;; *) bad "$name" "stderr: $err" ;; esac
  fi
}

# expect_fatal_after_progress NAME SUBSTRING CMD...: non-zero exit and exactly one FATAL line
# naming the problem (INFO/WARNING progress lines may precede it, as in Apptainer).
expect_fatal_after_progress() {
  local name=$1 want=$2; shift 2
  "$@" >/dev/null 2>"$TEST_TMP/stderr"
  local rc=$? fatal
  fatal=$(grep '^FATAL:' "$TEST_TMP/stderr")
  if [ "$rc" -eq 0 ]; then bad "$name" "exit 0"
  elif [ "$(grep -c '^FATAL:' "$TEST_TMP/stderr")" -ne 1 ]; then bad "$name" "stderr: $(cat "$TEST_TMP/stderr")"
  elif grep -qv '^\(FATAL\|INFO\|WARNING\):' "$TEST_TMP/stderr"; then bad "$name" "stray stderr: $(cat "$TEST_TMP/stderr")"
  else case "$fatal" in *"$want"*) ok "$name" ;; *) bad "$name" "stderr: $fatal" ;; esac
  fi
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s.
wait_until() {
  local limit=$(( $1 * 10 )); shift
  local i
  for ((i = 0; i < limit; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# start_test_daemon [BERTH.CONF TEXT [ECL.TOML TEXT]]: (re)starts the daemon
# under test in $MODE (system: root's, on $TEST_TMP/run; user: $TUSER's
# private one, on $TEST_TMP/u), with a fresh config directory; sets SOCK and
# daemon_pid. stop_test_daemon ends it.
# start_test_daemon_in ETC [BERTHD FLAG...]: the same with a config directory
# the test keeps (and may change while the daemon runs) and further flags.
stop_test_daemon() {
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  daemon_pid=
}
start_test_daemon() {
  local etc=$TEST_TMP/etc-$RANDOM
  mkdir -p "$etc"
  printf '%s\n' "${1:-}" >"$etc/berth.conf"
  [ -n "${2:-}" ] && printf '%s\n' "$2" >"$etc/ecl.toml"
  chmod 0755 "$etc"; chmod 0644 "$etc"/*
  start_test_daemon_in "$etc"
}
start_test_daemon_in() {
  stop_test_daemon
  local etc=$1; shift
  if [ "$MODE" = system ]; then
    SOCK=$TEST_TMP/run/berthd.sock
    rm -f "$SOCK"
    "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$etc" --state-dir "$TEST_TMP/state" "$@" \
      --foreground 2>>"$TEST_TMP/berthd.log" &
  else
    chmod 0666 /dev/fuse  # Debian ships 0666; some machines have 0600 (recipes.md)
    install -d -o "$TUSER" -m 0700 "$TEST_TMP/u"
    SOCK=$TEST_TMP/u/berthd.sock
    rm -f "$SOCK"
    runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$SOCK" --config-dir "$etc" \
      --state-dir "$TEST_TMP/u/state" "$@" --foreground 2>>"$TEST_TMP/berthd.log" &
  fi
  daemon_pid=$!
  wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(tail -5 "$TEST_TMP/berthd.log")"; finish; }
}
