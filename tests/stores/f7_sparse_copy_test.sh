#!/usr/bin/env bash
# f7_sparse_copy_test.sh BERTH BERTHD MODE: review finding 7. A SIF using
# 1 MiB of disk (513 MiB long, the rest a hole) became a fully allocated
# 512 MiB root-owned copy. Now copies keep the holes (SEEK_DATA/SEEK_HOLE)
# and the stores count them by the blocks they allocate, so three such
# images, all mounted at once, fit a 1 GiB budget (by length they would
# not); one longer than a whole budget is still refused (its holes would
# cost a hash pass). MODE system: the image store
# (kernel_squashfs "trusted") and the ECL's store, as an unprivileged user of
# the system daemon; user: the ECL's store of the user's own daemon (the
# only copy a user-mode daemon makes).
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue f7
source "$here/lib.sh"
imgs=$TEST_TMP/imgs
mkdir -m 0755 "$imgs"; chown "$TUSER:" "$imgs"
for i in 1 2 3; do
  make_image "$imgs/sparse$i.sif" "SPARSE-$i"
  python3 "$here/grow_partition.py" "$imgs/sparse$i.sif" 512
done
cp --sparse=always "$imgs/sparse1.sif" "$imgs/huge.sif"
python3 "$here/grow_partition.py" "$imgs/huge.sif" 1024
signing_key
cp --sparse=always "$imgs/sparse1.sif" "$imgs/signed.sif"
"$BERTH" sign --key-fingerprint "$KEY" "$imgs/signed.sif" 2>/dev/null
chown "$TUSER:" "$imgs"/*.sif
size=$(stat -c %s "$imgs/sparse1.sif") kib=$(allocated_kib "$imgs/sparse1.sif")
[ "$size" -gt $((512 << 20)) ] && [ "$kib" -lt 8192 ] && ok "the image is sparse ($size bytes, $kib KiB on disk)" ||
  bad "the image is sparse" "$size bytes, $kib KiB"

# copied NAME DIR N: the store in DIR holds N copies that allocate < 8 MiB each.
copied() {
  local files n k
  files=$(ls -A "$2" 2>/dev/null | grep '^[0-9a-f]\{64\}$')
  n=$(printf '%s' "$files" | grep -c .)
  k=$(cd "$2" 2>/dev/null && allocated_kib $files)
  if [ "$n" -eq "$3" ] && [ "$k" -lt $((8192 * $3)) ]; then ok "$1 ($k KiB allocated)"
  else bad "$1" "$n copies, ${k:-?} KiB allocated: $(ls -ls "$2" 2>&1 | head -5)"; fi
}

if [ "$MODE" = system ]; then
  # The default idle_unmount_seconds keeps each image mounted (its copy in use).
  ECL_TEXT='' KEYRING='' start_daemon images system "[images]
copy_store_max_mib = 1024"
  for i in 1 2 3; do
    expect_out "sparse image $i (513 MiB) runs, all three held in a 1 GiB budget" "SPARSE-$i" \
      as "$TUSER" "$BERTH" exec "$imgs/sparse$i.sif" cat /opt/marker
  done
  copied "the image store's copies keep the holes" "$STATE/images" 3
  expect_fatal "an image longer than the whole budget is refused, naming it" copy_store_max_mib \
    as "$TUSER" "$BERTH" exec "$imgs/huge.sif" true
  stop_daemon
  nothing_left "nothing left by the image store's daemon" "$STATE"
fi

start_daemon ecl "$MODE" "[images]
copy_store_max_mib = 1024"
expect_out "a signed sparse image passes the ECL" SPARSE-1 \
  as "$TUSER" "$BERTH" exec "$imgs/signed.sif" cat /opt/marker
copied "the ECL's copy keeps the holes" "$STATE/verified" 1
stop_daemon
nothing_left "nothing left by the ECL's daemon" "$STATE"
finish
