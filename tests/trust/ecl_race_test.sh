#!/usr/bin/env bash
# ecl_race_test.sh BERTH BERTHD MODE WHO [RUNS]: what was verified is exactly
# what is mounted. A background writer flips the signed image's marker bytes
# between GOOD and EVIL in place, in a loop, while RUNS (default 100)
# containers start from it; none may ever print EVIL (the unsigned content).
# Then a container that is already running must keep reading verified bytes
# after the file is rewritten under it.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4 RUNS=${5:-100}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue race
daemon_pid= writer_pid=
cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  gpgconf --homedir "$TEST_TMP/gnupg" --kill all 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
source "$here/ecl_lib.sh"
set_ecl "activated = true
[[execgroup]]
  tagname = \"onlyA\"
  mode = \"whitelist\"
  dirpath = \"\"
  keyfp = [\"$KEY_A\"]"
start_daemon

# The attacker owns the image file (it is theirs to rewrite).
RACE=$TEST_TMP/race; mkdir -m 0755 "$RACE"; cp "$IMGS/a.sif" "$RACE/x.sif"
[ "$WHO" = user ] && chown -R "$TUSER" "$RACE"
OFF=$(python3 -c "import sys; d=open(sys.argv[1],'rb').read(); assert d.count(b'GOOD-MARKER')==1; print(d.index(b'GOOD-MARKER'))" "$RACE/x.sif")
allowed "the signed image runs before the race" "$RACE/x.sif"

cat >"$TEST_TMP/writer.py" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY); off = int(sys.argv[2])
while True:  # rewrites the 4 marker bytes in place, forever
    os.pwrite(fd, b'EVIL', off)
    os.pwrite(fd, b'GOOD', off)
PY
if [ "$WHO" = user ]; then
  runuser -u "$TUSER" -- python3 "$TEST_TMP/writer.py" "$RACE/x.sif" "$OFF" &
else
  python3 "$TEST_TMP/writer.py" "$RACE/x.sif" "$OFF" &
fi
writer_pid=$!
sleep 0.2
good=0 evil=0 denied_n=0 other=0
for ((batch = 0; batch < RUNS / 10; batch++)); do
  pids=()
  for ((i = 0; i < 10; i++)); do
    b exec "$RACE/x.sif" cat /opt/marker >"$TEST_TMP/out.$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" 2>/dev/null
  for ((i = 0; i < 10; i++)); do
    case "$(cat "$TEST_TMP/out.$i")" in
      GOOD-MARKER-0001) good=$((good + 1)) ;;
      *EVIL*) evil=$((evil + 1)) ;;
      *"denied by the ECL"*) denied_n=$((denied_n + 1)) ;;
      *) other=$((other + 1)); echo "other: $(cat "$TEST_TMP/out.$i")" ;;
    esac
  done
done
echo "race: $good good, $denied_n denied, $evil evil, $other other (of $RUNS)"
check "no run printed unverified content (EVIL)" test "$evil" -eq 0
check "every run either ran verified bytes or was denied" test "$other" -eq 0
check "all $RUNS runs accounted for" test $((good + denied_n + evil + other)) -eq "$RUNS"

# While running: the container keeps the verified bytes whatever the file holds.
kill "$writer_pid" 2>/dev/null; wait "$writer_pid" 2>/dev/null; writer_pid=
python3 -c "import os,sys; fd=os.open(sys.argv[1],os.O_WRONLY); os.pwrite(fd,b'GOOD',int(sys.argv[2]))" "$RACE/x.sif" "$OFF"
b exec "$RACE/x.sif" sh -c 'sleep 2; cat /opt/marker' >"$TEST_TMP/long" 2>&1 &
long_pid=$!
sleep 1
python3 -c "import os,sys; fd=os.open(sys.argv[1],os.O_WRONLY); os.pwrite(fd,b'EVIL',int(sys.argv[2]))" "$RACE/x.sif" "$OFF"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
wait "$long_pid"
check "a running container still reads verified bytes after a rewrite" test "$(cat "$TEST_TMP/long")" = GOOD-MARKER-0001
denied "the rewritten (EVIL) file is denied" "$RACE/x.sif" "changed after signing"
finish
