#!/usr/bin/env bash
# Read throughput inside the container (issue 3): `tar cf - -C / data` of a
# 300-400 MB tree of real files (copies of /usr/lib and /usr/share subtrees)
# to /dev/null, in a SIF whose squashfs is built with `mksquashfs -comp zstd`
# (level 15, mksquashfs's default for zstd; BENCH_MKSQUASHFS_OPTS overrides),
# assembled with `berth sif new/add`. The same busybox tar (the image's own
# binary is the host's /bin/busybox) reads the same squashfs beside it:
#   system mode: berth exec (root daemon) vs a kernel squashfs loop mount of
#                the SIF at the partition's offset, read directly on the host
#   user mode:   berth exec (berthd --user-mode as the test user) vs
#                squashfuse_ll (multi-threaded, as the test user) of the SIF
# Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before the run; warm: the
# run right after (the daemons keep the image mounted between the two for
# `idle_unmount_seconds`, default 60 s, as the peers keep theirs; dropping the
# caches empties the page cache of every mount). Wall time of the whole command
# (berth's start included); MB/s = bytes of the tree's files / s (1 MB = 1e6).
# Note: busybox tar copies file data with sendfile(2): each file's pages are
# read (and decompressed) into the page cache, not copied to user space.
#
# Usage (root): bench/read_throughput.sh [BERTH] [BERTHD] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
reps=${3:-5}
bench_user_setup

# --- the tree: whole subtrees until >= 300 MB, none pushing past 400 MB ---
root=$bench_work/rootfs
bench_make_rootfs "$root"
mkdir -p "$root/data"
total=0
for d in /usr/lib/gcc /usr/lib/python3.11 /usr/lib/python3 /usr/share/perl /usr/share/locale \
  /usr/lib/x86_64-linux-gnu /usr/share/doc /usr/share; do
  [ "$total" -ge 300000000 ] && break
  [ -d "$d" ] || continue
  sz=$(du -sb "$d" | cut -f1)
  [ $((total + sz)) -le 400000000 ] || continue
  dest=$root/data/$(echo "${d#/}" | tr / _)
  cp -a "$d" "$dest"
  total=$((total + sz))
done
read -r bytes files < <(python3 - "$root/data" <<'PY'
import os, sys
b = n = 0
for dp, dn, fn in os.walk(sys.argv[1]):
    for f in fn:
        p = os.path.join(dp, f)
        if os.path.isfile(p) and not os.path.islink(p):
            b += os.path.getsize(p); n += 1
print(b, n)
PY
)
[ "$bytes" -ge 300000000 ] || { echo "could only gather $bytes bytes of files" >&2; exit 1; }
img=$bench_work/data.sif
sq_opts=${BENCH_MKSQUASHFS_OPTS:--comp zstd}
t0=$(now_ns)
# shellcheck disable=SC2086
bench_make_sif "$root" "$img" $sq_opts
build_s=$(python3 -c "print('%.1f' % (($(now_ns) - $t0) / 1e9))")
rm -rf "$root"
read -r off size < <(sif_partition "$img")
echo "tree: $files files, $bytes bytes; squashfs ($sq_opts) $size bytes, built in ${build_s}s" >&2

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# run NAME CMD...: wall seconds of CMD (output to /dev/null) appended to NAME
run() {
  local name=$1; shift
  local t0 t1
  t0=$(now_ns)
  "$@" >/dev/null
  t1=$(now_ns)
  echo "$(((t1 - t0)))e-9" >>"$bench_work/times/$name"
}
tar_in=(tar cf - -C / data)
mnt_k=$bench_work/mnt-kernel
mnt_f=$bench_work/mnt-fuse
mkdir "$mnt_k"
install -d -o "$BENCH_USER" "$mnt_f"

# --- system mode ---
bench_start_daemon system
export BERTH_SOCKET=$SYS_SOCK
run first_exec "$BERTH" exec "$img" true  # the daemon validates, copies/hashes, mounts
run second_exec "$BERTH" exec "$img" true
sys_backend=$(grep -o 'kernel squashfs[^-]*' "$bench_work/system.log" | head -1 | sed 's/ *$//')
mount -t squashfs -o ro,nosuid,nodev,loop,offset="$off" "$img" "$mnt_k"
# --- user mode ---
bench_start_daemon user
as_user "$BERTH" exec "$img" true
as_user squashfuse_ll -o offset="$off" "$img" "$mnt_f"

