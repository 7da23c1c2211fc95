#!/bin/sh
# Slurm Prolog for berth (slurm.conf: PrologFlags=Alloc and
# Prolog=/usr/lib/berth/slurm/prolog.sh, or called from the site's prolog):
# when the job asked for --container-image (the SPANK plugin exports it as
# SPANK_BERTH_CONTAINER_IMAGE), stages the image on this node before the job
# starts: a docker:// or oras:// image is pulled into berthd's node cache
# once, not once per rank; a SIF is checked against the ECL (and its
# verification kept) and read once. It runs `berth exec IMAGE true` as the
# job's user, never as root: the image is the user's choice, and root would
# read images the user cannot.
#
# It never fails the prolog (which would drain the node): an image that is
# missing, refused or unreachable is the job's or the registry's fault. It
# warns here; the job's tasks then report the same error on srun's stderr.
# BERTH: the client (default: berth in PATH); BERTH_SOCKET: berthd's socket.
berth=${BERTH:-berth}
image=${SPANK_BERTH_CONTAINER_IMAGE:-}
[ -n "$image" ] && [ -n "${SLURM_JOB_ID:-}" ] && [ -n "${SLURM_JOB_USER:-}" ] || exit 0
warn() {
  logger -t berth-prolog "job $SLURM_JOB_ID: $1" 2>/dev/null || true
  echo "berth-prolog: job $SLURM_JOB_ID: $1" >&2
}
case $image in
  -*) warn "not staged: '$image' is not an image"; exit 0 ;;
esac
if ! out=$(cd / && runuser -u "$SLURM_JOB_USER" -- env ${BERTH_SOCKET:+"BERTH_SOCKET=$BERTH_SOCKET"} \
  "$berth" exec --no-home "$image" true 2>&1 </dev/null); then
  warn "not staged: $(printf '%s\n' "$out" | tail -1)"
  exit 0
fi
echo "berth-prolog: job $SLURM_JOB_ID: staged $image"
exit 0
