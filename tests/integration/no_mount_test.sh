#!/usr/bin/env bash
# no_mount_test.sh BERTH BERTHD: --no-mount with every value Apptainer 1.4
# takes (proc, sys, dev, devpts, home, tmp, hostfs, cwd, bind-paths, and an
# absolute path naming one of the site's bind paths), its NO_MOUNT forms,
# and Apptainer's warning for an unknown value. A system berthd whose
# berth.conf adds two bind paths of the test's own; as root and as the plain
# test user. What is mounted is read from the container's mountinfo.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue nomount
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
A=$TEST_TMP/site-a B=$TEST_TMP/site-b
mkdir -m 0755 "$A" "$B"
echo a >"$A/m" && echo b >"$B/m" && chmod 0644 "$A/m" "$B/m"
mkdir -p "$TEST_TMP/etc"
cat >"$TEST_TMP/etc/berth.conf" <<EOF
[binds]
default_binds = ["/etc/localtime", "/etc/hosts", "$A", "$B"]
EOF
SOCK=$TEST_TMP/run/berthd.sock
"$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/state" \
  --foreground 2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }

# mounts WHO ENV... -- FLAGS...: the container's mount points (one per line)
# with FLAGS, run as WHO in $TEST_TMP/cwd-WHO; stderr in $TEST_TMP/err. The
# launcher's skeleton (its mount points for binds the image has no room
# for, from a "staging" tmpfs, and the image's own files bound back into
# it) is left out: it is no mount of the host's.
mounts() {
  local who=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local cmd=(env BERTH_SOCKET="$SOCK" "${envs[@]}" "$BERTH" exec "$@" "$IMG"
             sh -c 'awk "\$4 !~ /^\/staging\// && \$(NF-1) !~ /^\/dev\/loop/ {print \$5}" /proc/self/mountinfo 2>/dev/null; echo procs=$(ls /proc 2>/dev/null | wc -l)')
  [ "$who" = user ] && cmd=(runuser -u "$TUSER" -- "${cmd[@]}")
  (cd "$TEST_TMP/cwd-$who" && "${cmd[@]}") 2>"$TEST_TMP/err"
}
has() { grep -qx -- "$1" <<<"$2"; }

for who in root user; do
  mkdir -m 0755 "$TEST_TMP/cwd-$who"
  [ "$who" = user ] && chown "$TUSER:" "$TEST_TMP/cwd-$who"
  home=$(getent passwd "$([ "$who" = user ] && echo "$TUSER" || echo root)" | cut -d: -f6)
  cwd=$TEST_TMP/cwd-$who
  all=$(mounts $who --)
  for p in /proc /sys /dev /tmp "$home" "$cwd" /etc/hosts /etc/localtime "$A" "$B"; do
    has "$p" "$all" && ok "[$who] by default $p is mounted" || bad "[$who] by default $p is mounted" "$all"
  done
  [ ! -s "$TEST_TMP/err" ] && ok "[$who] no warning by default" || bad "[$who] no warning by default" "$(cat "$TEST_TMP/err")"
  out=$(mounts $who -- --no-mount proc)
  has procs=0 "$out" && ok "[$who] --no-mount proc: no /proc" || bad "[$who] --no-mount proc" "$out"
  for v in sys tmp; do
    out=$(mounts $who -- --no-mount $v)
    ! has "/$v" "$out" && has /proc "$out" && ok "[$who] --no-mount $v: no /$v, the rest stays" ||
      bad "[$who] --no-mount $v" "$out"
  done
  out=$(mounts $who -- --no-mount home)
  ! has "$home" "$out" && ok "[$who] --no-mount home" || bad "[$who] --no-mount home" "$out"
  out=$(mounts $who -- --no-mount cwd)
  ! has "$cwd" "$out" && has "$home" "$out" && ok "[$who] --no-mount cwd" || bad "[$who] --no-mount cwd" "$out"
  # devpts: the private instance of a minimal /dev (--contain)
  out=$(mounts $who -- --contain)
  has /dev/pts "$out" && ok "[$who] --contain: a devpts instance at /dev/pts" || bad "[$who] --contain devpts" "$out"
  out=$(mounts $who -- --contain --no-mount devpts)
  ! has /dev/pts "$out" && has /dev/shm "$out" && ok "[$who] --no-mount devpts: none, the rest of /dev stays" ||
    bad "[$who] --no-mount devpts" "$out"
  # bind-paths: every site bind path, /etc/hosts and /etc/localtime included
  out=$(mounts $who -- --no-mount bind-paths)
  ! has "$A" "$out" && ! has "$B" "$out" && ! has /etc/hosts "$out" && ! has /etc/localtime "$out" && has /tmp "$out" &&
    ok "[$who] --no-mount bind-paths: none of the site's bind paths" || bad "[$who] --no-mount bind-paths" "$out"
  out=$(mounts $who -- --no-mount "$A")
  ! has "$A" "$out" && has "$B" "$out" && has /etc/hosts "$out" && ok "[$who] --no-mount /PATH: only that bind path" ||
    bad "[$who] --no-mount /PATH" "$out"
  out=$(mounts $who -- --no-mount /etc/hosts,tmp)
  ! has /etc/hosts "$out" && has /etc/localtime "$out" && ! has /tmp "$out" &&
    ok "[$who] --no-mount /etc/hosts,tmp" || bad "[$who] --no-mount /etc/hosts,tmp" "$out"
  out=$(mounts $who APPTAINER_NO_MOUNT=bind-paths --)
  ! has "$A" "$out" && ! has /etc/hosts "$out" && ok "[$who] APPTAINER_NO_MOUNT=bind-paths" ||
    bad "[$who] APPTAINER_NO_MOUNT" "$out"
  out=$(mounts $who SINGULARITY_NO_MOUNT=home --)
  ! has "$home" "$out" && ok "[$who] SINGULARITY_NO_MOUNT=home" || bad "[$who] SINGULARITY_NO_MOUNT" "$out"
  out=$(mounts $who -- --no-mount hostfs)
  has "$A" "$out" && [ ! -s "$TEST_TMP/err" ] && ok "[$who] --no-mount hostfs: accepted, nothing to drop, no warning" ||
    bad "[$who] --no-mount hostfs" "$(cat "$TEST_TMP/err")"
  out=$(mounts $who -- --no-mount bogus,tmp)
  [ "$(cat "$TEST_TMP/err")" = "WARNING: Ignoring unknown mount type 'bogus'" ] && ! has /tmp "$out" && has /proc "$out" &&
    ok "[$who] an unknown value: Apptainer's warning, the others still apply" ||
    bad "[$who] an unknown value" "$(cat "$TEST_TMP/err") / $out"
done
finish
