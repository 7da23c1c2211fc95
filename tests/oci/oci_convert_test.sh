#!/usr/bin/env bash
# oci_convert_test.sh OCI_TO_SIF BERTH BERTHD: OCI image -> SIF end to end.
# The image (3 layers: whiteouts, opaque dir, hardlinks, symlinks, xattrs,
# devices and setuid as root) is built offline with umoci; the SIF's squashfs
# must unpack to the same tree as `umoci unpack`; docker-archive and
# oci-archive copies (skopeo) must convert the same; hostile layers must fail
# with one FATAL line and leave no output; the conversion must work as an
# unprivileged user; `berth run` must run the entrypoint with the image's Env
# and WorkingDir.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
TOOL=$(realpath "$1") BERTH=$(realpath "$2") BERTHD=$(realpath "$3")
TEST_TMP=$(mktemp -d /tmp/berth-oci-XXXXXX)
chmod 0755 "$TEST_TMP"
daemon_pid=
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$TEST_TMP"; }
trap cleanup EXIT
cd "$TEST_TMP"

bash "$here/make_oci_image.sh" img || { bad setup "umoci image"; finish; }
umoci unpack --image img:test ref >/dev/null || { bad setup "umoci unpack"; finish; }

converted_matches() {  # converted_matches REF SIF: unsquashfs + compare
  local sif=$2 dir=$TEST_TMP/sq.$RANDOM
  local off
  off=$(siftool list "$sif" | awk -F'|' '/FS \(Squashfs/ {split($4, a, "-"); print a[1]+0}')
  unsquashfs -no-progress -o "$off" -d "$dir" "$sif" >/dev/null && python3 "$here/compare_trees.py" ref/rootfs "$dir"
}

check "convert oci layout (gzip)" "$TOOL" oci:img:test out.sif
check "tree matches umoci unpack" converted_matches ref out.sif
expect_out "SIF objects as Apptainer writes them" "JSON.Generic FS (Squashfs/*System/amd64)" \
  bash -c "siftool list out.sif | awk -F'|' 'NR>3 {print \$5}' | xargs"
check "squashfs is gzip" bash -c "unsquashfs -s -o 32768 out.sif | grep -q 'Compression gzip'"
check "convert with zstd" "$TOOL" --zstd oci:img:test outz.sif
check "zstd tree matches" converted_matches ref outz.sif
check "skopeo docker-archive" skopeo copy -q oci:img:test docker-archive:d.tar:test/img:1
check "convert docker-archive" "$TOOL" docker-archive:d.tar out-d.sif
check "docker-archive tree matches" converted_matches ref out-d.sif
check "skopeo oci-archive" skopeo copy -q oci:img:test oci-archive:o.tar:test
check "convert oci-archive" "$TOOL" oci-archive:o.tar:test out-o.sif
check "oci-archive tree matches" converted_matches ref out-o.sif
expect_fatal "unknown tag" "no image tagged" "$TOOL" oci:img:nope x.sif

# --- hostile layers: one FATAL line, no output file ---
hostile() {  # hostile NAME KIND: a one-layer layout whose tar is hostile
  python3 "$here/make_hostile_layout.py" "$TEST_TMP/h-$2" "$2" || return 1
  expect_fatal "$1" "$3" "$TOOL" "oci:$TEST_TMP/h-$2" "h-$2.sif"
  if [ -e "h-$2.sif" ] || [ -e "h-$2.sif.tmp" ]; then bad "$1 leaves no file" "output exists"; else ok "$1 leaves no file"; fi
}
hostile "dot-dot path" dotdot "'..'"
hostile "absolute path" absolute "absolute path"
hostile "hardlink to a missing target" badlink "does not contain before it"
hostile "entry below a symlink" undersymlink "non-directory"
hostile "truncated gzip" truncated "layer 1"
hostile "corrupt gzip" corrupt "layer 1"
hostile "blob digest mismatch" baddigest "does not match its digest"
hostile "symlinked blob" symlinkblob "opening blobs"

# --- unprivileged conversion ---
bash "$here/../lib/ensure-test-user.sh" >/dev/null
install -d -o berthtest "$TEST_TMP/user"
chmod -R a+rX img
check "convert as an unprivileged user" runuser -u berthtest -- "$TOOL" oci:img:test "$TEST_TMP/user/u.sif"
check "user's SIF keeps root-owned setuid file" bash -c \
  "unsquashfs -lln -o 32768 '$TEST_TMP/user/u.sif' | grep -q -- '-rwsr-xr-x 1234/5678.*data/suid'"

# --- berth run behaves like docker run ---
mkdir -p etc run
"$BERTHD" --socket "$TEST_TMP/run/berthd.sock" --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/state" --foreground 2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
if wait_until 10 test -S "$TEST_TMP/run/berthd.sock"; then
  expect_out "run: entrypoint, Env, WorkingDir" "hello from oci
/work
args:" env BERTH_SOCKET="$TEST_TMP/run/berthd.sock" "$BERTH" run out.sif
  expect_out "run: args replace Cmd" "replaced" env BERTH_SOCKET="$TEST_TMP/run/berthd.sock" "$BERTH" run out.sif 'echo replaced'
  expect_out "exec: image env with quotes" 'a "b" $c' env BERTH_SOCKET="$TEST_TMP/run/berthd.sock" "$BERTH" exec out.sif sh -c 'echo "$QUOTED"'
else
  bad "daemon starts" "$(cat berthd.log)"
fi
finish