# Where a gap comes from: the same tar on the daemon's own mount, outside any
# container (no overlay root, no launch). The system daemon's mounts are in
# the host's mount namespace; the user daemon's live in its own namespaces.
sys_mount() { awk -v d="$bench_work/system/state/mounts/" 'index($5, d) == 1 {print $5; exit}' /proc/self/mountinfo; }
user_mount() { awk -v d="$bench_work/user/state/mounts/" 'index($5, d) == 1 {print $5; exit}' "/proc/$USER_PID/mountinfo"; }
# A container's root is an overlay (the image under a small staging layer for
# mount points and /etc files), new for every container: the same tar through
# a fresh read-only overlay of the daemon's mount under an empty layer.
mkdir "$bench_work/empty" "$bench_work/ovl"
via_overlay() {
  mount -t overlay overlay -o ro,lowerdir="$bench_work/empty:$1" "$bench_work/ovl"
  busybox tar cf - -C "$bench_work/ovl" data
  umount "$bench_work/ovl"
}
# (berthd is not dumpable, so its namespaces are entered by root, then as the user.)
in_user_daemon() { nsenter -t "$USER_PID" -U -m -S "$BENCH_UID" -G "$BENCH_GID" "$@"; }

for ((r = 1; r <= reps; r++)); do
  echo "round $r/$reps" >&2
  drop; run k_cold busybox tar cf - -C "$mnt_k" data; run k_warm busybox tar cf - -C "$mnt_k" data
  drop; run s_cold "$BERTH" exec "$img" "${tar_in[@]}"; run s_warm "$BERTH" exec "$img" "${tar_in[@]}"
  m=$(sys_mount)
  drop; run d_cold busybox tar cf - -C "$m" data; run d_warm busybox tar cf - -C "$m" data
  drop; run o_cold via_overlay "$m"; run o_warm via_overlay "$m"
  drop; run f_cold as_user busybox tar cf - -C "$mnt_f" data; run f_warm as_user busybox tar cf - -C "$mnt_f" data
  drop; run u_cold as_user "$BERTH" exec "$img" "${tar_in[@]}"; run u_warm as_user "$BERTH" exec "$img" "${tar_in[@]}"
  m=$(user_mount)
  drop; run ud_cold in_user_daemon busybox tar cf - -C "$m" data; run ud_warm in_user_daemon busybox tar cf - -C "$m" data
done
as_user fusermount3 -u "$mnt_f"
umount "$mnt_k"

mbs() { python3 -c 'import sys; print("%.0f" % (int(sys.argv[1]) / 1e6 / (float(sys.argv[2]) / 1000)))' "$bytes" "$(bench_stats "$1" | cut -d' ' -f1)"; }
row() {  # LABEL NAME PEER
  local c w pc pw
  c=$(mbs "${2}_cold"); w=$(mbs "${2}_warm"); pc=$(mbs "${3}_cold"); pw=$(mbs "${3}_warm")
  python3 -c 'import sys; l,c,w,pc,pw=sys.argv[1:]; print("| %s | %s | %s | %.0f%% | %.0f%% |" % (l,c,w,100*float(c)/float(pc),100*float(w)/float(pw)))' \
    "$1" "$c" "$w" "$pc" "$pw"
}
echo
echo "Tree: $files files, $((bytes / 1000000)) MB; squashfs \`$sq_opts\`: $((size / 1000000)) MB (built in ${build_s} s); median of $reps."
echo "System daemon mounts it as: ${sys_backend:-?}; first \`berth exec IMG true\`: $(bench_stats first_exec | cut -d' ' -f1) ms, second: $(bench_stats second_exec | cut -d' ' -f1) ms."
echo
echo "| reader (busybox tar cf - of the tree > /dev/null) | cold MB/s | warm MB/s | cold × peer | warm × peer |"
echo "| --- | --- | --- | --- | --- |"
row "kernel squashfs loop mount, read directly (system peer)" k k
row "berth exec IMG tar ..., system mode" s k
row "(diagnosis) tar on the system daemon's own mount, no container" d k
row "(diagnosis) same, through a fresh overlay (empty dir + that mount)" o k
row "squashfuse_ll as $BENCH_USER (user peer)" f f
row "berth exec IMG tar ..., user mode" u f
row "(diagnosis) tar on the user daemon's own FUSE mount, no container" ud f
echo
python3 - "$bytes" "$(bench_stats k_cold)" "$(bench_stats s_cold)" "$(bench_stats k_warm)" "$(bench_stats s_warm)" \
  "$(bench_stats f_cold)" "$(bench_stats u_cold)" "$(bench_stats f_warm)" "$(bench_stats u_warm)" <<'PY'
import sys
v = [float(x.split()[0]) for x in sys.argv[2:]]
kc, sc, kw, sw, fc, uc, fw, uw = v
r = lambda peer, me: peer / me  # throughput ratio = inverse time ratio
print("Goal system >= 95%% of kernel squashfs: cold %.0f%%, warm %.0f%% -> %s" %
      (100 * r(kc, sc), 100 * r(kw, sw), "met" if min(r(kc, sc), r(kw, sw)) >= 0.95 else "not met"))
print("Goal user >= 90%% of squashfuse_ll: cold %.0f%%, warm %.0f%% -> %s" %
      (100 * r(fc, uc), 100 * r(fw, uw), "met" if min(r(fc, uc), r(fw, uw)) >= 0.90 else "not met"))
PY
