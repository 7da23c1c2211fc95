#!/usr/bin/env bash
# A full disk under the node cache: the pull fails with one clear line, no
# output file, no cache entry, and the space is given back (the partial
# download was an unnamed O_TMPFILE).
#
# usage: disk_full_test.sh BERTH BERTHD   (as root: mounts a small tmpfs)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
cleanup() {
  local p
  for p in "${berthd_pids[@]}" "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  sleep 0.2
  umount "$T/state" 2>/dev/null
  rm -rf "$T"
}
setup_binaries "$1" "$2"
start_registry r plain
reg=$REG_r
mkdir -p "$T/state"
mount -t tmpfs -o size=16m,mode=0700 tmpfs "$T/state"
test_mounts+=("$T/state")
start_berthd "[registry]
insecure = [\"$reg\"]"
head -c 32768 "$BERTH_TESTDATA/sif/empty.sif" >"$T/img.sif"
head -c $((32 << 20)) /dev/urandom >>"$T/img.sif"
check "push" "$BERTH" push -q "$T/img.sif" "oras://$reg/full/img:v1"
used_before=$(df --output=used "$T/state" | tail -1)
expect_fatal "full disk: one clear line" "No space left on device" \
  "$BERTH" pull -q "$T/out.sif" "oras://$reg/full/img:v1"
[ ! -e "$T/out.sif" ] && no_debris "$T" && ok "full disk: no output file" || bad "full disk: no output file" "$(ls -A "$T")"
[ "$(cache_entries)" -eq 0 ] && ok "full disk: nothing cached" || bad "full disk: nothing cached" "$("$BERTH" cache list)"
used_after=$(df --output=used "$T/state" | tail -1)
[ "$used_after" -le $((used_before + 64)) ] && ok "full disk: the space is given back" ||
  bad "full disk: the space is given back" "$used_before KiB -> $used_after KiB"
finish
