#!/usr/bin/env bash
# shared_test.sh FIXTURE_STATE: one container per job step per node.
#   - two ranks of a step: the same mount and IPC namespaces, a SysV segment
#     of rank 0 attached by rank 1, rank 0's memory read by rank 1 with
#     process_vm_readv, Open MPI's vader (shared memory) used
#   - a 4-rank step makes its container once; it ends after the step
#   - two steps, and two users' jobs: different containers, and neither sees
#     the other's /tmp or /dev/shm (nor does the host)
#   - a rank with another image gets an error naming both; one container
#     after another in one step is fine
#   - the key is the daemon's: a user faking another user's job and step
#     gets a container of their own; a request claiming a step it does not
#     run in gets none of the step's
#   - --sharens outside Slurm: processes of one parent share
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-shared "$1"
FORGE=$2
SYNC=$TEST_TMP/sync
install -d -m 0777 "$SYNC"
MPICH=$IMG/mpich.sif OMPI=$IMG/openmpi.sif
jobs_used=()

# job_of TEXT: the "job J.S" lines' job ids, remembered for the final check.
note_jobs() {
  local j
  for j in $(printf '%s\n' "$1" | sed -n 's/^job \([0-9]*\)\.[0-9]*$/\1/p' | sort -u); do
    jobs_used+=("$j")
  done
}

# starts_of STEP: how often the daemon started the shared container of STEP.
starts_of() { grep -c "the shared container of slurm step $1 starts" "$BERTHD_LOG"; }

wrap='echo "job $SLURM_JOB_ID.$SLURM_STEP_ID"; exec "$@"'

# --- two ranks of one step share namespaces and SysV shared memory
out=$(as "$TUSER" srun --mpi=pmi2 -n 2 sh -c "$wrap" sh "$BERTH" exec "$MPICH" /hello shm 2>"$TEST_TMP/err")
note_jobs "$out"
host_mnt=$(stat -L -c %i /proc/self/ns/mnt)
mnt=$(field_of "$out" mnt) ipc=$(field_of "$out" ipc)
if [ "$(ranks_of "$out")" = "0/2 1/2" ] && [ "$(wc -w <<<"$mnt")" = 1 ] && [ "$(wc -w <<<"$ipc")" = 1 ] &&
  [ "$mnt" != "$host_mnt" ]; then
  ok "two ranks of a step: one mount namespace ($mnt), one IPC namespace ($ipc)"
else bad "two ranks share namespaces" "$out $(head -c 400 "$TEST_TMP/err")"; fi
[ "$(printf '%s\n' "$out" | grep -c 'shm=ok')" = 2 ] && ok "rank 1 attached rank 0's SysV segment" ||
  bad "SysV segment shared" "$out"
step=$(printf '%s\n' "$out" | sed -n 's/^job //p' | head -1)
[ "$(starts_of "$step")" = 1 ] && ok "step $step: its container was made once" ||
  bad "made once" "$(starts_of "$step") starts for $step"

# --- cross-memory attach between the ranks (UCX's cma, Open MPI's single
# copy): one PID namespace, same ids, dumpable; and UCX in the image offers it
out=$(as "$TUSER" env UCX_TLS=cma,posix,self srun --mpi=pmi2 -n 2 "$BERTH" exec "$MPICH" /hello cma 2>&1)
if printf '%s\n' "$out" | grep -q 'rank 1 of 2 .* cma=ok' && ! printf '%s\n' "$out" | grep -q 'not available'; then
  ok "rank 1 read rank 0's memory with process_vm_readv, and UCX offers cma"
else bad "cross-memory attach between ranks" "$(printf '%s\n' "$out" | tail -5)"; fi

# --- Open MPI's shared-memory transport between the ranks (vader carries
# their messages, single copy included, which needs one PID namespace)
out=$(as "$TUSER" env OMPI_MCA_btl_base_verbose=100 srun --mpi=pmix -n 2 "$BERTH" exec "$OMPI" /pingpong 20 2>&1)
vader=$(printf '%s\n' "$out" | grep -c 'mca: bml: Using vader btl for send to')
if [ "$vader" = 2 ] && printf '%s\n' "$out" | grep -q '^lat_us='; then
  ok "Open MPI: both ranks send through vader, and the ping-pong completes"
else bad "Open MPI vader" "$vader vader lines: $(printf '%s\n' "$out" | grep -v 'mca:' | tail -5)"; fi

