#!/usr/bin/env bash
# Stdio streaming through `berth exec` (issue 3): 1 GiB out of (and into) a
# container, against a plain pipe on the host in the same run. The writer is
# busybox dd in both cases (the image's busybox is the host's /bin/busybox);
# the host-side reader is coreutils cat; the middle cat is busybox cat in
# both the container and the peer.
#   host pipe (peer):  busybox dd if=/dev/zero bs=1M count=1024 | cat > /dev/null
#   berth exec IMG dd if=/dev/zero bs=1M count=1024 > /dev/null
#   berth exec IMG dd if=/dev/zero bs=1M count=1024 | cat > /dev/null
#   stdin too (peer):  busybox dd ... | busybox cat | cat > /dev/null
#   busybox dd ... | berth exec IMG cat | cat > /dev/null
# System-mode daemon (root), no terminal (plain pipes; with a terminal berth
# uses a pty, not measured here). Wall time of the whole pipeline, berth's
# start included; GB/s = 1 GiB / s (1 GB = 1e9 B). Median of REPS, interleaved,
# after one warm-up round that is not counted.
#
# Usage (root): bench/stdout_stream.sh [BERTH] [BERTHD] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
reps=${3:-7}
root=$bench_work/rootfs
bench_make_rootfs "$root"
img=$bench_work/stream.sif
bench_make_sif "$root" "$img"
bench_start_daemon system
export BERTH_SOCKET=$SYS_SOCK
"$BERTH" exec "$img" true  # warm

timed() {  # NAME SCRIPT: wall time of a bash -c pipeline, checked for 1 GiB
  local t0 t1 out
  t0=$(now_ns)
  out=$(B="$BERTH" I="$img" bash -o pipefail -c "$2" 2>&1) || { echo "$1 failed: $out" >&2; exit 1; }
  t1=$(now_ns)
  echo "$((t1 - t0))e-9" >>"$bench_work/times/$1"
}
for ((r = 0; r <= reps; r++)); do
  echo "round $r/$reps" >&2
  [ "$r" = 1 ] && rm -f "$bench_work"/times/*  # round 0 warms up
  timed pipe 'busybox dd if=/dev/zero bs=1M count=1024 2>/dev/null | cat >/dev/null'
  timed out_null '"$B" exec "$I" dd if=/dev/zero bs=1M count=1024 2>/dev/null >/dev/null'
  timed out_pipe '"$B" exec "$I" dd if=/dev/zero bs=1M count=1024 2>/dev/null | cat >/dev/null'
  timed pipe2 'busybox dd if=/dev/zero bs=1M count=1024 2>/dev/null | busybox cat | cat >/dev/null'
  timed in_out 'busybox dd if=/dev/zero bs=1M count=1024 2>/dev/null | "$B" exec "$I" cat | cat >/dev/null'
done
# The bytes really arrive (and only once): count them through the container.
n=$(busybox dd if=/dev/zero bs=1M count=16 2>/dev/null | "$BERTH" exec "$img" cat | wc -c)
[ "$n" = 16777216 ] || { echo "stdin->stdout through berth gave $n bytes, want 16777216" >&2; exit 1; }

gbs() { python3 -c 'import sys; print("%.2f" % (2**30 / 1e9 / (float(sys.argv[1]) / 1000)))' "$(bench_stats "$1" | cut -d' ' -f1)"; }
row() {  # LABEL NAME PEER
  local g p
  g=$(gbs "$2"); p=$(gbs "$3")
  python3 -c 'import sys; l,g,p=sys.argv[1:]; print("| %s | %s | %.0f%% |" % (l,g,100*float(g)/float(p)))' "$1" "$g" "$p"
}
echo
echo "1 GiB, median of $reps; system-mode daemon; no terminal."
echo
echo "| pipeline | GB/s | × peer |"
echo "| --- | --- | --- |"
row "busybox dd ... \\| cat > /dev/null (host pipe, peer)" pipe pipe
row "berth exec IMG dd ... > /dev/null" out_null pipe
row "berth exec IMG dd ... \\| cat > /dev/null" out_pipe pipe
row "busybox dd ... \\| busybox cat \\| cat > /dev/null (two pipes, peer)" pipe2 pipe2
row "busybox dd ... \\| berth exec IMG cat \\| cat > /dev/null" in_out pipe2
echo
python3 - "$(gbs out_pipe)" "$(gbs pipe)" "$(gbs in_out)" "$(gbs pipe2)" <<'PY'
import sys
o, p, io, p2 = map(float, sys.argv[1:])
print("Goal stdout streaming >= 50%% of a plain pipe: %.0f%% (stdin+stdout %.0f%% of two pipes) -> %s" %
      (100 * o / p, 100 * io / p2, "met" if o / p >= 0.5 and io / p2 >= 0.5 else "not met"))
PY
