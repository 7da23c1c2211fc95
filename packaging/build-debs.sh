#!/usr/bin/env bash
# build-debs.sh [OUT_DIR]: the berth and berthd Debian packages, from
# packaging/debian with dpkg-buildpackage and debhelper, checked by lintian
# (any error fails). Packages land in OUT_DIR (default build/deb).
#
#   BERTH_BUILD_DIR=DIR  package that configured and built tree (CI packages
#                        the binaries its tests ran: no second build);
#   unset                dpkg-buildpackage builds from scratch, hardening=+all,
#                        as a site's release build does.
#
# dpkg-buildpackage wants debian/ at the top of the source tree: it runs in
# OUT_DIR/src, a tree of links to this checkout plus a copy of packaging/debian,
# so the checkout itself is never written to.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$here/build/deb}" && cd "${1:-$here/build/deb}" && pwd)
stage=$out/src

rm -rf "$stage" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$stage"
for entry in "$here"/*; do
  [ "$(basename "$entry")" = build ] || ln -s "$entry" "$stage/"
done
cp -rL "$here/packaging/debian" "$stage/debian"

if [ -n "${BERTH_BUILD_DIR:-}" ]; then
  export BERTH_BUILD_DIR=$(cd "$BERTH_BUILD_DIR" && pwd)
  # Debug symbols stay in the build tree; CI needs no -dbgsym packages.
  export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} noddebs"
fi
(cd "$stage" && dpkg-buildpackage -b -us -uc --no-sign) >"$out/dpkg-buildpackage.log" 2>&1 || {
  tail -40 "$out/dpkg-buildpackage.log" >&2
  echo "FATAL:   dpkg-buildpackage failed; the whole log is $out/dpkg-buildpackage.log" >&2
  exit 1
}
changes=$(ls "$out"/berth_*.changes)
lintian --fail-on error "$changes" \
  | tee "$out/lintian.log"
ls "$out"/*.deb
