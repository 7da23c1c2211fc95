#!/usr/bin/env bash
# make_test_image.sh BERTH OUT.sif [MARKER]: an image shaped like Apptainer builds them
# (formats.md §5.5), without Apptainer: busybox-static, a dynamically linked
# program with its libraries, a setuid-root copy of it, /.singularity.d with
# env scripts, a runscript that echoes its arguments, labels and a help text,
# squashed with mksquashfs and assembled with `berth sif`. /opt/marker holds
# MARKER (default "image-file"), so images built for different roles can be
# told apart by what a container prints.
set -euo pipefail
berth=$1 out=$2 marker=${3:-image-file}
work=$(mktemp -d /tmp/berth-timg-XXXXXX)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r"/{bin,dev,proc,sys,tmp,var/tmp,etc,home,root,opt,usr/bin,data}
mkdir -m 1777 "$r/scratch"  # world-writable, like /tmp: --writable-tmpfs tests write here
mkdir -p "$r"/.singularity.d/{env,actions,libs}
cp /bin/busybox "$r/bin/busybox"
for t in sh echo cat ls id env sleep true false grep head tail wc sha256sum stat touch \
  readlink mkdir rm printf test kill pwd uname dd cut tr sort seq taskset; do
  ln -sf busybox "$r/bin/$t"
done
# A dynamically linked program and exactly the libraries it needs.
cp /usr/bin/id "$r/usr/bin/dyn-id"
for lib in $(ldd /usr/bin/id | grep -o '/[^ ]*'); do
  mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
done
cp "$r/usr/bin/dyn-id" "$r/usr/bin/suid-id" && chmod 4755 "$r/usr/bin/suid-id"
printf 'root:x:0:0:root:/root:/bin/sh\nimguser:x:4242:4242::/home/imguser:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\nimggroup:x:4242:\n' >"$r/etc/group"
: >"$r/etc/hosts"; : >"$r/etc/resolv.conf"
echo "$marker" >"$r/opt/marker"
cat >"$r/.singularity.d/env/90-environment.sh" <<'ENV'
#!/bin/sh
export IMAGE_VAR=from-image
export OVERRIDE_ME=image
ENV
cat >"$r/.singularity.d/env/99-base.sh" <<'ENV'
#!/bin/sh
export IMAGE_LAST=99
ENV
cat >"$r/.singularity.d/runscript" <<'RUN'
#!/bin/sh

echo "runscript args: $*"
RUN
chmod 0755 "$r"/.singularity.d/env/*.sh "$r/.singularity.d/runscript"
printf '{\n\t"org.label-schema.schema-version": "1.0",\n\t"maintainer": "berth tests"\n}' \
  >"$r/.singularity.d/labels.json"
echo "This image tests berth." >"$r/.singularity.d/runscript.help"
ln -s .singularity.d/runscript "$r/singularity"
printf 'Bootstrap: scratch\n\n%%runscript\n    echo "runscript args: $*"\n' >"$work/image.def"
cp "$work/image.def" "$r/.singularity.d/Singularity"
# $BERTH_TEST_IMAGE_EXTRA (a directory) is copied over the tree last, for
# tests that need more (a %test script, SCIF apps).
if [ -n "${BERTH_TEST_IMAGE_EXTRA:-}" ]; then cp -a "$BERTH_TEST_IMAGE_EXTRA/." "$r/"; fi
mksquashfs "$r" "$work/root.sqfs" -noappend -all-root -quiet >/dev/null
# $BERTH_TEST_SQFS_OUT: also keep the bare squashfs (tests of non-SIF images).
if [ -n "${BERTH_TEST_SQFS_OUT:-}" ]; then cp "$work/root.sqfs" "$BERTH_TEST_SQFS_OUT"; fi
rm -f "$out"
"$berth" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$out"
"$berth" sif add --datatype 1 --groupid 1 "$out" "$work/image.def"
"$berth" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$out" "$work/root.sqfs"
chmod 0644 "$out"
