#!/usr/bin/env bash
# gpu_real_check.sh: the one check issue 13 asks of a machine with an NVIDIA
# GPU (not part of .ci/run; nothing is faked here). As root, from the
# repository: builds berth, starts a private system berthd (its own socket,
# config and state in a temp directory, the shipped nvliblist.conf), makes a
# small image (busybox, a CUDA driver-API device query, the host's glibc),
# and compares, on the host and in `berth exec --nv`:
#   - nvidia-smi -L
#   - the device query (cuInit, count, name, UUID, memory of each device)
#   - with CUDA_VISIBLE_DEVICES=0: the container's /dev and device count
# Prints a markdown block to paste into the issue's closing note; exits
# non-zero when a comparison fails.
#
# Usage (root): bench/gpu_real_check.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ "$(id -u)" = 0 ] || { echo "run as root (starts berthd)" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi: not an NVIDIA machine" >&2; exit 2; }
if [ ! -x "$build/daemon/berthd" ] || [ ! -x "$build/client/berth" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBERTH_TESTS=OFF >/dev/null
  ninja -C "$build" berth berthd >/dev/null
fi
work=$(mktemp -d /tmp/berth-gpu-real-XXXXXX)
daemon=
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"
berth=$build/client/berth

# The device query: the CUDA driver API through dlopen, as a CUDA program
# finds libcuda.so.1 (here: /.singularity.d/libs on LD_LIBRARY_PATH).
cat >"$work/query.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
typedef int (*init_t)(unsigned); typedef int (*count_t)(int*); typedef int (*get_t)(int*, int);
typedef int (*name_t)(char*, int, int); typedef int (*uuid_t)(unsigned char*, int);
typedef int (*mem_t)(size_t*, int);
int main(void) {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  if (!cuda) { printf("dlopen libcuda.so.1: %s\n", dlerror()); return 1; }
  init_t init = (init_t)dlsym(cuda, "cuInit"); count_t count = (count_t)dlsym(cuda, "cuDeviceGetCount");
  get_t get = (get_t)dlsym(cuda, "cuDeviceGet"); name_t name = (name_t)dlsym(cuda, "cuDeviceGetName");
  uuid_t uuid = (uuid_t)dlsym(cuda, "cuDeviceGetUuid"); mem_t mem = (mem_t)dlsym(cuda, "cuDeviceTotalMem_v2");
  int rc = init(0), n = 0;
  if (rc != 0) { printf("cuInit: error %d\n", rc); return 1; }
  count(&n);
  printf("devices: %d\n", n);
  for (int i = 0; i < n; ++i) {
    int d; char nm[256] = {0}; unsigned char u[16] = {0}; size_t bytes = 0;
    get(&d, i); name(nm, sizeof nm, d); uuid(u, d); mem(&bytes, d);
    printf("device %d: %s, %zu MiB, GPU-", i, nm, bytes >> 20);
    for (int k = 0; k < 16; ++k) printf("%02x%s", u[k], (k == 3 || k == 5 || k == 7 || k == 9) ? "-" : "");
    printf("\n");
  }
  return 0;
}
C
gcc -O2 -o "$work/query" "$work/query.c" -ldl

# The image: busybox, the query, and the host's glibc (nvidia-smi, bound in
# by --nv from the host, needs it too).
r=$work/rootfs
mkdir -p "$r"/{bin,dev,proc,sys,tmp,var/tmp,etc,home,root,usr/bin,.singularity.d/{env,libs}}
cp /bin/busybox "$r/bin/busybox"
for t in sh ls cat echo grep wc true env; do ln -sf busybox "$r/bin/$t"; done
cp "$work/query" "$r/usr/bin/cuda-query"
for bin in "$work/query" "$(command -v nvidia-smi)"; do
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
mksquashfs "$r" "$work/root.sqfs" -noappend -all-root -quiet >/dev/null
printf 'Bootstrap: scratch\n' >"$work/image.def"
"$berth" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$work/img.sif"
"$berth" sif add --datatype 1 --groupid 1 "$work/img.sif" "$work/image.def"
"$berth" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$work/img.sif" "$work/root.sqfs"

mkdir -p "$work/etc"
install -m 0644 "$here/packaging/nvliblist.conf" "$work/etc/nvliblist.conf"
"$build/daemon/berthd" --socket "$work/berthd.sock" --config-dir "$work/etc" \
  --state-dir "$work/state" --foreground 2>"$work/berthd.log" &
daemon=$!
for _ in $(seq 50); do [ -S "$work/berthd.sock" ] && break; sleep 0.1; done
export BERTH_SOCKET=$work/berthd.sock
b() { "$berth" exec --nv "$work/img.sif" "$@"; }

fail=0
compare() {  # NAME HOST_OUTPUT CONTAINER_OUTPUT
  if [ "$2" = "$3" ]; then echo "- $1: **same** on the host and in the container"
  else echo "- $1: **DIFFERENT**"; fail=1; fi
}
host_smi=$(nvidia-smi -L)
cont_smi=$(b nvidia-smi -L 2>&1 || true)
host_query=$(unset CUDA_VISIBLE_DEVICES; "$work/query" 2>&1 || true)
cont_query=$(env -u CUDA_VISIBLE_DEVICES "$berth" exec --nv "$work/img.sif" cuda-query 2>&1 || true)
one_dev=$(CUDA_VISIBLE_DEVICES=0 b sh -c 'echo "$(ls /dev | grep "^nvidia" | tr "\n" " ")CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"' 2>&1 || true)
one_query=$(CUDA_VISIBLE_DEVICES=0 b cuda-query 2>&1 | head -2 || true)
echo "### berth --nv on a real GPU ($(uname -r), driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1))"
echo
echo "berth $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?'); $(grep -o '[0-9]* libraries and [0-9]* other files' "$work/berthd.log" | head -1) bound by --nv."
echo
compare "nvidia-smi -L" "$host_smi" "$cont_smi"
compare "CUDA device query (count, name, memory, UUID)" "$host_query" "$cont_query"
echo
echo '```'
echo "\$ nvidia-smi -L                              # host"
echo "$host_smi"
echo "\$ berth exec --nv img.sif nvidia-smi -L     # container"
echo "$cont_smi"
echo "\$ berth exec --nv img.sif cuda-query"
echo "$cont_query"
echo "\$ CUDA_VISIBLE_DEVICES=0 berth exec --nv img.sif ...   # /dev, and the query's first lines"
echo "$one_dev"
echo "$one_query"
echo '```'
case "$one_query" in "devices: 1"*) ;; *) echo "CUDA_VISIBLE_DEVICES=0: expected one device"; fail=1 ;; esac
exit "$fail"
