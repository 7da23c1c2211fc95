#!/usr/bin/env bash
# in_root.sh ROOT: clean_root_test.sh's steps inside ROOT, run in a private
# mount namespace (unshare -m) so that every mount here dies with it.
set -euo pipefail
root=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
as_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
as_user() {
  chroot --userspec=tester:tester "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/tester "$@"
}

# The root a mount point, as / is on a real machine: the daemon makes the
# container's mounts slaves of "/", which must be a mount for that.
# debootstrap's directory was a mktemp -d (0700); / is 0755.
chmod 0755 "$root"
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"

# The glob names files in the root, so a shell there expands it.
as_root sh -c 'dpkg -i /pkgs/berth_*.deb /pkgs/berthd_*.deb' >"$root/tmp/dpkg.log" 2>&1 || {
  cat "$root/tmp/dpkg.log" >&2
  fail "dpkg -i"
}

# What the packages put where.
for f in /usr/bin/berth /usr/bin/berthd /etc/berth/berth.conf /lib/systemd/system/berthd.service \
  /usr/share/man/man1/berth.1.gz /usr/share/man/man1/berth-exec.1.gz \
  /usr/share/man/man1/berth-doctor.1.gz /usr/share/man/man1/berth-sif-list.1.gz \
  /usr/share/bash-completion/completions/berth /usr/share/zsh/vendor-completions/_berth \
  /usr/share/fish/vendor_completions.d/berth.fish /usr/share/doc/berthd/examples/ecl.toml.example \
  /usr/lib/berth/slurm/berth_spank.so /usr/lib/berth/slurm/prolog.sh /usr/lib/berth/slurm/epilog.sh \
  /etc/slurm/plugstack.conf.d/berth.conf; do
  [ -e "$root$f" ] || fail "the packages installed no $f"
done
grep -qx /etc/berth/berth.conf "$root/var/lib/dpkg/info/berthd.conffiles" ||
  fail "berth.conf is not a conffile (dpkg would overwrite a site's edits)"
# berthd refuses a policy root does not own or others can write (docs/security.md).
for f in /etc/berth /etc/berth/berth.conf; do
  mode=$(stat -c '%U:%G %a' "$root$f")
  case "$f:$mode" in
    /etc/berth:"root:root 755" | /etc/berth/berth.conf:"root:root 644") ;;
    *) fail "$f is $mode, want root:root and not writable by group or others" ;;
  esac
done

# The packaged daemon, started as its unit says.
exec_start=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/berthd.service")
# Not through as_root: a function run with & is a subshell, whose pid the
# trap below would kill, leaving berthd running (chroot and env exec, so
# this pid is berthd's).
# shellcheck disable=SC2086 # ExecStart is a command line
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root $exec_start \
  >"$root/tmp/berthd.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -S "$root/run/berth/berthd.sock" ] && break
  kill -0 "$daemon" 2>/dev/null || { cat "$root/tmp/berthd.log" >&2; fail "berthd exited"; }
  sleep 0.1
done
as_root useradd -m tester

out=$(as_root berth exec /pkgs/busybox.sif sh -c 'echo "$(id -un) ran"')
[ "$out" = "root ran" ] || fail "berth exec as root printed '$out'"
out=$(as_user berth exec /pkgs/busybox.sif sh -c 'echo "$(id -un) ran"')
[ "$out" = "tester ran" ] || fail "berth exec as tester printed '$out'"

as_root berth doctor >"$root/tmp/doctor-root.txt" 2>&1 || {
  cat "$root/tmp/doctor-root.txt" >&2
  fail "berth doctor (root) found errors"
}
as_user berth doctor --json >"$root/tmp/doctor-user.json" || {
  cat "$root/tmp/doctor-user.json" >&2
  fail "berth doctor (tester) found errors"
}
python3 - "$root/tmp/doctor-user.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
checks = {(c["area"], c["name"]): c for c in report["checks"]}
assert report["errors"] == 0, report
assert checks[("kernel", "squashfs gzip")]["severity"] == "ok", checks
assert checks[("daemon", "berthd")]["detail"].startswith("berthd "), checks
PY
cat "$root/tmp/doctor-root.txt"

# A typo in berth.conf: doctor names the file and line, and fails.
cp "$root/etc/berth/berth.conf" "$root/tmp/berth.conf.orig"
sed -i 's/^#kernel_squashfs = .*/kernel_squashfs = "sometimes"/' "$root/etc/berth/berth.conf"
line=$(grep -n '^kernel_squashfs' "$root/etc/berth/berth.conf" | cut -d: -f1)
if as_root berth doctor >"$root/tmp/doctor-bad.txt" 2>&1; then
  fail "berth doctor passed a berth.conf with kernel_squashfs = \"sometimes\""
fi
grep -q "berth.conf:$line" "$root/tmp/doctor-bad.txt" ||
  { cat "$root/tmp/doctor-bad.txt" >&2; fail "doctor did not name berth.conf:$line"; }
cp "$root/tmp/berth.conf.orig" "$root/etc/berth/berth.conf"

# Stopped as systemd stops it (SIGTERM), the daemon ends: no berthd is left
# in this run's mount namespace (it would outlive the test, root and all).
kill "$daemon" && wait "$daemon" || true
mine=$(readlink /proc/self/ns/mnt)
for p in $(pgrep -x berthd || true); do
  if [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$mine" ]; then
    kill -9 "$p"
    fail "berthd (pid $p) still ran after SIGTERM"
  fi
done
echo "clean root: packages installed, exec and doctor work as root and as a plain user"
