#!/usr/bin/env bash
# f6_pinned_loops_test.sh BERTH BERTHD: review finding 6. A user holding a
# descriptor on /proc/<payload>/root keeps the squashfs mount, its loop
# device and the (deleted) store copy alive after the daemon unmounted and
# stopped counting them: with max_loop_devices_per_user = 2 a user held 5
# loop devices, 4 over deleted copies beyond the store's budget. Now a loop
# device counts against its user until the kernel has detached it, a copy a
# loop device reads is never deleted (and counts against the store and the
# user's share of it), and the user over a limit gets one line naming it
# while another user runs as usual. System daemon only: a user-mode daemon
# mounts with FUSE, which holds no loop device.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue f6
source "$here/lib.sh"
imgs=$TEST_TMP/imgs
mkdir -m 1777 "$TEST_TMP/held"
mkdir -m 0755 "$imgs"; chown "$TUSER:" "$imgs"
for i in 1 2 3 4 5; do make_image "$imgs/img$i.sif" "IMAGE-$i" "$TUSER"; done
make_image "$TEST_TMP/other.sif" OTHER "$TUSER2"
one=$(stat -c %s "$imgs/img1.sif")
mib() { echo $(( ($1 + (1 << 20) - 1) >> 20 )); }
budget=$(mib $((one * 4)))  # room for four copies; a user's share is half of it

# pin USER IMAGE N: runs `sleep` in the image, holds a directory of it open
# through /proc/<payload>/root from a process of USER outside the container
# (the root itself may be the session's staging tmpfs; /bin is the image's),
# then ends the container: the daemon unmounts, the kernel keeps what the
# descriptor pins.
# Returns 2 when the daemon refused the container (its error in
# $TEST_TMP/pin-N.err), 1 when something else went wrong.
pin() {
  local u=$1 img=$2 n=$3 tag="sleep 7$RANDOM$3" pid
  as "$u" "$BERTH" exec "$img" $tag >/dev/null 2>"$TEST_TMP/pin-$n.err" &
  local client=$!
  wait_until 20 sh -c "pgrep -u '$u' -x -f '$tag' || ! kill -0 $client" >/dev/null
  if ! pid=$(pgrep -u "$u" -x -f "$tag"); then wait "$client"; return 2; fi
  # setpriv execs (no process in between), so killing the holder closes it.
  setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups /usr/bin/python3 -c '
import os, sys, time
fd = os.open("/proc/%s/root/bin" % sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
open(sys.argv[2], "w").write("held")
time.sleep(600)' "$pid" "$TEST_TMP/held/$n" &
  holder_pids+=($!)
  wait_until 10 test -s "$TEST_TMP/held/$n" || { kill -KILL "$pid"; wait "$client"; return 1; }
  kill -KILL "$pid"
  wait "$client" 2>/dev/null
  return 0
}
release_pins() {
  local p
  for p in "${holder_pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  holder_pids=()
}

start_daemon d system "[images]
idle_unmount_seconds = 0
copy_store_max_mib = $budget
[limits]
max_loop_devices_per_user = 2"
pinned=0 refused=0
for i in 1 2 3 4 5; do
  pin "$TUSER" "$imgs/img$i.sif" "$i"
  case $? in
    0) pinned=$((pinned + 1)) ;;
    2) refused=$((refused + 1)); last_err=$(cat "$TEST_TMP/pin-$i.err") ;;
    *) bad "pin $i" "the container did not start or was not pinned" ;;
  esac
done
[ "$pinned" -eq 2 ] && ok "two images pinned after their containers ended" ||
  bad "two images pinned after their containers ended" "$pinned pinned"
[ "$refused" -eq 3 ] && ok "three more are refused" || bad "three more are refused" "$refused refused"
case "${last_err:-}" in
  "FATAL:"*max_loop_devices_per_user*) [ "$(printf '%s\n' "$last_err" | grep -c .)" -eq 1 ] &&
    ok "the refusal is one line naming the limit" || bad "the refusal is one line naming the limit" "$last_err" ;;
  *) bad "the refusal is one line naming the limit" "${last_err:-none}" ;;
esac
n=$(loops_backed_by "$STATE" | wc -l)
[ "$n" -le 2 ] && ok "the user holds at most 2 loop devices ($n)" || bad "the user holds at most 2 loop devices" "$(loops_backed_by "$STATE")"
deleted=$(loops_backed_by "$STATE" | grep -c '(deleted)')
[ "$deleted" -eq 0 ] && ok "no loop device reads a deleted copy" || bad "no loop device reads a deleted copy" "$(loops_backed_by "$STATE")"
kib=$(allocated_kib "$STATE/images"/*)
[ "$kib" -le $((budget * 1024)) ] && ok "the store stays within its budget ($kib KiB)" ||
  bad "the store stays within its budget" "$kib KiB > $budget MiB"
expect_out "another user is unaffected" OTHER as "$TUSER2" "$BERTH" exec "$TEST_TMP/other.sif" cat /opt/marker
grep -q 'still attached after its mount ended' "$TEST_TMP/d/berthd.log" &&
  ok "the daemon says which loop devices stay counted" || bad "the daemon says which loop devices stay counted" "no log line"
release_pins
expect_out "once the kernel lets go, the user runs again" IMAGE-3 \
  as "$TUSER" "$BERTH" exec "$imgs/img3.sif" cat /opt/marker
nothing_left "no loop device or mount left once the pins are gone" "$STATE"

# The user's share of the stores: the copies their loop devices read.
start_daemon share system "[images]
idle_unmount_seconds = 0
copy_store_max_mib = $budget
[limits]
max_store_mib_per_user = $(mib $((one * 3 / 2)))"
pin "$TUSER" "$imgs/img1.sif" 6 || bad "pin 6" "the container did not start or was not pinned"
expect_fatal "over their share of the store, a user is refused, naming the limit" \
  "max_store_mib_per_user" as "$TUSER" "$BERTH" exec "$imgs/img2.sif" true
expect_out "another user is unaffected by that share" OTHER \
  as "$TUSER2" "$BERTH" exec "$TEST_TMP/other.sif" cat /opt/marker
release_pins
expect_out "the share comes back when the pin goes" IMAGE-2 \
  as "$TUSER" "$BERTH" exec "$imgs/img2.sif" cat /opt/marker
nothing_left "no loop device or mount left by the second daemon" "$STATE"
finish
