#!/usr/bin/env bash
# Start cost of --nv (issue 13): `berth exec --nv IMG /bin/true` against
# `berth exec IMG /bin/true` on the same daemon in the same run, with the
# fake NVIDIA driver root of the GPU tests (tests/gpu/make_fake_driver_root.sh:
# the shipped nvliblist.conf's ~50 libraries as stubs in a loader cache,
# nvidia-smi, four device nodes, the persistenced socket), so no GPU is
# needed. Goal: exec --nv <= 1.3x exec. Also: one GPU chosen with
# CUDA_VISIBLE_DEVICES, --contain (minimal /dev), a CDI device (--device),
# and the same pair against a user-mode daemon as the test user.
# hyperfine -N, ROUNDS rounds of RUNS/ROUNDS runs (3 warm-ups), interleaved
# and pooled; the first --nv exec resolves the library list before timing.
#
# Usage (root): bench/gpu_start.sh [BERTH] [BERTHD] [RUNS=60] [ROUNDS=3]
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
root=$bench_work/driver-root
libs=$(bash "$here/../tests/gpu/make_fake_driver_root.sh" "$root" "$here/../packaging/nvliblist.conf")
mkdir -p "$bench_work/cdi"
cat >"$bench_work/cdi/fuse.json" <<'SPEC'
{"cdiVersion": "0.6.0", "kind": "bench.test/dev",
 "devices": [{"name": "fuse", "containerEdits": {"deviceNodes": [{"path": "/dev/fuse"}]}}]}
SPEC
chmod -R go-w "$bench_work/cdi"
conf=$(printf '[gpu]\ntest_driver_root = "%s"\ncdi_dirs = ["%s"]' "$root" "$bench_work/cdi")
for name in sys usr; do
  mkdir -p "$bench_work/$name/etc"
  install -m 0644 "$here/../packaging/nvliblist.conf" "$bench_work/$name/etc/nvliblist.conf"
done
bench_start_daemon system sys "$conf"; S_SOCK=$DAEMON_SOCK
bench_start_daemon user usr "$conf"; U_SOCK=$DAEMON_SOCK
"$BERTH" --socket "$S_SOCK" exec --nv "$img" /bin/true  # warm: mount, resolve the list
as_user "$BERTH" --socket "$U_SOCK" exec --nv "$img" /bin/true
bound=$("$BERTH" --socket "$S_SOCK" exec --nv "$img" sh -c 'ls /.singularity.d/libs | wc -l')

x() { echo "$BERTH --socket $1 exec $2 $img /bin/true"; }
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  hf sys_exec "$(x "$S_SOCK" "")"
  hf sys_nv "$(x "$S_SOCK" --nv)"
  hf sys_nv_one "env CUDA_VISIBLE_DEVICES=1 $(x "$S_SOCK" --nv)"
  hf sys_contain "$(x "$S_SOCK" --contain)"
  hf sys_contain_nv "$(x "$S_SOCK" "--contain --nv")"
  hf sys_cdi "$(x "$S_SOCK" "--device bench.test/dev=fuse")"
  HF_AS_USER=1 hf usr_exec "$(x "$U_SOCK" "")"
  HF_AS_USER=1 hf usr_nv "$(x "$U_SOCK" --nv)"
done

row() {  # LABEL NAME BASE
  local m p25 p75 n b
  read -r m p25 p75 n < <(bench_stats "$2")
  read -r b _ < <(bench_stats "$3")
  python3 -c 'import sys; l,m,a,c,n,b=sys.argv[1:]; print("| %s | %s | %s–%s | %s | %.2f |" % (l,m,a,c,n,float(m)/float(b)))' \
    "$1" "$m" "$p25" "$p75" "$n" "$b"
}
echo
echo "Fake driver root: $libs stub libraries listed, $bound bound in /.singularity.d/libs;"
echo "host /dev has $(ls /dev | wc -l) entries. Load average: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| command | median ms | p25–p75 | n | × exec |"
echo "| --- | --- | --- | --- | --- |"
echo "| **system mode (root)** | | | | |"
row "berth exec IMG /bin/true" sys_exec sys_exec
row "berth exec --nv IMG /bin/true" sys_nv sys_exec
row "CUDA_VISIBLE_DEVICES=1 berth exec --nv IMG /bin/true" sys_nv_one sys_exec
row "berth exec --contain IMG /bin/true" sys_contain sys_exec
row "berth exec --contain --nv IMG /bin/true" sys_contain_nv sys_exec
row "berth exec --device bench.test/dev=fuse IMG /bin/true (CDI)" sys_cdi sys_exec
echo "| **user mode (as $BENCH_USER)** | | | | |"
row "berth exec IMG /bin/true" usr_exec usr_exec
row "berth exec --nv IMG /bin/true" usr_nv usr_exec
read -r nv _ < <(bench_stats sys_nv)
read -r base _ < <(bench_stats sys_exec)
python3 -c 'import sys; r=float(sys.argv[1])/float(sys.argv[2]); print("\ngoal: exec --nv <= 1.3x exec (system mode): %.2fx, %s" % (r, "met" if r <= 1.3 else "NOT met"))' "$nv" "$base"
