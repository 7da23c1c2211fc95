#!/usr/bin/env bash
# f5_ecl_store_test.sh BERTH BERTHD MODE: review finding 5. Images the ECL
# denies were still copied into <state>/verified and pushed older copies out,
# while the verdict cache still pointed at the deleted copy: after user A ran
# three unsigned images, user B's signed image failed on every run
# ("<state>/verified/<digest>: No such file or directory") until a restart.
# Now: a denied image's copy is dropped at once and evicts nothing (with the
# store full, the caller's own file is judged before anything is copied); a
# verdict dies with its copy, and one whose copy vanished anyway is made
# again. MODE system: A and B are two unprivileged users of the system
# daemon; user: one user's own user-mode daemon plays both.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue f5
source "$here/lib.sh"
if [ "$MODE" = system ]; then USER_A=$TUSER2 USER_B=$TUSER; else USER_A=$TUSER USER_B=$TUSER; fi

signing_key
for u in A B; do
  d=$TEST_TMP/imgs-$u; mkdir -m 0755 "$d"
  owner=USER_$u; chown "${!owner}:" "$d"
done
# B's images, signed by the key the ECL wants; A's, unsigned. All distinct.
for i in 1 2 3; do
  make_image "$TEST_TMP/imgs-B/signed$i.sif" "SIGNED-$i" "$USER_B"
  "$BERTH" sign --key-fingerprint "$KEY" "$TEST_TMP/imgs-B/signed$i.sif" 2>/dev/null
  make_image "$TEST_TMP/imgs-A/none$i.sif" "UNSIGNED-$i" "$USER_A"
done
# A budget that holds two of these copies (whole MiB, a little over), not three.
one=$(stat -c %s "$TEST_TMP/imgs-B/signed1.sif")
budget=$(( (one * 2 + (64 << 10) + (1 << 20) - 1) >> 20 ))
[ $((budget << 20)) -lt $((one * 3 - (64 << 10))) ] || { bad setup "images of $one bytes leave no budget for exactly two"; finish; }
start_daemon d "$MODE" "[images]
idle_unmount_seconds = 0
copy_store_max_mib = $budget"
V=$STATE/verified
copies() { ls -A "$V" 2>/dev/null | sort; }

runs() {  # runs NAME USER IMAGE MARKER
  local out
  out=$(as "$2" "$BERTH" exec "$3" cat /opt/marker 2>&1)
  if [ "$out" = "$4" ]; then ok "$1"; else bad "$1" "$out"; fi
}
denied() {  # denied NAME USER IMAGE
  local out
  out=$(as "$2" "$BERTH" exec "$3" cat /opt/marker 2>&1)
  if [ $? -ne 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] &&
    [[ "$out" == *"denied by the ECL"* ]]; then ok "$1"; else bad "$1" "$out"; fi
}

runs "B's signed image runs" "$USER_B" "$TEST_TMP/imgs-B/signed1.sif" SIGNED-1
b_copy=$(copies)
[ "$(copies | wc -l)" -eq 1 ] && ok "one verified copy (B's)" || bad "one verified copy (B's)" "$(copies)"
for i in 1 2 3; do
  denied "A's unsigned image $i is denied" "$USER_A" "$TEST_TMP/imgs-A/none$i.sif"
done
[ "$(copies)" = "$b_copy" ] && ok "denied images leave no copy and push none out" ||
  bad "denied images leave no copy and push none out" "before: $b_copy after: $(copies)"
runs "B's signed image still runs after A's denied runs" "$USER_B" "$TEST_TMP/imgs-B/signed1.sif" SIGNED-1

# A copy that vanishes anyway (deleted by hand): the verdict is made again.
rm -f "$V/$b_copy"
runs "a verdict whose copy vanished is made again, not an error" "$USER_B" \
  "$TEST_TMP/imgs-B/signed1.sif" SIGNED-1

# The store full of B's copies: A's denied image is judged before any copy.
runs "B's second signed image runs" "$USER_B" "$TEST_TMP/imgs-B/signed2.sif" SIGNED-2
full=$(copies)
[ "$(copies | wc -l)" -eq 2 ] && ok "the store holds B's two copies" || bad "the store holds B's two copies" "$full"
denied "A's unsigned image is denied with the store full" "$USER_A" "$TEST_TMP/imgs-A/none1.sif"
[ "$(copies)" = "$full" ] && ok "with the store full, a denied image evicts nothing" ||
  bad "with the store full, a denied image evicts nothing" "before: $full after: $(copies)"
runs "B's first image is a warm hit" "$USER_B" "$TEST_TMP/imgs-B/signed1.sif" SIGNED-1
# An allowed image may evict; the evicted copy's verdict goes with it.
runs "B's third signed image runs (evicting the oldest copy)" "$USER_B" \
  "$TEST_TMP/imgs-B/signed3.sif" SIGNED-3
[ "$(copies | wc -l)" -eq 2 ] && ok "the budget holds" || bad "the budget holds" "$(copies)"
for i in 1 2 3; do
  runs "B's image $i runs after the eviction" "$USER_B" "$TEST_TMP/imgs-B/signed$i.sif" "SIGNED-$i"
done
[ -z "$(ls -A "$V" | grep -v '^[0-9a-f]\{64\}$')" ] && ok "no temporary files in the store" ||
  bad "no temporary files in the store" "$(ls -A "$V")"
# Only the copy deleted by hand was ever found missing: an eviction takes its
# verdict with it.
n=$(grep -c 'is gone' "$TEST_TMP/d/berthd.log")
[ "$n" -eq 1 ] && ok "evicted copies take their verdicts with them" ||
  bad "evicted copies take their verdicts with them" "$n stale verdicts: $(grep 'is gone\|No such' "$TEST_TMP/d/berthd.log" | head -3)"
nothing_left "no loop device or mount left in the daemon's state" "$STATE"
finish
