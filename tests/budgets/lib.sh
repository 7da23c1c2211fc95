# Shared set-up for the budget tests (sourced after ../integration/lib.sh):
# the binaries copied where the test users can run them, the test image, and
# a daemon of the given mode whose every trace stays under $TEST_TMP.
here_budgets=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
daemon_pid=
budget_cleanup() {
  [ -n "${flood_pid:-}" ] && kill "$flood_pid" 2>/dev/null && wait "$flood_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "${KEEP_TEST_TMP:-}" ] || rm -rf "$TEST_TMP" 2>/dev/null
}

# budget_setup NAME BERTH BERTHD: test_prologue, binaries, image ($IMG).
budget_setup() {
  test_prologue "$1"
  trap budget_cleanup EXIT
  install -m 0755 "$2" "$TEST_TMP/berth"
  install -m 0755 "$3" "$TEST_TMP/berthd"
  BERTH=$TEST_TMP/berth
  IMG=$TEST_TMP/t.sif
  bash "$here_budgets/../integration/make_test_image.sh" "$BERTH" "$IMG" ||
    { bad setup "test image"; finish; }
}

# start_daemon system|user [NOFILE]: a root daemon (its descriptor limits
# NOFILE, "SOFT:HARD" or one number for both, when given) or a user-mode
# daemon run by $TUSER; sets $SOCK, $LOG and $daemon_pid. Reads
# $TEST_TMP/etc/berth.conf if the test wrote one.
start_daemon() {
  local mode=$1 nofile=${2:-}
  LOG=$TEST_TMP/berthd.log
  mkdir -p "$TEST_TMP/etc"
  if [ "$mode" = system ]; then
    SOCK=$TEST_TMP/run/berthd.sock
    local limit=()
    case $nofile in *:*) ;; ?*) nofile=$nofile:$nofile ;; esac
    [ -n "$nofile" ] && limit=(prlimit "--nofile=$nofile")
    "${limit[@]}" "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" \
      --state-dir "$TEST_TMP/state" --foreground 2>"$LOG" &
  else
    chmod 0666 /dev/fuse  # Debian ships 0666; some machines have 0600 (recipes.md)
    install -d -o "$TUSER" -m 0700 "$TEST_TMP/u"
    SOCK=$TEST_TMP/u/berthd.sock
    runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$SOCK" \
      --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/u/state" --foreground 2>"$LOG" &
  fi
  daemon_pid=$!
  wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$LOG")"; finish; }
}

# as USER CMD...: CMD as USER, talking to our daemon.
as() { local who=$1; shift; runuser -u "$who" -- env BERTH_SOCKET="$SOCK" "$@"; }
