#!/bin/sh
# Slurm Epilog for berth (slurm.conf: Epilog=/etc/slurm/epilog.d/berth.sh,
# or called from the site's epilog): ends every shared berth container of
# the finishing job on this node, holders and ranks, whatever their state,
# so a job whose ranks were SIGKILLed or scancel'ed leaves no process,
# mount or namespace behind. Idempotent: a second run ends nothing.
#
# It never fails the epilog (which would drain the node) for a reason that
# is not the node's: the daemon being unreachable is logged, not fatal (the
# containers then end with their step's slurmstepd anyway).
# BERTH: the client (default: berth in PATH); BERTH_SOCKET: berthd's socket.
berth=${BERTH:-berth}
[ -n "${SLURM_JOB_ID:-}" ] || exit 0
if ! out=$("$berth" slurm epilog --job "$SLURM_JOB_ID" 2>&1); then
  logger -t berth-epilog "job $SLURM_JOB_ID: $out" 2>/dev/null || echo "berth-epilog: job $SLURM_JOB_ID: $out" >&2
  exit 0
fi
echo "berth-epilog: $out"
exit 0
