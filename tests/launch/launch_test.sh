#!/usr/bin/env bash
# The launcher (berth_daemon_launch) against the real kernel, through
# launch_probe. One profile per run:
#   root    probe as root, container as root
#   system  probe as root, container as the test user (system mode)
#   user    probe as the test user in its own user namespace (user mode)
# Builds a busybox-static image with a dynamically linked program and the
# /.singularity.d layout, squashfs-mounts it (test setup only may use
# mount(8)), and checks every case; security cases are named after the CVE
# they guard against. Needs root for the setup; never skips.
#
#   launch_test.sh PATH/TO/launch_probe root|system|user
set -u
PROBE_SRC=$(realpath "$1")
PROFILE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
TUSER=${BERTH_TEST_USER:-berthtest}
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]; exit $?; }

if [ "$(id -u)" != 0 ]; then bad setup "needs root to build and mount the test image"; finish; fi
for tool in mksquashfs busybox setpriv taskset; do
  command -v $tool >/dev/null || { bad setup "missing $tool"; finish; }
done
id "$TUSER" >/dev/null 2>&1 || useradd -m "$TUSER" || { bad setup "useradd $TUSER"; finish; }
TUID=$(id -u "$TUSER")
TGID=$(id -g "$TUSER")
THOME=$(getent passwd "$TUSER" | cut -d: -f6)

W=$(mktemp -d /tmp/berth-launch-XXXXXX)
# cgroup2 wherever it is mounted (/sys/fs/cgroup/unified on hybrid hosts),
# and the v1 cpu hierarchy (Slurm's cgroup v1 plugins put jobs there): the
# hosts CI runs on have both, so a missing one fails rather than skips.
CG2_ROOT=$(findmnt -n -t cgroup2 -o TARGET | head -1)
CG1_ROOT=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk '$2 ~ /(^|,)cpu(,|$)/ {print $1; exit}')
[ -n "$CG2_ROOT" ] || { bad setup "no cgroup2 mount"; finish; }
[ -n "$CG1_ROOT" ] || { bad setup "no cgroup v1 hierarchy with the cpu controller"; finish; }
CG2=$CG2_ROOT/berth-launch-$$
CG1=$CG1_ROOT/berth-launch-$$
cleanup() {
  umount "$W/img" 2>/dev/null
  rmdir "$CG2/inner" "$CG2" "$CG1" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
chmod 0755 "$W"

# --- the image: busybox-static, id + its libraries, a setuid-root id, and
# planted symlinks at mount targets (host /etc, an escaping relative one,
# /dev/null to a procfs file, a magic link).
R=$W/rootfs
mkdir -p "$R"/{bin,usr/bin,etc,proc,dev} "$R"/.singularity.d/{env,actions,libs}
cp "$(command -v busybox)" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
cp /usr/bin/id "$R/usr/bin/id"
for lib in $(ldd /usr/bin/id | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; done
install -m 4755 /usr/bin/id "$R/suid-id"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf '#!/bin/sh\nexec "$@"\n' >"$R/.singularity.d/actions/exec"
chmod 755 "$R/.singularity.d/actions/exec"
mkdir -m 1777 "$R/scratch"
ln -s /proc/sys/kernel/core_pattern "$R/dev/null"
ln -s /etc "$R/hostetc"
ln -s ../../../../../../etc "$R/escape"
ln -s /proc/self/fd/3 "$R/fdlink"
# For the bind root (prepare_bind_root.cc): an /etc with a file and a symlink
# to keep when /etc is underlaid, and a directory too wide to underlay.
echo 'ID=berth-test' >"$R/etc/os-release"
ln -s /proc/self/mounts "$R/etc/mtab"
mkdir "$R/wide" && (cd "$R/wide" && for i in $(seq 300); do echo "$i" >"f$i"; done)
mkdir "$W/img"
mksquashfs "$R" "$W/img.sqfs" -all-root -comp lz4 -quiet -noappend >/dev/null &&
  mount -o loop,ro "$W/img.sqfs" "$W/img" || { bad setup "mksquashfs/mount"; finish; }
IMG=$W/img

install -m 0755 "$PROBE_SRC" "$W/launch_probe"
PROBE=$W/launch_probe
mkdir -m 0755 "$W/src" "$W/src/sub" "$W/src2" "$W/work" "$W/out"
echo hello >"$W/src/hello"
echo hello2 >"$W/src2/hello2"
chown "$TUSER" "$W/work" "$W/src"
cd "$W/work" || exit 1

# Where the caller may write with --writable-tmpfs: "/" is root's in the
# image; in user mode the upper layer's root is the user's own.
case $PROFILE in
  root) EUID_EXPECT=0 CALLER_HOME=/root WRITABLE=/ ;;
  system) EUID_EXPECT=$TUID CALLER_HOME=$THOME WRITABLE=/scratch/ && chown "$TUSER" "$W/out" ;;
  user) EUID_EXPECT=$TUID CALLER_HOME=$THOME WRITABLE=/ && chown "$TUSER" "$W/out" ;;
  *) bad setup "unknown profile $PROFILE"; finish ;;
