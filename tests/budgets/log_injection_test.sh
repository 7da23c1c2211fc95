#!/usr/bin/env bash
# log_injection_test.sh BERTH BERTHD: review finding 9. Strings a caller
# controls reach the daemon's log (an image path in "started ... from",
# error messages quoting it); a newline in them must not start a forged line
# of its own, and no control byte may reach the log raw.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
budget_setup log-injection "$BERTH_SRC" "$BERTHD_SRC"
start_daemon system

forged='[2026-12-02 10:00:00.000] [berthd] [info] uid 0 started sh (pid 1) from root-only.sif'
# A real image under a name carrying a forged line and a terminal escape.
evil="$TEST_TMP/img"$'\n'"$forged"$'\n\e[2Jx.sif'
cp "$IMG" "$evil" && chmod 0644 "$evil"
expect_out "an image whose name holds a forged log line runs" "ran" \
  as "$TUSER" "$BERTH" exec "$evil" echo ran
# A missing one: the daemon logs the failure, quoting the path.
as "$TUSER" "$BERTH" exec "$TEST_TMP/missing"$'\n'"$forged"$'\r'".sif" true >/dev/null 2>&1
# And a bind path the daemon refuses, quoted in its message.
as "$TUSER" "$BERTH" exec --bind "$TEST_TMP/nobind"$'\n'"$forged:/mnt" "$IMG" true >/dev/null 2>&1
kill "$daemon_pid" && wait "$daemon_pid" 2>/dev/null
daemon_pid=

check "the path reached the log (escaped)" grep -qF '\n[2026-12-02 10:00:00.000] [berthd]' "$LOG"
forged_lines=$(grep -c '^\[2026-12-02 10:00:00.000\]' "$LOG")
[ "$forged_lines" -eq 0 ] && ok "no forged line in the daemon's log" ||
  bad "no forged line in the daemon's log" "$forged_lines forged: $(grep -m1 -B1 '^\[2026-12-02' "$LOG")"
raw=$(tr -d '\n' <"$LOG" | tr -dc '\000-\010\013-\037\177' | wc -c)
[ "$raw" -eq 0 ] && ok "no raw control byte in the daemon's log" ||
  bad "no raw control byte in the daemon's log" "$raw bytes"
finish
