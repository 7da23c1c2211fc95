#!/usr/bin/env bash
# fakeroot_test.sh BERTH BERTHD: --fakeroot end to end as the unprivileged
# test user against a system berthd whose subuid/subgid files are this test's
# own (the daemon's test-only --subuid-file/--subgid-file; root-owned, as the
# real ones must be), and `berth config fakeroot` editing copies of them.
# The real /etc/subuid and /etc/subgid are never touched (checked at the end).
# HOME under --fakeroot is also checked for a root caller.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue fakeroot
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
real_ids=$(cat /etc/subuid /etc/subgid 2>/dev/null | sha256sum)
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
bash "$here/../integration/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "test image"; finish; }
# An image with a symlink to a host file (for the session's chown).
LIMG=$TEST_TMP/l.sif
install -d "$TEST_TMP/extra"
ln -s "$TEST_TMP/victim" "$TEST_TMP/extra/victimlink"
BERTH_TEST_IMAGE_EXTRA=$TEST_TMP/extra bash "$here/../integration/make_test_image.sh" "$BERTH" "$LIMG" ||
  { bad setup "symlink image"; finish; }
install -d -m 0755 "$TEST_TMP/ids"
SUBUID=$TEST_TMP/ids/subuid SUBGID=$TEST_TMP/ids/subgid
ids() { printf '%b' "$1" >"$SUBUID"; printf '%b' "$2" >"$SUBGID"; chmod 0644 "$SUBUID" "$SUBGID"; }
ids "" ""
SOCK=$TEST_TMP/run/berthd.sock
mkdir -p "$TEST_TMP/etc"
"$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/state" \
  --subuid-file "$SUBUID" --subgid-file "$SUBGID" --foreground 2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }
b() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" "$@"; }
OWN=$TEST_TMP/own
install -d -o "$TUSER" -m 0755 "$OWN"
ME=$(id -u "$TUSER")
MYGID=$(id -g "$TUSER")

# --- subuid ranges ---
ids "$TUSER:200000:65536\n" "$TUSER:300000:65536\n"
expect_out "ranges: id says uid=0(root)" "uid=0(root)" b exec --fakeroot "$IMG" sh -c 'id | cut -d" " -f1'
expect_out "ranges: HOME is /root" "/root" b exec --fakeroot "$IMG" sh -c 'echo $HOME'
# Apptainer binds the user's own home at /root under --fakeroot.
UHOME=$(getent passwd "$TUSER" | cut -d: -f6)
marker=.berth-fakeroot-home-$$
echo "home of $TUSER" >"$UHOME/$marker" && chown "$TUSER:" "$UHOME/$marker"
expect_out "ranges: the user's home is bound at /root" "home of $TUSER" \
  b exec --fakeroot "$IMG" cat "/root/$marker"
expect_out "ranges: -H DIR beats /root, as Apptainer's custom home" "$OWN" \
  b exec --fakeroot -H "$OWN" "$IMG" sh -c 'echo $HOME'
rm -f "$UHOME/$marker"
expect_out "root caller: --fakeroot, HOME is /root" "0 /root" \
  env BERTH_SOCKET="$SOCK" "$BERTH" exec --fakeroot "$IMG" sh -c 'echo $(id -u) $HOME'
expect_out "root caller: --fakeroot --contain: HOME /root, a fresh tmpfs" "/root 0" \
  env BERTH_SOCKET="$SOCK" "$BERTH" exec --fakeroot --contain "$IMG" sh -c 'echo $HOME $(ls -A /root | wc -l)'
expect_out "ranges: passwd says root for uid 0" "root:x:0:0:root:/root:/bin/sh" \
  b exec --fakeroot "$IMG" grep '^root:' /etc/passwd
b exec --fakeroot -B "$OWN:/mnt" "$IMG" sh -c 'touch /mnt/a /mnt/b && busybox chown 1:1 /mnt/a && busybox chown 65536:65536 /mnt/b' \
  >/dev/null 2>"$TEST_TMP/err"
