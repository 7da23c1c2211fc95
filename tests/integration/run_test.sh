#!/usr/bin/env bash
# run_test.sh BERTH BERTHD MODE WHO: the action verbs end to end against a
# real daemon, real mounts and namespaces.
#   MODE  system (root berthd)  or  user (a private berthd run by the test user)
#   WHO   root  or  user (the unprivileged test user, created if missing)
# Needs root to set up (CI runs as root). Prints ok/FAIL lines, then a summary.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4 HOSTILE=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue run
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
bash "$here/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "test image"; finish; }
mkdir -m 0777 "$TEST_TMP/shared"

# --- the daemon ---
mkdir -p "$TEST_TMP/etc"
start_test_daemon_in "$TEST_TMP/etc"

# run as the identity under test
if [ "$WHO" = root ]; then
  as() { env BERTH_SOCKET="$SOCK" "$@"; }
  ME_UID=0
else
  as() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$@"; }
  ME_UID=$(id -u "$TUSER")
fi
b() { as "$BERTH" "$@"; }
ME_HOME=$(getent passwd "$(id -un "$ME_UID")" | cut -d: -f6)

# --- basics ---
expect_out "exec echo" "hello" b exec "$IMG" echo hello
expect_rc "exit 7 -> 7" 7 b exec "$IMG" sh -c 'exit 7'
expect_rc "kill -TERM \$\$ -> 143" 143 b exec "$IMG" sh -c 'kill -TERM $$'
expect_rc "a command PATH does not find: exit 255 (Apptainer's FATAL)" 255 b exec "$IMG" no-such-command
check "... with Apptainer's message" grep -qx 'FATAL:   "no-such-command": executable file not found in \$PATH' "$TEST_TMP/stderr"
expect_rc "a missing command by path: exit 255 (Apptainer's FATAL)" 255 b exec "$IMG" /no/such/command
check "... with Apptainer's message" grep -qx 'FATAL:   stat /no/such/command: no such file or directory' "$TEST_TMP/stderr"
expect_out "runscript with arguments" "runscript args: a b c" b run "$IMG" a "b c"
# No runscript (a non-executable file bound over it): Apptainer's fallback.
: >"$TEST_TMP/not-a-runscript" && chmod 0644 "$TEST_TMP/not-a-runscript"
expect_out "run without a runscript runs /bin/sh with the arguments" "fallback b c" \
  b run -B "$TEST_TMP/not-a-runscript:/.singularity.d/runscript" "$IMG" -c 'echo fallback $0 $1' b c
check "... and says so as Apptainer does" \
  grep -qx 'INFO:    No runscript found in container, executing /bin/sh' "$TEST_TMP/stderr"
expect_out "id -u is the caller" "$ME_UID" b exec "$IMG" id -u
expect_out "dynamic program runs" "$ME_UID" b exec "$IMG" dyn-id -u
expect_out "image content visible" "image-file" b exec "$IMG" cat /opt/marker
expect_out "cwd is the caller's" "$TEST_TMP" bash -c "cd '$TEST_TMP' && $(declare -f as | tail -n +2 | head -0) true; cd '$TEST_TMP'; $( [ "$WHO" = root ] && echo "env BERTH_SOCKET=$SOCK" || echo "runuser -u $TUSER -- env BERTH_SOCKET=$SOCK") '$BERTH' exec '$IMG' pwd"
expect_out "--cwd" "/opt" b exec --cwd /opt "$IMG" pwd
expect_out "HOME is the caller's" "$ME_HOME" b exec "$IMG" sh -c 'echo $HOME'

# --- stdin / stdout ---
head -c $((100 * 1024 * 1024)) /dev/urandom >"$TEST_TMP/in.bin"
chmod 0644 "$TEST_TMP/in.bin"
want=$(sha256sum <"$TEST_TMP/in.bin" | cut -d' ' -f1)
got=$(as sh -c "'$BERTH' exec '$IMG' cat <'$TEST_TMP/in.bin'" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] && ok "100 MiB through stdin/stdout, same sha256" || bad "100 MiB stdin" "$got != $want"
expect_out "stdin EOF reaches the container" "0" bash -c "echo -n | $( [ "$WHO" = root ] && echo "env BERTH_SOCKET=$SOCK" || echo "runuser -u $TUSER -- env BERTH_SOCKET=$SOCK") '$BERTH' exec '$IMG' wc -c"

