#!/usr/bin/env bash
# Start latency of `berth exec IMAGE /bin/true` from the shell (client start,
# RPC, launch, exit), beside its peers in the same run (issue 3):
#   - bwrap --ro-bind ROOTFS / --proc /proc --dev /dev --unshare-pid /bin/true
#     on the unpacked rootfs (as the test user: with --unshare-user)
#   - the per-process FUSE flow of unprivileged Apptainer: squashfuse_ll mount
#     of the SIF's squashfs (-o offset), unshare -m -p -f chroot MNT /bin/true,
#     fusermount3 -u (as the test user: unshare -r as well)
#   - `berth --version` (the client's own start) and `berth version` (+ 1 RPC)
# against system-mode berthds (root) and user-mode berthds (the test user),
# the image warm (used once before timing). Each mode runs two daemons:
#   - default berth.conf: the image stays mounted `idle_unmount_seconds`
#     (60 s) after its last container, so every timed exec finds it mounted;
#   - `idle_unmount_seconds = 0`: the mount goes with the last container, so
#     every exec mounts again (the cost of a first start on the node), and the
#     same with one long-running container of the image held open beside.
# Image: tests/integration/make_test_image.sh (busybox-static + a dynamically
# linked program and its libraries, gzip squashfs as mksquashfs defaults).
# hyperfine -N, ROUNDS rounds of RUNS/ROUNDS runs (3 warm-ups each), pooled.
# Then strace -T of berthd over 10 execs shows where a launch's time goes.
#
# Usage (root): bench/start_latency.sh [BERTH] [BERTHD] [RUNS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
runs=${3:-60}
rounds=${4:-3}
HF_RUNS=$(((runs + rounds - 1) / rounds))
bench_user_setup

img=$bench_work/t.sif
bash "$here/../tests/integration/make_test_image.sh" "$BERTH" "$img"
read -r off size < <(sif_partition "$img")
rootfs=$bench_work/rootfs
unsquashfs -q -o "$off" -d "$rootfs" "$img" >/dev/null
mkdir "$bench_work/mnt-root"; install -d -o "$BENCH_USER" "$bench_work/mnt-user"
# The FUSE peer, as one process tree per container like Apptainer's.
cat >"$bench_work/fuse_flow.sh" <<'SH'
#!/bin/sh
# fuse_flow.sh SIF OFFSET MNT [-r]: mount, run /bin/true in new mount+pid namespaces, unmount.
set -e
squashfuse_ll -o offset="$2" "$1" "$3"
unshare $4 -m -p -f /usr/sbin/chroot "$3" /bin/true
fusermount3 -u "$3"
SH
chmod 0755 "$bench_work/fuse_flow.sh"

no_linger=$'[images]\nidle_unmount_seconds = 0'
bench_start_daemon system sys; S_SOCK=$DAEMON_SOCK S_PID=$DAEMON_PID
bench_start_daemon system sys0 "$no_linger"; S0_SOCK=$DAEMON_SOCK S0_PID=$DAEMON_PID
bench_start_daemon user usr; U_SOCK=$DAEMON_SOCK
bench_start_daemon user usr0 "$no_linger"; U0_SOCK=$DAEMON_SOCK
for s in "$S_SOCK" "$S0_SOCK"; do "$BERTH" --socket "$s" exec "$img" /bin/true; done  # warm
for s in "$U_SOCK" "$U0_SOCK"; do as_user "$BERTH" --socket "$s" exec "$img" /bin/true; done
sys_backend=$(grep -o 'kernel squashfs[^-]*' "$bench_work/sys.log" | head -1 | sed 's/ *$//')

bw_root="bwrap --ro-bind $rootfs / --proc /proc --dev /dev --unshare-pid /bin/true"
bw_user="bwrap --unshare-user --ro-bind $rootfs / --proc /proc --dev /dev --unshare-pid /bin/true"
# Every timed command names its daemon with --socket (never the node's own).
x() { echo "$BERTH --socket $1 exec $img /bin/true"; }
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  hf sys_exec "$(x "$S_SOCK")"
  hf bwrap_root "$bw_root"
  hf fuse_root "$bench_work/fuse_flow.sh $img $off $bench_work/mnt-root"
  hf version_flag "$BERTH --version"
  hf version_rpc "$BERTH --socket $S_SOCK version"
  hf sys0_exec "$(x "$S0_SOCK")"
  SYS_SOCK=$S0_SOCK holder_start system "$img"
  hf sys0_exec_held "$(x "$S0_SOCK")"
  holder_stop
  HF_AS_USER=1 hf user_exec "$(x "$U_SOCK")"
  HF_AS_USER=1 hf bwrap_user "$bw_user"
  HF_AS_USER=1 hf fuse_user "$bench_work/fuse_flow.sh $img $off $bench_work/mnt-user -r"
  HF_AS_USER=1 hf user_version_rpc "$BERTH --socket $U_SOCK version"
  HF_AS_USER=1 hf user0_exec "$(x "$U0_SOCK")"
  USER_SOCK=$U0_SOCK holder_start user "$img"
  HF_AS_USER=1 hf user0_exec_held "$(x "$U0_SOCK")"
  holder_stop
done

