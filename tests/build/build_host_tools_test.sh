#!/usr/bin/env bash
# build_host_tools_test.sh BERTH BERTHD WORKER: bases a host tool makes
# (daemon/build/bootstrap_tool.h), against a system berthd with its own
# subuid/subgid files:
# - refusals before any download: the test user without a subuid range
#   (the fix named), yum/dnf and zypper missing on this host (the Debian
#   package named, as the user and as root), and their header errors;
# - after `berth config fakeroot --add`, a debootstrap with a MirrorURL that
#   answers nothing: debootstrap's output, "while debootstrapping: exit
#   status 1", no output, nothing staged;
# - one real debootstrap of bookworm from the host's own apt mirror
#   (Include: plus INCLUDE from the environment), paused in %setup while the
#   test, as root on the host, checks the staged root: nothing of host root's,
#   every file of the user or their range, no device node, no mount left in
#   the host's namespace; then %post is root, the files keep their owners,
#   `berth exec` runs the package, `inspect --deffile` prints the def.
set -u
source "$(dirname "$0")/../registry/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
TUSER=${BERTH_TEST_USER:-berthtest}
bash "$HERE/../lib/ensure-test-user.sh" "$TUSER"
setup_binaries "$1" "$2"
cp "$3" "$T/bin/berth-build-worker"   # found beside berthd
OWN=$T/own STAGE=$T/stage IDS=$T/ids
install -d -o "$TUSER" -m 0755 "$OWN"
install -d -m 0755 "$IDS"
: >"$IDS/subuid"
: >"$IDS/subgid"
start_berthd "[build]
build_dir = \"$STAGE\"" --subuid-file "$IDS/subuid" --subgid-file "$IDS/subgid"
b() { (cd "$OWN" && runuser -u "$TUSER" -- env BERTH_SOCKET="$BERTH_SOCKET" "$BERTH" "$@"); }
r() { (cd "$OWN" && "$BERTH" "$@"); }
staging_empty() { [ -z "$(ls -A "$STAGE" 2>/dev/null)" ] && [ -z "$(ls -A "$T/state/build-staging" 2>/dev/null)" ]; }
def() { cat >"$OWN/$1"; chown "$TUSER" "$OWN/$1"; }

# The host's own Debian mirror (deb822 first, then sources.list).
MIRROR=$(awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null)
must "the host's apt mirror is known" test -n "$MIRROR"
# The yum/zypper cases are about a host without them (packaging/install-deps.sh installs neither).
must "this host has neither dnf, yum nor zypper" sh -c '! command -v dnf && ! command -v yum && ! command -v zypper'

def deb.def <<DEF
Bootstrap: debootstrap
OSVersion: bookworm
MirrorURL: $MIRROR
Include: tree

%setup
    # The test looks at the staged root from the host meanwhile.
    touch "$OWN/paused"
    i=0
    while [ ! -e "$OWN/go" ] && [ \$i -lt 1200 ]; do sleep 0.1; i=\$((i + 1)); done

%post
    whoami
    hello
    stat -c '%u:%g' /usr/bin/hello >/post-owner
    stat -c '%G' /etc/shadow >/post-shadow
DEF

# --- refused before anything is fetched ---
expect_fatal_after_progress "user without a subuid range: the fix named" \
  "While performing build: Bootstrap: debootstrap needs a subordinate id range for $TUSER (not listed in $IDS/subuid): as root, run 'berth config fakeroot --add $TUSER'" \
  b build nosub.sif deb.def
expect_rc "user without a subuid range: exit 255" 255 b build nosub.sif deb.def
check "user without a subuid range: no output" test ! -e "$OWN/nosub.sif"
check "user without a subuid range: nothing staged" staging_empty