# --- environment (apptainer-behaviour.md §2) ---
expect_out "host variable passes" "hostval" as env HOSTVAR=hostval "$BERTH" exec "$IMG" sh -c 'echo $HOSTVAR'
expect_out "image env beats host" "image" as env OVERRIDE_ME=host "$BERTH" exec "$IMG" sh -c 'echo $OVERRIDE_ME'
expect_out "APPTAINERENV_ beats image" "mine" as env APPTAINERENV_OVERRIDE_ME=mine "$BERTH" exec "$IMG" sh -c 'echo $OVERRIDE_ME'
expect_out "--env beats APPTAINERENV_" "flag" as env APPTAINERENV_X=env "$BERTH" exec --env X=flag "$IMG" sh -c 'echo $X'
expect_out "PATH is reset" "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" as env PATH=/evil:/usr/bin:/bin "$BERTH" exec "$IMG" sh -c 'echo $PATH'
expect_out "LD_LIBRARY_PATH is dropped" "unset" as env LD_LIBRARY_PATH=/x "$BERTH" exec "$IMG" sh -c 'echo ${LD_LIBRARY_PATH-unset}'
expect_out "--cleanenv drops host vars" "unset C" as env HOSTVAR=x "$BERTH" exec --cleanenv "$IMG" sh -c 'echo ${HOSTVAR-unset} $LANG'
expect_out "APPTAINER_CLEANENV=1" "unset" as env HOSTVAR=x APPTAINER_CLEANENV=1 "$BERTH" exec "$IMG" sh -c 'echo ${HOSTVAR-unset}'
expect_out "image env scripts sourced in order" "from-image 99" b exec "$IMG" sh -c 'echo $IMAGE_VAR $IMAGE_LAST'
expect_out "APPTAINER_CONTAINER is set" "$IMG" b exec "$IMG" sh -c 'echo $APPTAINER_CONTAINER'
printf 'FROMFILE=yes\n' >"$TEST_TMP/envfile" && chmod 0644 "$TEST_TMP/envfile"
expect_out "--env-file" "yes" b exec --env-file "$TEST_TMP/envfile" "$IMG" sh -c 'echo $FROMFILE'
# Apptainer evaluates the caller's values in the container's shell.
expect_out "--env values expand in the container" "/opt/x image" b exec --env 'D=$PWD/x,O=$OVERRIDE_ME' --cwd /opt "$IMG" sh -c 'echo $D $O'
expect_out "APPTAINERENV_ values expand" "from-image-2" as env 'APPTAINERENV_E=${IMAGE_VAR}-2' "$BERTH" exec "$IMG" sh -c 'echo $E'
expect_out "--no-eval keeps them literal" '$PWD/x' b exec --no-eval --env 'D=$PWD/x' "$IMG" sh -c 'echo "$D"'
expect_out "APPTAINER_NO_EVAL=1" '$PWD' as env APPTAINER_NO_EVAL=1 'APPTAINERENV_D=$PWD' "$BERTH" exec "$IMG" sh -c 'echo "$D"'
expect_out "APPTAINERENV_PATH is honoured" "/opt:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" as env 'APPTAINERENV_PATH=/opt:$PATH' "$BERTH" exec "$IMG" sh -c 'echo $PATH'
printf 'FROMFILE="$IMAGE_VAR"\nLITERAL=\x27$IMAGE_VAR\x27\n' >"$TEST_TMP/envfile2" && chmod 0644 "$TEST_TMP/envfile2"
expect_out "--env-file is read as shell: \"\" expands, '' does not" 'from-image $IMAGE_VAR' b exec --env-file "$TEST_TMP/envfile2" "$IMG" sh -c 'echo "$FROMFILE $LITERAL"'

