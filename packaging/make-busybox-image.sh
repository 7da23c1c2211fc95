#!/usr/bin/env bash
# make-busybox-image.sh OUT.sif: a small Apptainer-layout SIF from Debian's
# busybox-static, assembled with mksquashfs and `berth sif` only (no Apptainer).
set -euo pipefail
out=$1
berth=${BERTH:-berth}
work=$(mktemp -d /tmp/berth-img-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,var/tmp,etc,home,root,.singularity.d/{env,actions,libs}}
cp /bin/busybox "$root/bin/busybox"
for tool in sh echo cat ls id true false env sleep uname; do ln -s busybox "$root/bin/$tool"; done
: >"$root/etc/hosts"; : >"$root/etc/resolv.conf"
printf '#!/bin/sh\n\necho "hello from berth"\nexec "$@"\n' >"$root/.singularity.d/runscript"
chmod 0755 "$root/.singularity.d/runscript"
printf '{\n\t"org.label-schema.schema-version": "1.0"\n}' >"$root/.singularity.d/labels.json"
ln -s .singularity.d/runscript "$root/singularity"
printf 'Bootstrap: scratch\n\n%%runscript\n    echo "hello from berth"\n' >"$work/image.def"
mksquashfs "$root" "$work/root.sqfs" -noappend -all-root -quiet >/dev/null
case $(uname -m) in x86_64) arch=2 ;; aarch64) arch=4 ;; ppc64le) arch=6 ;; s390x) arch=11 ;; riscv64) arch=12 ;; *) arch=1 ;; esac
rm -f "$out"
"$berth" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$out"
"$berth" sif add --datatype 1 --groupid 1 "$out" "$work/image.def"
"$berth" sif add --datatype 4 --parttype 2 --partfs 1 --partarch "$arch" --groupid 1 "$out" "$work/root.sqfs"
