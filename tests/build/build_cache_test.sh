#!/usr/bin/env bash
# build_cache_test.sh BERTH BERTHD WORKER: the stage cache (`berth build
# --cache`, berth.conf [build] build_cache) against a real system berthd, as
# the unprivileged test user and as root:
# - off by default: a second build without --cache runs %post again and
#   keeps nothing;
# - a two-stage definition (%files from the host in stage one, `%files from`
#   stage one in stage two): the second --cache build reuses both stages
#   (%post does not run, the stamps %post wrote are the first build's) and
#   the image runs (stage one, which only the cached stage two copies from,
#   is not built at all); one that changes only %runscript reuses them too
#   and runs the new runscript; one that changes only stage two's %post
#   reuses stage one; changing a %files source's contents rebuilds both;
# - xattrs %setup set (user.*, security.capability) are in the cached stage;
# - two identical --cache builds at once both succeed and share one entry;
# - root's identical build does not use the user's entries (per-user keys);
# - `cache list --long` shows the entries as "build-stage" with the user;
#   the user's `cache clean -T build-stage` removes theirs and not root's;
# - `build_cache = true` in berth.conf turns the cache on without --cache.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 WORKER_SRC=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue buildcache
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
install -m 0755 "$WORKER_SRC" "$TEST_TMP/berth-build-worker"
BERTH=$TEST_TMP/berth
BASE=$TEST_TMP/base.sif
bash "$here/../integration/make_test_image.sh" "$BERTH" "$BASE" base-image || { bad setup "test image"; finish; }
install -d -m 0755 "$TEST_TMP/ids"
printf '%s:200000:65536\n' "$TUSER" >"$TEST_TMP/ids/subuid"
printf '%s:200000:65536\n' "$TUSER" >"$TEST_TMP/ids/subgid"
chmod 0644 "$TEST_TMP/ids/subuid" "$TEST_TMP/ids/subgid"
MODE=system STATE=$TEST_TMP/state STAGE=$TEST_TMP/stage  # root's daemon (start_test_daemon_in)
ENTRIES=$STATE/cache/build-stage/sha256
mkdir -p "$TEST_TMP/etc"
start_daemon() {  # start_daemon [build_cache]
  printf '[build]\nbuild_dir = "%s"\n%s\n' "$STAGE" "${1:+build_cache = $1}" >"$TEST_TMP/etc/berth.conf"
  start_test_daemon_in "$TEST_TMP/etc" --subuid-file "$TEST_TMP/ids/subuid" \
    --subgid-file "$TEST_TMP/ids/subgid" --build-worker "$TEST_TMP/berth-build-worker"
}
start_daemon
OWN=$TEST_TMP/own
install -d -o "$TUSER" -m 0755 "$OWN"
cp "$BASE" "$OWN/base.sif" && chown "$TUSER" "$OWN/base.sif"
b() { (cd "$OWN" && runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" "$@"); }
r() { (cd "$OWN" && env BERTH_SOCKET="$SOCK" "$BERTH" "$@"); }
entries() { ls "$ENTRIES" 2>/dev/null | wc -l; }
# build NAME ARGS...: b build into NAME.sif; its output in $TEST_TMP/NAME.log.
build() {
  local name=$1; shift
  if b build "$@" "$name.sif" cache.def >"$TEST_TMP/$name.log" 2>&1 && [ -f "$OWN/$name.sif" ]; then
    ok "$name: builds"
  else
    bad "$name: builds" "$(tail -5 "$TEST_TMP/$name.log") $(tail -3 "$TEST_TMP/berthd.log")"
  fi
}
ran_post() { grep -qx "post-one-ran" "$TEST_TMP/$1.log" && grep -qx "post-two-ran" "$TEST_TMP/$1.log"; }
# The last stage from the cache; stage one, which only it copies from, not built.
cached() { grep -q "Using cached stage 2 " "$TEST_TMP/$1.log" && grep -q "Skipping stage one" "$TEST_TMP/$1.log" && ! grep -q "post-.*-ran" "$TEST_TMP/$1.log"; }
not_cached() { ! grep -q "Using cached stage" "$TEST_TMP/$1.log"; }

echo "first-content" >"$OWN/data.txt"; chown "$TUSER" "$OWN/data.txt"
write_def() {  # write_def RUNSCRIPT_WORD [A LINE MORE FOR STAGE TWO'S %post]
  cat >"$OWN/cache.def" <<DEF
Bootstrap: localimage
From: base.sif
Stage: one

%files
    data.txt /opt/data.txt

%post
    echo "\$RANDOM\$RANDOM\$\$" >/opt/stamp-one
    echo post-one-ran

Bootstrap: localimage
From: base.sif
Stage: two

%files from one
    /opt/data.txt /opt/data.txt
    /opt/stamp-one /opt/stamp-one

%post
    echo "\$RANDOM\$RANDOM\$\$" >/opt/stamp-two
    echo post-two-ran
    ${2:-}

%runscript
    echo "$1 \$(cat /opt/data.txt)"
DEF
  chown "$TUSER" "$OWN/cache.def"
}
write_def run-one
stamps() { b exec "$1.sif" cat /opt/stamp-one /opt/stamp-two; }

# --- off by default ---
build off1
build off2
check "off by default: the second build runs %post again" ran_post off2
check "off by default: no stage is reused" not_cached off2
expect_out "off by default: nothing kept" "0" entries

# --- --cache: kept, then reused ---
build c1 --cache
check "first --cache build runs %post" ran_post c1
expect_out "two entries kept (one per stage)" "2" entries
build c2 --cache
check "unchanged def: both stages reused" cached c2
check "unchanged def: %post did not run" sh -c "! grep -q 'post-.*-ran' '$TEST_TMP/c2.log'"
expect_out "unchanged def: the image runs" "run-one first-content" b run c2.sif
expect_out "unchanged def: the roots are the first build's" "$(stamps c1)" stamps c2
expect_out "unchanged def: the image is the caller's" "$TUSER" stat -c %U "$OWN/c2.sif"

write_def run-two
build c3 --cache
check "only %runscript changed: both stages reused" cached c3
expect_out "only %runscript changed: the new runscript runs" "run-two first-content" b run c3.sif
expect_out "only %runscript changed: the roots are the first build's" "$(stamps c1)" stamps c3

write_def run-two "echo later >/opt/later"
build c3b --cache
check "only a later stage changed: the earlier stage reused" grep -q "Using cached stage 1 " "$TEST_TMP/c3b.log"
check "only a later stage changed: its %post ran, the earlier one's did not" \
  sh -c "grep -qx post-two-ran '$TEST_TMP/c3b.log' && ! grep -qx post-one-ran '$TEST_TMP/c3b.log'"
expect_out "only a later stage changed: the image runs" "run-two first-content later" \
  b exec c3b.sif sh -c 'echo $(/.singularity.d/runscript) $(cat /opt/later)'
expect_out "only a later stage changed: one more entry" "3" entries
write_def run-two

echo "second-content" >"$OWN/data.txt"
build c4 --cache
check "a %files source changed: both stages rebuilt" ran_post c4
check "a %files source changed: no stage reused" not_cached c4
expect_out "a %files source changed: the image has the new content" "run-two second-content" b run c4.sif
expect_out "a %files source changed: two more entries" "5" entries

# --- xattrs the build's user namespace set (a user xattr, file capabilities) ---
cat >"$OWN/xattr.def" <<'DEF'
Bootstrap: localimage
From: base.sif

%setup
    echo capped >"$APPTAINER_ROOTFS/capped"
    python3 -c 'import os, sys
os.setxattr(sys.argv[1], "user.berth", b"kept")
os.setxattr(sys.argv[1], "security.capability", bytes.fromhex("0100000200200000" + "00" * 12))' \
      "$APPTAINER_ROOTFS/capped"
DEF
chown "$TUSER" "$OWN/xattr.def"
xattrs_of() {  # the xattrs of /capped in IMAGE.sif
  local off
  off=$("$BERTH" sif list "$OWN/$1.sif" | awk -F'|' '/Squashfs/ {split($4, r, "-"); gsub(/ /, "", r[1]); print r[1]}')
  rm -rf "$TEST_TMP/x-$1" && unsquashfs -q -n -o "$off" -d "$TEST_TMP/x-$1" "$OWN/$1.sif" capped >/dev/null 2>&1
  python3 -c 'import os, sys; print(sorted((k, os.getxattr(sys.argv[1], k).hex()) for k in os.listxattr(sys.argv[1])))' \
    "$TEST_TMP/x-$1/capped"
}
b build --cache x1.sif xattr.def >"$TEST_TMP/x1.log" 2>&1
b build --cache x2.sif xattr.def >"$TEST_TMP/x2.log" 2>&1
check "xattrs: the second build comes from the cache" grep -q "Using cached stage 1 " "$TEST_TMP/x2.log"
expect_out "xattrs: the first image has them" \
  "[('security.capability', '0100000200200000000000000000000000000000'), ('user.berth', '6b657074')]" xattrs_of x1
expect_out "xattrs: the cached stage kept them" "$(xattrs_of x1)" xattrs_of x2

# --- two identical builds at once ---
echo "third-content" >"$OWN/data.txt"
b build --cache p1.sif cache.def >"$TEST_TMP/p1.log" 2>&1 &
p1=$!
b build --cache p2.sif cache.def >"$TEST_TMP/p2.log" 2>&1
p2rc=$?
wait "$p1"
p1rc=$?
check "two builds at once: both succeed" test "$p1rc" = 0 -a "$p2rc" = 0
expect_out "two builds at once: one entry per stage" "8" entries
expect_out "two builds at once: the first image runs" "run-two third-content" b run p1.sif
expect_out "two builds at once: the second image runs" "run-two third-content" b run p2.sif

# --- another user's identical build ---
if r build --cache root.sif cache.def >"$TEST_TMP/root.log" 2>&1; then ok "root: builds"
else bad "root: builds" "$(tail -5 "$TEST_TMP/root.log")"; fi
check "root's identical build does not use the user's entries" not_cached root
check "root's build ran %post" ran_post root
expect_out "root's stages are kept apart" "10" entries
expect_out "root: the image runs" "run-two third-content" r run root.sif

# --- cache list and clean ---
b cache list --long >"$TEST_TMP/list.out" 2>&1
expect_out "user: cache list shows their eight build-stage entries" "8" \
  sh -c "grep -c '^build-stage .* $(id -u "$TUSER")\$' '$TEST_TMP/list.out'"
check "user: cache list (Apptainer's form) counts them" \
  grep -q "There are 8 container file(s)" <(b cache list)
check "user: cache clean -T build-stage" sh -c "cd '$OWN' && runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' cache clean -f -T build-stage >/dev/null 2>&1"
expect_out "user: their entries are gone" "0" \
  sh -c "cd '$OWN' && runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' cache list --long | grep -c '^build-stage' || true"
expect_out "user: root's entries stay" "2" entries

# --- berth.conf build_cache = true ---
stop_test_daemon
start_daemon true
build conf1
build conf2
check "build_cache = true: the first build runs %post" ran_post conf1
check "build_cache = true: the second reuses both stages without --cache" cached conf2
expect_out "build_cache = true: the image runs" "run-two third-content" b run conf2.sif

check "staging removed" sh -c "[ -z \"\$(ls -A '$STAGE' 2>/dev/null)\" ]"
finish