# --- shell (Apptainer's action script) ---
expect_out "shell: /bin/sh where the image has no bash, with Berth's prompt" "/bin/sh Berth>" b shell "$IMG" -c 'echo $SHELL $PS1'
printf '#!/bin/sh\necho "fake bash $*"\n' >"$TEST_TMP/fakebash" && chmod 0755 "$TEST_TMP/fakebash"
expect_out "shell: /bin/bash --norc where the image has bash, with the arguments" "fake bash --norc -c x" b shell -B "$TEST_TMP/fakebash:/bin/bash" "$IMG" -c x
expect_out "shell --shell" "custom" b shell --shell /bin/sh -B "$TEST_TMP/fakebash:/bin/bash" "$IMG" -c 'echo custom'
expect_out "APPTAINER_SHELL is --shell" "custom" as env APPTAINER_SHELL=/bin/sh "$BERTH" shell -B "$TEST_TMP/fakebash:/bin/bash" "$IMG" -c 'echo custom'
expect_out "APPTAINER_SHELL does not touch exec" "hello" as env APPTAINER_SHELL=/no/such "$BERTH" exec "$IMG" echo hello

# --- binds ---
echo "bound" >"$TEST_TMP/shared/file" && chmod 0666 "$TEST_TMP/shared/file"
expect_out "--bind src:dst" "bound" b exec --bind "$TEST_TMP/shared:/mnt/in" "$IMG" cat /mnt/in/file
expect_out "APPTAINER_BIND" "bound" as env APPTAINER_BIND="$TEST_TMP/shared:/mnt/in" "$BERTH" exec "$IMG" cat /mnt/in/file
expect_out "APPTAINER_BIND adds to -B (Apptainer appends)" "bound bound" as env APPTAINER_BIND="$TEST_TMP/shared:/mnt/in" "$BERTH" exec -B "$TEST_TMP/shared:/mnt/in2" "$IMG" sh -c 'echo $(cat /mnt/in/file /mnt/in2/file)'
expect_out "APPTAINER_TARGET_CWD is --cwd" "/mnt/in" as env APPTAINER_TARGET_CWD=/mnt/in "$BERTH" exec -B "$TEST_TMP/shared:/mnt/in" "$IMG" pwd
expect_rc "a :ro bind is read-only" 1 b exec --bind "$TEST_TMP/shared:/mnt/in:ro" "$IMG" sh -c 'echo x > /mnt/in/new'
b exec --bind "$TEST_TMP/shared:/mnt/in" "$IMG" sh -c 'echo w > /mnt/in/written-'"$WHO"
check "a rw bind is writable, file owned by the caller" test "$(stat -c %u "$TEST_TMP/shared/written-$WHO" 2>/dev/null)" = "$ME_UID"
# --mount, Apptainer's other bind syntax (a CSV record of key=value fields).
expect_out "--mount type=bind,src=,dst=" "bound" b exec --mount "type=bind,src=$TEST_TMP/shared,dst=/mnt/m" "$IMG" cat /mnt/m/file
expect_rc "--mount ...,ro is read-only" 1 b exec --mount "type=bind,source=$TEST_TMP/shared,destination=/mnt/m,ro" "$IMG" sh -c 'echo x > /mnt/m/new'
mkdir -p "$TEST_TMP/shared/a,b:c" && echo comma >"$TEST_TMP/shared/a,b:c/f" && chmod -R a+rwX "$TEST_TMP/shared/a,b:c"
expect_out "--mount: a quoted source with a comma and a colon" "comma" b exec --mount "type=bind,\"src=$TEST_TMP/shared/a,b:c\",dst=/mnt/q" "$IMG" cat /mnt/q/f
expect_out "APPTAINER_MOUNT, one spec per line" "bound comma" as env APPTAINER_MOUNT="type=bind,src=$TEST_TMP/shared,dst=/mnt/m
type=bind,\"src=$TEST_TMP/shared/a,b:c\",dst=/mnt/q" "$BERTH" exec "$IMG" sh -c 'echo $(cat /mnt/m/file /mnt/q/f)'
expect_fatal "--mount image-src: a missing image file is named" "$TEST_TMP/x.img: No such file or directory" b exec --mount "type=bind,src=$TEST_TMP/x.img,dst=/d,image-src=/" "$IMG" true
expect_fatal "--mount id=: an id the image lacks is named" "no object with ID 99" b exec --mount "type=bind,src=$IMG,dst=/d,image-src=/,id=99" "$IMG" true
expect_fatal "--mount id=: only with image-src" "id= needs image-src" b exec --mount "type=bind,src=$IMG,dst=/d,id=2" "$IMG" true
expect_fatal "--mount without a destination" "no destination (dst=PATH)" b exec --mount "type=bind,src=$TEST_TMP/shared" "$IMG" true
expect_out "bind onto a missing dir in the image" "bound" b exec --bind "$TEST_TMP/shared:/new/deep/dir" "$IMG" cat /new/deep/dir/file

