#!/usr/bin/env bash
# docker:// to SIF (issue 4): a >= 300 MB image in 5 layers (/usr/include,
# /usr/lib/python3.11, /usr/lib/python3, /usr/share/doc of this machine, and
# a last layer with a whiteout and a file), gzip layers, pushed with skopeo
# to a local docker-registry (plain HTTP on 127.0.0.1), then converted,
# alternating, with an empty node cache each round:
#   berth:  `berth pull -F OUT.sif docker://…` through a system-mode berthd:
#           download (digests checked while streaming), layers applied
#           top-down straight into libsquashfs, the SIF written;
#   peer:   the obvious pipeline, `skopeo copy docker://… oci:DIR` +
#           `umoci unpack` + `mksquashfs ROOTFS OUT -comp gzip` (both sides
#           gzip, mksquashfs's default block size, as berth's).
# Median of REPS rounds of wall time; the goal is berth <= 1.0x the peer.
#
# Usage (root): bench/oci_convert.sh [BERTH] [BERTHD] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
reps=${3:-3}
bench_start_registry

# --- the image: an OCI layout written here, pushed by skopeo ---
layout=$bench_work/layout
mkdir -p "$layout/blobs/sha256" "$bench_work/l5/etc" "$bench_work/l5/usr/include"
echo bench >"$bench_work/l5/etc/bench-marker"
: >"$bench_work/l5/usr/include/.wh.linux"  # deletes /usr/include/linux of layer 1
layer() {  # DIR PATH...: one gzip layer of PATHs under DIR; prints "digest diffid size"
  local dir=$1; shift
  local tmp=$layout/tmp
  tar -C "$dir" --numeric-owner -cf - "$@" |
    tee >(sha256sum | cut -d' ' -f1 >"$tmp.diffid") | gzip -1 >"$tmp"
  local digest diffid
  digest=$(sha256sum "$tmp" | cut -d' ' -f1)
  diffid=$(cat "$tmp.diffid")
  mv "$tmp" "$layout/blobs/sha256/$digest"
  echo "$digest $diffid $(stat -c %s "$layout/blobs/sha256/$digest")"
}
layers=()
layers+=("$(layer / usr/include)")
layers+=("$(layer / usr/lib/python3.11)")
layers+=("$(layer / usr/lib/python3)")
layers+=("$(layer / usr/share/doc)")
layers+=("$(layer "$bench_work/l5" etc usr)")
python3 - "$layout" "${layers[@]}" <<'PY'
import hashlib, json, os, sys
layout, layers = sys.argv[1], [l.split() for l in sys.argv[2:]]
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(layout, "blobs/sha256", d), "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
config = blob(json.dumps({
    "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + l[1] for l in layers]},
}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = blob(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config,
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + l[0], "size": int(l[2])} for l in layers],
}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(os.path.join(layout, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
PY
skopeo copy -q --dest-tls-verify=false "oci:$layout:v1" "docker://$reg/bench/big:v1"
unpacked=$(for l in "${layers[@]}"; do set -- $l; echo "$3"; done | paste -sd+ | bc)
tree_mb=$(du -scm /usr/include /usr/lib/python3.11 /usr/lib/python3 /usr/share/doc | tail -1 | cut -f1)

t_berth=() t_peer=()
now() { date +%s.%N; }
for ((i = 0; i < reps; i++)); do
  "$BERTH" cache clean >/dev/null 2>&1
  rm -rf "$bench_work/a.sif" "$bench_work/p" "$bench_work/b.sqfs"
  mkdir "$bench_work/p"
  sync
  s=$(now); "$BERTH" pull -q -F "$bench_work/a.sif" "docker://$reg/bench/big:v1"; e=$(now)
  t_berth+=("$(echo "$e - $s" | bc -l)")
  sync
  s=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$reg/bench/big:v1" "oci:$bench_work/p/layout:v1"
  umoci unpack --image "$bench_work/p/layout:v1" "$bench_work/p/bundle" >/dev/null
  mksquashfs "$bench_work/p/bundle/rootfs" "$bench_work/b.sqfs" -comp gzip -noappend -quiet >/dev/null
  e=$(now)
  t_peer+=("$(echo "$e - $s" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${t_berth[@]}") mp=$(median "${t_peer[@]}")
printf 'image: 5 gzip layers, %d MB compressed, a %d MB tree; %d rounds (interleaved, empty cache)\n' \
  "$((unpacked / 1000000))" "$tree_mb" "$reps"
printf 'output: berth SIF %d MB, peer squashfs %d MB\n' \
  "$(($(stat -c %s "$bench_work/a.sif") / 1000000))" "$(($(stat -c %s "$bench_work/b.sqfs") / 1000000))"
printf 'berth pull docker:// -> SIF:                 median %.2f s   [%s]\n' "$mb" "${t_berth[*]}"
printf 'skopeo copy + umoci unpack + mksquashfs:      median %.2f s   [%s]\n' "$mp" "${t_peer[*]}"
ratio=$(echo "$mb / $mp" | bc -l)
printf 'ratio (berth time / peer time): %.2fx -> %s\n' "$ratio" \
  "$(echo "$ratio <= 1.0" | bc -l | sed 's/1/met (goal <= 1.0x)/; s/^0$/not met (goal <= 1.0x)/')"
