#!/usr/bin/env bash
# What cgroup limits cost a container start (issue 15): `berth exec IMG true`
# against a system-mode berthd, without limits and with `--memory 512M
# --pids-limit 512` (a cgroup of its own below the caller's: one mkdir and a
# few file writes per hierarchy, a join, and at the end an rmdir), and with
# `--cpus 1` as well (two more hierarchies on this v1 machine: cpu and
# cpuacct), interleaved in rounds in the same run. Prints a markdown table;
# the ratio is against the plain exec of the same run.
#
# Usage (root): bench/limits.sh [BERTH] [BERTHD] [RUNS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
runs=${3:-40}
rounds=${4:-4}
HF_RUNS=$(((runs + rounds - 1) / rounds))
img=$bench_work/t.sif
bash "$here/../tests/integration/make_test_image.sh" "$BERTH" "$img"
bench_start_daemon system
export BERTH_SOCKET=$DAEMON_SOCK
for _ in $(seq "$rounds"); do
  hf plain "$BERTH exec $img true"
  hf mem_pids "$BERTH exec --memory 512M --pids-limit 512 $img true"
  hf mem_pids_cpu "$BERTH exec --memory 512M --pids-limit 512 --cpus 1 $img true"
done
read -r base _ _ _ < <(bench_stats plain)
echo "| exec IMG true | median ms | p25 | p75 | n | ratio |"
echo "| --- | --- | --- | --- | --- | --- |"
for name in plain mem_pids mem_pids_cpu; do
  read -r med p25 p75 n < <(bench_stats "$name")
  printf '| %s | %s | %s | %s | %s | %.2f |\n' "$name" "$med" "$p25" "$p75" "$n" \
    "$(python3 -c "print($med / $base)")"
done
