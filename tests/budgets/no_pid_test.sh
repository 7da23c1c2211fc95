#!/usr/bin/env bash
# no_pid_test.sh BERTH BERTHD system|user: review finding 10. Without a PID
# namespace (the default, as Apptainer's, and --no-pid), the container's
# processes still end with it: a background job, a double-forked setsid
# daemon, and everything when the client is SIGKILLed; the caller cannot
# kill the container's init to orphan the rest (system daemon: the init's
# real uid is not the caller's). Each leftover is a `sleep` with a duration
# unique to this run, so the checks look at this test's processes only.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
budget_setup "no-pid-$MODE" "$BERTH_SRC" "$BERTHD_SRC"
start_daemon "$MODE"
b() { as "$TUSER" "$BERTH" "$@"; }
mark=$((200000 + RANDOM))
# A failing run leaves its sleeps behind: they go with the test.
trap 'for i in 1 2 3 4 5 11 12 13 14 15; do pkill -x -f "sleep $((mark + i))"; done; budget_cleanup' EXIT
# alive N: a live (not zombie) `sleep N` exists.
alive() { pgrep -x -f "sleep $1" >/dev/null && ps -o stat= -p "$(pgrep -x -f "sleep $1")" | grep -qv Z; }
quiet='</dev/null >/dev/null 2>&1'

# The default (no flag) and --no-pid: the same container shape.
for V in default --no-pid; do
  nopid=()
  base=$mark
  [ "$V" = --no-pid ] && nopid=(--no-pid) base=$((mark + 10))
  n=$((base + 1))
  out=$(b exec "${nopid[@]}" "$IMG" sh -c "sleep $n $quiet & echo started")
  [ "$out" = started ] && ! alive $n && ok "$V: a background job ends with the container" ||
    bad "$V: a background job ends with the container" "out '$out', sleep $n still running"

  n=$((base + 2))
  b exec "${nopid[@]}" "$IMG" sh -c "(busybox setsid sh -c 'sleep $n $quiet &' &); sleep 0.3" >/dev/null 2>&1
  ! alive $n && ok "$V: a double-forked setsid daemon ends with the container" ||
    bad "$V: a double-forked setsid daemon ends with the container" "sleep $n still running"

  # client_bg CMD...: CMD as $TUSER in the background, its pid in $client
  # (setpriv execs it: killing $client kills the client itself).
  client_bg() {
    setpriv --reuid "$(id -u "$TUSER")" --regid "$(id -g "$TUSER")" --clear-groups \
      env BERTH_SOCKET="$SOCK" "$@" &
    client=$!
  }

  n=$((base + 3))
  client_bg "$BERTH" exec "${nopid[@]}" "$IMG" sh -c "sleep $n $quiet & wait"
  wait_until 20 alive $n || bad "$V: client SIGKILLed: the container starts" "no sleep $n"
  kill -9 "$client"
  wait "$client" 2>/dev/null
  wait_until 10 eval "! alive $n" && ok "$V: the client SIGKILLed: the container's processes end" ||
    bad "$V: the client SIGKILLed: the container's processes end" "sleep $n still running"

  if [ "$MODE" = system ]; then
    n=$((base + 4))
    out=$(b exec "${nopid[@]}" "$IMG" sh -c "sleep $n $quiet & kill -9 \$PPID 2>/dev/null; echo \$?")
    [ "$out" = 1 ] && ! alive $n && ok "$V: the payload cannot kill the init; its job still ends" ||
      bad "$V: the payload cannot kill the init; its job still ends" "kill rc '$out', alive: $(alive $n && echo yes)"
    n=$((base + 5))
    client_bg "$BERTH" exec "${nopid[@]}" "$IMG" sh -c "echo \$PPID; sleep $n $quiet & wait" \
      >"$TEST_TMP/init.pid"
    wait_until 20 alive $n
    init=$(cat "$TEST_TMP/init.pid" 2>/dev/null)
    [ -n "$init" ] && ! runuser -u "$TUSER" -- kill -9 "$init" 2>/dev/null &&
      ok "$V: the caller cannot kill the init from the host" ||
      bad "$V: the caller cannot kill the init from the host" "init '$init' killed"
    kill -9 "$client" 2>/dev/null
    wait "$client" 2>/dev/null
    wait_until 10 eval "! alive $n" && ok "$V: ... and the container still ends with its client" ||
      bad "$V: ... and the container still ends with its client" "sleep $n still running"
  fi
done
check "the daemon still runs" kill -0 "$daemon_pid"
finish
