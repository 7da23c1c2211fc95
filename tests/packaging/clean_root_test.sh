#!/usr/bin/env bash
# clean_root_test.sh SRC BUILD: the Debian packages, built from BUILD's
# binaries (packaging/build-debs.sh, lintian errors fail), installed with dpkg
# into a clean Debian 12 root (debootstrap --variant=minbase from this
# machine's own apt mirror, plus only what the packages' Depends name), and
# used there as an admin would: the packaged berthd started as its systemd
# unit says, `berth exec` of a small image through it as root and as a plain
# user, and `berth doctor` with no error. Also checks what the packages put
# where, and the modes of /etc/berth.
#
# The root is cached as a tarball under BUILD/deb, keyed by the dependency
# list, so later runs of the same clone skip debootstrap. Everything runs in
# a private mount namespace: mounts die with it, nothing lands in the host's
# mount table, and the daemon is this test's own (its own /run in the root).
# Needs root.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
debs=$build/deb
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '== %s (%ss)\n' "$*" "$SECONDS"; }

step "building the packages"
BERTH_BUILD_DIR=$build bash "$src/packaging/build-debs.sh" "$debs" >"$debs.log" 2>&1 || {
  cat "$debs.log" >&2
  fail "build-debs.sh"
}
grep -E '^E: ' "$debs/lintian.log" && fail "lintian errors"

# The Depends of both packages, without versions or alternatives' tails.
deps=$(for deb in "$debs"/*.deb; do dpkg-deb -f "$deb" Depends; done |
  tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v -e '^$' -e '^berth' | sort -u |
  while read -r dep; do
    # A virtual name from a shlibs file (libspdlog1.10-fmt9): debootstrap
    # wants the package that provides it, which this machine has installed.
    # (apt-cache show exits 0 for a purely virtual name too: look for a
    # record; grep reads it all, or pipefail would see apt-cache's SIGPIPE.)
    if apt-cache show "$dep" 2>/dev/null | grep '^Package:' >/dev/null; then echo "$dep"; else
      dpkg-query -W -f='${Package}\t${Provides}\n' | awk -F'\t' -v v="$dep" \
        '{ n = split($2, p, /, */); for (i = 1; i <= n; i++) { sub(/ .*/, "", p[i]); if (p[i] == v) { print $1; exit } } }'
    fi
  done | paste -sd, -)
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
[ -n "$mirror" ] || fail "no bookworm mirror in this machine's apt sources"
key=$(printf '%s %s' "$deps" "$mirror" | sha256sum | cut -c1-16)
tarball=$debs/rootfs-$key.tar
if [ ! -f "$tarball" ]; then
  step "debootstrap --variant=minbase bookworm from $mirror (cached as $tarball)"
  boot=$(mktemp -d "$debs/debootstrap-XXXXXX")
  debootstrap --variant=minbase --include="$deps" bookworm "$boot" "$mirror" >"$debs/debootstrap.log" 2>&1 || {
    tail -20 "$debs/debootstrap.log" >&2
    rm -rf "$boot"
    fail "debootstrap"
  }
  rm -rf "$boot"/var/cache/apt/archives/*.deb "$boot"/var/lib/apt/lists/*
  tar -C "$boot" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$boot"
fi

work=$(mktemp -d "$debs/root-XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir "$root"
step "unpacking the clean root"
tar -C "$root" -xf "$tarball"
mkdir -p "$root/pkgs"
cp "$debs"/*.deb "$root/pkgs/"
BERTH="$build/client/berth" bash "$src/packaging/make-busybox-image.sh" "$root/pkgs/busybox.sif" >/dev/null

step "installing and using the packages in the root"
unshare --mount --propagation private -- bash "$src/tests/packaging/in_root.sh" "$root"
step "passed"
