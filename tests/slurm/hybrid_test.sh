#!/usr/bin/env bash
# hybrid_test.sh FIXTURE_STATE: the hybrid model under a real Slurm: the
# image brings its own MPI, Slurm's PMI reaches it through berth exec.
#   MPICH 4.0 (PMI-2: the PMI_FD socket handed over by the client)
#   Open MPI 4.1 (PMIx 4: the step's server over loopback and its tmpdir)
# as root and as a plain user.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-hybrid "$1"

for who in root "$TUSER"; do
  out=$(as "$who" srun --mpi=pmi2 -n 2 "$BERTH" exec "$IMG/mpich.sif" /hello 2>"$TEST_TMP/err")
  got=$(ranks_of "$out")
  [ "$got" = "0/2 1/2" ] && ok "MPICH over pmi2 as $who: ranks 0 and 1 of 2" ||
    bad "MPICH over pmi2 as $who" "got '$got': $out $(head -c 600 "$TEST_TMP/err")"
  out=$(as "$who" srun --mpi=pmix -n 2 "$BERTH" exec "$IMG/openmpi.sif" /hello 2>"$TEST_TMP/err")
  got=$(ranks_of "$out")
  [ "$got" = "0/2 1/2" ] && ok "Open MPI over pmix as $who: ranks 0 and 1 of 2" ||
    bad "Open MPI over pmix as $who" "got '$got': $out $(head -c 600 "$TEST_TMP/err")"
done
# --cleanenv keeps the launcher's PMI_*/PMIX_* (PMI_FD is handed over in every mode).
for pair in "pmi2 mpich" "pmix openmpi"; do
  set -- $pair
  out=$(as "$TUSER" srun --mpi="$1" -n 2 "$BERTH" exec --cleanenv "$IMG/$2.sif" /hello 2>"$TEST_TMP/err")
  got=$(ranks_of "$out")
  [ "$got" = "0/2 1/2" ] && ok "$2 over $1 with --cleanenv: ranks 0 and 1 of 2" ||
    bad "$2 over $1 with --cleanenv" "got '$got': $out $(head -c 600 "$TEST_TMP/err")"
done
# Without PMI the same image runs as singletons: the checks above can fail.
out=$(as root srun --mpi=none -n 2 "$BERTH" exec "$IMG/mpich.sif" /hello 2>/dev/null)
got=$(ranks_of "$out")
[ "$got" = "0/1 0/1" ] && ok "without PMI: two singletons (the check above can fail)" ||
  bad "without PMI: two singletons" "got '$got'"
finish