esac

# The test user, exec'd directly (runuser would fork and hide exit statuses).
as_user() { setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- "$@"; }

# run_probe [WRAPPER...] -- PROBE-ARGS...: the probe as the profile runs it.
run_probe() {
  local wrap=(timeout 60)
  while [ "$1" != "--" ]; do wrap+=("$1"); shift; done
  shift
  case $PROFILE in
    root) "${wrap[@]}" "$PROBE" "$@" ;;
    system) "${wrap[@]}" "$PROBE" --as-user "$TUSER" "$@" ;;
    user) as_user "${wrap[@]}" "$PROBE" --user-mode "$@" ;;
  esac
}
probe() { run_probe -- "$@"; }
# The same command line, without the timeout, in PROBE_ARGV.
probe_argv() {
  case $PROFILE in
    root) PROBE_ARGV=("$PROBE" "$@") ;;
    system) PROBE_ARGV=("$PROBE" --as-user "$TUSER" "$@") ;;
    user) PROBE_ARGV=(setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- "$PROBE" --user-mode "$@") ;;
  esac
}

# expect NAME WANT CMD...: stdout (trimmed) equals WANT and exit 0.
expect() {
  local name=$1 want=$2 out rc
  shift 2
  out=$("$@" 2>"$W/err" </dev/null); rc=$?
  if [ $rc -ne 0 ]; then bad "$name" "exit $rc: $(cat "$W/err")"; return; fi
  [ "$out" = "$want" ] && ok "$name" || bad "$name" "got '$out', want '$want'"
}
# expect_rc NAME RC CMD...: exit status.
expect_rc() {
  local name=$1 want=$2 rc
  shift 2
  "$@" >/dev/null 2>"$W/err" </dev/null; rc=$?
  [ $rc -eq "$want" ] && ok "$name" || bad "$name" "exit $rc, want $want: $(cat "$W/err")"
}
# expect_fail NAME SUBSTRING CMD...: non-zero exit and SUBSTRING on stderr.
expect_fail() {
  local name=$1 want=$2 rc
  shift 2
  "$@" >/dev/null 2>"$W/err" </dev/null; rc=$?
  if [ $rc -eq 0 ]; then bad "$name" "exit 0"; return; fi
  grep -qF -- "$want" "$W/err" && ok "$name" || bad "$name" "exit $rc, stderr: $(cat "$W/err")"
}
# Mounts below another test's /tmp directory are that suite's (ctest runs
# suites side by side), not a leak of this one.
host_mounts() {
  awk -v w="$W/" 'index($5, "/tmp/") != 1 || index($5, w) == 1' /proc/self/mountinfo |
    grep -E " none |overlay|$W/(src|work|rootfs)" | grep -v " $W/img " | sort
}
MOUNTS_BEFORE=$(host_mounts)

source "$HERE/launch_cases.sh"

[ "$(host_mounts)" = "$MOUNTS_BEFORE" ] && ok "no mounts left in the host namespace" ||
  bad "no mounts left in the host namespace" "$(diff <(echo "$MOUNTS_BEFORE") <(host_mounts))"
finish
