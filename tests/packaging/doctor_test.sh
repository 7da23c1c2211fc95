#!/usr/bin/env bash
# berth doctor against a daemon of this test's own (private socket, config,
# state and subuid/subgid files), as root and as the plain user: the daemon's
# findings (config, squashfs per compressor, stores, fakeroot ids of the
# caller) and the client's, the exit status, --json, a config error named by
# file and line, an unreachable daemon, and the squashfs probes running once
# per daemon and leaving no mount or loop device behind.
#
# usage: doctor_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/../integration/lib.sh"
test_prologue doctor
berth=$1
berthd=$2
sock=$TEST_TMP/s.sock
etc=$TEST_TMP/etc
state=$TEST_TMP/state
mkdir -m 0755 "$etc"
: >"$TEST_TMP/subuid"
: >"$TEST_TMP/subgid"
daemon=
before_finish() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  grep -q " $state" /proc/self/mountinfo && bad cleanup "mounts left under $state"
  losetup -l -n -O BACK-FILE 2>/dev/null | grep -q "^$state" && bad cleanup "loop devices left"
  rm -rf "$TEST_TMP"
}
trap finish EXIT

SPDLOG_LEVEL=info "$berthd" --socket "$sock" --config-dir "$etc" --state-dir "$state" --foreground \
  --subuid-file "$TEST_TMP/subuid" --subgid-file "$TEST_TMP/subgid" 2>"$TEST_TMP/berthd.log" &
daemon=$!
wait_until 10 test -S "$sock" || { bad setup "berthd did not listen: $(cat "$TEST_TMP/berthd.log")"; finish; }

# expect_has NAME SUBSTRING CMD...: stdout contains SUBSTRING, whatever the status.
expect_has() {
  local name=$1 want=$2 got
  shift 2
  got=$("$@" 2>"$TEST_TMP/stderr")
  case $got in
    *"$want"*) ok "$name" ;;
    *) bad "$name" "got '$(head -c 300 <<<"$got")' want '$want' stderr: $(head -c 300 "$TEST_TMP/stderr")" ;;
  esac
}

# doctor_json AS OUT: `berth doctor --json` as root or $TUSER into OUT; its status.
doctor_json() {
  if [ "$1" = root ]; then
    "$berth" --socket "$sock" doctor --json >"$2" 2>"$2.err"
  else
    runuser -u "$TUSER" -- "$berth" --socket "$sock" doctor --json >"$2" 2>"$2.err"
  fi
}
# field FILE AREA NAME KEY: one finding's KEY.
field() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(next(c[sys.argv[4]] for c in r["checks"] if (c["area"], c["name"]) == (sys.argv[2], sys.argv[3])))' "$@"
}

doctor_json root "$TEST_TMP/root.json"
rc=$?
errors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors"])' "$TEST_TMP/root.json")
check "root: no error on this node (status $rc, $errors errors)" test "$rc" = 0 -a "$errors" = 0
expect_has "root: daemon in system mode" "system mode" field "$TEST_TMP/root.json" daemon berthd detail
expect_out "root: berth.conf absent is valid" "ok" field "$TEST_TMP/root.json" config berth.conf severity
for comp in gzip xz zstd; do
  expect_out "root: the kernel mounted a $comp probe" "ok" \
    field "$TEST_TMP/root.json" kernel "squashfs $comp" severity
done
expect_out "root: fakeroot is root-mapped for root" "ok" \
  field "$TEST_TMP/root.json" fakeroot subuid/subgid severity
expect_has "root: the state disk is reported" "free under $state" \
  field "$TEST_TMP/root.json" cache disk detail
expect_out "root: kernel feature checks run" "ok" field "$TEST_TMP/root.json" kernel squashfs severity
# squashfs accepts idmapped mounts from Linux 6.2 (image_idmap.h).
IFS=. read -r kmaj kmin _ <<<"$(uname -r)"
want=$([ "$kmaj" -gt 6 ] || { [ "$kmaj" = 6 ] && [ "${kmin%%[!0-9]*}" -ge 2 ]; } && echo ok || echo warning)
expect_out "root: idmapped image mounts as this kernel allows ($want)" "$want" \
  field "$TEST_TMP/root.json" kernel "idmapped image mounts" severity

doctor_json "$TUSER" "$TEST_TMP/user.json"
expect_out "user: not in subuid is a warning" "warning" \
  field "$TEST_TMP/user.json" fakeroot subuid/subgid severity
expect_has "user: the fix names the command" "berth config fakeroot --add $TUSER" \
  field "$TEST_TMP/user.json" fakeroot subuid/subgid fix
printf '%s:1000000:65536\n' "$TUSER" >"$TEST_TMP/subuid"
printf '%s:1000000:65536\n' "$TUSER" >"$TEST_TMP/subgid"
doctor_json "$TUSER" "$TEST_TMP/user2.json"
expect_has "user: a subuid range is reported" "maps 65536 subordinate ids from 1000000" \
  field "$TEST_TMP/user2.json" fakeroot subuid/subgid detail
printf '%s:1000000:100\n' "$TUSER" >"$TEST_TMP/subuid"
doctor_json "$TUSER" "$TEST_TMP/user3.json"
check "user: a range too small fails doctor" test $? != 0
expect_has "user: ...and says why" "lower than 65536" \
  field "$TEST_TMP/user3.json" fakeroot subuid/subgid detail

# A config error: doctor names file and line and fails; plain text as well.
printf '[images]\nidle_unmount_seconds = 5\nkernel_squash = "never"\n' >"$etc/berth.conf"
expect_rc "a bad berth.conf fails doctor (255)" 255 "$berth" --socket "$sock" doctor
expect_has "...naming file and line" "berth.conf:3" "$berth" --socket "$sock" doctor
expect_has "...with the fix" "fix: correct $etc/berth.conf" "$berth" --socket "$sock" doctor
expect_has "...and one FATAL line" "FATAL:   berth doctor found" \
  sh -c '"$0" --socket "$1" doctor 2>&1 >/dev/null' "$berth" "$sock"
chmod 0666 "$etc/berth.conf"
printf '[images]\nidle_unmount_seconds = 5\n' >"$etc/berth.conf"
expect_has "a world-writable berth.conf is an error" "writable" \
  sh -c '"$0" --socket "$1" doctor --json' "$berth" "$sock"
rm -f "$etc/berth.conf"

expect_has "an unreachable daemon is an error with its fix" "systemctl start berthd" \
  "$berth" --socket "$TEST_TMP/none.sock" doctor
probes=$(grep -c 'doctor: probing the kernel' "$TEST_TMP/berthd.log")
check "the squashfs probes ran once for every report of this daemon ($probes)" test "$probes" = 1
