#!/usr/bin/env bash
# prolog_test.sh FIXTURE_STATE: the Slurm prolog (packaging/slurm/prolog.sh,
# run by the fixture's Prolog with PrologFlags=Alloc) stages the image the
# SPANK plugin exported (SPANK_BERTH_CONTAINER_IMAGE):
#   - sbatch --container-image: staged before the job, as the job's user
#   - an image only root can read: not staged (the prolog never acts as
#     root for the user), a warning, the node not drained, and srun fails
#     with the task's one line
#   - a job without --container-image: the prolog does nothing
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-prolog "$1"

# node_state: the fixture node's state; resume it if a prolog drained it, so
# that the tests after this one still run.
node_state() {
  local state
  state=$(as root sinfo -h -n berthci -o %T)
  case $state in
    drain* | down*) as root scontrol update nodename=berthci state=resume >/dev/null 2>&1 ;;
  esac
  echo "$state"
}

# prolog_says JOB: the prolog's lines for JOB.
prolog_says() { grep "^berth-prolog: job $1: " "$PROLOG_OUT" 2>/dev/null; }

install -d -o "$TUSER" -m 0755 "$TEST_TMP/out"
printf '#!/bin/sh\ntrue\n' >"$TEST_TMP/job.sh"
chmod 0755 "$TEST_TMP/job.sh"
job=$(as "$TUSER" sbatch -W --parsable --container-image="$IMG/mpich.sif" -o "$TEST_TMP/out/%j" \
  "$TEST_TMP/job.sh" 2>&1)
[ "$(prolog_says "$job")" = "berth-prolog: job $job: staged $IMG/mpich.sif" ] &&
  ok "sbatch --container-image: the prolog staged the image" ||
  bad "staging" "job '$job': $(tail -3 "$PROLOG_OUT" 2>&1)"

# Readable by root only: staging it as root would succeed.
install -m 0600 "$IMG/mpich.sif" "$TEST_TMP/root-only.sif"
out=$(as "$TUSER" srun -J berth-prolog --container-image="$TEST_TMP/root-only.sif" -n 2 echo RAN 2>&1)
said=$(grep -F "$TEST_TMP/root-only.sif" "$PROLOG_OUT" 2>/dev/null)
[[ "$said" == *"not staged: FATAL:"*"root-only.sif: Permission denied" ]] &&
  ok "an image the user cannot read: not staged, the prolog warns ($said)" ||
  bad "staging as the user" "'$said' $(tail -3 "$PROLOG_OUT" 2>&1)"
state=$(node_state)
[[ -n "$state" && "$state" != drain* && "$state" != down* && "$state" != fail* ]] &&
  ok "the node is not drained ($state)" || bad "node after a failed staging" "$state"
[[ "$(grep -c . <<<"$out")" = 2 && "$out" == *"Permission denied"* && "$out" != *RAN* ]] &&
  ok "srun then fails with the task's line" || bad "srun after a failed staging" "$out"

job=$(as "$TUSER" sbatch -W --parsable -o "$TEST_TMP/out/%j" "$TEST_TMP/job.sh" 2>&1)
[ -z "$(prolog_says "$job")" ] && ok "a job without --container-image: the prolog does nothing" ||
  bad "plain job" "$(prolog_says "$job")"
finish
