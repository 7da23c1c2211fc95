#!/usr/bin/env bash
# make_fake_driver_root.sh ROOT NVLIBLIST: a fake NVIDIA driver root for the
# GPU tests and bench/gpu_start.sh (no GPU needed), shaped like a real node:
#   - every library NVLIBLIST names, as a stub ELF shared object of this
#     machine at <lib>.so.1, registered in ROOT/etc/ld.so.cache by
#     `ldconfig -r ROOT`; libcuda as the driver ships it (libcuda.so.550.54.14
#     with the soname libcuda.so.1, whose symlink ldconfig makes), and
#     libnvidia-extra.so.550.54.14 with symlinks libnvidia-extra.so.1 and
#     libnvidia-extra.so, for list entries naming an absolute path;
#   - nvidia-smi and nvidia-debugdump as shell scripts in ROOT/usr/bin;
#   - /dev/nvidiactl, nvidia-uvm, nvidia0, nvidia1 made with mknod (195:N,
#     the driver's numbers; no driver answers them, `ls` and access() work),
#     and /dev/nvidia9 as a regular file (not a GPU);
#   - the persistenced socket, a Vulkan ICD file, and the driver's /proc
#     information files with GPU UUIDs.
# Needs root (mknod, ldconfig -r chroots). Prints the number of libraries.
set -euo pipefail
root=$1 list=$2
lib=$root/usr/lib/x86_64-linux-gnu
mkdir -p "$lib" "$root/usr/bin" "$root/etc" "$root/dev" \
  "$root/var/run/nvidia-persistenced" "$root/usr/share/vulkan/icd.d"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo 'int berth_stub(void) { return 42; }' >"$work/stub.c"
gcc -shared -fPIC -o "$work/stub.so" "$work/stub.c"
names=$(grep -v '^#' "$list" | grep -F '.so' | grep -v '^/' | sed 's/\.so.*$//' | sort -u)
for name in $names; do cp "$work/stub.so" "$lib/$name.so.1"; done
rm "$lib/libcuda.so.1"
gcc -shared -fPIC -o "$lib/libcuda.so.550.54.14" -Wl,-soname,libcuda.so.1 "$work/stub.c"
cp "$work/stub.so" "$lib/libnvidia-extra.so.550.54.14"
ln -s libnvidia-extra.so.550.54.14 "$lib/libnvidia-extra.so.1"
ln -s libnvidia-extra.so.1 "$lib/libnvidia-extra.so"
echo /usr/lib/x86_64-linux-gnu >"$root/etc/ld.so.conf"
ldconfig -r "$root" 2>/dev/null
for tool in nvidia-smi nvidia-debugdump; do
  printf '#!/bin/sh\necho "%s (fake): GPU 0: Fake GPU (UUID: GPU-00000000-1111-2222-3333-444444444444)"\n' \
    "$tool" >"$root/usr/bin/$tool"
  chmod 0755 "$root/usr/bin/$tool"
done
mknod -m 0666 "$root/dev/nvidiactl" c 195 255
mknod -m 0666 "$root/dev/nvidia-uvm" c 511 0
mknod -m 0666 "$root/dev/nvidia0" c 195 0
mknod -m 0666 "$root/dev/nvidia1" c 195 1
# Named like a GPU but not a device node: never a GPU.
echo not-a-device >"$root/dev/nvidia9"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
  "$root/var/run/nvidia-persistenced/socket"
echo '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0"}}' \
  >"$root/usr/share/vulkan/icd.d/nvidia_icd.json"
for i in 0 1; do
  d=$root/proc/driver/nvidia/gpus/0000:0$i:00.0
  mkdir -p "$d"
  printf 'Model: \t\tFake GPU\nGPU UUID: \t\tGPU-0000000%d-aaaa-bbbb-cccc-dddddddddddd\nDevice Minor: \t\t%d\n' \
    "$i" "$i" >"$d/information"
done
chmod -R go-w "$root"
printf '%s\n' $names | wc -l
