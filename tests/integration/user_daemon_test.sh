#!/usr/bin/env bash
# user_daemon_test.sh BERTH BERTHD: which daemon berth talks to, and the
# private user-mode daemon it starts on demand when the node has none.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue ud
sys_pid=
cleanup() {
  pkill -f "$TEST_TMP/berthd" 2>/dev/null  # the user's, root's and the system one
  [ -n "$sys_pid" ] && kill "$sys_pid" 2>/dev/null
  sleep 0.2
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
install -m 0755 "$1" "$TEST_TMP/berth"
install -m 0755 "$2" "$TEST_TMP/berthd"
IMG=$TEST_TMP/t.sif
bash "$here/make_test_image.sh" "$TEST_TMP/berth" "$IMG" || { bad setup image; finish; }
chmod 0666 /dev/fuse  # Debian ships 0666; this machine has 0600 (recipes.md)
install -d -o "$TUSER" -m 0700 "$TEST_TMP/xdg"
NOSYS=$TEST_TMP/no-system.sock
u() { runuser -u "$TUSER" -- env -u BERTH_SOCKET XDG_RUNTIME_DIR="$TEST_TMP/xdg" "$@"; }

expect_out "no system daemon: a private one starts on demand" "hi" u env BERTH_SYSTEM_SOCKET="$NOSYS" "$TEST_TMP/berth" exec "$IMG" echo hi
check "its socket dir is private (0700, the user's)" test "$(stat -c %U:%a "$TEST_TMP/xdg/berth")" = "$TUSER:700"
check "it logs beside its socket" test -s "$TEST_TMP/xdg/berth/berthd.log"
out=$(u env BERTH_SYSTEM_SOCKET="$NOSYS" "$TEST_TMP/berth" version 2>&1)
case "$out" in *"mode user"*) ok "berth version reports the user daemon" ;; *) bad "version" "$out" ;; esac
u env BERTH_SYSTEM_SOCKET="$NOSYS" "$TEST_TMP/berth" exec "$IMG" true
check "later commands reuse the same daemon" test "$(pgrep -u "$TUSER" -c -f "$TEST_TMP/berthd")" -eq 1
expect_fatal "BERTH_DAEMON=system never falls back" "no system berthd" u env BERTH_SYSTEM_SOCKET="$NOSYS" BERTH_DAEMON=system "$TEST_TMP/berth" exec "$IMG" true
expect_fatal "BERTH_DAEMON with a bad value" "use 'system' or 'user'" u env BERTH_DAEMON=maybe "$TEST_TMP/berth" exec "$IMG" true

# A system daemon whose socket exists but does not answer: no silent fallback.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$TEST_TMP/dead.sock"
expect_fatal "a silent system daemon is an error, not a fallback" "does not answer" u env BERTH_SYSTEM_SOCKET="$TEST_TMP/dead.sock" "$TEST_TMP/berth" exec "$IMG" true

# A live system daemon is preferred; --user-daemon / BERTH_DAEMON=user choose the private one.
mkdir -p "$TEST_TMP/sys"
"$TEST_TMP/berthd" --socket "$TEST_TMP/sys/berthd.sock" --config-dir "$TEST_TMP/etc" \
  --state-dir "$TEST_TMP/sys/state" --foreground 2>"$TEST_TMP/sys.log" &
sys_pid=$!
wait_until 10 test -S "$TEST_TMP/sys/berthd.sock"
out=$(u env BERTH_SYSTEM_SOCKET="$TEST_TMP/sys/berthd.sock" "$TEST_TMP/berth" version 2>&1)
case "$out" in *"mode system"*) ok "a live system daemon is used" ;; *) bad "system preferred" "$out" ;; esac
out=$(u env BERTH_SYSTEM_SOCKET="$TEST_TMP/sys/berthd.sock" BERTH_DAEMON=user "$TEST_TMP/berth" version 2>&1)
case "$out" in *"mode user"*) ok "BERTH_DAEMON=user picks the private daemon" ;; *) bad "BERTH_DAEMON=user" "$out" ;; esac
expect_out "--user-daemon picks the private daemon" "hi" u env BERTH_SYSTEM_SOCKET="$TEST_TMP/sys/berthd.sock" "$TEST_TMP/berth" exec --user-daemon "$IMG" echo hi

# Root with no system daemon gets a private user-mode daemon as well. It runs
# containers (it once aborted at its first image open: the user namespace it
# lives in denies setgroups, and it switched groups to open as root), and the
# client's probes of its socket are not logged as bad connections.
install -d -m 0700 "$TEST_TMP/rootxdg"
r() { env -u BERTH_SOCKET XDG_RUNTIME_DIR="$TEST_TMP/rootxdg" BERTH_SYSTEM_SOCKET="$NOSYS" "$@"; }
expect_rc "root's private daemon runs a container" 5 r "$TEST_TMP/berth" exec "$IMG" sh -c 'exit 5'
expect_out "root's private daemon keeps serving, binds included" "/mnt/t.sif" \
  r "$TEST_TMP/berth" exec -B "$TEST_TMP:/mnt" "$IMG" ls /mnt/t.sif
out=$(r "$TEST_TMP/berth" version 2>&1)
case "$out" in *"mode user"*"uid 0"*) ok "it is a user-mode daemon of root's" ;; *) bad "root's daemon" "$out" ;; esac
check "probes of its socket are not logged as bad connections" \
  sh -c "! grep -q 'dropping a connection' '$TEST_TMP/rootxdg/berth/berthd.log'"
finish
