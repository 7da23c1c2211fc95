#!/usr/bin/env bash
# The immutable copy of an image the daemon does not trust in place (system
# mode, kernel_squashfs = "trusted": a file the user owns is copied into
# <state>/images and hashed on the way), beside its peer in the same run:
#   - dense: a 256 MiB incompressible squashfs partition; the first start of a
#     changed file (`touch` before each run: a new file identity, so the
#     daemon copies again) against a warm start (the difference is the copy),
#     and against `cp` + `openssl dgst -sha256` of the same file (the peer:
#     a copy and a hash of it);
#   - sparse: a 513 MiB partition holding 1 MiB of data (the rest a hole):
#     the same first start, and the bytes the copy allocates (du).
# hyperfine -N, RUNS runs each (2 warm-ups); medians in ms.
#
# Usage (root): bench/image_copy.sh [BERTH] [BERTHD] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
runs=${3:-10}
HF_RUNS=$runs HF_WARMUP=2
bench_user_setup

# Images owned by the test user: not trusted in place, so copied.
r=$bench_work/rootfs
bench_make_rootfs "$r"
head -c $((256 << 20)) /dev/urandom >"$r/data"
dense=$bench_work/dense.sif
bench_make_sif "$r" "$dense" -noD -noF
rm -f "$r/data"
sparse=$bench_work/sparse.sif
bench_make_sif "$r" "$sparse"
python3 "$here/../tests/stores/grow_partition.py" "$sparse" 512  # + a 512 MiB hole
chown "$BENCH_USER" "$dense" "$sparse"

bench_start_daemon system sys
export BERTH_SOCKET=$SYS_SOCK
"$BERTH" exec "$dense" true && "$BERTH" exec "$sparse" true  # store and mount warm

hf dense_warm "$BERTH exec $dense true"
hf dense_first "$BERTH exec $dense true" --prepare "touch $dense"
cat >"$bench_work/peer.sh" <<SH
#!/bin/sh
cp --reflink=never "$dense" "$bench_work/peer.copy" && openssl dgst -sha256 "$bench_work/peer.copy" >/dev/null
SH
chmod 0755 "$bench_work/peer.sh"
hf dense_peer "$bench_work/peer.sh" --prepare "rm -f $bench_work/peer.copy"
rm -f "$bench_work/peer.copy"
hf sparse_first "$BERTH exec $sparse true" --prepare "touch $sparse"

read -r w _ < <(bench_stats dense_warm)
read -r f _ < <(bench_stats dense_first)
read -r p _ < <(bench_stats dense_peer)
read -r s _ < <(bench_stats sparse_first)
alloc=$(du -k --apparent-size "$bench_work/sys/state/images" | tail -1 | cut -f1)
used=$(du -k "$bench_work/sys/state/images" | tail -1 | cut -f1)
echo "| case (n=$runs) | median ms |"
echo "| --- | --- |"
echo "| dense 256 MiB: warm start | $w |"
echo "| dense 256 MiB: first start of a changed file (copy + hash + start) | $f |"
echo "| peer: cp + openssl dgst -sha256 of the same file | $p |"
python3 -c "print('| copy cost (first - warm) / peer | %.2f |' % (($f - $w) / $p))"
echo "| sparse 513 MiB (1 MiB data): first start | $s |"
echo "| store after both: apparent KiB / allocated KiB | $alloc / $used |"
