#!/usr/bin/env bash
# Named instances (issue 15): `berth exec instance://x true` against a fresh
# `berth exec IMG true` on the same system daemon in the same run (hyperfine
# -N, interleaved rounds, pooled; goal: join <= 1.0x fresh exec), and what
# idle instances cost berthd: its RSS and thread count before and after
# starting N idle instances (goal: <= 1 MB RSS each, no thread per instance),
# with each instance's own init RSS and its own cgroup's directories beside.
#
# Usage (root): bench/instance.sh [BERTH] [BERTHD] [RUNS=60] [ROUNDS=3] [N=100]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
runs=${3:-60}
rounds=${4:-3}
n=${5:-100}
HF_RUNS=$(((runs + rounds - 1) / rounds))
img=$bench_work/t.sif
bash "$here/../tests/integration/make_test_image.sh" "$BERTH" "$img"
bench_start_daemon system sys "$(printf '[limits]\nmax_instances_per_user = %d' $((n + 10)))"
# Instances outlive a system daemon on purpose: stop them before the cleanup.
trap 'rc=$?; "$BERTH" --socket "$SYS_SOCK" instance stop --all --force >/dev/null 2>&1; (exit $rc); bench_cleanup' EXIT
b() { "$BERTH" --socket "$SYS_SOCK" "$@"; }
b instance start "$img" x 2>/dev/null
b exec "$img" true

for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  hf fresh "$BERTH --socket $SYS_SOCK exec $img true"
  hf join "$BERTH --socket $SYS_SOCK exec instance://x true"
done
read -r fm fa fc fn < <(bench_stats fresh)
read -r jm ja jc jn < <(bench_stats join)

status() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
sleep 1
rss0=$(status "$SYS_PID" VmRSS) thr0=$(status "$SYS_PID" Threads) fd0=$(ls "/proc/$SYS_PID/fd" | wc -l)
for ((i = 1; i <= n; i++)); do b instance start "$img" "idle$i" 2>/dev/null; done
sleep 1
rss1=$(status "$SYS_PID" VmRSS) thr1=$(status "$SYS_PID" Threads) fd1=$(ls "/proc/$SYS_PID/fd" | wc -l)
# Each instance's own cgroup: a directory per hierarchy (kernel memory, not berthd's).
cgdirs=$(find /sys/fs/cgroup -mindepth 2 -type d -name "berth-instance-*-idle*-$SYS_PID-*" 2>/dev/null | wc -l)
init_rss=$(b instance list --json 'idle*' | python3 -c '
import json, statistics, sys
pids = [i["pid"] for i in json.load(sys.stdin)["instances"]]
def rss(p):
    for l in open("/proc/%d/status" % p):
        if l.startswith("VmRSS:"): return int(l.split()[1])
print(statistics.median(rss(p) for p in pids))')

echo
echo "Load average: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| command | median ms | p25–p75 | n | × fresh exec |"
echo "| --- | --- | --- | --- | --- |"
echo "| berth exec IMG true | $fm | $fa–$fc | $fn | 1.00 |"
python3 -c 'import sys; m,a,c,n,b=sys.argv[1:]; print("| berth exec instance://x true | %s | %s–%s | %s | %.2f |" % (m,a,c,n,float(m)/float(b)))' "$jm" "$ja" "$jc" "$jn" "$fm"
echo
echo "| berthd | before | with $n idle instances | per instance |"
echo "| --- | --- | --- | --- |"
python3 -c 'import sys; a,b,n=map(int,sys.argv[1:]); print("| VmRSS (KiB) | %d | %d | %.1f KiB |" % (a,b,(b-a)/n))' "$rss0" "$rss1" "$n"
echo "| threads | $thr0 | $thr1 | $(python3 -c "print(($thr1-$thr0)/$n)") |"
echo "| descriptors | $fd0 | $fd1 | $(python3 -c "print(($fd1-$fd0)/$n)") |"
echo "| instance cgroup directories | 0 | $cgdirs | $(python3 -c "print($cgdirs/$n)") |"
echo
echo "Each idle instance's init: median VmRSS ${init_rss} KiB (its own process, outside berthd)."
python3 -c 'import sys; r=float(sys.argv[1])/float(sys.argv[2]); print("goal: join <= 1.0x fresh exec: %.2fx, %s" % (r, "met" if r <= 1.0 else "NOT met"))' "$jm" "$fm"