# --- contain ---
expect_out "--contain: empty /tmp" "0" b exec --contain "$IMG" sh -c 'ls -A /tmp | wc -l'
expect_out "--contain: minimal /dev" "yes" b exec --contain "$IMG" sh -c '[ -c /dev/null ] && [ ! -e /dev/loop-control ] && echo yes'
expect_out "default /dev is the host's" "yes" b exec "$IMG" sh -c '[ -e /dev/loop-control ] && echo yes'
expect_out "--containall: new pid ns, clean env" "1 unset" as env HOSTVAR=x "$BERTH" exec --containall --no-init "$IMG" sh -c 'echo $$ ${HOSTVAR-unset}'
expect_out "--hostname" "box" b exec --hostname box "$IMG" uname -n

# --- fakeroot ---
expect_out "--fakeroot: id -u is 0" "0" b exec --fakeroot "$IMG" id -u
b exec --fakeroot --bind "$TEST_TMP/shared:/mnt/in" "$IMG" sh -c 'echo f > /mnt/in/fakeroot-'"$WHO"
check "--fakeroot: files in a bind belong to the caller" test "$(stat -c %u "$TEST_TMP/shared/fakeroot-$WHO" 2>/dev/null)" = "$ME_UID"
# Where the caller may write in the overlay: /scratch is world-writable in the
# image. A user-mode daemon shows the image's root-owned files as nobody (as
# Apptainer's user-namespace mode does), which overlayfs cannot copy up; there
# the overlay's own root, which belongs to the user, takes the writes.
wdir=$([ "$MODE" = user ] && echo / || echo /scratch/)
expect_out "--writable-tmpfs above 64 MiB" "ok" b exec --writable-tmpfs --tmpfs-size 200 "$IMG" sh -c "dd if=/dev/zero of=${wdir}big bs=1M count=100 2>/dev/null && echo ok"
expect_rc "--writable-tmpfs size is enforced" 1 b exec --writable-tmpfs --tmpfs-size 20 "$IMG" sh -c "dd if=/dev/zero of=${wdir}big bs=1M count=100 2>/dev/null"
expect_rc "without --writable-tmpfs the image is read-only" 1 b exec "$IMG" sh -c 'echo x > /scratch/f'

# --- security (security.md; each named after its case) ---
expect_out "caps: CapEff 0 and NoNewPrivs 1" "0000000000000000 1" b exec "$IMG" sh -c 'echo $(grep CapEff /proc/self/status | cut -f2) $(grep NoNewPrivs /proc/self/status | cut -f2)'
expect_out "setuid-root binary gives no root" "$ME_UID" b exec "$IMG" suid-id -u
expect_out "only fds 0-2 open" "0 1 2" b exec "$IMG" sh -c 'cd /proc/self/fd && echo $(ls | grep -v "^3$" | sort -n)'
expect_out "CVE-2019-5736: /proc/self/exe is the payload" "busybox" b exec "$IMG" sh -c 'basename $(readlink /proc/self/exe)'
expect_fatal "CVE-2024-21626: --cwd /proc/self/fd/3 refused" "--cwd" b exec --cwd /proc/self/fd/3 "$IMG" true
if [ "$WHO" = user ]; then
  mkdir -m 0700 "$TEST_TMP/rootonly"
  # Its own marker: a run that leaked it must not look like a run of $IMG.
  must "root-only image" bash "$here/make_test_image.sh" "$BERTH" "$TEST_TMP/rootonly/secret.sif" root-only-secret
  chmod 0600 "$TEST_TMP/rootonly/secret.sif"
  echo secret >"$TEST_TMP/rootonly/data"
  ln -s "$TEST_TMP/rootonly/secret.sif" "$TEST_TMP/link.sif"
  expect_fatal "confused deputy: image the user cannot read" "Permission denied" b exec "$TEST_TMP/rootonly/secret.sif" true
  expect_fatal "confused deputy: symlink to such an image" "Permission denied" b exec "$TEST_TMP/link.sif" true
  expect_fatal "confused deputy: --bind /root" "Permission denied" b exec --bind /root:/mnt "$IMG" true
  expect_fatal "confused deputy: --bind a root-only dir" "Permission denied" b exec --bind "$TEST_TMP/rootonly:/mnt" "$IMG" true
