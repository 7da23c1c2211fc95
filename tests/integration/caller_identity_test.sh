#!/usr/bin/env bash
# caller_identity_test.sh BERTH BERTHD: the caller's identity, as the kernel
# reports it, decides what the daemon opens and counts, never the daemon's own.
#
# Supplementary groups: two groups, G and H; the system daemon runs with G as
# a supplementary group, not H. Images (0640), bind sources and the working
# directory (0750), and a writable output directory (0770), each root:G and
# root:H:
#   - a caller in G and H opens all of them (H: only its own groups grant it);
#   - a caller in neither is refused all of them (G: the daemon's group must
#     not lend it access), and its container does not hold G.
# Per-user limits: with max_containers_per_user = 2, a third container of one
# user is refused while another user still runs.
# Then a user-mode daemon run by the caller in G and H opens the same.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue caller
IN=berthgin OUT=berthgout
bash "$here/../lib/ensure-test-user.sh" "$IN" berthg berthh
bash "$here/../lib/ensure-test-user.sh" "$OUT"
daemon_pid= user_pid=
cleanup() {
  for p in $daemon_pid $user_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$1" "$TEST_TMP/berth"
install -m 0755 "$2" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/public.sif
must "test image" bash "$here/make_test_image.sh" "$BERTH" "$IMG"
G_GID=$(getent group berthg | cut -d: -f3)

# Per group: an image, a bind source, a working directory and an output dir.
for g in berthg berthh; do
  install -m 0640 -g "$g" "$IMG" "$TEST_TMP/img-$g.sif"
  install -d -m 0750 -g "$g" "$TEST_TMP/src-$g" "$TEST_TMP/cwd-$g"
  echo "readable by $g" >"$TEST_TMP/src-$g/file"; chmod 0644 "$TEST_TMP/src-$g/file"
  install -d -m 0770 -g "$g" "$TEST_TMP/out-$g"
done

SOCK=$TEST_TMP/run/berthd.sock
mkdir -p "$TEST_TMP/etc"
printf '[limits]\nmax_containers_per_user = 2\n' >"$TEST_TMP/etc/berth.conf"
chmod 0644 "$TEST_TMP/etc/berth.conf"
setpriv --groups "$G_GID" -- "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" \
  --state-dir "$TEST_TMP/state" --foreground 2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }
check "the daemon holds group G, not H" \
  grep -qx "Groups:[[:space:]]*$G_GID[[:space:]]*" "/proc/$daemon_pid/status"

# in_dir DIR USER CMD...: CMD as USER (its own groups) with DIR as its working
# directory, entered as root first (so a user who may not enter DIR still
# sends it as its cwd, as a process that lost access would).
in_dir() {
  local dir=$1 user=$2; shift 2
  (cd "$dir" && setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups -- \
    env BERTH_SOCKET="$SOCK" HOME="$(getent passwd "$user" | cut -d: -f6)" "$@")
}
as() { in_dir "$TEST_TMP" "$@"; }

for g in berthg berthh; do
  # The caller in both groups.
  expect_out "in $g: runs a 0640 root:$g image" "image-file" as "$IN" "$BERTH" exec "$TEST_TMP/img-$g.sif" cat /opt/marker
  expect_out "in $g: the container holds $g" "yes" as "$IN" "$BERTH" exec "$IMG" \
    sh -c "id -G | tr ' ' '\n' | grep -qx $(getent group "$g" | cut -d: -f3) && echo yes"
  expect_out "in $g: binds a 0750 root:$g directory" "readable by $g" \
    as "$IN" "$BERTH" exec --bind "$TEST_TMP/src-$g:/mnt" "$IMG" cat /mnt/file
  expect_out "in $g: a 0750 root:$g working directory is the container's" "$TEST_TMP/cwd-$g readable by $g" \
    in_dir "$TEST_TMP/cwd-$g" "$IN" "$BERTH" exec --bind "$TEST_TMP/src-$g:/mnt" "$IMG" sh -c 'echo $(pwd) $(cat /mnt/file)'
  expect_out "in $g: writes to a 0770 root:$g output directory" "$IN" \
    as "$IN" sh -c "'$BERTH' exec --bind '$TEST_TMP/out-$g:/out' '$IMG' sh -c 'echo x > /out/made' && stat -c %U '$TEST_TMP/out-$g/made'"
  # The caller in neither group.
  expect_fatal "not in $g: a 0640 root:$g image is refused" "Permission denied" \
    as "$OUT" "$BERTH" exec "$TEST_TMP/img-$g.sif" cat /opt/marker
  expect_fatal "not in $g: binding a 0750 root:$g directory is refused" "Permission denied" \
    as "$OUT" "$BERTH" exec --bind "$TEST_TMP/src-$g:/mnt" "$IMG" true
  expect_fatal "not in $g: a 0770 root:$g output directory is refused" "Permission denied" \
    as "$OUT" "$BERTH" exec --bind "$TEST_TMP/out-$g:/out" "$IMG" sh -c 'echo x > /out/stolen'
  check "not in $g: nothing was written" test ! -e "$TEST_TMP/out-$g/stolen"
  out=$(as "$OUT" "$BERTH" exec "$IMG" id -G 2>&1)
  case " $out " in
    *" $(getent group "$g" | cut -d: -f3) "*) bad "not in $g: the container does not hold $g" "id -G: $out" ;;
    *) [ -n "$out" ] && ok "not in $g: the container does not hold $g" || bad "not in $g: the container does not hold $g" "no output" ;;
  esac
  # The same with nothing resolved as the caller on the way (--contain, no
  # home, cwd in the image): the child's own setgroups is all that decides.
  out=$(as "$OUT" "$BERTH" exec --contain --no-home --cwd / "$IMG" id -G 2>&1)
  case " $out " in
    *" $(getent group "$g" | cut -d: -f3) "*) bad "not in $g, --contain: the container does not hold $g" "id -G: $out" ;;
    *) [ -n "$out" ] && ok "not in $g, --contain: the container does not hold $g" || bad "not in $g, --contain: the container does not hold $g" "no output" ;;
  esac
  # A working directory the caller may not open is not bound: the container
  # starts elsewhere (or the run is refused), never in it.
  out=$(in_dir "$TEST_TMP/cwd-$g" "$OUT" "$BERTH" exec "$IMG" pwd 2>&1)
  case "$out" in
    "$TEST_TMP/cwd-$g") bad "not in $g: a 0750 root:$g working directory is not entered" "the container's cwd is $out" ;;
    *) ok "not in $g: a 0750 root:$g working directory is not entered" ;;
  esac