expect_out "ranges: chown 1:1 inside is the range's first uid and gid on the host" \
  "200000:300000" stat -c %u:%g "$OWN/a"
expect_out "ranges: chown 65536:65536 inside is the range's last ids" "265535:365535" stat -c %u:%g "$OWN/b"
check "ranges: no INFO line" test ! -s "$TEST_TMP/err"
expect_out "ranges: root inside is the caller on the host" "$ME" \
  sh -c "runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' exec --fakeroot -B '$OWN:/mnt' '$IMG' touch /mnt/c && stat -c %u '$OWN/c'"
expect_out "ranges: --writable-tmpfs: chown 1:1 shows 1 inside" "1:1" \
  b exec --fakeroot --writable-tmpfs "$IMG" sh -c 'touch /scratch/x && busybox chown 1:1 /scratch/x && stat -c %u:%g /scratch/x'
# The image's files as Apptainer's fakeroot shows them: its root's are root's
# (an idmapped clone of the image mount, image_idmap.h), and a writable layer
# can change them.
expect_out "ranges: the image's root files show as root" "0:0 0:0 0:0" \
  b exec --fakeroot "$IMG" sh -c 'echo $(stat -c %u:%g / /usr/bin /opt/marker)'
expect_out "ranges: --writable-tmpfs: root changes image files, /etc/passwd included" \
  "0:0 0:0 0:0 x" b exec --fakeroot --writable-tmpfs "$IMG" sh -c \
  'echo x >>/opt/marker && echo x >>/etc/passwd && touch /usr/bin/new && echo $(stat -c %u:%g /opt/marker /etc/passwd /usr/bin/new) $(tail -n1 /etc/passwd)'
FOV=$TEST_TMP/fov
install -d -o "$TUSER" -m 0755 "$FOV"
expect_out "ranges: --overlay DIR: root changes image files" "0:0 0:0" \
  b exec --fakeroot --overlay "$FOV" "$IMG" sh -c 'echo x >>/opt/marker && touch /usr/bin/new && echo $(stat -c %u:%g /opt/marker /usr/bin/new)'
check "... the upper files on the host are the caller's" \
  test "$(stat -c %u:%g "$FOV/upper/opt/marker" "$FOV/upper/usr/bin/new" | sort -u)" = "$ME:$MYGID"
must "ranges: instance start --fakeroot" b instance start --fakeroot "$IMG" fk
expect_out "ranges: an instance's joins see the image's root files as root" "0:0" \
  b exec instance://fk stat -c %u:%g /opt/marker
must "ranges: instance stop" b instance stop fk
# The session's own files take the image root's owner; a symlink the image
# holds is copied there (a bind to /newmnt underlays "/") and never followed.
echo victim >"$TEST_TMP/victim"
expect_out "ranges: an underlaid root shows as root" "0:0" \
  b exec --fakeroot -B "$OWN:/newmnt" "$LIMG" stat -c %u:%g /
check "... the host file an image symlink names keeps its owner" \
  test "$(stat -c %u:%g "$TEST_TMP/victim")" = "0:0"
b exec --fakeroot "$IMG" cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups >"$TEST_TMP/maps"
expect_out "ranges: the maps are the caller and the range; setgroups allowed (apt needs it)" \
  "0 $ME 1|1 200000 65536|0 $MYGID 1|1 300000 65536|allow" \
  sh -c "awk '{\$1=\$1; print}' '$TEST_TMP/maps' | paste -sd'|'"
expect_out "without --fakeroot: still the caller" "$ME" b exec "$IMG" id -u

# --- the root-mapped fallback ---
ids "" ""
b exec --fakeroot -B "$OWN:/mnt" "$IMG" sh -c 'id -u; touch /mnt/d; busybox chown 1:1 /mnt/d 2>/dev/null || echo chown-refused' \
  >"$TEST_TMP/out" 2>"$TEST_TMP/err"
expect_out "not listed: Apptainer's INFO line" \
  "INFO:    User not listed in $SUBUID, trying root-mapped namespace" cat "$TEST_TMP/err"
