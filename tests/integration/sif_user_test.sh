#!/usr/bin/env bash
# `berth sif` as an unprivileged user: it may read and edit exactly what the
# user can, and every refusal is one FATAL line with a non-zero exit.
# Needs root (to create the user and root-only files); CI runs as root.
set -u
BERTH=$1
USER_NAME=${BERTH_TEST_USER:-berthtest}
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

if [ "$(id -u)" != 0 ]; then echo "FAIL needs root to set up the unprivileged user"; echo "0 passed, 1 failed"; exit 1; fi
bash "$(dirname "$0")/../lib/ensure-test-user.sh" "$USER_NAME"

work=$(mktemp -d /tmp/berth-user-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -m 0700 "$work/rootonly"
cp "${BERTH_TESTDATA:-$(dirname "$0")/../testdata}/sif/one-group.sif" "$work/rootonly/secret.sif"
install -m 0644 "$work/rootonly/secret.sif" "$work/public.sif"
ln -s "$work/rootonly/secret.sif" "$work/link.sif"
mkdir -m 0755 "$work/ro"
cp "$BERTH" "$work/berth" && chmod 0755 "$work/berth"
mkdir -m 0777 "$work/userdir"

as_user() { runuser -u "$USER_NAME" -- "$@"; }

# expect_fatal NAME SUBSTRING CMD...: exit non-zero, one FATAL line naming the problem.
expect_fatal() {
  local name=$1 want=$2; shift 2
  local out err rc
  out=$("$@" 2>"$work/err"); rc=$?
  err=$(cat "$work/err")
  if [ "$rc" -eq 0 ]; then bad "$name" "exit 0"; return; fi
  if [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; then bad "$name" "stderr not one line: $err"; return; fi
  case "$err" in FATAL:*"$want"*) ok "$name" ;; *) bad "$name" "stderr: $err" ;; esac
}

out=$(as_user "$work/berth" sif list "$work/public.sif") && case "$out" in *"FS (Squashfs/*System/386)"*) ok "user lists a readable image" ;; *) bad "user lists a readable image" "$out" ;; esac
expect_fatal "user cannot read a root-only image" "Permission denied" as_user "$work/berth" sif list "$work/rootonly/secret.sif"
expect_fatal "a symlink to a root-only image gets nothing" "Permission denied" as_user "$work/berth" sif dump 2 "$work/link.sif"
expect_fatal "user cannot edit a root-owned image" "Permission denied" as_user "$work/berth" sif del 1 "$work/public.sif"
cmp -s "$work/public.sif" "$work/rootonly/secret.sif" && ok "refused edit left the image untouched" || bad "refused edit left the image untouched" "image changed"
expect_fatal "user cannot create in a read-only dir" "Permission denied" as_user "$work/berth" sif new "$work/ro/new.sif"
[ ! -e "$work/ro/new.sif" ] && ok "no file left behind" || bad "no file left behind" "file exists"
expect_fatal "missing image is named" "$work/nope.sif" as_user "$work/berth" sif header "$work/nope.sif"
expect_fatal "a directory is not an image" "not a SIF image" as_user "$work/berth" sif list "$work"

# A new image is created 0755 (a SIF with a launch script is executable), so
# even under umask 000 only its owner may change it; a stricter umask is kept.
for case in 000:755 077:700; do
  mask=${case%:*} mode=${case#*:}
  as_user bash -c "umask $mask; '$work/berth' sif new '$work/userdir/mine-$mask.sif'" &&
    [ "$(stat -c %U:%a "$work/userdir/mine-$mask.sif")" = "$USER_NAME:$mode" ] &&
    ok "user-created image under umask $mask: owned by the user, mode 0$mode" ||
    bad "user-created image under umask $mask: owned by the user, mode 0$mode" "$(stat -c %U:%a "$work/userdir/mine-$mask.sif" 2>&1)"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