printf 'Bootstrap: yum\nMirrorURL: http://127.0.0.1:9/el/\nInclude: bash\n' | def yum.def
printf 'Bootstrap: dnf\nMirrorURL: http://127.0.0.1:9/el/\n' | def dnf.def
printf 'Bootstrap: zypper\nMirrorURL: http://127.0.0.1:9/suse/\n' | def zypper.def
where="(looked in /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)"
expect_fatal_after_progress "user: yum without dnf on the host names the package" \
  "neither yum nor dnf in path $where: install the Debian package dnf on this host (apt-get install dnf)" \
  b build yum.sif yum.def
expect_rc "user: yum without dnf: exit 255" 255 b build yum.sif yum.def
expect_fatal_after_progress "root: dnf without dnf on the host names the package" \
  "neither yum nor dnf in path $where: install the Debian package dnf" r build dnf.sif dnf.def
expect_fatal_after_progress "root: zypper missing names the package" \
  "zypper is not in PATH $where: install the Debian package zypper on this host (apt-get install zypper)" \
  r build zypper.sif zypper.def
expect_fatal_after_progress "user: zypper missing names the package" \
  "zypper is not in PATH" b build zypper.sif zypper.def
printf 'Bootstrap: yum\nMirrorURL: http://127.0.0.1:9/el/%%{osversion}/os\n' | def yumosv.def
expect_fatal_after_progress "yum: %{OSVERSION} without OSVersion" \
  "invalid yum header, OSVersion referenced in mirror but no OSVersion specified" b build yumosv.sif yumosv.def
printf 'Bootstrap: zypper\nMirrorURL: http://127.0.0.1:9/sle/\nProduct: SLES\nUser: u\nRegcode: r\n' | def sle.def
expect_fatal_after_progress "zypper: SLE registration refused" \
  "SLE registration (Product, User, Regcode, ProductPGP, RegisterURL, Modules) is not supported by berth" \
  r build sle.sif sle.def
check "refusals: no output" sh -c "! ls '$OWN' | grep -q '\\.sif\$'"
check "refusals: nothing staged" staging_empty

# --- the user's range, as the admin gives it ---
must "berth config fakeroot --add $TUSER" \
  "$BERTH" config fakeroot --add "$TUSER" --subuid-file "$IDS/subuid" --subgid-file "$IDS/subgid"
TUID=$(id -u "$TUSER")
# (listed by uid, as Apptainer's config fakeroot writes it)
START=$(awk -F: -v u="$TUSER" -v i="$TUID" '$1 == u || $1 == i { print $2 }' "$IDS/subuid")
COUNT=$(awk -F: -v u="$TUSER" -v i="$TUID" '$1 == u || $1 == i { print $3 }' "$IDS/subuid")
GSTART=$(awk -F: -v u="$TUSER" -v i="$TUID" '$1 == u || $1 == i { print $2 }' "$IDS/subgid")
must "the range is listed" test -n "$START" -a -n "$GSTART"

# --- a mirror that answers nothing: debootstrap fails fast ---
sed "s|^MirrorURL: .*|MirrorURL: http://127.0.0.1:9/debian|" "$OWN/deb.def" | def badmirror.def
b build bad.sif badmirror.def >"$T/bad.out" 2>"$T/bad.err"
rc=$?
[ "$rc" -eq 255 ] && ok "bad MirrorURL: exit 255" || bad "bad MirrorURL: exit 255" "rc=$rc $(cat "$T/bad.err")"
grep -q '^FATAL: .*While performing build: while debootstrapping: exit status 1$' "$T/bad.err" &&
  ok "bad MirrorURL: while debootstrapping: exit status 1" || bad "bad MirrorURL: FATAL line" "$(cat "$T/bad.err")"
grep -q '127.0.0.1:9' "$T/bad.out" && ok "bad MirrorURL: debootstrap's output streamed" ||
  bad "bad MirrorURL: debootstrap's output streamed" "$(tail -5 "$T/bad.out")"
check "bad MirrorURL: no output, no temp file" sh -c "test ! -e '$OWN/bad.sif' && ! ls -A '$OWN' | grep -q berth-"
check "bad MirrorURL: nothing staged" staging_empty

