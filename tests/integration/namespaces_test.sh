#!/usr/bin/env bash
# namespaces_test.sh BERTH BERTHD system|user: Apptainer 1.4's namespace and
# scratch options. The host PID namespace by default; -p/--pid, -C and the
# PID/UNSHARE_PID, IPC/UNSHARE_IPC, USERNS/UNSHARE_USERNS environment forms;
# the caller's umask and --no-umask; -S/--scratch (a private tmpfs, or a
# workdir directory); -W/--workdir under --contain (/tmp, /var/tmp and home
# made in it as the caller; a directory the caller cannot write, or a
# symlink planted in it, refused); --compat. System daemon: as root and as
# the plain test user; user-mode daemon: as that user.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/../budgets/lib.sh"
budget_setup "ns-$MODE" "$BERTH_SRC" "$BERTHD_SRC"
start_daemon "$MODE"
whos=("$TUSER")
[ "$MODE" = system ] && whos=(root "$TUSER")

for who in "${whos[@]}"; do
  t="[$MODE/$who]"
  # r CMD...: the client as $who (cwd /), talking to our daemon.
  r() { (cd / && as "$who" "$@"); }
  ns() { readlink "/proc/self/ns/$1"; }

  # --- PID namespace: the host's unless asked for ---
  expect_out "$t default: the host PID namespace" "$(ns pid)" \
    r "$BERTH" exec "$IMG" readlink /proc/self/ns/pid
  expect_out "$t default: the host's processes in /proc" "yes" \
    r "$BERTH" exec "$IMG" sh -c "test -d /proc/$$ && echo yes"
  out=$(r "$BERTH" exec -p --no-init "$IMG" sh -c 'echo $$ $(readlink /proc/self/ns/pid)' 2>&1)
  [ "${out%% *}" = 1 ] && [ "${out#* }" != "$(ns pid)" ] && ok "$t -p: a new PID namespace, PID 1" ||
    bad "$t -p: a new PID namespace, PID 1" "got '$out'"
  for var in APPTAINER_UNSHARE_PID SINGULARITY_PID BERTH_UNSHARE_PID; do
    out=$(r env "$var=1" "$BERTH" exec "$IMG" readlink /proc/self/ns/pid 2>&1)
    [ -n "$out" ] && [ "$out" != "$(ns pid)" ] && ok "$t $var=1: a new PID namespace" ||
      bad "$t $var=1: a new PID namespace" "got '$out'"
  done
  out=$(r "$BERTH" exec -C "$IMG" readlink /proc/self/ns/pid 2>&1)
  [ -n "$out" ] && [ "$out" != "$(ns pid)" ] && ok "$t -C: a new PID namespace" ||
    bad "$t -C: a new PID namespace" "got '$out'"
  expect_out "$t -C --no-pid: the host PID namespace" "$(ns pid)" \
    r "$BERTH" exec -C --no-pid "$IMG" readlink /proc/self/ns/pid

  # --- IPC and user namespaces, environment forms ---
  expect_out "$t default: the host IPC namespace" "$(ns ipc)" \
    r "$BERTH" exec "$IMG" readlink /proc/self/ns/ipc
  for var in APPTAINER_UNSHARE_IPC SINGULARITY_IPC; do
    out=$(r env "$var=1" "$BERTH" exec "$IMG" readlink /proc/self/ns/ipc 2>&1)
    [ -n "$out" ] && [ "$out" != "$(ns ipc)" ] && ok "$t $var=1: a new IPC namespace" ||
      bad "$t $var=1: a new IPC namespace" "got '$out'"
  done
  if [ "$MODE" = system ]; then
    # (A user-mode daemon's containers are always in its user namespace.)
    expect_out "$t default: the host user namespace" "$(ns user)" \
      r "$BERTH" exec "$IMG" readlink /proc/self/ns/user
    out=$(r env APPTAINER_UNSHARE_USERNS=1 "$BERTH" exec "$IMG" readlink /proc/self/ns/user 2>&1)
    [ -n "$out" ] && [ "$out" != "$(ns user)" ] && ok "$t APPTAINER_UNSHARE_USERNS=1: a user namespace" ||
      bad "$t APPTAINER_UNSHARE_USERNS=1: a user namespace" "got '$out'"
  fi

  # --- umask ---
  expect_out "$t the caller's umask" "0027" r sh -c "umask 027; exec $BERTH exec $IMG sh -c umask"
  expect_out "$t --no-umask: 0022" "0022" r sh -c "umask 027; exec $BERTH exec --no-umask $IMG sh -c umask"
  expect_out "$t APPTAINER_NO_UMASK=1: 0022" "0022" \
    r sh -c "umask 027; APPTAINER_NO_UMASK=1 exec $BERTH exec $IMG sh -c umask"

  # --- -S/--scratch: a private tmpfs ---
  id_of=$(id -u "$who")
  # fstype DIR (in the container): the type of the mount at DIR.
  fstype='fstype() { awk -v d="$1" '"'"'$5 == d { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }'"'"' /proc/self/mountinfo; }; '
  expect_out "$t -S: writable tmpfs dirs, the caller's" "tmpfs $id_of tmpfs" \
    r "$BERTH" exec -S /scratch/a,/newdir "$IMG" sh -c \
    "$fstype"'touch /scratch/a/f /newdir/g && echo $(fstype /scratch/a) $(stat -c %u /newdir/g) $(fstype /newdir)'
  expect_out "$t -S: nothing left for the next container" "gone" \
    r "$BERTH" exec -S /newdir "$IMG" sh -c 'ls /newdir/g 2>/dev/null || echo gone'
  expect_out "$t APPTAINER_SCRATCH: the environment form" "tmpfs" \
    r env APPTAINER_SCRATCH=/s1 "$BERTH" exec "$IMG" sh -c "$fstype"'fstype /s1'
  expect_rc "$t -S under /proc: refused" 255 r "$BERTH" exec -S /proc/x "$IMG" true

  # --- -W/--workdir ---
  W=$TEST_TMP/w-$who
  install -d -o "$who" -m 0700 "$W"
  expect_out "$t -W -c: /tmp, /var/tmp and home in the workdir" "ok" \
    r "$BERTH" exec -c -W "$W" -S /data "$IMG" sh -c 'touch /tmp/t1 /var/tmp/v1 "$HOME/h1" /data/d1 && echo ok'
  owners=$(stat -c %u "$W/tmp" "$W/tmp/t1" "$W/var_tmp/v1" "$W/home/h1" "$W/scratch/data/d1" 2>&1 | sort -u)
  [ "$owners" = "$id_of" ] && ok "$t -W: the files and directories are the caller's" ||
    bad "$t -W: the files and directories are the caller's" "owners '$owners'"
  expect_out "$t -W: the workdir's tmp is sticky and open to all" "1777" stat -c %a "$W/tmp"
  expect_out "$t -W: its home is private" "700" stat -c %a "$W/home"
  expect_out "$t -W -c: the next container sees the files" "t1" \
    r env APPTAINER_WORKDIR="$W" "$BERTH" exec -c "$IMG" ls /tmp
  expect_out "$t -W without -c: the host's /tmp" "no" \
    r "$BERTH" exec -W "$W" "$IMG" sh -c 'test -e /tmp/t1 && echo yes || echo no'

  # A planted symlink: DIR/tmp -> a directory of root's. Never followed,
  # whoever runs the container.
  R=$TEST_TMP/rootdir-$who
  install -d -m 0755 "$R" && echo secret >"$R/marker"
  L=$TEST_TMP/wl-$who
  install -d -o "$who" -m 0700 "$L"
  ln -s "$R" "$L/tmp" && chown -h "$who" "$L/tmp"
  out=$(r "$BERTH" exec -c -W "$L" "$IMG" cat /tmp/marker 2>&1)
  rc=$?
  [ $rc -ne 0 ] && ! grep -q secret <<<"$out" && grep -q 'not a symlink' <<<"$out" &&
    ok "$t -W: a symlink in the workdir is refused, not followed" ||
    bad "$t -W: a symlink in the workdir is refused, not followed" "rc $rc: $out"
