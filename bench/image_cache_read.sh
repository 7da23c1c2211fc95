#!/usr/bin/env bash
# Image cache benchmarks (not a test; run as root):
#   1. what the daemon copy costs on a first run, and what repeated runs cost;
#   2. read throughput (tar of the whole tree): cold (nothing cached), hot
#      (image file cached, mounted files not: decompression-bound) and warm
#      (second pass), through
#      - a plain kernel squashfs loop mount of the raw .sqfs (the yardstick),
#      - berth's kernel mount of the SIF partition in place, and of its copy,
#      - squashfuse_ll (0.1.105, single-threaded) on the raw .sqfs,
#      - berth's in-process FUSE server, as root (policy never) and in user
#        mode as berthtest (inside its own user+mount namespace).
# Configurations are interleaved, page cache dropped before each cold pass;
# medians of ROUNDS rounds.
#
# usage: bench/image_cache_read.sh IMAGE_MOUNT_TOOL BERTH [WORK_DIR] [ROUNDS] [COMPRESSION]
# IMAGE_MOUNT_TOOL is built with the tests: build/tests/image/image_mount_tool.
# WORK_DIR must sit on a root-owned, not user-writable path (not /tmp), or the
# "direct" configuration gets copied like a user's file.
set -euo pipefail
TOOL=$1 BERTH=$2 WORK=${3:-/var/lib/berth-image-bench} ROUNDS=${4:-3} COMP=${5:-gzip}
TREE_MB=${TREE_MB:-350}
mkdir -p "$WORK" && chmod 0755 "$WORK"
cp "$TOOL" "$WORK/image_mount_tool" && chmod 0755 "$WORK/image_mount_tool"
id berthtest >/dev/null 2>&1 || useradd -m berthtest

# A tree of real files (libraries, docs) of about TREE_MB MB.
if [ ! -d "$WORK/tree" ]; then
  python3 - "$WORK/tree" "$TREE_MB" <<'EOF'
import os, shutil, sys
dst, limit = sys.argv[1], int(sys.argv[2]) << 20
total = 0
for src in ("/usr/lib/x86_64-linux-gnu", "/usr/share", "/usr/bin"):
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            size = os.path.getsize(p)
            if size > 64 << 20 or total + size > limit:
                continue
            out = os.path.join(dst, os.path.relpath(p, "/usr"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            shutil.copyfile(p, out)
            total += size
print(f"tree: {total >> 20} MB")
EOF
fi
SQFS=$WORK/tree-$COMP.sqfs SIF=$WORK/tree-$COMP.sif
if [ ! -f "$SIF" ]; then
  mksquashfs "$WORK/tree" "$SQFS" -noappend -quiet -no-progress -comp "$COMP" >/dev/null
  "$BERTH" sif new "$SIF"
  "$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$SIF" "$SQFS"
fi
chmod 0644 "$SIF" "$SQFS"
USER_SIF=$WORK/user-$COMP.sif
cp "$SIF" "$USER_SIF" && chown berthtest: "$USER_SIF"
mkdir -p "$WORK/home" && chown berthtest: "$WORK/home"
tree_mb=$(du -sm --apparent-size "$WORK/tree" | cut -f1)
part_mb=$(( $(stat -c %s "$SQFS") >> 20 ))
echo "tree ${tree_mb} MB, squashfs ($COMP) ${part_mb} MB"

# cold: nothing cached. hot: the image file cached, the mount's files not
# (isolates decompression and FUSE overhead from the disk).
drop() {
  sync; echo 3 >/proc/sys/vm/drop_caches
  if [ "$PREP" = hot ]; then cat "$SIF" "$USER_SIF" "$SQFS" >/dev/null; fi
}
# Prints "cold_s warm_s" for a tar of $1.
READ='s=$(date +%s.%N); tar cf - -C "$ROOT" . | cat >/dev/null; m=$(date +%s.%N); tar cf - -C "$ROOT" . | cat >/dev/null; e=$(date +%s.%N); echo "READ $(echo "$m - $s" | bc) $(echo "$e - $m" | bc)"'

run_kernel_raw() {
  local mnt=$WORK/mnt-raw; mkdir -p "$mnt"; drop
  mount -t squashfs -o loop,ro "$SQFS" "$mnt"
  ROOT=$mnt bash -c "$READ"; umount "$mnt"
}
run_squashfuse_ll() {
  local mnt=$WORK/mnt-sfll; mkdir -p "$mnt"; drop
  squashfuse_ll "$SQFS" "$mnt"
  ROOT=$mnt bash -c "$READ"; umount "$mnt"
}
run_tool() {  # policy image
  local state=$WORK/state-$RANDOM; drop
  "$WORK/image_mount_tool" --policy "$1" "$state" "$2" "$READ" | tr '\n' ' '; echo
  rm -rf "$state"
}
run_user_mode() {
  local state=$WORK/home/state-$RANDOM; drop
  chmod 666 /dev/fuse  # this machine ships /dev/fuse 0600
  runuser -u berthtest -- "$WORK/image_mount_tool" --user-mode "$state" "$USER_SIF" "$READ" | tr '\n' ' '; echo
  rm -rf "$state"
}

declare -A res
configs="kernel_raw berth_kernel_direct berth_kernel_copy squashfuse_ll berth_fuse_root berth_fuse_user"
for round in $(seq "$ROUNDS"); do
  for PREP in cold hot; do
    for c in $configs; do
      case $c in
        kernel_raw) out=$(run_kernel_raw) ;;
        berth_kernel_direct) out=$(run_tool trusted "$SIF") ;;
        berth_kernel_copy) out=$(run_tool trusted "$USER_SIF") ;;
        squashfuse_ll) out=$(run_squashfuse_ll) ;;
        berth_fuse_root) out=$(run_tool never "$SIF") ;;
        berth_fuse_user) out=$(run_user_mode) ;;
      esac
      read -r _ first_s warm_s <<<"$(grep -o 'READ [0-9.]* [0-9.]*' <<<"$out")"
      res[$c,$PREP]+="$first_s "
      [ "$PREP" = cold ] && res[$c,warm]+="$warm_s "
      echo "round $round $PREP $c: first ${first_s}s warm ${warm_s}s"
    done
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
printf "%-22s %10s %10s %10s   (MB/s of the %d MB tree, median of %d)\n" config cold hot warm "$tree_mb" "$ROUNDS"
for c in $configs; do
  printf "%-22s" "$c"
  for p in cold hot warm; do
    printf " %10.0f" "$(echo "$tree_mb / $(median <<<"${res[$c,$p]}")" | bc -l)"
  done
  echo
done

# First-run cost of the copy (cold cache: the user's file is read from disk).
echo
PREP=cold
for round in $(seq "$ROUNDS"); do
  drop
  "$WORK/image_mount_tool" --policy trusted "$WORK/state-copy-$round" "$USER_SIF" | sed "s/^/copy round $round: /"
  rm -rf "$WORK/state-copy-$round"
  drop
  "$WORK/image_mount_tool" --policy trusted "$WORK/state-direct-$round" "$SIF" | sed "s/^/direct round $round: /"
  rm -rf "$WORK/state-direct-$round"
done
echo "partition: ${part_mb} MB"
