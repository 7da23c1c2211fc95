# The cases of launch_test.sh (sourced by it: uses its probe/expect helpers
# and IMG, W, PROFILE, TUSER, TUID, THOME, EUID_EXPECT, CG1, CG2).
# shellcheck shell=bash

# --- basics
expect "echo works" "hello" probe "$IMG" echo hello
expect_rc "exit 7 gives 7" 7 probe "$IMG" sh -c 'exit 7'
expect_rc "kill -TERM \$\$ gives 143" 143 probe "$IMG" sh -c 'kill -TERM $$'
expect "payload runs as the caller (id -u)" "$EUID_EXPECT" probe "$IMG" id -u
expect "dynamically linked program runs" "$EUID_EXPECT" probe "$IMG" /usr/bin/id -u
expect "the caller has a passwd entry" "$( [ "$PROFILE" = root ] && echo root || echo "$TUSER")" \
  probe "$IMG" whoami
expect "cwd is the caller's, bound at the same path" "$W/work" probe "$IMG" pwd
expect "payload is PID 2 under the init" "2" probe "$IMG" sh -c 'echo $$'
expect "--no-init: payload is PID 1" "1" probe --no-init "$IMG" sh -c 'echo $$'
expect "--hostname sets it in a UTS namespace" "berthbox" probe --hostname berthbox "$IMG" hostname
expect_fail "exec error is reported" "exec /nonexistent: No such file or directory" \
  probe "$IMG" /nonexistent
expect_rc "exec error exits 127" 127 probe "$IMG" /nonexistent
expect "PATH search finds the program" "hello" probe "$IMG" echo hello
expect_fail "a failing child step is named" "resolving the destination: No such file or directory" \
  probe --bind "$W/src:/tmp/berth-no-such-dir/x" "$IMG" true
expect_fail "image root is read-only" "Read-only file system" probe "$IMG" touch /newfile

# --- privileges (CVE-2023-38496: assert the drop, do not trust it)
expect "CapEff, CapPrm, CapBnd are 0 and NoNewPrivs is 1" \
  "CapPrm:0000000000000000 CapEff:0000000000000000 CapBnd:0000000000000000 NoNewPrivs:1" \
  probe "$IMG" sh -c 'grep -E "^(CapPrm|CapEff|CapBnd|NoNewPrivs)" /proc/self/status | tr -d "\t" | tr "\n" " " | sed "s/ $//"'
out=$(probe "$IMG" /suid-id 2>&1 </dev/null)
case $out in
  *euid=0*) bad "setuid-root binary in the image gives no root" "$out" ;;
  uid=$EUID_EXPECT*) ok "setuid-root binary in the image gives no root" ;;
  *) bad "setuid-root binary in the image gives no root" "$out" ;;
esac

# --- descriptors (CVE-2024-21626: nothing leaks into the container)
# What the payload holds, seen in a child that inherits it all (listing its
# own fds would show the listing's descriptors too).
LIST_FDS='sleep 2 & sleep 0.3; echo $(ls /proc/$!/fd)'
expect "only fds 0-2 are open" "0 1 2" run_probe bash -c 'exec 5</etc/hostname 7>/dev/null; exec "$@"' _ \
  -- "$IMG" sh -c "$LIST_FDS; kill %1"
expect "--fd 5 is passed and readable" "0 1 2 5 $(cat /etc/hostname)" \
  run_probe bash -c 'exec 5</etc/hostname; exec "$@"' _ -- --fd 5 "$IMG" \
  sh -c "$LIST_FDS \$(cat <&5); kill %1"
expect "fds keep their numbers, the gaps between them are closed" "0 1 2 300 9" \
  run_probe bash -c 'exec 9</etc/hostname 300</etc/hostname 7</etc/hostname; exec "$@"' _ \
  -- --fd 300 --fd 9 "$IMG" sh -c "$LIST_FDS; kill %1"
expect_fail "cwd /proc/self/fd/3 is refused (CVE-2024-21626)" "under /proc" \
  probe --cwd /proc/self/fd/3 "$IMG" pwd
