#!/usr/bin/env bash
# docker:// through berthd: a 3-layer image made with umoci + busybox-static
# (tests/oci/make_oci_image.sh: whiteouts, an opaque dir, hardlinks,
# symlinks, xattrs) is pushed to a real docker-registry with skopeo (OCI and
# Docker schema 2 manifests), pulled as root and as a plain user (each blob
# downloaded once; the conversion cached), compared with `umoci unpack` of
# the same image, and run; `berth exec docker://…` pulls and runs in one go.
#
# usage: docker_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
setup_binaries "$1" "$2"
bash "$HERE/../lib/ensure-test-user.sh" berthtest
start_registry r plain
reg=$REG_r
start_berthd "[registry]
insecure = [\"$reg\"]"
must "the OCI image" bash "$HERE/../oci/make_oci_image.sh" "$T/layout"
must "skopeo push (OCI manifest)" skopeo copy -q --dest-tls-verify=false "oci:$T/layout:test" "docker://$reg/test/busy:oci"
must "skopeo push (Docker schema 2)" skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$T/layout:test" "docker://$reg/test/busy:v2s2"

check "pull docker:// (OCI)" "$BERTH" pull -q "$T/oci.sif" "docker://$reg/test/busy:oci"
layers=$(grep -o '"GET /v2/test/busy/blobs/sha256:[0-9a-f]*' "$T/r.log" | sort | uniq -c | awk '$1 != 1' | wc -l)
[ "$layers" -eq 0 ] && ok "each blob downloaded once" || bad "each blob downloaded once" "$(grep -o 'GET /v2/test/busy/blobs/[^ ]*' "$T/r.log" | sort | uniq -c)"
nblobs=$(grep -c '"GET /v2/test/busy/blobs/' "$T/r.log")
[ "$nblobs" -ge 4 ] && ok "config + 3 layers fetched" || bad "config + 3 layers fetched" "$nblobs"
check "SIF has the OCI config and a squashfs" sh -c "'$BERTH' sif list '$T/oci.sif' | grep -q 'JSON.Generic' && '$BERTH' sif list '$T/oci.sif' | grep -q Squashfs"

# The container's tree against umoci's unpack of the same image.
must "umoci unpack of the reference layout" umoci unpack --image "$T/layout:test" "$T/unpacked"
tree_of() {  # the listing a container and the unpacked rootfs must share
  (cd "$1" && find data opq 2>/dev/null | sort | while read -r p; do
    printf '%s %s %s\n' "$p" "$(stat -c '%a %u:%g %F' "$p")" "$( [ -f "$p" ] && [ ! -L "$p" ] && sha256sum <"$p" | cut -c1-16)"
  done)
}
tree_of "$T/unpacked/rootfs" >"$T/want.txt"
mkdir -p "$T/mnt"
off=$(sif_partition_offset "$T/oci.sif")
if mount -t squashfs -o ro,loop,offset="$off" "$T/oci.sif" "$T/mnt" 2>"$T/mount.err"; then
  tree_of "$T/mnt" >"$T/got.txt"
  umount "$T/mnt"
  if diff -u "$T/want.txt" "$T/got.txt" >"$T/tree.diff"; then ok "tree matches umoci unpack"; else bad "tree matches umoci unpack" "$(head -c 800 "$T/tree.diff")"; fi
else
  bad "tree matches umoci unpack" "mount: $(cat "$T/mount.err")"
fi

expect_out "run docker image (Entrypoint/Cmd/Env/WorkingDir)" "$(printf 'hello from oci\n/work\nargs:')" \
  "$BERTH" run "$T/oci.sif"
expect_out "exec docker image" "changed keep" "$BERTH" exec "$T/oci.sif" cat /data/keep

mkdir -m 0700 "$T/u" && chown berthtest: "$T/u"
before=$(grep -c '"GET /v2/test/busy/blobs/' "$T/r.log")
check "pull docker:// (Docker schema 2) as a plain user" as_user berthtest "$BERTH" pull -q "$T/u/v2s2.sif" "docker://$reg/test/busy:v2s2"
[ "$(stat -c %U "$T/u/v2s2.sif")" = berthtest ] && ok "output owned by the caller" || bad "output owned by the caller" "$(stat -c %U "$T/u/v2s2.sif")"
check "pull the OCI tag again as the user" as_user berthtest "$BERTH" pull -q "$T/u/oci.sif" "docker://$reg/test/busy:oci"
after=$(grep -c '"GET /v2/test/busy/blobs/' "$T/r.log")
[ "$after" -eq "$before" ] && ok "repeat pulls download no blob" || bad "repeat pulls download no blob" "$before -> $after"
check "the cached conversion is identical" cmp -s "$T/oci.sif" "$T/u/oci.sif"
mkdir -p "$T/tmp"
expect_out "exec docker:// directly" "changed keep" env TMPDIR="$T/tmp" "$BERTH" exec "docker://$reg/test/busy:oci" cat /data/keep
[ -z "$(ls "$T/tmp")" ] && ok "run's temp image removed" || bad "run's temp image removed" "$(ls "$T/tmp")"

# An index (multi-platform): the node's platform is chosen, --arch picks
# another, an absent one is refused with the list of what there is.
mdigest=$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$reg/v2/test/busy/manifests/oci" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}')
msize=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$reg/v2/test/busy/manifests/oci" | wc -c)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$mdigest" "$msize" "$mdigest" "$msize" >"$T/index.json"
curl -s -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @"$T/index.json" \
  "http://$reg/v2/test/busy/manifests/multi" -o /dev/null -w '%{http_code}' | grep -q 201 ||
  bad "index pushed" "PUT failed"
check "pull an index (node's platform)" "$BERTH" pull -q "$T/multi.sif" "docker://$reg/test/busy:multi"
check "pull an index with --arch arm64" "$BERTH" pull -q --arch arm64 "$T/multi-arm.sif" "docker://$reg/test/busy:multi"
expect_fatal "an absent platform is refused" "linux/amd64" \
  "$BERTH" pull -q --arch s390x "$T/multi-s390x.sif" "docker://$reg/test/busy:multi"
# Apptainer's --arch-variant, folded into the platform berthd selects.
check "pull --arch arm64 --arch-variant v8" "$BERTH" pull -q --arch arm64 --arch-variant v8 "$T/multi-v8.sif" "docker://$reg/test/busy:multi"
expect_fatal "--arch-variant: an absent variant is refused" "linux/arm64/v8" \
  "$BERTH" pull -q --arch arm64 --arch-variant v7 "$T/multi-v7.sif" "docker://$reg/test/busy:multi"

# Local transports (the oci engineer's readers, driven through the daemon
# with descriptors the client opened as the user).
check "pull oci:DIR:TAG" "$BERTH" pull -q "$T/l-oci.sif" "oci:$T/layout:test"
expect_out "oci: image runs" "changed keep" "$BERTH" exec "$T/l-oci.sif" cat /data/keep
must "skopeo writes an oci-archive" skopeo copy -q "oci:$T/layout:test" "oci-archive:$T/img.oci.tar:test"
check "pull oci-archive:" "$BERTH" pull -q "$T/l-ocia.sif" "oci-archive:$T/img.oci.tar:test"
expect_out "oci-archive image runs" "changed keep" "$BERTH" exec "$T/l-ocia.sif" cat /data/keep
must "skopeo writes a docker-archive" skopeo copy -q "oci:$T/layout:test" "docker-archive:$T/img.docker.tar:test/busy:1"
check "pull docker-archive:" "$BERTH" pull -q "$T/l-da.sif" "docker-archive:$T/img.docker.tar"
expect_out "docker-archive image runs" "changed keep" "$BERTH" exec "$T/l-da.sif" cat /data/keep
chmod 0700 "$T/layout"
expect_fatal "a user cannot pull a layout they cannot read" "Permission denied" \
  as_user berthtest "$BERTH" pull -q "$T/u/stolen.sif" "oci:$T/layout:test"
[ ! -e "$T/u/stolen.sif" ] && ok "refused local pull leaves no file" || bad "refused local pull leaves no file" "exists"
finish
