#!/usr/bin/env bash
# epilog_test.sh FIXTURE_STATE: the Slurm epilog (packaging/slurm/epilog.sh,
# `berth slurm epilog`) ends a job's shared containers, ranks included:
#   - a plain user may not end a job (one line naming root)
#   - root ends a running step's container; its ranks die with it
#   - a second run ends nothing and succeeds (idempotent)
#   - Slurm runs the shipped epilog at every job's end
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-epilog "$1"
marker=97.$$

# mine: how many of this test's rank processes run.
mine() { pgrep -u "$TUSER" -f "^sleep $marker\$" | wc -l; }

as "$TUSER" srun -J berth-epilog -n 2 "$BERTH" exec "$IMG/mpich.sif" sleep "$marker" \
  >"$TEST_TMP/srun.out" 2>&1 &
srun_pid=$!
for _ in $(seq 100); do [ "$(mine)" = 2 ] && break; sleep 0.1; done
job=$(as root squeue -h -n berth-epilog -u "$TUSER" -o %i | head -1)
if [ "$(mine)" = 2 ] && [ -n "$job" ]; then ok "job $job: two ranks run in their step's container"
else bad setup "no running ranks (job '$job'): $(cat "$TEST_TMP/srun.out")"; kill "$srun_pid"; finish; fi

err=$(as "$TUSER" "$BERTH" slurm epilog --job "$job" 2>&1 >/dev/null); rc=$?
if [ "$rc" != 0 ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] && printf '%s' "$err" | grep -q 'is for root'; then
  ok "a plain user cannot end a job: $err"
else bad "user ends a job" "rc=$rc: $err"; fi
[ "$(mine)" = 2 ] && ok "the ranks still run" || bad "ranks after a refused epilog" "$(mine) left"

out=$(as root "$BERTH" slurm epilog --job "$job" 2>&1)
[ "$out" = "job $job: ended 1 shared container(s)" ] && ok "root: $out" || bad "root ends the job" "$out"
for _ in $(seq 50); do [ "$(mine)" = 0 ] && break; sleep 0.1; done
[ "$(mine)" = 0 ] && ok "the ranks ended with their container" || bad "ranks after the epilog" "$(mine) left"
wait "$srun_pid"
out=$(as root "$BERTH" slurm epilog --job "$job" 2>&1)
[ "$out" = "job $job: ended 0 shared container(s)" ] && ok "a second run: $out" || bad "epilog twice" "$out"

# Slurm's own epilog ran the shipped script for this job.
for _ in $(seq 100); do grep -q "berth-epilog: job $job: ended" "$EPILOG_OUT" 2>/dev/null && break; sleep 0.1; done
grep -q "berth-epilog: job $job: ended" "$EPILOG_OUT" && ok "Slurm ran packaging/slurm/epilog.sh at the job's end" ||
  bad "Slurm's epilog" "$(tail -3 "$EPILOG_OUT" 2>&1)"
finish