expect_out "not listed: root inside, single uid (chown 1:1 refused)" "0 chown-refused" \
  sh -c "tr '\n' ' ' <'$TEST_TMP/out' | sed 's/ $//'"
expect_out "not listed: HOME is /root" "/root" b exec --fakeroot "$IMG" sh -c 'echo $HOME'
expect_out "not listed: the image's root files show as root" "0:0 0" \
  b exec --fakeroot --writable-tmpfs "$IMG" sh -c 'echo x >>/opt/marker && echo $(stat -c %u:%g /opt/marker) $(id -u)'
expect_out "not listed: single-id maps, setgroups denied" "0 $ME 1|0 $MYGID 1|deny" \
  sh -c "runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' exec --fakeroot '$IMG' cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups 2>/dev/null | awk '{\$1=\$1; print}' | paste -sd'|'"

# --- Apptainer's refusals, and berth's own ---
ids "!$TUSER:200000:65536\n" "$TUSER:300000:65536\n"
expect_fatal "disabled entry" "could not use fakeroot: your fakeroot mapping has been disabled by the administrator" \
  b exec --fakeroot "$IMG" true
ids "$TUSER:200000:1000\n" "$TUSER:300000:65536\n"
expect_fatal "range too small" "mapping entries for user $TUSER found in $SUBUID but all with a range count lower than 65536" \
  b exec --fakeroot "$IMG" true
ids "$TUSER:200000:65536\n" ""
expect_fatal "listed in subuid only" "no mapping entry found in $SUBGID for $TUSER" b exec --fakeroot "$IMG" true
ids "$TUSER:0:65536\n" "$TUSER:300000:65536\n"
expect_fatal "a range with uid 0" "includes uid 0, the host's root" b exec --fakeroot "$IMG" true
ids "$TUSER:$((ME - 10)):65536\n" "$TUSER:300000:65536\n"
expect_fatal "a range with the caller's uid" "includes the user's own uid $ME" b exec --fakeroot "$IMG" true
ids "$TUSER:200000:65536\nroot:210000:65536\n" "$TUSER:300000:65536\n"
expect_fatal "a range overlapping another user's" "overlaps 210000-275535 of root (line 2)" \
  b exec --fakeroot "$IMG" true
ids "$TUSER:200000:65536\n" "$TUSER:300000:65536\n"
chmod 0666 "$SUBUID"
expect_fatal "a subuid file others can write" "$SUBUID is writable by group or other (mode 0666): berthd will not map user namespace ids from it; fix: chown root:root $SUBUID" \
  b exec --fakeroot "$IMG" true
chmod 0644 "$SUBUID"; chown "$TUSER" "$SUBGID"
expect_fatal "a subgid file a user owns" "$SUBGID is owned by uid $ME" b exec --fakeroot "$IMG" true
chown root "$SUBGID"
expect_out "no state left by refusals: ranges work again" "uid=0(root)" \
  b exec --fakeroot "$IMG" sh -c 'id | cut -d" " -f1'

# --- berth config fakeroot ---
cfg() { "$BERTH" config fakeroot --subuid-file "$SUBUID" --subgid-file "$SUBGID" "$@"; }
ids "# site ranges\nother:100000:65536\n" "other:100000:65536\n"
before=$(sha256sum "$SUBUID" "$SUBGID")
expect_fatal "config fakeroot as a plain user" '"berth config fakeroot" command requires root privileges' \
  runuser -u "$TUSER" -- "$BERTH" config fakeroot --subuid-file "$SUBUID" --subgid-file "$SUBGID" --add "$TUSER"
expect_rc "config fakeroot as a plain user: exit 255" 255 \
  runuser -u "$TUSER" -- "$BERTH" config fakeroot --subuid-file "$SUBUID" --subgid-file "$SUBGID" --add "$TUSER"
