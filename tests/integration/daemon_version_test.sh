#!/usr/bin/env bash
# Integration test of the daemon/client plumbing: berthd serves Version on its
# Unix socket and reports the caller the kernel saw, for root and for a plain
# user; a second daemon refuses a socket that is in use; a stale socket is
# replaced; SIGTERM removes the socket; an unreachable daemon is one FATAL line.
#
# usage: daemon_version_test.sh BERTH BERTHD    (as root: it starts a system
# daemon and runs the client as the user `berthtest`, created if missing)
set -u

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BERTH BERTHD" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
  # Not a skip: a run that cannot check the system daemon has failed.
  echo "FAIL needs root (system-mode daemon, runuser)"
  echo "0 passed, 1 failed"
  exit 1
fi

passed=0
failed=0
daemon_pids=()
tmp=$(mktemp -d)
# The plain user must reach the socket and run the copied binaries.
chmod 0755 "$tmp"
mkdir -m 0755 "$tmp/bin"
cp "$1" "$tmp/bin/berth"
cp "$2" "$tmp/bin/berthd"
BERTH=$tmp/bin/berth
BERTHD=$tmp/bin/berthd
sock=$tmp/s.sock

cleanup() {
  local pid
  for pid in "${daemon_pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }
check() {  # check NAME COMMAND...: passes when COMMAND succeeds
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

# start_daemon LOG [ARGS...]: starts berthd on $sock, waits (bounded) for it to listen.
# Debug logging names each caller with its groups, which the reply does not print.
start_daemon() {
  local log=$1
  shift
  SPDLOG_LEVEL=debug "$BERTHD" --socket "$sock" --config-dir "$tmp/etc" \
    --state-dir "$tmp/state" --foreground "$@" 2>"$log" &
  daemon_pid=$!
  daemon_pids+=("$daemon_pid")
  wait_for_socket "$sock" "$daemon_pid"
}

wait_for_socket() {  # wait_for_socket PATH PID: up to 10 s
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -S $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

wait_for_exit() {  # wait_for_exit PID: up to 10 s; sets exit_code
  local i
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1"
      exit_code=$?
      return 0
    fi
    sleep 0.1
  done
  return 1
}

one_line() { [[ $(printf '%s\n' "$1" | wc -l) -eq 1 ]]; }

# --- a daemon answers root, and sees root ---
if start_daemon "$tmp/berthd.log"; then pass "berthd listens on $sock"; else
  fail "berthd did not create $sock within 10 s: $(cat "$tmp/berthd.log")"
fi
check "socket is mode 0666 in system mode" test "$(stat -c %a "$sock")" = 666
out=$("$BERTH" --socket "$sock" version 2>&1)
echo "$out"
check "berth version prints the client version" grep -q '^berth version ' <<<"$out"
check "root is reported as uid 0 gid 0" \
  grep -q '^berthd version .* (mode system, you are uid 0 gid 0)$' <<<"$out"

# --- and sees a plain user as that user (identity from the kernel only) ---
bash "$(dirname "$0")/../lib/ensure-test-user.sh" berthtest
user_uid=$(id -u berthtest)
user_gid=$(id -g berthtest)
out=$(runuser -u berthtest -g berthtest -G users -G nogroup -- \
  env BERTH_SOCKET="$sock" "$BERTH" version 2>&1)
echo "$out"
check "berthtest is reported as uid $user_uid gid $user_gid" \
  grep -q "you are uid $user_uid gid $user_gid)\$" <<<"$out"
# Supplementary groups come from SO_PEERGROUPS; the daemon logs them per call.
seen_groups=$(sed -n "s/.*Version from uid=$user_uid gid=$user_gid groups=\([0-9,]*\) pid=.*/\1/p" \
  "$tmp/berthd.log" | tail -1)
echo "groups seen by berthd: $seen_groups"
check "berthd sees supplementary group users (100)" grep -qx 100 <<<"${seen_groups//,/$'\n'}"
check "berthd sees supplementary group nogroup ($(getent group nogroup | cut -d: -f3))" \
  grep -qx "$(getent group nogroup | cut -d: -f3)" <<<"${seen_groups//,/$'\n'}"

# --- a second daemon on the same socket refuses, in one line ---
out=$(timeout 10 "$BERTHD" --socket "$sock" --foreground 2>&1)
code=$?
echo "$out"
check "second daemon exits non-zero" test "$code" -ne 0 -a "$code" -ne 124
check "second daemon says why in one line" one_line "$out"
check "second daemon names the running one" grep -q '^FATAL: .*already' <<<"$out"
# Without the lock file it is the connect test that must catch the live daemon.
rm -f "$sock.lock"
out=$(timeout 10 "$BERTHD" --socket "$sock" --foreground 2>&1)
code=$?
echo "$out"
check "a live daemon is detected by connecting" \
  test "$code" -ne 0 -a "$code" -ne 124 -a -S "$sock"
check "...and reported as already serving" grep -q 'already serving' <<<"$out"

# --- SIGTERM: clean exit, socket removed ---
kill -TERM "$daemon_pid"
if wait_for_exit "$daemon_pid"; then
  check "berthd exits 0 on SIGTERM" test "$exit_code" -eq 0
else
  fail "berthd still running 10 s after SIGTERM"
fi
check "SIGTERM removes the socket file" test ! -e "$sock"

# --- a stale socket (daemon killed hard) is replaced ---
start_daemon "$tmp/berthd2.log"
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
check "SIGKILL leaves a stale socket behind" test -S "$sock"
# The stale file exists before the new daemon replaces it, so wait for an answer.
answered() {
  local i
  for ((i = 0; i < 50; i++)); do
    "$BERTH" --socket "$sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
if start_daemon "$tmp/berthd3.log" && answered; then
  pass "a new daemon replaces the stale socket and answers"
else
  fail "a new daemon did not replace the stale socket: $(cat "$tmp/berthd3.log")"
fi
kill -TERM "$daemon_pid"
wait_for_exit "$daemon_pid" || true

# --- user mode: the daemon runs as the user, socket 0600 ---
mkdir -m 0700 "$tmp/user"
chown berthtest: "$tmp/user"
user_sock=$tmp/user/berth/s.sock
runuser -u berthtest -- "$BERTHD" --user-mode --socket "$user_sock" --foreground \
  2>"$tmp/berthd-user.log" &
user_pid=$!
daemon_pids+=("$user_pid")
if wait_for_socket "$user_sock" "$user_pid"; then
  check "user-mode socket is mode 0600" test "$(stat -c %a "$user_sock")" = 600
  out=$(runuser -u berthtest -- "$BERTH" --socket "$user_sock" version 2>&1)
  echo "$out"
  check "user-mode daemon reports mode user" grep -q "(mode user, you are uid $user_uid " <<<"$out"
else
  fail "user-mode berthd did not listen: $(cat "$tmp/berthd-user.log")"
fi
kill -TERM "$user_pid"
wait_for_exit "$user_pid" || true

# --- no daemon: one FATAL line, non-zero exit ---
err=$("$BERTH" --socket /nonexistent version 2>&1 >/dev/null)
code=$?
echo "$err"
check "unreachable daemon exits non-zero" test "$code" -ne 0
check "unreachable daemon is one line" one_line "$err"
check "unreachable daemon is a FATAL naming the socket" \
  grep -q '^FATAL:   cannot reach berthd at /nonexistent: ' <<<"$err"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
