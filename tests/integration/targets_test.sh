#!/usr/bin/env bash
# targets_test.sh BERTH BERTHD MODE: what else than a SIF runs, as Apptainer
# 1.4 runs it: a sandbox directory and a bare squashfs file, with run, exec,
# instance start and inspect; and the security of a sandbox, which is a tree
# its user controls while a root daemon mounts it:
#   - bound non-recursively, ro,nosuid,nodev (read from the daemon's own
#     mount table while a container runs), so a setuid binary and a device
#     node in it give nothing and a mount inside it is not carried along;
#   - its /etc/passwd and /etc/group read with the caller's rights, and every
#     symlink in it resolved inside it (a runscript, env script, label file
#     or /etc/passwd pointing at a root-only host file shows nothing of it);
#   - a sandbox the caller cannot reach is refused, naming the path;
#   - berth.conf allow_container_dir/_squashfs, and an active ECL, refuse.
#   MODE  system (root berthd: as root and as the test user)
#         user   (a user-mode berthd run by the test user)
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue targets
daemon_pid=
cleanup() {
  stop_test_daemon
  umount "$TEST_TMP/sb/opt/hostdir" 2>/dev/null
  rm -rf "$TEST_TMP" "$HIDDEN" 2>/dev/null
}
HIDDEN=
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif SQFS=$TEST_TMP/t.sqfs
BERTH_TEST_SQFS_OUT=$SQFS bash "$here/make_test_image.sh" "$BERTH" "$IMG" >/dev/null ||
  { bad setup "test image"; finish; }
chmod 0644 "$IMG" "$SQFS"

# The sandbox: the test image unsquashed by root (root-owned, a setuid-root
# program in it), with a device node (/dev/zero's numbers) added.
SB=$TEST_TMP/sb
must "unsquash the sandbox" unsquashfs -no-progress -d "$SB" "$SQFS"
must "a device node in the sandbox" mknod -m 0666 "$SB/opt/zero" c 1 5
mkdir -m 0755 "$SB/opt/hostdir"
# A root-only host file, and a sandbox whose files are symlinks to it. It
# lives where no container binds anything (not the cwd, /tmp or a home):
# a root container may read what its binds show, and must still not see it.
SECRET=SECRET-$RANDOM-7731
HIDDEN=$(mktemp -d /run/berth-targets-XXXXXX)
printf 'root:x:0:0:%s:/:/bin/sh\n' "$SECRET" >"$HIDDEN/secret" && chmod 0600 "$HIDDEN/secret"
LINKS=$TEST_TMP/links
cp -a "$SB" "$LINKS"
up=../../../../../../../..
ln -sf "$HIDDEN/secret" "$LINKS/etc/passwd"
ln -sf "$up$HIDDEN/secret" "$LINKS/etc/group"
ln -sf "$HIDDEN/secret" "$LINKS/.singularity.d/runscript"
ln -sf "$HIDDEN/secret" "$LINKS/.singularity.d/labels.json"
ln -sf "$up$HIDDEN/secret" "$LINKS/.singularity.d/env/90-environment.sh"
# A sandbox whose own /etc/passwd only root may read.
ROOTPW=$TEST_TMP/rootpw
cp -a "$SB" "$ROOTPW"
printf 'root:x:0:0:%s:/:/bin/sh\n' "$SECRET" >"$ROOTPW/etc/passwd" && chmod 0600 "$ROOTPW/etc/passwd"
# A sandbox in a directory only root may enter.
install -d -m 0700 "$TEST_TMP/private"
cp -a "$SB" "$TEST_TMP/private/sb"