# fd 3 is a host directory handed into the container (the CVE's leaked
# descriptor), so the link resolves as far as the magic link itself: the
# working directory is entered after the container's descriptors are placed.
expect_fail "cwd through an image symlink to /proc/self/fd/3 is refused (CVE-2024-21626)" \
  "Too many levels of symbolic links" \
  run_probe bash -c 'exec 3</; exec "$@"' _ -- --fd 3 --cwd /fdlink "$IMG" pwd

# --- the daemon is unreachable (CVE-2019-5736 shape)
expect "/proc/self/exe is the payload" "/bin/busybox" probe "$IMG" readlink /proc/self/exe
expect_fail "/proc/1/exe of the init is unreadable" "Permission denied" probe "$IMG" cat /proc/1/exe
expect_fail "/proc/1/fd links of the init are unreadable" "Permission denied" \
  probe "$IMG" sh -c 'ls -l /proc/1/fd/ 2>&1 >/dev/null | grep . >&2; ls /proc/1/fd/ >/dev/null && exit 1'
expect_fail "/proc/1/environ of the init is unreadable" "Permission denied" \
  probe "$IMG" cat /proc/1/environ
expect_fail "/proc/1/cwd of the init is unreadable" "Permission denied" \
  probe "$IMG" sh -c 'readlink /proc/1/cwd >&2 || ls /proc/1/cwd/ >/dev/null'
expect_fail "/proc/1/mem of the init is unreadable" "Permission denied" probe "$IMG" cat /proc/1/mem

# The init is a copy-on-write image of the launcher: it must give the
# launcher's heap back, or each container would pin a copy of the daemon.
probe_argv --ballast-mib 64 "$IMG" sleep 3
"${PROBE_ARGV[@]}" </dev/null &
pid=$!
init=""
for _ in $(seq 50); do
  init=$(ps -o pid= --ppid $pid | tr -d ' ')
  [ -n "$init" ] && [ "$(cat /proc/$init/comm 2>/dev/null)" = berth-init ] && break
  sleep 0.1
done
sleep 0.3
rss=$(awk '/^RssAnon/ {print $2}' /proc/$init/status 2>/dev/null)
[ -n "$rss" ] && [ "$rss" -lt 16384 ] && ok "the init keeps no copy of the launcher's heap (RssAnon ${rss} kB)" ||
  bad "the init keeps no copy of the launcher's heap" "init '$init' RssAnon '${rss}' kB"
wait $pid

# --- signals: the daemon's blocked/ignored signals do not reach the payload
expect "SIGPIPE is default inside" "141" \
  probe "$IMG" sh -c 'exec 3>&1; (yes; echo $? >&3) | head -1 >/dev/null'
probe_argv "$IMG" sh -c 'trap "exit 42" TERM; sleep 30 & wait'
"${PROBE_ARGV[@]}" </dev/null &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 42 ] && ok "SIGTERM to the launcher reaches the payload through the init" ||
  bad "SIGTERM to the launcher reaches the payload through the init" "exit $rc"

# --- mounts
expect "a bind appears" "hello" probe --bind "$W/src:/data" "$IMG" cat /data/hello
expect_fail "a read-only bind is read-only" "Read-only file system" \
  probe --bind "$W/src:/data:ro" "$IMG" touch /data/x
expect "binds go shortest destination first" "hello2" \
  probe --bind "$W/src2:/data/sub" --bind "$W/src:/data" "$IMG" cat /data/sub/hello2
expect_fail "a mount point missing in a host bind is not created there" "No such file or directory" \
  probe --bind "$W/src:/data/nosuch" --bind "$W/src:/data" "$IMG" true
[ ! -e "$W/src/nosuch" ] && ok "the host directory was left alone" || bad "the host directory was left alone" "created"
expect "bind onto an image symlink to /etc lands inside the root (CVE-2021-30465)" "hello" \
  probe --bind "$W/src:/hostetc" "$IMG" cat /etc/hello
[ ! -e /etc/hello ] && ok "host /etc untouched by the symlinked bind target" ||
  bad "host /etc untouched by the symlinked bind target" "/etc/hello exists"
expect "bind onto an escaping relative symlink stays inside (CVE-2021-30465)" "hello" \
  probe --bind "$W/src:/escape" "$IMG" cat /etc/hello
expect "the root is the image's mount plus binds, no overlay" "0" \
  probe "$IMG" sh -c 'grep -c " - overlay " /proc/self/mountinfo; true'
