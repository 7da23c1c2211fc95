#!/usr/bin/env bash
# make_mpi_image.sh BERTH OUT.sif KIND: an MPI test image, built from the
# host's Debian packages with mksquashfs and `berth sif` (as
# tests/integration/make_test_image.sh does).
#   mpich    /hello and /pingpong built with MPICH, with every library they
#            load, UCX's transport modules included (a hybrid image: its own
#            MPI, talking to Slurm's PMI-2)
#   openmpi  the same with Open MPI 4.1, its component directories
#            (openmpi3, pmix) and their libraries, help files and config
#   app      /hello built with MPICH but holding only it, libc and the
#            loader: runs only with a host MPICH bound in (--mpi=mpich)
#   oldlibc  like app, but its libc.so.6 is a stub that defines the glibc
#            symbol versions only up to GLIBC_2.17 (CentOS 7's), so host
#            libraries built for a newer glibc must be refused
# Every image also holds busybox (sh and friends).
set -euo pipefail
berth=$1 out=$2 kind=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/berth-mpiimg-XXXXXX)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r"/{bin,dev,proc,sys,tmp,var/tmp,etc,home,root,usr/bin,.singularity.d/env}
cp /bin/busybox "$r/bin/busybox"
for t in sh echo cat ls env sleep true false grep readlink stat id test kill wc head; do
  ln -sf busybox "$r/bin/$t"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"

# copy_libs FILE...: each file's shared libraries (ldd's closure), at their paths.
copy_libs() {
  local lib
  for lib in $(ldd "$@" 2>/dev/null | grep -o '=> /[^ ]*' | cut -c4- | sort -u); do
    [ -e "$r$lib" ] || { mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"; }
  done
}

# copy_tree DIR: a host directory at the same path.
copy_tree() {
  mkdir -p "$r$(dirname "$1")" && cp -a "$1" "$r$1"
}

loader=/lib64/ld-linux-x86-64.so.2
libc=/lib/x86_64-linux-gnu/libc.so.6
mkdir -p "$r/lib64" "$r/lib/x86_64-linux-gnu"
cp -L "$loader" "$r$loader"

case $kind in
  mpich)
    mpicc.mpich -O2 -o "$r/hello" "$here/mpi/hello.c"
    mpicc.mpich -O2 -o "$r/pingpong" "$here/mpi/pingpong.c"
    copy_libs "$r/hello" "$r/pingpong"
    # MPICH's ch4:ucx device: UCX loads its transports (CMA among them) from
    # this directory at run time, so ldd does not list them. Without them
    # UCX falls back to copies through shared memory.
    copy_tree /usr/lib/x86_64-linux-gnu/ucx
    copy_libs /usr/lib/x86_64-linux-gnu/ucx/*.so
    ;;
  openmpi)
    mpicc.openmpi -O2 -o "$r/hello" "$here/mpi/hello.c"
    mpicc.openmpi -O2 -o "$r/pingpong" "$here/mpi/pingpong.c"
    copy_libs "$r/hello" "$r/pingpong"
    for d in /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix \
      /usr/share/openmpi /etc/openmpi; do
      copy_tree "$d"
    done
    copy_libs /usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix/*.so
    ;;
  app)
    mpicc.mpich -O2 -o "$r/hello" "$here/mpi/hello.c"
    cp -L "$libc" "$r$libc"
    ;;
  oldlibc)
    mpicc.mpich -O2 -o "$r/hello" "$here/mpi/hello.c"
    # A libc.so.6 defining the symbol versions of glibc 2.2.5 .. 2.17 only.
    {
      echo 'GLIBC_2.2.5 { global: berth_stub_libc; local: *; };'
      prev=GLIBC_2.2.5
      for v in 2.2.6 2.3 2.3.2 2.3.3 2.3.4 2.4 2.5 2.6 2.7 2.8 2.9 2.10 2.11 2.12 2.13 2.14 2.15 2.16 2.17; do
        echo "GLIBC_$v { } $prev;"
        prev=GLIBC_$v
      done
    } >"$work/libc.map"
    echo 'int berth_stub_libc(void) { return 217; }' >"$work/stub.c"
    gcc -shared -nostdlib -fPIC -Wl,-soname,libc.so.6 -Wl,--version-script="$work/libc.map" \
      -o "$r$libc" "$work/stub.c"
    ;;
  *) echo "make_mpi_image.sh: unknown kind $kind" >&2; exit 2 ;;
esac
# busybox is static: no library of its own. The image's own loader cache,
# as a real image's (ldconfig -r writes it from the image's libraries).
mkdir -p "$r/etc"
: >"$r/etc/ld.so.conf"
ldconfig -r "$r" 2>/dev/null || true
mksquashfs "$r" "$work/root.sqfs" -noappend -all-root -quiet >/dev/null
rm -f "$out"
"$berth" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$out"
"$berth" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$out" "$work/root.sqfs"
chmod 0644 "$out"
