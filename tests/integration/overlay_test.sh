#!/usr/bin/env bash
# overlay_test.sh BERTH BERTHD MODE WHO: -o/--overlay end to end against a
# root berthd (MODE = system), as root or as the unprivileged test user
# (WHO = root | user), or against the test user's user-mode berthd (MODE =
# user, WHO = user).
# The security checks: the caller's upper directory is written with the
# caller's identity (its work/ and the whiteouts are theirs, never root's),
# a directory the caller cannot read is refused by name, and a symlink at
# upper/ is refused, never followed. Leaves no mount behind.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue overlay
cleanup() {
  stop_test_daemon
  umount "$TEST_TMP/hostsq" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
SQFS=$TEST_TMP/t.sqfs
must "test image" env BERTH_TEST_SQFS_OUT="$SQFS" bash "$here/make_test_image.sh" "$BERTH" "$IMG"
start_test_daemon
if [ "$WHO" = root ]; then
  as() { env BERTH_SOCKET="$SOCK" "$@"; }
  ME=root
else
  as() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$@"; }
  ME=$TUSER
fi
b() { as "$BERTH" "$@"; }
ME_UID=$(id -u "$ME")
ME_GID=$(id -g "$ME")
mine() { install -d -o "$ME" -m 0755 "$@"; }
before_finish() {
  stop_test_daemon
  check "no mount of the test's paths is left" \
    bash -c "! grep -q '$TEST_TMP' /proc/self/mountinfo"
}

# --- a writable directory ---
OV=$TEST_TMP/ov
mine "$OV"
expect_out "--overlay DIR: the container writes /newfile" "hi" \
  b exec --overlay "$OV" "$IMG" sh -c 'echo hi >/newfile && cat /newfile'
check "... into DIR/upper, owned by the caller" test "$(stat -c %u "$OV/upper/newfile")" = "$ME_UID"
check "... upper/ and work/ were made, the caller's" \
  test "$(stat -c %u:%a "$OV/upper" "$OV/work" | sort -u)" = "$ME_UID:755"
check "... the overlay's own work/work is the caller's (its mounter's identity)" \
  test "$(stat -c %u "$OV/work/work")" = "$ME_UID"
expect_out "directories made and renamed in the overlay" "z" \
  b exec --overlay "$OV" "$IMG" sh -c 'mkdir -p /d1/d2 && echo z >/d1/d2/z && mv /d1 /d3 && cat /d3/d2/z'
check "... are the caller's" test "$(stat -c %u "$OV/upper/d3" "$OV/upper/d3/d2/z" | sort -u)" = "$ME_UID"
expect_out "a second run sees it (persistent)" "hi" b exec --overlay "$OV" "$IMG" cat /newfile
expect_out "DIR:ro: a lower layer, DIR/upper" "hi" b exec --overlay "$OV:ro" "$IMG" cat /newfile
expect_rc "DIR:ro is read-only" 1 b exec --overlay "$OV:ro" "$IMG" sh -c 'echo x >/other'
check "... and nothing was written" test ! -e "$OV/upper/other"
expect_out "the image is still below" "image-file" b exec --overlay "$OV" "$IMG" cat /opt/marker
for d in A B; do mine "$TEST_TMP/ord$d"; as sh -c "echo $d >'$TEST_TMP/ord$d/which'"; done
expect_out "lower layers stack in the order given, the first on top" "A" \
  b exec --overlay "$TEST_TMP/ordA:ro" --overlay "$TEST_TMP/ordB:ro" "$IMG" cat /which
expect_out "APPTAINER_OVERLAY" "hi" as env APPTAINER_OVERLAY="$OV:ro" "$BERTH" exec "$IMG" cat /newfile
# Where --writable-tmpfs lets the caller write (run_test.sh's wdir).
wdir=$([ "$MODE" = user ] && echo / || echo /scratch/)
expect_out "--writable-tmpfs over DIR:ro" "hi y" \
  b exec --writable-tmpfs --overlay "$OV:ro" "$IMG" sh -c "echo y >${wdir}y; echo \$(cat /newfile ${wdir}y)"
check "... writes nothing to DIR" test ! -e "$OV/upper/scratch" -a ! -e "$OV/upper/y"

expect_out "--fakeroot: root inside, the caller's outside" "0" \
  b exec --fakeroot --overlay "$OV" "$IMG" sh -c 'echo fk >/fk && stat -c %u /fk'
check "... in DIR/upper" test "$(stat -c %u "$OV/upper/fk")" = "$ME_UID"
must "instance start --overlay" b instance start --overlay "$OV" "$IMG" ovi
expect_out "an instance's processes share its overlay" "hi" \
  b exec instance://ovi sh -c 'echo inst >/inst && cat /newfile'
must "instance stop" b instance stop ovi
check "... written to DIR/upper" test "$(cat "$OV/upper/inst")" = inst

# A lower file removed through the caller's upper: the whiteout is made
# with the overlay's mounter credentials, which must be the caller's.
LOW=$TEST_TMP/low
mine "$LOW"
as sh -c "echo low >'$LOW/gone'"
OV2=$TEST_TMP/ov2
mine "$OV2"
expect_out "a lower DIR:ro under a writable DIR" "low" b exec --overlay "$LOW:ro" --overlay "$OV2" "$IMG" cat /gone
expect_rc "removing the lower file" 0 b exec --overlay "$LOW:ro" --overlay "$OV2" "$IMG" rm /gone
check "... leaves a whiteout owned by the caller, never root" \
  test "$(stat -c %F:%u "$OV2/upper/gone" 2>&1)" = "character special file:$ME_UID"
check "... and the lower directory keeps its file" test -e "$LOW/gone"

# --- Apptainer's refusals ---
expect_fatal "two writable overlays" "you can't specify more than one writable overlay" \
  b exec --overlay "$OV" --overlay "$OV2" "$IMG" true
check "... the message names the fix" grep -q "use '--overlay $OV2:ro'" "$TEST_TMP/stderr"
expect_fatal "a writable overlay with --writable-tmpfs" \
  "you can't specify --writable-tmpfs with another writable overlay image ($OV)" \
  b exec --writable-tmpfs --overlay "$OV" "$IMG" true
expect_fatal "--overlay with --writable" "you could not use --overlay in conjunction with --writable" \
  b exec --writable --overlay "$OV" "$IMG" true
# overlay create: Apptainer's ext3 image, made by the caller's mkfs.ext3.
mine "$TEST_TMP/imgs"
EXT3=$TEST_TMP/imgs/o.img
expect_rc "overlay create -s 64 --create-dir /data/x" 0 \
  b overlay create -s 64 --create-dir /data/x "$EXT3"
check "... an ext3 image of 64 MiB, the caller's" \
  test "$(stat -c %s:%u "$EXT3")" = "$((64 << 20)):$ME_UID"
check "... with upper/data/x and work/, the caller's" \
  bash -c "debugfs -R 'stat /upper/data/x' '$EXT3' 2>/dev/null | grep -q 'User: *$ME_UID ' &&
           debugfs -R 'stat /work' '$EXT3' 2>/dev/null | grep -q 'Type: directory'"
expect_fatal "overlay create: an existing file is refused" "already exists" \
  b overlay create "$EXT3"
expect_fatal "overlay create: below 64 MiB is refused" "equal or greater than 64 MiB" \
  b overlay create -s 10 "$TEST_TMP/imgs/small.img"
check "... leaving no file" test ! -e "$TEST_TMP/imgs/small.img"
expect_fatal "--overlay of an ext3 image is refused, naming what works" \
  "berth does not mount ext3 overlay images (use a directory" \
  b exec --overlay "$EXT3" "$IMG" true

# --- the caller's rights ---
# upper/ a symlink to /etc: refused by name, never followed.
EVIL=$TEST_TMP/evil
mine "$EVIL"
ln -s /etc "$EVIL/upper" && chown -h "$ME" "$EVIL/upper"
expect_fatal "DIR/upper a symlink to /etc is refused" "$EVIL/upper" \
  b exec --overlay "$EVIL" "$IMG" sh -c 'echo x >/berth-overlay-pwned'
expect_fatal "... also as DIR:ro" "$EVIL/upper" b exec --overlay "$EVIL:ro" "$IMG" true
check "... and nothing was written to /etc" test ! -e /etc/berth-overlay-pwned
if [ "$WHO" = user ]; then
  # Searchable, not readable (0711): only the caller's own open refuses it.
  SECRET=$TEST_TMP/secret
  install -d -m 0711 "$SECRET"
  echo listed-by-root >"$SECRET/f"
  expect_fatal "a directory the caller cannot read is refused by name" "--overlay $SECRET: " \
    b exec --overlay "$SECRET:ro" "$IMG" cat /f
  check "... for the right reason" grep -q "Permission denied" "$TEST_TMP/stderr"
  # A lower directory the caller may not search (root's 0700, in a :ro
  # overlay they may read), shadowed by a directory of theirs in the upper
  # layer: the merge reads the lower one with the overlay's mounter's
  # rights, which must be the caller's.
  SHARED=$TEST_TMP/shared
  install -d -m 0755 "$SHARED"
  install -d -m 0700 "$SHARED/private"
  echo secret >"$SHARED/private/f" && chmod 0644 "$SHARED/private/f"
  OV3=$TEST_TMP/ov3
  mine "$OV3" "$OV3/upper" "$OV3/upper/private"
  expect_rc "a root-only lower directory stays closed under the caller's own upper one" 1 \
    b exec --overlay "$SHARED:ro" --overlay "$OV3" "$IMG" cat /private/f
  check "... and its names unlisted" \
    bash -c "! runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' exec --overlay '$SHARED:ro' --overlay '$OV3' '$IMG' ls /private 2>/dev/null | grep -q f"
fi

# --- the image's owners under a writable layer (image_idmap.h) ---
if [ "$WHO" = user ] && [ "$MODE" = system ]; then
  # A plain user's writable layer sees the image's root files as their own,
  # as Apptainer's unprivileged squashfuse_ll -o uid=,gid= does.
  OV4=$TEST_TMP/ov4
  mine "$OV4"
  expect_out "--overlay DIR: a plain user changes a root-owned image file" "image-file x" \
    b exec --overlay "$OV4" "$IMG" sh -c 'echo x >>/opt/marker && echo $(cat /opt/marker)'
  check "... copied up into DIR/upper as the caller's" \
    test "$(stat -c %u:%g "$OV4/upper/opt/marker")" = "$ME_UID:$ME_GID"
  expect_out "--writable-tmpfs: a plain user changes root-owned image files" "image-file x $ME_UID:$ME_GID" \
    b exec --writable-tmpfs "$IMG" sh -c 'echo x >>/opt/marker && touch /usr/bin/new && echo $(cat /opt/marker) $(stat -c %u:%g /usr/bin/new)'
  expect_out "... and setuid-root still gives no root" "$ME_UID" b exec --writable-tmpfs "$IMG" suid-id -u
  expect_out "without a writable layer the image keeps its true owners" "0:0" \
    b exec "$IMG" stat -c %u:%g /opt/marker
  # A sandbox directory is the host's own files: never idmapped, so a
  # root-only file there stays closed.
  SB=$TEST_TMP/sb
  must "unsquash a sandbox" unsquashfs -no-progress -d "$SB" "$SQFS"
  echo root-only >"$SB/opt/secret" && chmod 0600 "$SB/opt/secret"
  expect_rc "--writable-tmpfs over a sandbox: its root-only file stays closed" 1 \
    b exec --writable-tmpfs "$SB" cat /opt/secret
  expect_out "... and shows its true owner" "0:0" b exec --writable-tmpfs "$SB" stat -c %u:%g /opt/secret
  # ... even one that lies on a host squashfs (a snap, a site's software
  # mount): the filesystem's type says nothing of who may read its files.
  HSQ=$TEST_TMP/hostsq
  mkdir -p "$TEST_TMP/hsrc" "$HSQ" && cp -a "$SB" "$TEST_TMP/hsrc/sb"
  must "a host squashfs holding the sandbox" \
    mksquashfs "$TEST_TMP/hsrc" "$TEST_TMP/host.sqfs" -quiet -noappend
  must "mounted by root" mount -t squashfs -o loop,ro "$TEST_TMP/host.sqfs" "$HSQ"
  expect_rc "--writable-tmpfs over a sandbox on a host squashfs: its root-only file stays closed" 1 \
    b exec --writable-tmpfs "$HSQ/sb" cat /opt/secret
  umount "$HSQ"
elif [ "$WHO" = user ]; then
  # A user-mode daemon cannot idmap: Apptainer's user-namespace mode.
  expect_rc "the caller cannot write above the image's root-owned files" 1 \
    b exec --overlay "$OV" "$IMG" sh -c 'echo x >/opt/marker'
  check "... and nothing was copied up" test ! -e "$OV/upper/opt"
else
  expect_out "root's --writable-tmpfs: the image's files stay root's" "0:0" \
    b exec --writable-tmpfs "$IMG" sh -c 'echo x >>/opt/marker && stat -c %u:%g /opt/marker'
fi

# --- a squashfs image: a lower layer ---
mkdir -p "$TEST_TMP/sq/sub" && echo squashed >"$TEST_TMP/sq/sub/sqfile"
must "squashfs overlay" mksquashfs "$TEST_TMP/sq" "$TEST_TMP/o.sqsh" -quiet -noappend -all-root
chmod 0644 "$TEST_TMP/o.sqsh"
expect_out "--overlay IMG.sqsh" "squashed" b exec --overlay "$TEST_TMP/o.sqsh" "$IMG" cat /sub/sqfile
expect_out "... below a writable DIR" "squashed hi" \
  b exec --overlay "$TEST_TMP/o.sqsh" --overlay "$OV" "$IMG" sh -c 'echo $(cat /sub/sqfile /newfile)'
many=(); for i in $(seq 33); do many+=(--overlay "$OV:ro"); done
expect_fatal "at most 32 overlays" "at most 32" b exec "${many[@]}" "$IMG" true

# --- the site's rules ---
start_test_daemon $'[images]\nallow_container_squashfs = false'
expect_fatal "allow_container_squashfs = false refuses a squashfs overlay" \
  "allow_container_squashfs = false" b exec --overlay "$TEST_TMP/o.sqsh" "$IMG" true
start_test_daemon "" $'activated = true\n[[execgroup]]\n  tagname = "any"\n  mode = "blacklist"\n  dirpath = ""\n  keyfp = ["0000000000000000000000000000000000000000"]'
expect_fatal "an active ECL refuses --overlay (unsigned content)" "runs signed SIF images only" \
  b exec --overlay "$OV:ro" "$IMG" true
finish