fi
# The daemon's own state and descriptors are out of reach.
if [ "$MODE" = system ]; then
  check "daemon state dir is root-only (0700)" test "$(stat -c %U:%a "$TEST_TMP/state")" = "root:700"
  dpid=$daemon_pid
  expect_out "CVE-2019-5736: /proc/<daemon>/fd and exe unreachable" "denied" b exec --no-pid "$IMG" \
    sh -c "readlink /proc/$dpid/fd/0 >/dev/null 2>&1 || readlink /proc/$dpid/exe >/dev/null 2>&1 || cat /proc/$dpid/environ >/dev/null 2>&1 || echo denied"
fi
# CVE-2021-30465-style swap: a symlink flipped between a readable and a
# root-only image while runs start; a run either gets the readable image or a
# refusal, never the root-only bytes.
if [ "$WHO" = user ]; then
  mkdir -p "$TEST_TMP/swap" && chmod 0755 "$TEST_TMP/swap"
  ln -sfn "$IMG" "$TEST_TMP/swap/img.sif"
  ( for i in $(seq 1 400); do
      ln -sfn "$TEST_TMP/rootonly/secret.sif" "$TEST_TMP/swap/tmp.sif" && mv -T "$TEST_TMP/swap/tmp.sif" "$TEST_TMP/swap/img.sif"
      ln -sfn "$IMG" "$TEST_TMP/swap/tmp.sif" && mv -T "$TEST_TMP/swap/tmp.sif" "$TEST_TMP/swap/img.sif"
    done ) &
  swapper=$!
  leaked=0 ran=0 refused=0
  for i in $(seq 1 20); do
    out=$(b exec "$TEST_TMP/swap/img.sif" cat /opt/marker 2>&1)
    case "$out" in
      image-file) ran=$((ran + 1)) ;;
      *"Permission denied"*) refused=$((refused + 1)) ;;
      *) leaked=1; echo "unexpected: $out" ;;
    esac
  done
  kill "$swapper" 2>/dev/null; wait "$swapper" 2>/dev/null
  echo "swap race: $ran ran the readable image, $refused refused"
  [ "$leaked" -eq 0 ] && ok "symlink swap race: never runs a root-only image" || bad "symlink swap race" "see above"
fi
expect_fatal "hostile: a missing image is named" "/nonexistent/x.sif: No such file or directory" b exec /nonexistent/x.sif true
expect_fatal "hostile: '..' in --cwd" "'..'" b exec --cwd /tmp/../etc "$IMG" true
expect_fatal "hostile: not a SIF" "not a SIF image" b exec "$TEST_TMP/in.bin" true
if [ -n "$HOSTILE" ]; then
  install -m 0755 "$HOSTILE" "$TEST_TMP/hostile_client"
  if as "$TEST_TMP/hostile_client" "$SOCK" >"$TEST_TMP/hostile.out" 2>&1; then
    ok "hostile requests: $(tail -1 "$TEST_TMP/hostile.out")"
  else
    bad "hostile requests" "$(grep -v '^ok' "$TEST_TMP/hostile.out" | head -5)"
  fi
fi
expect_out "daemon still serves after bad requests" "hello" b exec "$IMG" echo hello