expect "an underlaid /etc keeps the image's files and symlinks beside a new mount point" \
  "ID=berth-test /proc/self/mounts hello" \
  probe --bind "$W/src:/etc/newdir" "$IMG" sh -c 'echo $(cat /etc/os-release) $(readlink /etc/mtab) $(cat /etc/newdir/hello)'
expect_fail "an underlaid /etc is read-only" "Read-only file system" \
  probe --bind "$W/src:/etc/newdir" "$IMG" touch /etc/x
expect "a directory too wide to underlay is served by the overlay root" "301 1 hello" \
  probe --bind "$W/src:/wide/new" "$IMG" sh -c 'echo $(ls /wide | wc -l) $(grep -c " - overlay " /proc/self/mountinfo) $(cat /wide/new/hello)'
expect "/dev/null is the 1:3 char device despite the image's symlink (CVE-2025-31133)" "1:3" \
  probe "$IMG" stat -c %t:%T /dev/null
expect "--contain /dev/null is the 1:3 char device (CVE-2025-31133)" "1:3" \
  probe --contain "$IMG" stat -c %t:%T /dev/null
before=$(cat /proc/sys/kernel/core_pattern)
probe --contain "$IMG" sh -c 'echo "|/tmp/pwned" > /dev/null' </dev/null >/dev/null 2>&1
[ "$(cat /proc/sys/kernel/core_pattern)" = "$before" ] && ok "writing /dev/null leaves core_pattern alone" ||
  bad "writing /dev/null leaves core_pattern alone" "core_pattern changed"
expect "--contain gives a minimal /dev" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero" \
  probe --contain "$IMG" sh -c 'ls /dev | tr "\n" " " | sed "s/ $//"'
expect "a minimal /dev alone (\"mount dev = minimal\") keeps the host's /tmp" \
  "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero host-tmp" \
  probe --minimal-dev "$IMG" sh -c 'echo $(ls /dev) $(test -e $(dirname $PWD)/src/hello && echo host-tmp)'
expect "--contain gives empty /tmp, /var/tmp and \$HOME" "0" \
  probe --contain "$IMG" sh -c 'ls -A /tmp /var/tmp $HOME | grep -v : | grep . | wc -l'
expect "--contain: a bind under the fresh /tmp works" "hello" \
  probe --contain --bind "$W/src:/tmp/data" "$IMG" cat /tmp/data/hello
expect "--contain devpts is a new instance" "ptmx" probe --contain "$IMG" sh -c 'echo $(ls /dev/pts)'
expect "home is bound" "$CALLER_HOME" probe "$IMG" sh -c 'cd && pwd'
if [ "$PROFILE" != root ]; then
  expect_fail "/sys is read-only for a non-root caller" "Read-only file system" \
    probe "$IMG" sh -c 'echo 1 > /sys/kernel/profiling'
fi
expect_fail "without --writable-tmpfs / stays read-only" "Read-only file system" \
  probe "$IMG" touch /scratch/x
expect "--writable-tmpfs of 200 MiB takes 100 MiB (above Apptainer's 64 MiB)" "104857600 200.0M" \
  probe --writable-tmpfs $((200 << 20)) "$IMG" sh -c \
  "dd if=/dev/zero of=${WRITABLE}big bs=1M count=100 2>/dev/null && echo \$(stat -c %s ${WRITABLE}big) \$(df -h / | awk 'NR==2{print \$2}')"

# --- fakeroot: root inside, the caller outside
expect "--fakeroot: id -u is 0 inside" "0" probe --fakeroot "$IMG" id -u
probe --fakeroot --bind "$W/out:/out" "$IMG" sh -c 'echo x > /out/fakeroot-file' </dev/null
owner=$(stat -c %u "$W/out/fakeroot-file" 2>/dev/null)
[ "$owner" = "$EUID_EXPECT" ] && ok "--fakeroot: a file written to a bind is the caller's outside" ||
  bad "--fakeroot: a file written to a bind is the caller's outside" "owner '$owner'"
expect "--userns: the caller's uid inside, no capabilities" "$EUID_EXPECT 0000000000000000" \
  probe --userns "$IMG" sh -c 'echo $(id -u) $(grep CapEff /proc/self/status | cut -f2)'

