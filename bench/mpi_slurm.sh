#!/usr/bin/env bash
# MPI under Slurm (issue 12), on the private single-node Slurm of the tests
# (tests/slurm/fixture.sh: munge, slurmctld, slurmd, a system berthd, the MPI
# test images), as the unprivileged test user:
#   - ping-pong between two ranks (tests/slurm/mpi/pingpong.c: 8-byte half
#     round trip and 1 MiB bandwidth) in berth containers against the same
#     source built by the same compiler on bare metal, interleaved in the
#     same run: MPICH over PMI-2, Open MPI over PMIx. Goal: within 3%.
#   - the start of a 16-rank step: `srun -n 16 berth exec img.sif true`
#     against `srun -n 16 true` (hyperfine, interleaved rounds). Goal: <= 1.5x.
#     The step's shared container must be made once per step: counted from
#     the daemon's log.
#
# Usage (root): bench/mpi_slurm.sh [BERTH] [BERTHD] [SPANK] [ROUNDS=5] [ITERS=20000] [STARTS=10]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build
berth_src=${1:-$build/client/berth}
berthd_src=${2:-$build/daemon/berthd}
spank_src=${3:-$build/slurm/berth_spank.so}
rounds=${4:-5}
iters=${5:-20000}
starts=${6:-10}
[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): run as root (starts Slurm and berthd)" >&2; exit 2; }
for f in "$berth_src" "$berthd_src" "$spank_src"; do
  [ -e "$f" ] || { echo "missing $f (build first)" >&2; exit 2; }
done
user=${BERTH_TEST_USER:-berthtest}
work=$(mktemp -d /tmp/berth-bench-mpi-XXXXXX)
chmod 0755 "$work"
mkdir -m 0777 "$work/out"  # hyperfine's JSON, written as the test user
state=$work/fixture
cleanup() {
  local rc=$?
  bash "$here/../tests/slurm/fixture.sh" cleanup "$state" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
echo "starting Slurm and berthd (tests/slurm/fixture.sh)" >&2
bash "$here/../tests/slurm/fixture.sh" setup "$state" "$berth_src" "$berthd_src" "$spank_src" >&2
set -a
# shellcheck disable=SC1090
source "$(cat "$state")/env"
set +a
# The bare-metal binaries: the image's source, compiler and flags.
mpicc.mpich -O2 -o "$work/pingpong.mpich" "$here/../tests/slurm/mpi/pingpong.c"
mpicc.openmpi -O2 -o "$work/pingpong.openmpi" "$here/../tests/slurm/mpi/pingpong.c"
chmod 0755 "$work"/pingpong.*
as() {
  (cd "$work" && runuser -u "$user" -- env SLURM_CONF="$SLURM_CONF" BERTH_SOCKET="$BERTH_SOCKET" \
    PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@")
}

# pingpong NAME MPI CMD...: one run; appends "lat bw" to $work/NAME.
pingpong() {
  local name=$1 mpi=$2 out; shift 2
  out=$(as srun --mpi="$mpi" -n 2 "$@" "$iters" 2>&1) || { echo "$name failed: $out" >&2; exit 1; }
  printf '%s\n' "$out" | sed -n 's/.*lat_us=\([0-9.]*\) bw_MBps=\([0-9.]*\).*/\1 \2/p' >>"$work/$name"
}
median() {  # FILE COLUMN
  awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# The order alternates round by round (bare first, then berth first): a
# fixed order gave whichever ran at one place in the round a steady few
# percent (something on the node runs on a period close to a round's).
pair() {  # NAME MPI BARE-BINARY IMAGE
  if ((r % 2)); then
    pingpong "$1_bare" "$2" "$3"
    pingpong "$1_berth" "$2" "$BERTH" exec "$4" /pingpong
  else
    pingpong "$1_berth" "$2" "$BERTH" exec "$4" /pingpong
    pingpong "$1_bare" "$2" "$3"
  fi
}
for ((r = 1; r <= rounds; r++)); do
  echo "ping-pong round $r/$rounds" >&2
  pair mpich pmi2 "$work/pingpong.mpich" "$IMG/mpich.sif"
  pair ompi pmix "$work/pingpong.openmpi" "$IMG/openmpi.sif"
done

echo "16-rank starts" >&2
log_before=$(grep -c 'the shared container of slurm step .* starts' "$BERTHD_LOG" || true)
hf() {  # JSON COMMAND
  as hyperfine -N -w 1 -r "$starts" --export-json "$1" "$2" >"$work/out/hf.log" 2>&1 ||
    { echo "hyperfine '$2' failed:" >&2; tail -5 "$work/out/hf.log" >&2; exit 1; }
}
for ((r = 1; r <= rounds; r++)); do
  hf "$work/out/bare$r.json" "srun -n 16 true"
  hf "$work/out/berth$r.json" "srun -n 16 $BERTH exec $IMG/mpich.sif true"
done
log_after=$(grep -c 'the shared container of slurm step .* starts' "$BERTHD_LOG" || true)
containers=$((log_after - log_before))
berth_steps=$((rounds * (starts + 1)))
times() { python3 -c 'import json,sys
t=[x for f in sys.argv[1:] for x in json.load(open(f))["results"][0]["times"]]
t.sort(); n=len(t); print("%.1f %d" % (1000*(t[n//2] if n%2 else (t[n//2-1]+t[n//2])/2), n))' "$@"; }
read -r bare_ms bare_n < <(times "$work"/out/bare*.json)
read -r berth_ms berth_n < <(times "$work"/out/berth*.json)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo
echo "## MPI ping-pong, 2 ranks on one node ($rounds rounds of $iters iterations, order alternating; medians)"
echo "| stack | bare metal lat (us) | berth lat (us) | ratio | bare metal bw (MB/s) | berth bw (MB/s) | ratio |"
echo "|---|---|---|---|---|---|---|"
for s in mpich ompi; do
  bl=$(median "$work/${s}_bare" 1) cl=$(median "$work/${s}_berth" 1)
  bb=$(median "$work/${s}_bare" 2) cb=$(median "$work/${s}_berth" 2)
  label=$([ $s = mpich ] && echo "MPICH 4.0, pmi2" || echo "Open MPI 4.1, pmix")
  echo "| $label | $bl | $cl | $(ratio "$cl" "$bl") | $bb | $cb | $(ratio "$cb" "$bb") |"
done
echo
echo "## 16-rank step start (hyperfine, $rounds rounds of $starts runs, medians)"
echo "| command | median (ms) | runs |"
echo "|---|---|---|"
echo "| srun -n 16 true | $bare_ms | $bare_n |"
echo "| srun -n 16 berth exec mpich.sif true | $berth_ms | $berth_n |"
echo
echo "ratio: $(ratio "$berth_ms" "$bare_ms") (goal <= 1.5); shared containers made: $containers for $berth_steps steps (warm-ups included)"
