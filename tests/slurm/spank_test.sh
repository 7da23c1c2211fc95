#!/usr/bin/env bash
# spank_test.sh FIXTURE_STATE: the SPANK plugin (slurm/, berth_spank.so in
# the fixture's plugstack.conf) under a real Slurm, as a plain user:
#   - srun --container-image runs every task in the step's one container
#     (MPICH over pmi2, Open MPI over pmix: /hello is only in the image)
#   - --container-mounts, --container-workdir; the PYXIS_* form
#   - sbatch --container-image runs the batch script in the container
#   - a missing image, an ECL refusal: srun fails with one line, no task runs
#   - --container-name: refused by srun before the job is queued
#   - a berth that cannot run fails the task: it never runs bare
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-spank "$1"
cp "$PLUGSTACK" "$TEST_TMP/plugstack.conf"
trap 'cp "$TEST_TMP/plugstack.conf" "$PLUGSTACK"; rm -f "$SLURM_DIR/berthd/etc/ecl.toml"; rm -rf "$TEST_TMP"' EXIT

# lines FILE: its non-empty lines, srun's own "srun: error: ... Exited" and
# its notes on waiting for the node (a loaded node is still completing the
# previous job) excepted.
lines() {
  grep -v -e '^srun: error: .*Exited with exit code' -e '^srun: job [0-9]* queued and waiting' \
    -e '^srun: job [0-9]* has been allocated resources' -e '^$' "$1"
}

# one_line_refusal NAME PATTERN CMD...: CMD fails, prints no RAN, and says
# PATTERN on one line of stderr.
one_line_refusal() {
  local name=$1 pattern=$2 out rc
  shift 2
  out=$("$@" 2>"$TEST_TMP/err"); rc=$?
  local err
  err=$(lines "$TEST_TMP/err")
  if [ "$rc" != 0 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] &&
    printf '%s' "$err" | grep -q -- "$pattern"; then
    ok "$name: $err"
  else bad "$name" "rc=$rc out='$out' err: $(head -c 600 "$TEST_TMP/err")"; fi
}

out=$(as "$TUSER" srun --container-image="$IMG/mpich.sif" --mpi=pmi2 -n 2 /hello 2>"$TEST_TMP/err")
got=$(ranks_of "$out") mnt=$(field_of "$out" mnt)
[ "$got" = "0/2 1/2" ] && [ "$(wc -w <<<"$mnt")" = 1 ] &&
  [ "$mnt" != "$(stat -L -c %i /proc/self/ns/mnt)" ] &&
  ok "srun --container-image mpich.sif --mpi=pmi2: ranks 0 and 1 of 2 in one container (mnt $mnt)" ||
  bad "srun --container-image, MPICH" "got '$got' mnt '$mnt': $out $(head -c 600 "$TEST_TMP/err")"
out=$(as "$TUSER" srun --container-image="$IMG/openmpi.sif" --mpi=pmix -n 2 /hello 2>"$TEST_TMP/err")
got=$(ranks_of "$out")
[ "$got" = "0/2 1/2" ] && ok "srun --container-image openmpi.sif --mpi=pmix: ranks 0 and 1 of 2" ||
  bad "srun --container-image, Open MPI" "got '$got': $out $(head -c 600 "$TEST_TMP/err")"

mkdir -p "$TEST_TMP/data" && echo "from the host" >"$TEST_TMP/data/f" && chmod -R a+rX "$TEST_TMP/data"
out=$(as "$TUSER" srun -Q --container-image="$IMG/mpich.sif" --container-mounts="$TEST_TMP/data:/data:ro" \
  --container-workdir=/data -n 1 sh -c 'pwd; cat f; if touch g 2>/dev/null; then echo writable; fi' 2>&1)
[ "$out" = "$(printf '/data\nfrom the host')" ] &&
  ok "--container-mounts (read-only) and --container-workdir" || bad "mounts and workdir" "$out"
out=$(as "$TUSER" env PYXIS_CONTAINER_IMAGE="$IMG/mpich.sif" srun -Q -n 1 readlink /bin/sh 2>&1)
[ "$out" = busybox ] && ok "PYXIS_CONTAINER_IMAGE: the task runs in the image" || bad "PYXIS_CONTAINER_IMAGE" "$out"