# --- Slurm-readiness: cgroups, affinity, umask, limits
if [ "$PROFILE" = user ]; then
  # Delegation as systemd gives it: the user owns a subtree holding the launcher.
  mkdir -p "$CG2/inner" && chown "$TUSER" "$CG2" "$CG2/cgroup.procs" "$CG2/inner" "$CG2/inner/cgroup.procs"
  expect "joins the given cgroup (v2, delegated)" "0::/berth-launch-$$/inner" \
    bash -c "echo \$\$ > $CG2/cgroup.procs && exec setpriv --reuid=$TUID --regid=$TGID --init-groups -- $PROBE --user-mode --cgroup $CG2/inner $IMG grep ^0:: /proc/self/cgroup"
else
  mkdir -p "$CG2"
  expect "joins the given cgroup (v2)" "0::/berth-launch-$$" \
    probe --cgroup "$CG2" "$IMG" grep ^0:: /proc/self/cgroup
  mkdir -p "$CG1"
  expect "joins the given cgroups (v2 and v1 cpu at once)" "0::/berth-launch-$$ :/berth-launch-$$" \
    probe --cgroup "$CG2" --cgroup "$CG1" "$IMG" sh -c \
    'echo $(grep ^0:: /proc/self/cgroup) $(grep -E "^[0-9]+:(cpu|cpu,cpuacct|cpuacct,cpu):" /proc/self/cgroup | cut -d: -f3- | sed "s/^/:/")'
fi
expect "CPU affinity is the caller's (taskset -c 0)" "0" \
  run_probe taskset -c 0 -- "$IMG" sh -c 'grep Cpus_allowed_list /proc/self/status | cut -f2'
expect "umask is the caller's" "0027" run_probe bash -c 'umask 027; exec "$@"' _ -- "$IMG" sh -c umask
expect "resource limits are the caller's" "200" \
  run_probe bash -c 'ulimit -n 200; exec "$@"' _ -- "$IMG" sh -c 'ulimit -n'

# --- terminals
# A fresh pty, as berthd allocates for a terminal client: its slave must be
# the payload's controlling terminal.
out=$(probe --pty "$IMG" sh -c 'tty; echo ok > /dev/tty' 2>&1 </dev/null | tr -d '\r')
case $out in
  /dev/pts/*ok*) ok "a pty becomes the controlling terminal" ;;
  *) bad "a pty becomes the controlling terminal" "$out" ;;
esac
expect_fail "without a pty the payload has no controlling terminal" "/dev/tty" \
  probe "$IMG" sh -c 'echo x > /dev/tty'

# --- robustness: the child never allocates (threads hammer malloc meanwhile)
expect_rc "200 launches while other threads malloc" 0 \
  probe --malloc-threads 2 --repeat 200 "$IMG" true
expect_rc "8 threads x 16 launches at once: all succeed, each with only fds 0-2" 0 \
  probe --parallel 8 --repeat 16 "$IMG" sh -c 'sleep 1 & s=$!; sleep 0.2; f=$(echo $(ls /proc/$s/fd)); kill $s; [ "$f" = "0 1 2" ] || { echo "fds: $f" >&2; exit 1; }'
# Checked while the container is known to run: it says so through a bind,
# then waits for the check to finish.
rm -f "$W/out/running" "$W/out/checked"
probe --bind "$W/out:/out" "$IMG" sh -c \
  'echo > /out/running; for i in $(seq 100); do [ -e /out/checked ] && exit 0; sleep 0.1; done; exit 1' </dev/null &
pid=$!
for _ in $(seq 100); do [ -e "$W/out/running" ] && break; sleep 0.1; done
if [ -e "$W/out/running" ]; then
  [ "$(host_mounts)" = "$MOUNTS_BEFORE" ] && ok "a running container adds no mount to the host namespace" ||
    bad "a running container adds no mount to the host namespace" "$(diff <(echo "$MOUNTS_BEFORE") <(host_mounts))"
else
  bad "a running container adds no mount to the host namespace" "the container did not start within 10 s"
fi
: >"$W/out/checked"
wait $pid || bad "the container that waited for the mount check exits 0" "exit $?"