# b ARGS...: the client as $who, in $TEST_TMP.
b() {
  if [ "$who" = user ]; then
    (cd "$TEST_TMP" && runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" "$@")
  else
    (cd "$TEST_TMP" && env BERTH_SOCKET="$SOCK" "$BERTH" "$@")
  fi
}
# no_secret NAME CMD...: CMD's output and error never show $SECRET.
no_secret() {
  local name=$1; shift
  local all
  all=$("$@" 2>&1)
  if grep -qF -- "$SECRET" <<<"$all"; then bad "$name" "leaked: $(head -c 300 <<<"$all")"
  else ok "$name"; fi
}
# The sandbox binds in the daemon's mount table (its own namespace in user mode).
sandbox_mounts() {
  local pid
  for pid in $(pgrep -f -- "^$TEST_TMP/berthd "); do
    awk '$5 ~ /\/mounts\/dir-[0-9]+$/ {print $6}' "/proc/$pid/mountinfo" 2>/dev/null
  done | sort -u
}
# Mounts below a sandbox bind in the daemon's table (there must be none).
sandbox_submounts() {
  local pid
  for pid in $(pgrep -f -- "^$TEST_TMP/berthd "); do
    awk '$5 ~ /\/mounts\/dir-[0-9]+\// {print $5}' "/proc/$pid/mountinfo" 2>/dev/null
  done | sort -u
}
has_sandbox_mount() { [ -n "$(sandbox_mounts)" ]; }
no_sandbox_mount() { [ -z "$(sandbox_mounts)" ]; }

start_test_daemon
whos="root user"
[ "$MODE" = user ] && whos=user
# A mount inside the sandbox (made by root) must not be carried into a
# container. A user-mode daemon's namespace holds such a mount locked: its
# non-recursive bind is refused there instead (checked below).
install -d -m 0755 "$TEST_TMP/hostonly"
echo HOST-ONLY-FILE >"$TEST_TMP/hostonly/f" && chmod 0644 "$TEST_TMP/hostonly/f"

for who in $whos; do
  uid=$([ "$who" = user ] && id -u "$TUSER" || echo 0)
  expect_out "[$who] exec in a sandbox" image-file b exec "$SB" cat /opt/marker
  expect_out "[$who] run a sandbox: its runscript" "runscript args: a b" b run "$SB" a b
  expect_out "[$who] the sandbox's env scripts are sourced" from-image b exec "$SB" sh -c 'echo $IMAGE_VAR'
  expect_out "[$who] shell in a sandbox" shell-ok b shell "$SB" -c 'echo shell-ok'
  out=$(b exec "$SB" cat /etc/passwd 2>&1)
  grep -q '^imguser:' <<<"$out" && ok "[$who] the sandbox's /etc/passwd, read as the caller, is merged" ||
    bad "[$who] the sandbox's /etc/passwd, read as the caller, is merged" "$out"
  expect_out "[$who] APPTAINER_CONTAINER names the sandbox" "$SB" b exec "$SB" sh -c 'echo $APPTAINER_CONTAINER'
  expect_out "[$who] exec of a bare squashfs image" image-file b exec "$SQFS" cat /opt/marker
  expect_out "[$who] run a bare squashfs image" "runscript args: x" b run "$SQFS" x
  expect_out "[$who] a setuid program in a sandbox runs without privilege" "$uid" \
    b exec "$SB" /usr/bin/suid-id -u
  out=$(b exec "$SB" sh -c 'head -c 4 /opt/zero 2>/dev/null | wc -c' 2>&1)
  [ "$out" = 0 ] && ok "[$who] a device node in a sandbox cannot be opened (nodev)" ||
    bad "[$who] a device node in a sandbox cannot be opened (nodev)" "$out"
  # The daemon's bind itself, while a container holds it.
  b exec "$SB" sleep 3 >/dev/null 2>&1 &
  bg=$!
  wait_until 5 has_sandbox_mount
  opts=$(sandbox_mounts | head -1)
  wait "$bg"
  case ",$opts," in
    *,ro,*) case ",$opts," in *,nosuid,*) case ",$opts," in *,nodev,*) ok "[$who] the sandbox bind is ro,nosuid,nodev" ;;
      *) bad "[$who] the sandbox bind is ro,nosuid,nodev" "$opts" ;; esac ;;
      *) bad "[$who] the sandbox bind is ro,nosuid,nodev" "$opts" ;; esac ;;
    *) bad "[$who] the sandbox bind is ro,nosuid,nodev" "'$opts'" ;;
  esac
  wait_until 5 no_sandbox_mount && ok "[$who] the sandbox bind goes with its container" ||
    bad "[$who] the sandbox bind goes with its container" "$(sandbox_mounts)"
  no_secret "[$who] sandbox /etc/passwd and /etc/group symlinked to a root-only host file" \
    b exec "$LINKS" cat /etc/passwd /etc/group
  no_secret "[$who] sandbox runscript and env script symlinked to a root-only host file" b run "$LINKS"
  no_secret "[$who] inspect of those symlinks" b inspect --runscript --labels --environment "$LINKS"
  if [ "$who" = user ]; then
    expect_fatal "[user] a sandbox whose /etc/passwd only root may read is refused" \
      "$ROOTPW: etc/passwd: Permission denied" b exec "$ROOTPW" true
    expect_fatal "[user] a sandbox in a directory the caller cannot enter is refused, naming it" \
      "$TEST_TMP/private/sb: Permission denied" b exec "$TEST_TMP/private/sb" true
    expect_fatal "[user] ... and inspect of it" "$TEST_TMP/private/sb" b inspect "$TEST_TMP/private/sb"
  fi
  # --writable: the caller's own sandbox, with every mount point the
  # container needs; what the container writes is the caller's.
  W=$TEST_TMP/w-$who
  home=$(getent passwd "$([ "$who" = user ] && echo "$TUSER" || echo root)" | cut -d: -f6)
  cp -a "$SB" "$W" && mkdir -p "$W$TEST_TMP" "$W$home" && touch "$W/etc/localtime"
  [ "$who" = user ] && chown -R "$TUSER:" "$W"
  expect_rc "[$who] --writable: the container writes into the sandbox" 0 b exec -w "$W" touch /data/made
  owner=$(stat -c %u "$W/data/made" 2>&1)
  [ "$owner" = "$uid" ] && ok "[$who] ... as the caller (uid $uid)" || bad "[$who] ... as the caller (uid $uid)" "$owner"
  expect_out "[$who] ... with the caller's /etc/passwd entry" "$([ "$who" = user ] && echo "$TUSER" || echo root)" \
    b exec -w "$W" sh -c 'grep "^[^:]*:x:$(id -u):" /etc/passwd | cut -d: -f1'
  out=$(b exec "$W" touch /data/other 2>&1)
  [ ! -e "$W/data/other" ] && ok "[$who] without --writable the sandbox is read-only" ||
    bad "[$who] without --writable the sandbox is read-only" "$out"
  expect_fatal "[$who] --writable on a sandbox lacking a mount point names it" "the writable root lacks /" \
    b exec -w "$SB" true
  expect_fatal "[$who] --writable on a SIF is refused" "is not a sandbox directory" b exec -w "$IMG" true
  expect_fatal "[$who] --writable with --writable-tmpfs is refused" "--writable" \
    b exec -w --writable-tmpfs "$W" true
  expect_out "[$who] --fakeroot in a sandbox" 0 b exec --fakeroot "$SB" id -u
  expect_rc "[$who] --fakeroot --writable writes into the caller's sandbox" 0 \
    b exec --fakeroot -w "$W" touch /data/made-fakeroot
  owner=$(stat -c %u "$W/data/made-fakeroot" 2>&1)
  [ "$owner" = "$uid" ] && ok "[$who] ... as the caller (uid $uid)" || bad "[$who] ... as the caller (uid $uid)" "$owner"
  expect_out "[$who] instance start of a sandbox" "" b instance start "$SB" "sb-$who"
  expect_out "[$who] ... exec in it" image-file b exec "instance://sb-$who" cat /opt/marker
  expect_rc "[$who] ... stop" 0 b instance stop "sb-$who"