# Batch output goes to a directory the user may write.
install -d -o "$TUSER" -m 0755 "$TEST_TMP/out"
printf '#!/bin/sh\necho "batch in $(readlink /bin/sh)"\n' >"$TEST_TMP/job.sh"
chmod 0755 "$TEST_TMP/job.sh"
as "$TUSER" sbatch -W -Q --container-image="$IMG/mpich.sif" -o "$TEST_TMP/out/batch.out" "$TEST_TMP/job.sh" \
  >/dev/null 2>"$TEST_TMP/err"
out=$(cat "$TEST_TMP/out/batch.out" 2>&1)
[ "$out" = "batch in busybox" ] && ok "sbatch --container-image: the script runs in the container" ||
  bad "sbatch --container-image" "$out $(head -c 300 "$TEST_TMP/err")"

one_line_refusal "a missing image fails at srun" "nope.sif" \
  as "$TUSER" srun --container-image="$IMG/nope.sif" -n 2 echo RAN
cat >"$SLURM_DIR/berthd/etc/ecl.toml" <<EOF
activated = true
[[execgroup]]
  tagname = "elsewhere"
  mode = "whitelist"
  dirpath = "$SLURM_DIR/bin"
  keyfp = ["12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"]
EOF
chmod 0644 "$SLURM_DIR/berthd/etc/ecl.toml"
one_line_refusal "an image the ECL refuses fails at srun" "denied by the ECL" \
  as "$TUSER" srun --container-image="$IMG/mpich.sif" -n 2 echo RAN
printf 'activated = false\n' >"$SLURM_DIR/berthd/etc/ecl.toml"
out=$(as "$TUSER" srun --container-name=x --container-image="$IMG/mpich.sif" -n 1 echo RAN 2>&1)
[[ "$out" == *"--container-name is not supported"* && "$out" != *RAN* ]] &&
  ok "--container-name: refused by srun" || bad "--container-name" "$out"

# The step's check runs berth with the job's environment, which the user
# sets: it must hold no root id (the loader would then ignore LD_PRELOAD,
# and berth could become root again). A preloaded probe records the ids of
# each berth: the step's check's and the task's.
cat >"$TEST_TMP/probe.c" <<'C'
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void probe(void) {
  char exe[4096] = {0};
  uid_t r, e, s;
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 6 || strcmp(strrchr(exe, '/'), "/berth")) return;
  getresuid(&r, &e, &s);
  FILE* f = fopen(PROBE_OUT, "a");
  if (f) fprintf(f, "%d %d %d\n", (int)r, (int)e, (int)s), fclose(f);
}
C
cc -shared -fPIC -DPROBE_OUT="\"$TEST_TMP/out/ids\"" -o "$TEST_TMP/probe.so" "$TEST_TMP/probe.c"
as "$TUSER" env LD_PRELOAD="$TEST_TMP/probe.so" srun --container-image="$IMG/mpich.sif" -n 1 true \
  >/dev/null 2>&1
ids=$(cat "$TEST_TMP/out/ids" 2>&1) uid=$(id -u "$TUSER")
[ "$ids" = "$(printf '%s\n' "$uid $uid $uid" "$uid $uid $uid")" ] && ok "the step's check and the tasks run berth with no root id" ||
  bad "ids of berth under the plugin" "$ids"

# A berth that cannot run: the batch step (no step check) and srun's tasks fail.
sed -i 's|$| berth=/nonexistent/berth|' "$PLUGSTACK"
printf '#!/bin/sh\necho RAN\n' >"$TEST_TMP/bare.sh"
chmod 0755 "$TEST_TMP/bare.sh"
as "$TUSER" sbatch -W -Q --container-image="$IMG/mpich.sif" -o "$TEST_TMP/out/bare.out" "$TEST_TMP/bare.sh" \
  >/dev/null 2>&1
out=$(cat "$TEST_TMP/out/bare.out" 2>&1)
[[ "$out" == *"cannot run /nonexistent/berth"* && "$out" != *RAN* ]] &&
  ok "berth missing: the batch script does not run bare ($out)" || bad "batch without berth" "$out"
one_line_refusal "berth missing: srun's tasks do not run bare" "/nonexistent/berth" \
  as "$TUSER" srun --container-image="$IMG/mpich.sif" -n 2 echo RAN
cp "$TEST_TMP/plugstack.conf" "$PLUGSTACK"
finish
