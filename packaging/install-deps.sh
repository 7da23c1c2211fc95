#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of berth from Debian 12's
# archive. Idempotent: packages already present are left alone. apt-get only.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config g++ git ca-certificates
  clang-14 libclang-rt-14-dev clang-format-14
  # libraries named in the design
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libtomlplusplus-dev libyaml-cpp-dev libssl-dev libcurl4-openssl-dev libgpgme-dev
  libfuse3-dev fuse3 libsquashfuse-dev libarchive-dev libsquashfs-dev
  catch2
  # real peers used by tests and benchmarks
  siftool squashfs-tools squashfuse busybox-static bubblewrap hyperfine
  gnupg docker-registry umoci skopeo util-linux procps python3 file strace
  python3-cryptography curl bc openssl
  # a single-node Slurm with MPI for the Slurm tests (tests/slurm), the
  # SPANK plugin's header, and the MPI stacks the tests bind in
  slurmctld slurmd slurm-client munge libslurm-dev libpmix-dev
  mpich libmpich-dev openmpi-bin libopenmpi-dev
  # Debian packages (packaging/build-debs.sh), the clean root they are tested
  # in (tests/packaging), and the shells whose completion is tested
  debhelper dpkg-dev lintian debootstrap fish zsh man-db
  # independent checks of berth's output: the OCI image-spec's JSON schemas
  # and a validator for them (tests/registry/check_oci_schema.py)
  golang-github-opencontainers-image-spec-dev python3-jsonschema
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all ${#PACKAGES[@]} packages present"
fi