# --- a 4-rank step of short ranks: one container, ended with the step
out=$(as "$TUSER" srun -n 4 sh -c "$wrap" sh "$BERTH" exec "$MPICH" true 2>"$TEST_TMP/err")
note_jobs "$out"
step=$(printf '%s\n' "$out" | sed -n 's/^job //p' | head -1)
[ "$(starts_of "$step")" = 1 ] && ok "4 ranks of step $step: one container" ||
  bad "4 ranks, one container" "$(starts_of "$step") starts for step '$step': $(cat "$TEST_TMP/err")"
wait_until 10 grep -q "the shared container of slurm step $step ends" "$BERTHD_LOG" &&
  ok "the step's container ended after it" || bad "container ends" "no end logged for $step"

# The marker's name is this run's: a marker another run left on the host
# (or a planted mutation) must not decide the "host sees neither" check.
MARK=berth-shared-mark-$$
rm -f "/tmp/$MARK" "/dev/shm/$MARK"

# --- two steps of one job: separate containers that do not see each other
rm -f "$SYNC"/*
cat >"$TEST_TMP/two-steps.sh" <<EOF
#!/bin/sh
srun -n1 --exact "$BERTH" exec -B "$SYNC:/sync" "$MPICH" sh -c \
  'echo "A \$(readlink /proc/self/ns/mnt) \$(readlink /proc/self/ns/ipc)"; echo A >/tmp/$MARK; echo A >/dev/shm/$MARK;
   touch /sync/a-ready; while [ ! -e /sync/b-done ]; do sleep 0.1; done' &
while [ ! -e "$SYNC/a-ready" ]; do sleep 0.1; done
srun -n1 --exact "$BERTH" exec -B "$SYNC:/sync" "$MPICH" sh -c \
  'echo "B \$(readlink /proc/self/ns/mnt) \$(readlink /proc/self/ns/ipc)"; cat /tmp/$MARK /dev/shm/$MARK 2>&1 | grep -c "No such file"; touch /sync/b-done'
wait
EOF
chmod 0755 "$TEST_TMP/two-steps.sh"
out=$(as "$TUSER" sbatch -n 2 --wait -o "$SYNC/two-steps.out" "$TEST_TMP/two-steps.sh" 2>&1)
res=$(cat "$SYNC/two-steps.out" 2>/dev/null)
a=$(printf '%s\n' "$res" | sed -n 's/^A //p') b=$(printf '%s\n' "$res" | sed -n 's/^B //p')
if [ -n "$a" ] && [ -n "$b" ] && [ "${a% *}" != "${b% *}" ] && [ "${a#* }" != "${b#* }" ]; then
  ok "two steps: different mount and IPC namespaces"
else bad "two steps, two containers" "$out: $res"; fi
[ "$(printf '%s\n' "$res" | grep -x '[0-9]*' | tail -1)" = 2 ] &&
  ok "two steps: the second sees neither the first's /tmp nor its /dev/shm" ||
  bad "steps' /tmp and /dev/shm" "$res"
[ ! -e "/tmp/$MARK" ] && [ ! -e "/dev/shm/$MARK" ] && ok "the host sees neither" || bad "host /tmp" "marker on the host"

# --- two users' jobs at once
rm -f "$SYNC"/*
as "$TUSER" srun -n1 "$BERTH" exec -B "$SYNC:/sync" "$MPICH" sh -c \
  'echo U1 >/tmp/'"$MARK"'; echo U1 >/dev/shm/'"$MARK"'; readlink /proc/self/ns/mnt >/sync/u1-mnt; touch /sync/u1-ready;
   while [ ! -e /sync/u2-done ]; do sleep 0.1; done' >/dev/null 2>&1 &
u1=$!
wait_until 60 test -e "$SYNC/u1-ready" || bad "setup: user 1's job" "never ready"
out=$(as "$TUSER2" srun -n1 "$BERTH" exec "$MPICH" sh -c \
  'readlink /proc/self/ns/mnt; cat /tmp/'"$MARK"' /dev/shm/'"$MARK"' 2>&1 | grep -c "No such file"' 2>&1)
u2_mnt=$(printf '%s\n' "$out" | head -1)
if [ "$(printf '%s\n' "$out" | tail -1)" = 2 ] && [ -n "$u2_mnt" ] && [ "$u2_mnt" != "$(cat "$SYNC/u1-mnt")" ]; then
  ok "two users' jobs: different containers, neither /tmp nor /dev/shm shared"
else bad "two users' jobs" "$out vs $(cat "$SYNC/u1-mnt")"; fi

# --- the key is read by the daemon: user 1's running step (job J, step S)
j1=$(as "$TUSER" squeue -h -u "$TUSER" -o %i | head -1)
if [ -z "$j1" ]; then bad "setup: user 1's job id" "none"; fi
# user 2 claiming it (environment of its own process): a container of its own
out=$(as "$TUSER2" env SLURM_JOB_ID="$j1" SLURM_STEP_ID=0 "$BERTH" exec -B "$SYNC:/sync" "$MPICH" sh -c \
  'cat /tmp/'"$MARK"' 2>&1 | grep -c "No such file"' 2>&1)
[ "$out" = 1 ] && ok "another user claiming the step gets a container of their own" ||
  bad "foreign uid joins" "$out"
# user 1 itself, outside the step but with its environment, joins (so the
# claim above was read, and refused for the uid)
out=$(as "$TUSER" env SLURM_JOB_ID="$j1" SLURM_STEP_ID=0 "$BERTH" exec -B "$SYNC:/sync" "$MPICH" cat "/tmp/$MARK" 2>&1)
[ "$out" = U1 ] && ok "the same user with the step's environment joins it" || bad "same uid joins" "$out"
# a request whose environment claims the step, from a process without it
out=$(as "$TUSER" env -u SLURM_JOB_ID -u SLURM_STEP_ID "$FORGE" "$BERTH_SOCKET" "$MPICH" "$j1" 0 "$SYNC:/sync" 2>&1)
case $out in mnt:*) ;; *) out="not a namespace: $out" ;; esac
[ "${out#mnt:}" != "$out" ] && [ "$out" != "$(cat "$SYNC/u1-mnt")" ] &&
  ok "a step claimed in the request alone is not joined" || bad "request claims a step" "$out"
touch "$SYNC/u2-done"
wait "$u1"

# --- another image while the step's container runs; one after another
rm -f "$SYNC"/*
out=$(as "$TUSER" srun -n 2 -l sh -c "if [ \$SLURM_PROCID = 0 ]; then
    exec '$BERTH' exec -B '$SYNC:/sync' '$MPICH' sh -c 'touch /sync/r0; while [ ! -e /sync/r1 ]; do sleep 0.1; done'
  else while [ ! -e '$SYNC/r0' ]; do sleep 0.1; done
    '$BERTH' exec '$OMPI' true; rc=\$?; touch '$SYNC/r1'; exit \$rc; fi" 2>&1)
case $out in
  *"share one container on this node, which runs $MPICH; this process asked for $OMPI"*)
    ok "a rank asking for another image: one error naming both" ;;
  *) bad "image mismatch" "$out" ;;
esac
expect_rc "one image after another in one step" 0 as "$TUSER" srun -n1 sh -c \
  "'$BERTH' exec '$MPICH' true && '$BERTH' exec '$OMPI' true && '$BERTH' exec -B /tmp:/mnt '$MPICH' true"

# --- --sharens outside Slurm: the processes of one parent share
out=$(as "$TUSER" sh -c "'$BERTH' exec --sharens '$MPICH' readlink /proc/self/ns/mnt &
  '$BERTH' exec --sharens '$MPICH' readlink /proc/self/ns/mnt; wait" 2>&1)
[ "$(printf '%s\n' "$out" | sort -u | wc -l)" = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 2 ] &&
  ok "--sharens: two processes of one parent, one container" || bad "--sharens" "$out"
# Both stay alive a moment: a namespace's inode number is reused once it ends.
out=$(as "$TUSER" sh -c "'$BERTH' exec '$MPICH' sh -c 'readlink /proc/self/ns/mnt; sleep 1' &
  '$BERTH' exec '$MPICH' sh -c 'readlink /proc/self/ns/mnt; sleep 1'; wait" 2>&1)
[ "$(printf '%s\n' "$out" | sort -u | wc -l)" = 2 ] && ok "without it, two containers" || bad "no --sharens" "$out"

# --- nothing left: every container these jobs made has ended
all_ended() {
  local j s e
  for j in "${jobs_used[@]}"; do
    s=$(grep -c "the shared container of slurm step $j\.[0-9]* starts" "$BERTHD_LOG")
    e=$(grep -c "the shared container of slurm step $j\.[0-9]* ends" "$BERTHD_LOG")
    [ "$s" = "$e" ] || return 1
  done
}
before_finish() {
  wait_until 20 all_ended && ok "every container of these jobs ended" ||
    bad "leftovers" "jobs ${jobs_used[*]}: some container did not end"
}
finish