check "config fakeroot as a plain user: files unchanged" test "$(sha256sum "$SUBUID" "$SUBGID")" = "$before"
expect_rc "--add" 0 cfg --add "$TUSER"
want="# site ranges
other:100000:65536
$ME:4294836224:65536"
expect_out "--add: the top free range, numeric uid, other lines kept" "$want" cat "$SUBUID"
expect_out "--add: subgid too" "other:100000:65536
$ME:4294836224:65536" cat "$SUBGID"
expect_out "--add: mode and owner kept" "644 0:0|644 0:0" sh -c "stat -c '%a %u:%g' '$SUBUID' '$SUBGID' | paste -sd'|'"
expect_out "--add: no lock or temporary file left" "subgid subuid" sh -c "ls '$TEST_TMP/ids' | paste -sd' '"
b exec --fakeroot -B "$OWN:/mnt" "$IMG" sh -c 'touch /mnt/e && busybox chown 1:1 /mnt/e' >/dev/null 2>&1
expect_out "--add: the daemon maps the new range" "4294836224:4294836224" stat -c %u:%g "$OWN/e"
expect_rc "--add again" 0 cfg --add "$TUSER"
check "--add again: unchanged" test "$(grep -c "^$ME:" "$SUBUID")" = 1
expect_rc "--disable" 0 cfg --disable "$TUSER"
expect_out "--disable: marked in both files" "!$ME:4294836224:65536|!$ME:4294836224:65536" \
  sh -c "grep -h '^!' '$SUBUID' '$SUBGID' | paste -sd'|'"
expect_fatal "--disable: the daemon refuses the mapping" "your fakeroot mapping has been disabled by the administrator" \
  b exec --fakeroot "$IMG" true
expect_rc "--enable" 0 cfg -e "$TUSER"
check "--enable: the mark is gone" test -z "$(grep -h '^!' "$SUBUID" "$SUBGID")"
expect_rc "--remove" 0 cfg -r "$TUSER"
expect_out "--remove: the site's lines are all that is left" "# site ranges
other:100000:65536" cat "$SUBUID"
expect_fatal "--remove again" "while removing $TUSER: no mapping entry found in $SUBUID for $TUSER" cfg --remove "$TUSER"
expect_fatal "unknown user" "while adding no-such-user-x: could not retrieve user information for no-such-user-x" \
  cfg --add no-such-user-x
expect_fatal "no operation" "you must specify an option (eg: --add/--remove)" cfg "$TUSER"
echo "$$" >"$SUBUID.lock"
expect_fatal "a held lock" "$SUBUID.lock exists" cfg --add "$TUSER"
rm -f "$SUBUID.lock"

# --- a user-mode daemon: one uid only, and it says so ---
chmod 0666 /dev/fuse  # Debian ships 0666; this machine has 0600 (recipes.md)
install -d -o "$TUSER" -m 0700 "$TEST_TMP/u"
runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$TEST_TMP/u/berthd.sock" \
  --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/u/state" --foreground 2>"$TEST_TMP/u.log" &
user_daemon=$!
if wait_until 10 test -S "$TEST_TMP/u/berthd.sock"; then
  ub() { runuser -u "$TUSER" -- env BERTH_SOCKET="$TEST_TMP/u/berthd.sock" "$BERTH" "$@"; }
  ub exec --fakeroot "$IMG" sh -c 'echo $(id -u) $HOME; cat /proc/self/uid_map' >"$TEST_TMP/out" 2>"$TEST_TMP/err"
  expect_out "user mode: root inside, HOME /root, one uid mapped" "0 /root|0 $ME 1" \
    sh -c "awk '{\$1=\$1; print}' '$TEST_TMP/out' | paste -sd'|'"
  expect_out "user mode: the INFO line says why" \
    "INFO:    berthd runs in user mode, where only your own uid can be mapped: trying root-mapped namespace (the system berthd maps your /etc/subuid range)" \
    cat "$TEST_TMP/err"
else
  bad "user-mode daemon starts" "$(cat "$TEST_TMP/u.log")"
fi
kill "$user_daemon" 2>/dev/null; wait "$user_daemon" 2>/dev/null

check "the real /etc/subuid and /etc/subgid are untouched" \
  test "$(cat /etc/subuid /etc/subgid 2>/dev/null | sha256sum)" = "$real_ids"
finish