done

# inspect reads the sandbox as the user, like the SIF.
who=user
expect_out "inspect --runscript of a sandbox" "$(b inspect --runscript "$IMG")" b inspect --runscript "$SB"
expect_out "inspect --labels of a sandbox" "$(b inspect --labels "$IMG")" b inspect --labels "$SB"
expect_out "inspect --environment of a sandbox" "$(b inspect --environment "$IMG")" b inspect --environment "$SB"
out=$(b inspect --deffile "$SB" 2>&1)
grep -q '^Bootstrap: scratch' <<<"$out" && ok "inspect --deffile of a sandbox" || bad "inspect --deffile of a sandbox" "$out"

if [ "$MODE" = system ]; then
  must "a mount inside the sandbox" mount --bind "$TEST_TMP/hostonly" "$SB/opt/hostdir"
  for who in root user; do
    expect_out "[$who] a mount inside a sandbox is not carried along" "" b exec "$SB" ls /opt/hostdir
  done
  b exec "$SB" sleep 3 >/dev/null 2>&1 &
  bg=$!
  wait_until 5 has_sandbox_mount
  sub=$(sandbox_submounts)
  wait "$bg"
  [ -z "$sub" ] && ok "the daemon's sandbox bind has no mount below it (non-recursive)" ||
    bad "the daemon's sandbox bind has no mount below it (non-recursive)" "$sub"
  umount "$SB/opt/hostdir"
fi

who=user
start_test_daemon $'[images]\nallow_container_dir = false'
expect_fatal "allow_container_dir = false refuses a sandbox" "allow_container_dir = false" b exec "$SB" true
expect_out "... and a SIF still runs" image-file b exec "$IMG" cat /opt/marker
expect_out "... and a bare squashfs too" image-file b exec "$SQFS" cat /opt/marker
start_test_daemon $'[images]\nallow_container_squashfs = false'
expect_fatal "allow_container_squashfs = false refuses a bare squashfs" "allow_container_squashfs = false" \
  b exec "$SQFS" true
expect_out "... and a sandbox still runs" image-file b exec "$SB" cat /opt/marker
start_test_daemon "" $'activated = true\n[[execgroup]]\n  tagname = "any"\n  mode = "blacklist"\n  dirpath = ""\n  keyfp = ["0000000000000000000000000000000000000000"]'
expect_fatal "an active ECL refuses a sandbox: it cannot be signed" "cannot be signed" b exec "$SB" true
expect_fatal "... and a bare squashfs" "cannot be signed" b exec "$SQFS" true
finish
