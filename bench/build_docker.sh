#!/usr/bin/env bash
# berth build (issue 11): a whole `Bootstrap: docker` build of a 5-layer
# image from a local docker-registry, with a trivial %post, against the same
# steps done by hand with the usual tools, same run:
#   berth: `berth build --no-https out.sif app.def` through a system berthd,
#          the node cache emptied first (every blob downloaded again);
#   peer:  `skopeo copy` into an OCI layout + `umoci unpack` + %post as
#          `unshare --mount --pid --fork chroot ROOTFS sh -c ...` +
#          `mksquashfs ROOTFS out.sqfs -comp zstd -Xcompression-level 3`
#          (berth's default compressor and level).
# The image: busybox in the first layer, then four layers copied from this
# machine (/usr/include, /usr/lib/python3.11, /usr/share/doc,
# /usr/lib/python3), made with umoci and pushed with skopeo.
# Alternating, REPS rounds; medians. The goal is berth <= 1.0x the peer.
#
# Usage (root): bench/build_docker.sh [BERTH] [BERTHD] [WORKER] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}" \
  "${3:-$here/../build/daemon/build/worker/berth-build-worker}"
reps=${4:-3}
bench_start_registry

# --- the image: five layers ---
oci=$bench_work/oci
umoci init --layout "$oci"
umoci new --image "$oci:img"
layer() {  # SOURCE...: one more layer holding copies of SOURCE (at the same paths)
  local bundle=$bench_work/bundle s
  rm -rf "$bundle"
  umoci unpack --image "$oci:img" "$bundle" >/dev/null
  for s in "$@"; do mkdir -p "$bundle/rootfs$(dirname "$s")" && cp -a "$s" "$bundle/rootfs$s"; done
  find "$bundle/rootfs" -xtype l -delete
  umoci repack --image "$oci:img" "$bundle" >/dev/null
  rm -rf "$bundle"
}
base=$bench_work/base
mkdir -p "$base/bin" "$base/etc" "$base/tmp"
cp /bin/busybox "$base/bin/busybox"
for t in sh echo cat ls; do ln -s busybox "$base/bin/$t"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$base/etc/passwd"
bundle=$bench_work/bundle
umoci unpack --image "$oci:img" "$bundle" >/dev/null
cp -a "$base/." "$bundle/rootfs/"
umoci repack --image "$oci:img" "$bundle" >/dev/null
rm -rf "$bundle"
layer /usr/include
layer /usr/lib/python3.11
layer /usr/share/doc
layer /usr/lib/python3
skopeo copy --quiet --dest-tls-verify=false "oci:$oci:img" "docker://$reg/bench/img:5"
layers=$(skopeo inspect --tls-verify=false "docker://$reg/bench/img:5" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Layers"]))')
image_mb=$(du -sm "$oci/blobs" | cut -f1)
printf 'Bootstrap: docker\nFrom: %s/bench/img:5\n\n%%post\n    echo built >/built\n' "$reg" >"$bench_work/app.def"

peer() {
  local p=$bench_work/peer
  rm -rf "$p" && mkdir -p "$p"
  skopeo copy --quiet --src-tls-verify=false "docker://$reg/bench/img:5" "oci:$p/oci:img"
  umoci unpack --image "$p/oci:img" "$p/bundle" >/dev/null
  unshare --mount --pid --fork chroot "$p/bundle/rootfs" /bin/sh -c 'echo built >/built'
  mksquashfs "$p/bundle/rootfs" "$p/out.sqfs" -comp zstd -Xcompression-level 3 -noappend -quiet >/dev/null
}
berth_build() {
  "$BERTH" cache clean -f >/dev/null 2>&1
  "$BERTH" build --force --no-https "$bench_work/out.sif" "$bench_work/app.def" \
    >/dev/null 2>"$bench_work/build.err" || { cat "$bench_work/build.err" >&2; exit 1; }
}
: >"$bench_work/times/berth" >"$bench_work/times/peer"
for ((i = 0; i < reps; i++)); do
  echo "round $((i + 1))/$reps" >&2
  start=$(now_ns); berth_build; end=$(now_ns)
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/berth"
  start=$(now_ns); peer; end=$(now_ns)
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/peer"
done
[ "$("$BERTH" exec "$bench_work/out.sif" cat /built)" = built ] || { echo "the built image does not run" >&2; exit 1; }
echo "per round (s): berth $(tr "\n" " " <"$bench_work/times/berth")/ by hand $(tr "\n" " " <"$bench_work/times/peer")"
read -r b _ <<<"$(bench_stats berth)"
read -r p _ <<<"$(bench_stats peer)"
echo "image: $layers layers, $image_mb MB of blobs; $(nproc) CPUs; $reps rounds; medians"
printf 'berth build (docker base, %%post, squash)  %8.0f ms  (SIF %s MB)\n' "$b" "$(($(stat -c %s "$bench_work/out.sif") / 1048576))"
printf 'skopeo + umoci + unshare + mksquashfs    %8.0f ms  (%s MB)\n' "$p" "$(($(stat -c %s "$bench_work/peer/out.sqfs") / 1048576))"
printf 'ratio berth / by hand                    %8.2f x\n' "$(echo "scale=4; $b / $p" | bc)"
grep -o 'Build phases:.*' "$bench_work/build.err" | head -1