done

# A workdir the user cannot write: nothing is made there on their behalf.
t="[$MODE/$TUSER]"
N=$TEST_TMP/notmine
install -d -m 0755 "$N"
out=$(cd / && as "$TUSER" "$BERTH" exec -c -W "$N" "$IMG" true 2>&1)
rc=$?
[ $rc -ne 0 ] && [ ! -e "$N/tmp" ] && grep -q 'Permission denied' <<<"$out" &&
  ok "$t -W on a directory of root's: refused, nothing made there" ||
  bad "$t -W on a directory of root's: refused, nothing made there" "rc $rc, $(ls -la "$N"): $out"

# --- --compat: --containall --no-init --no-umask --no-eval --writable-tmpfs ---
t="[$MODE/$TUSER]"
# Where the writable overlay lets the user write (as run_test.sh): a user-mode
# daemon's image is its user's, a system one's a 1777 directory of root's.
wdir=$([ "$MODE" = user ] && echo / || echo /scratch/)
for form in --compat APPTAINER_COMPAT=1; do
  cmd=("$BERTH" exec --compat)
  [ "$form" != --compat ] && cmd=(env "$form" "$BERTH" exec)
  out=$(cd / && as "$TUSER" sh -c 'umask 077; HOSTVAR=x exec "$@"' _ "${cmd[@]}" \
    --env 'E=$HOME' "$IMG" sh -c 'echo $$ $(umask) ${HOSTVAR-unset} $E $(ls /tmp | wc -l); touch '"${wdir}new"' && echo written' 2>&1)
  expect='1 0022 unset $HOME 0
written'
  [ "$out" = "$expect" ] && ok "$t $form: PID 1 (no init), umask 0022, clean env, no eval, empty /tmp, writable" ||
    bad "$t $form: PID 1 (no init), umask 0022, clean env, no eval, empty /tmp, writable" "got '$out'"
done

check "the daemon still runs" kill -0 "$daemon_pid"
finish