# --- the real debootstrap, paused in %setup for the host-side checks ---
(cd "$OWN" && runuser -u "$TUSER" -- env BERTH_SOCKET="$BERTH_SOCKET" INCLUDE=hello "$BERTH" build deb.sif deb.def
 echo $? >"$T/deb.rc") >"$T/deb.out" 2>"$T/deb.err" &
build=$!
# (a build that fails before %setup ends the wait at once)
wait_until 500 sh -c "test -e '$OWN/paused' || test -e '$T/deb.rc'"
if test -e "$OWN/paused"; then
  ok "debootstrap reached %setup"
  ROOTFS=$(ls -d "$STAGE"/berth-build-*/rootfs)
  check "staged: debootstrap wrote the root" test -x "$ROOTFS/usr/bin/hello"
  check "staged: nothing in the root is host root's" \
    sh -c "test -z \"\$(find '$ROOTFS' \\( -uid 0 -o -gid 0 \\) -print -quit)\""
  check "staged: every file is the user's or their range's" \
    sh -c "test -z \"\$(find '$ROOTFS' ! -uid $TUID \\( -uid -$START -o -uid +$((START + COUNT - 1)) \\) -print -quit)\""
  check "staged: set-id files are there, none of host root's" \
    sh -c "test -n \"\$(find '$ROOTFS' -perm -4000 -print -quit)\" && test -z \"\$(find '$ROOTFS' -perm -4000 -uid 0 -print -quit)\""
  expect_out "staged: /usr/bin/hello is the user's (root inside)" "$TUID" stat -c %u "$ROOTFS/usr/bin/hello"
  shadow_gid=$(awk -F: '$1 == "shadow" { print $3 }' "$ROOTFS/etc/group")
  expect_out "staged: /etc/shadow's group is in the user's subgid range" "$((GSTART + ${shadow_gid:-0} - 1))" \
    stat -c %g "$ROOTFS/etc/shadow"
  check "staged: no device node" sh -c "test -z \"\$(find '$STAGE' \\( -type b -o -type c \\) -print -quit)\""
  check "staged: the tool's binds died with it" sh -c "! grep -q ' $STAGE' /proc/self/mountinfo"
  check "the host's /proc/filesystems is untouched" grep -q sysfs /proc/filesystems
  expect_out "staged: the root is 0755" "755" stat -c %a "$ROOTFS"
else
  bad "debootstrap reached %setup" "$(tail -20 "$T/deb.out"; cat "$T/deb.err")"
fi
touch "$OWN/go"
wait "$build"
rc=$(cat "$T/deb.rc")
[ "$rc" -eq 0 ] && ok "debootstrap build succeeds" || bad "debootstrap build succeeds" "rc=$rc $(tail -20 "$T/deb.out"; cat "$T/deb.err")"
check "debootstrap's progress streamed" grep -q 'I: Base system installed successfully' "$T/deb.out"
check "%post: whoami is root" grep -qx root "$T/deb.out"
check "%post: hello (from INCLUDE) runs" grep -qx 'Hello, world!' "$T/deb.out"
expect_out "exec: hello" "Hello, world!" b exec deb.sif hello
expect_out "exec: Include: tree is there" "/usr/bin/tree" b exec deb.sif sh -c 'command -v tree'
expect_out "%post saw its files as root's" "0:0" b exec deb.sif cat /post-owner
expect_out "%post saw shadow's files as shadow's" "shadow" b exec deb.sif cat /post-shadow
expect_out "exec: a bookworm root" "12" b exec deb.sif sh -c 'cut -d. -f1 /etc/debian_version'
expect_out "the empty runscript" "#!/bin/sh" b inspect --runscript deb.sif
check "inspect --deffile prints the def" sh -c "cd '$OWN' && runuser -u '$TUSER' -- env BERTH_SOCKET='$BERTH_SOCKET' '$BERTH' inspect --deffile deb.sif | grep -qx 'Bootstrap: debootstrap'"
check "Apptainer's base environment" b exec deb.sif test -x /.singularity.d/actions/run -a -f /.singularity.d/env/99-base.sh
check "after the build: nothing staged" staging_empty
finish