# Where a launch's time goes, from berthd itself: strace -T of the daemon
# (and its children) over 10 execs, mount kept (default daemon) and
# remounting (idle_unmount_seconds = 0):
#   - joining the caller's cgroups: the child writes "0" to cgroup.procs of
#     each v1 hierarchy that differs from the daemon's (none when the caller
#     shares them, as here; v2 is entered by clone3); summed per launch
#   - the container's first execve (/bin/sh, which sources the env scripts):
#     on a fresh mount it pages busybox in through squashfs decompression
trace_execs() {  # NAME PID SOCKET
  strace -f -qq -T -e trace=write,execve -o "$bench_work/out/$1.strace" -p "$2" &
  local sp=$!
  sleep 0.5
  for _ in $(seq 10); do "$BERTH" --socket "$3" exec "$img" /bin/true; done
  sleep 0.3
  kill -INT "$sp"; wait "$sp" 2>/dev/null || true
}
trace_execs kept "$S_PID" "$S_SOCK"
trace_execs remount "$S0_PID" "$S0_SOCK"

read -r bw _ < <(bench_stats bwrap_root)
read -r fu _ < <(bench_stats fuse_root)
read -r bwu _ < <(bench_stats bwrap_user)
read -r fuu _ < <(bench_stats fuse_user)
row() {  # LABEL NAME BWRAP FUSE
  local m p25 p75 n
  read -r m p25 p75 n < <(bench_stats "$2")
  python3 -c 'import sys; l,m,a,b,n,bw,fu=sys.argv[1:]; print("| %s | %s | %s–%s | %s | %.2f | %.2f |" % (l,m,a,b,n,float(m)/float(bw),float(m)/float(fu)))' \
    "$1" "$m" "$p25" "$p75" "$n" "$3" "$4"
}
echo
echo "Image: make_test_image.sh ($((size / 1024)) KiB gzip squashfs); the system daemons mount it as: ${sys_backend:-?}."
echo "Load average during the run: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| command | median ms | p25–p75 | n | × bwrap | × FUSE flow |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| **system mode (root)** | | | | | |"
row "berth exec IMG /bin/true, warm (mount kept, default idle_unmount_seconds)" sys_exec "$bw" "$fu"
row "berth exec, idle_unmount_seconds = 0 (mounts on every exec)" sys0_exec "$bw" "$fu"
row "berth exec, idle_unmount_seconds = 0, a running container holds the mount" sys0_exec_held "$bw" "$fu"
row "bwrap --ro-bind ROOTFS / --proc --dev --unshare-pid (peer)" bwrap_root "$bw" "$fu"
row "squashfuse_ll + unshare -mpf chroot + fusermount3 -u (peer)" fuse_root "$bw" "$fu"
row "berth --version (client start only)" version_flag "$bw" "$fu"
row "berth version (client start + 1 RPC)" version_rpc "$bw" "$fu"
echo "| **user mode (berthd --user-mode, as $BENCH_USER)** | | | | | |"
row "berth exec IMG /bin/true, warm (mount kept, default idle_unmount_seconds)" user_exec "$bwu" "$fuu"
row "berth exec, idle_unmount_seconds = 0 (mounts on every exec)" user0_exec "$bwu" "$fuu"
row "berth exec, idle_unmount_seconds = 0, a running container holds the mount" user0_exec_held "$bwu" "$fuu"
row "bwrap --unshare-user ... (peer)" bwrap_user "$bwu" "$fuu"
row "squashfuse_ll + unshare -rmpf chroot + fusermount3 -u (peer)" fuse_user "$bwu" "$fuu"
row "berth version (client start + 1 RPC)" user_version_rpc "$bwu" "$fuu"
echo
echo "Where the time goes in berthd (strace -T of the daemon, 10 execs each; median per launch, ms):"
echo
python3 - "$bench_work/out/kept.strace" "$bench_work/out/remount.strace" <<'PY'
import re, statistics, sys
def parse(path):
    cg, first_exec = {}, {}
    for line in open(path):
        m = re.match(r'(\d+)\s+(.*)<(\d+\.\d+)>$', line.strip())
        if not m: continue
        pid, call, dur = m.group(1), m.group(2), float(m.group(3)) * 1000
        if re.match(r'write\(\d+, "0", 1\)', call):
            cg[pid] = cg.get(pid, 0) + dur
        elif call.startswith('execve("/bin/sh"') or 'execve resumed' in call:
            first_exec.setdefault(pid, dur)
    med = lambda d: "%.2f" % statistics.median(d.values()) if d else "-"
    return med(cg), med(first_exec), len(first_exec)
k, r = parse(sys.argv[1]), parse(sys.argv[2])
print("| step (system mode) | mount kept | remounting |")
print("| --- | --- | --- |")
print("| launcher child joins the caller's cgroups (write \"0\" to each cgroup.procs) | %s | %s |" % (k[0], r[0]))
print("| container's first execve (/bin/sh from the image) | %s | %s |" % (k[1], r[1]))
print("| launches traced | %d | %d |" % (k[2], r[2]))
PY
echo
python3 - "$(bench_stats sys_exec)" "$(bench_stats sys0_exec)" "$bw" "$(bench_stats user_exec)" "$(bench_stats user0_exec)" "$fuu" <<'PY'
import sys
s, s0, bw, u, u0, fu = sys.argv[1:]
s, s0, u, u0 = (float(x.split()[0]) for x in (s, s0, u, u0))
bw, fu = float(bw), float(fu)
print("Goal warm system exec <= 2x bwrap: %.2fx (remounting: %.2fx) -> %s" %
      (s / bw, s0 / bw, "met" if s / bw <= 2 else "not met"))
print("Goal user mode exec <= 0.3x FUSE flow: %.2fx warm (remounting: %.2fx) -> %s" %
      (u / fu, u0 / fu, "met" if u / fu <= 0.3 else "not met"))
PY