# --- Slurm-readiness without Slurm ---
want_cg=$(as cat /proc/self/cgroup | sort | md5sum)
got_cg=$(b exec "$IMG" cat /proc/self/cgroup | sort | md5sum)
[ "$want_cg" = "$got_cg" ] && ok "container is in the caller's cgroup" || bad "cgroup" "$(b exec "$IMG" cat /proc/self/cgroup | head -3)"
# As under Slurm: the caller in a job cgroup of its own, not the daemon's, in
# the v2 hierarchy (entered with CLONE_INTO_CGROUP) and a v1 one (a write).
if [ "$MODE" = system ]; then
  CG2_ROOT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
  CG1_ROOT=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)pids(,|$)/ {print $1; exit}')
  JOB_CGS=()
  for root in $CG2_ROOT $CG1_ROOT; do mkdir "$root/berth-job-$$" && JOB_CGS+=("$root/berth-job-$$"); done
  if [ "$WHO" = root ]; then runner=(env BERTH_SOCKET="$SOCK"); else runner=(runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK"); fi
  inner="sort /proc/self/cgroup; echo ---; '$BERTH' exec '$IMG' sort /proc/self/cgroup"
  job_out=$(bash -c 'for cg in "${@:2}"; do echo $$ >"$cg/cgroup.procs"; done; exec '"$(printf '%q ' "${runner[@]}")"' sh -c "$1"' _ "$inner" "${JOB_CGS[@]}" 2>&1)
  want_job=${job_out%%---*} got_job=${job_out#*---}
  if [ "$(echo $want_job)" = "$(echo $got_job)" ] && [[ "$want_job" == *berth-job-$$* ]] && ((${#JOB_CGS[@]} == 2)); then
    ok "container joins the caller's job cgroups (v2 + v1), not the daemon's"
  else
    bad "job cgroups" "$(echo $job_out | head -c 600)"
  fi
  for cg in "${JOB_CGS[@]}"; do rmdir "$cg" 2>/dev/null; done
fi
expect_out "affinity is kept (taskset -c 0)" "0" as taskset -c 0 "$BERTH" exec "$IMG" sh -c 'grep Cpus_allowed_list /proc/self/status | cut -f2'
expect_out "umask is kept" "0027" as sh -c "umask 027; '$BERTH' exec '$IMG' sh -c umask"
expect_out "--keep-fd passes a readable fd" "passed" as bash -c "exec 7<<<passed; '$BERTH' exec --keep-fd 7 '$IMG' cat /proc/self/fd/7"
expect_out "PMI_FD is passed automatically" "pmi" as bash -c "exec 9<<<pmi; PMI_FD=9 '$BERTH' exec '$IMG' sh -c 'cat <&9'"

# --- client killed: nothing left behind ---
# Only this test's mounts and processes: other tests run daemons in parallel
# (the sleep's argument is this test's own).
mounts_before=$(grep -c "$TEST_TMP" /proc/self/mountinfo)
nap=$((100000 + $$))
as "$BERTH" exec "$IMG" sleep "$nap" &
cpid=$!
if wait_until 10 pgrep -x -f "sleep $nap"; then
  ok "killed client: the container started"
  mounts_running=$(grep -c "$TEST_TMP" /proc/self/mountinfo)
  # Kill the client itself (for the test user, $cpid is runuser, its parent).
  pkill -KILL -x -f "$BERTH exec $IMG sleep $nap"; wait "$cpid" 2>/dev/null
  gone() { ! pgrep -x -f "sleep $nap" >/dev/null; }
  if wait_until 10 gone; then ok "SIGKILLed client: container killed"
  else bad "SIGKILLed client" "sleep still running"; pkill -x -f "sleep $nap"; fi
  # The daemon's own mounts are in its namespace: what must not stay is
  # anything it added to the host's under this test's paths.
  unmounted() { [ "$(grep -c "$TEST_TMP" /proc/self/mountinfo)" -le "$mounts_before" ]; }
  if wait_until 5 unmounted; then
    ok "SIGKILLed client: no mount left in the host (had $mounts_running while running)"
  else bad "mounts after kill" "$(grep "$TEST_TMP" /proc/self/mountinfo)"; fi
else
  bad "killed client: the container started" "no 'sleep $nap' within 10 s"
  kill -KILL "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
fi

# --- terminal ---
out=$(as script -qec "'$BERTH' exec '$IMG' sh -c 'tty; stty size'" /dev/null </dev/null 2>&1 | tr -d '\r')
case "$out" in */dev/pts/*) ok "pty: the container has a terminal" ;; *) bad "pty" "$out" ;; esac

finish