done
# Per-user limit: two containers of IN run (each says so, then waits for the
# stop file), a third is refused; another user is not counted with IN.
# Binds are nodev: a device node the caller planted in (or finds in) a bound
# directory opens nowhere in the container, whatever its mode.
install -d -m 0755 "$TEST_TMP/devdir"
mknod -m 0666 "$TEST_TMP/devdir/null" c 1 3
out=$(as "$IN" "$BERTH" exec --bind "$TEST_TMP/devdir:/mnt" "$IMG" sh -c 'echo x >/mnt/null && echo opened' 2>&1)
case $out in
  *opened*) bad "a device node in a bind does not open (nodev)" "$out" ;;
  *"ermission denied"*) ok "a device node in a bind does not open (nodev)" ;;
  *) bad "a device node in a bind does not open (nodev)" "unexpected: $out" ;;
esac

OUTD=$TEST_TMP/out-berthg
held=()
for i in 1 2; do
  as "$IN" "$BERTH" exec --bind "$OUTD:/out" "$IMG" \
    sh -c "touch /out/up-$i; while [ ! -e /out/stop ]; do sleep 0.1; done" >/dev/null 2>&1 &
  held+=($!)
done
if wait_until 20 test -e "$OUTD/up-1" -a -e "$OUTD/up-2"; then
  expect_fatal "a third container of one user is refused" "max_containers_per_user" \
    as "$IN" "$BERTH" exec "$IMG" true
  expect_out "another user still runs meanwhile" "image-file" as "$OUT" "$BERTH" exec "$IMG" cat /opt/marker
else
  bad "two containers of one user start" "no up-1/up-2 in $OUTD"
fi
: >"$OUTD/stop"; chmod 0644 "$OUTD/stop"
wait "${held[@]}"
expect_out "once they exit, the user runs again" "image-file" as "$IN" "$BERTH" exec "$IMG" cat /opt/marker

check "the daemon still holds group G" \
  grep -qx "Groups:[[:space:]]*$G_GID[[:space:]]*" "/proc/$daemon_pid/status"

# A user-mode daemon opens with its user's own groups (there is no switch).
chmod 0666 /dev/fuse  # Debian ships 0666; this machine has 0600 (recipes.md)
install -d -o "$IN" -m 0700 "$TEST_TMP/u"
USOCK=$TEST_TMP/u/berthd.sock
setpriv --reuid="$IN" --regid="$(id -g "$IN")" --init-groups -- "$TEST_TMP/berthd" --user-mode \
  --socket "$USOCK" --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/u/state" --foreground \
  2>"$TEST_TMP/userd.log" &
user_pid=$!
wait_until 10 test -S "$USOCK" || { bad "user-mode daemon starts" "$(cat "$TEST_TMP/userd.log")"; finish; }
SOCK=$USOCK
for g in berthg berthh; do
  expect_out "user-mode daemon, in $g: runs a 0640 root:$g image" "image-file" \
    as "$IN" "$BERTH" exec "$TEST_TMP/img-$g.sif" cat /opt/marker
  expect_out "user-mode daemon, in $g: binds a 0750 root:$g directory" "readable by $g" \
    as "$IN" "$BERTH" exec --bind "$TEST_TMP/src-$g:/mnt" "$IMG" cat /mnt/file
done
finish
