#!/usr/bin/env bash
# Integration test of `berth inspect` and `berth run-help`, which read an
# image's metadata as the user, with no daemon and no mount. It checks:
# - every flag's output, byte for byte, in Apptainer's formats
#   (cmd/internal/cli/inspect.go);
# - --json and --all parse and carry the labels;
# - a SIF's inspect-metadata.json object wins over the squashfs files;
# - hostile images (garbage partition, truncation, symlink loops, a 10 MB
#   help file, wrong partition types) each give one FATAL line and a non-zero
#   exit, within `timeout 10`.
#
# usage: inspect_test.sh BERTH
# As root it builds the images, runs the checks, then runs them again as the
# unprivileged user `berthtest` (created if missing) on the same images; run
# by anyone else it fails, since it cannot make that second pass.
# Internal: inspect_test.sh BERTH IMAGES_DIR runs only the checks.
set -u

here=$(cd "$(dirname "$0")" && pwd)
TEST_TMP=$(mktemp -d /tmp/berth-inspect-XXXXXX)
trap 'rm -rf "$TEST_TMP"' EXIT
source "$here/lib.sh"
B() { timeout 10 "$berth" "$@"; }

# expect_exact NAME WANT CMD...: stdout is exactly WANT (trailing newlines
# included), exit 0.
expect_exact() {
  local name=$1 want=$2; shift 2
  "$@" >"$TEST_TMP/got" 2>"$TEST_TMP/stderr"
  local rc=$?
  printf '%s' "$want" >"$TEST_TMP/want"
  if [ "$rc" -eq 0 ] && cmp -s "$TEST_TMP/got" "$TEST_TMP/want"; then ok "$name"
  else bad "$name" "rc=$rc diff: $(diff "$TEST_TMP/want" "$TEST_TMP/got" | head -20) stderr: $(head -c 300 "$TEST_TMP/stderr")"; fi
}

# mksif OUT SQUASHFS [DEFFILE [METADATA_JSON]]: a SIF laid out as `apptainer
# build` writes it (formats.md §1.8).
mksif() {
  local out=$1 sqfs=$2 def=${3:-} meta=${4:-}
  "$berth" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$out" &&
    { [ -z "$def" ] || "$berth" sif add --datatype 1 --groupid 1 "$out" "$def"; } &&
    { [ -z "$meta" ] || "$berth" sif add --datatype 6 --groupid 1 --filename inspect-metadata.json \
        "$out" "$meta"; } &&
    "$berth" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$out" "$sqfs"
}

squash() { mksquashfs "$1" "$2" -noappend -all-root -quiet >/dev/null; }

build_images() {
  local d=$1 w=$TEST_TMP/work r
  mkdir -p "$d" "$w"
  bash "$here/make_test_image.sh" "$berth" "$d/img.sif" || return 1

  # An image with apps, every metadata file, and names JSON must escape.
  r=$w/apps
  mkdir -p "$r"/.singularity.d/env "$r"/usr/share "$r"/scif/apps/{foo/scif/env,bar/scif,notanapp,.hidden/scif}
  printf '{\n\t"org.label-schema.build-arch": "amd64",\n\t"Zeta": "last <&> \\"quoted\\"",\n\t"alpha": "first"\n}\n' \
    >"$r/.singularity.d/labels.json"
  printf '#!/bin/sh\n\nexec /bin/echo "$@"\n' >"$r/.singularity.d/runscript"
  printf '#!/bin/sh\n\necho started\n' >"$r/.singularity.d/startscript"
  printf '#!/bin/sh\n\ntest -x /bin/sh\n\n\n' >"$r/.singularity.d/test"
  printf 'Usage: run me\n  with care\n' >"$r/usr/share/help.txt"
  ln -s ../usr/share/help.txt "$r/.singularity.d/runscript.help"
  printf '#!/bin/sh\nexport PATH=/usr/bin\n' >"$r/.singularity.d/env/10-docker2singularity.sh"
  printf '#!/bin/sh\n\nexport A=1\n' >"$r/.singularity.d/env/90-environment.sh"
  printf '#!/bin/sh\nexport B=2' >"$r/.singularity.d/env/91-environment.sh"
  printf 'export NOT_SHOWN=1\n' >"$r/.singularity.d/env/99-base.sh"
  printf 'export NOT_SHOWN=1\n' >"$r/.singularity.d/env/95-apps.sh"
  printf 'Bootstrap: scratch\n%%labels\n  alpha first\n' >"$r/.singularity.d/Singularity"
  printf '{"app": "foo"}' >"$r/scif/apps/foo/scif/labels.json"
  printf 'foo help\n' >"$r/scif/apps/foo/scif/runscript.help"
  printf '#!/bin/sh\necho foo\n' >"$r/scif/apps/foo/scif/runscript"
  printf 'export FOO=1\n' >"$r/scif/apps/foo/scif/env/90-environment.sh"
  squash "$r" "$w/apps.sqfs" && mksif "$d/apps.sif" "$w/apps.sqfs" || return 1

  # The same filesystem with build-time metadata, which must win.
  printf 'Bootstrap: defobject\n' >"$w/def"
  printf '%s' '{"data":{"attributes":{"labels":{"from":"metadata"},"runscript":"#!/bin/sh\necho meta","deffile":"Bootstrap: metadata","apps":{"foo":{"helpfile":"meta foo help"}}}},"type":"container"}' \
    >"$w/meta.json"
  mksif "$d/meta.sif" "$w/apps.sqfs" "$w/def" "$w/meta.json" || return 1
  printf '{"data": not json' >"$w/badmeta.json"
  mksif "$d/badmeta.sif" "$w/apps.sqfs" "$w/def" "$w/badmeta.json" || return 1

  # A bare squashfs image whose labels.json has a non-string value.
  r=$w/badlabels
  mkdir -p "$r/.singularity.d"
  printf '{"a": "1", "n": 5, "z": "26"}' >"$r/.singularity.d/labels.json"
  squash "$r" "$d/badlabels.sqfs" || return 1

  # Hostile images.
  head -c 200000 /dev/urandom >"$w/garbage"
  mksif "$d/garbage.sif" "$w/garbage" || return 1
  { printf 'hsqs'; head -c 100000 /dev/urandom; } >"$w/garbage2"
  mksif "$d/garbage2.sif" "$w/garbage2" || return 1
  cp "$d/img.sif" "$d/truncated.sif" && truncate -s 1000000 "$d/truncated.sif"
  "$berth" sif dump 2 "$d/img.sif" >"$w/full.sqfs" && head -c 1000000 "$w/full.sqfs" >"$w/cut.sqfs"
  mksif "$d/cut.sif" "$w/cut.sqfs" || return 1
  r=$w/hostile
  mkdir -p "$r/.singularity.d"
  ln -s labels.json "$r/.singularity.d/labels.json"
  ln -s loop-b "$r/.singularity.d/loop-a"
  ln -s loop-a "$r/.singularity.d/loop-b"
  ln -s loop-a "$r/.singularity.d/runscript"
  ln -s ../../../../../../../etc/passwd "$r/.singularity.d/startscript"
  ln -s /etc/passwd "$r/.singularity.d/test"
  head -c 10M /dev/zero >"$r/.singularity.d/runscript.help"
  squash "$r" "$w/hostile.sqfs" && mksif "$d/hostile.sif" "$w/hostile.sqfs" || return 1
  "$berth" sif new "$d/ext3.sif" &&
    "$berth" sif add --datatype 4 --parttype 2 --partfs 2 --partarch 2 "$d/ext3.sif" "$w/garbage" || return 1
  "$berth" sif new "$d/nopart.sif" && "$berth" sif add --datatype 1 "$d/nopart.sif" "$w/def" || return 1
  echo "not an image" >"$d/notsif"
  chmod 0755 "$d" && chmod 0644 "$d"/*
}

run_checks() {
  local d=$1
  # The test image from make_test_image.sh.
  expect_exact "labels by default, sorted" $'maintainer: berth tests\norg.label-schema.schema-version: 1.0\n' \
    B inspect "$d/img.sif"
  expect_exact "--labels" $'maintainer: berth tests\norg.label-schema.schema-version: 1.0\n' \
    B inspect --labels "$d/img.sif"
  expect_exact "--deffile is the Def.FILE object, verbatim" \
    $'Bootstrap: scratch\n\n%runscript\n    echo "runscript args: $*"\n\n' B inspect --deffile "$d/img.sif"
  expect_exact "--runscript" $'#!/bin/sh\n\necho "runscript args: $*"\n' B inspect -r "$d/img.sif"
  expect_exact "--environment shows 9*-environment.sh only" \
    $'=== /.singularity.d/env/90-environment.sh ===\n#!/bin/sh\nexport IMAGE_VAR=from-image\nexport OVERRIDE_ME=image\n\n' \
    B inspect --environment "$d/img.sif"
  expect_exact "--helpfile" $'This image tests berth.\n' B inspect --helpfile "$d/img.sif"
  expect_exact "--startscript missing prints nothing" "" B inspect --startscript "$d/img.sif"
  expect_exact "--test missing prints nothing" "" B inspect --test "$d/img.sif"
  expect_exact "--list-apps without apps prints nothing" "" B inspect --list-apps "$d/img.sif"
  expect_exact "--json is Apptainer's shape" \
    $'{\n\t"data": {\n\t\t"attributes": {\n\t\t\t"labels": {\n\t\t\t\t"maintainer": "berth tests",\n\t\t\t\t"org.label-schema.schema-version": "1.0"\n\t\t\t}\n\t\t}\n\t},\n\t"type": "container"\n}\n' \
    B inspect --json "$d/img.sif"
  check "--json parses and has the labels" bash -c "timeout 10 '$berth' inspect --json '$d/img.sif' | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d[\"type\"] == \"container\"
assert d[\"data\"][\"attributes\"][\"labels\"][\"maintainer\"] == \"berth tests\"'"
  check "--all is JSON with every section" bash -c "timeout 10 '$berth' inspect --all '$d/img.sif' | python3 -c '
import json, sys
a = json.load(sys.stdin)[\"data\"][\"attributes\"]
assert a[\"labels\"][\"maintainer\"] == \"berth tests\"
assert a[\"helpfile\"] == \"This image tests berth.\"
assert a[\"runscript\"].endswith(\"echo \\\"runscript args: \$*\\\"\")
assert a[\"deffile\"].startswith(\"Bootstrap: scratch\")
assert list(a[\"environment\"]) == [\"/.singularity.d/env/90-environment.sh\"]
assert \"startscript\" not in a and \"apps\" not in a'"
  expect_exact "run-help prints the help" $'This image tests berth.\n' B run-help "$d/img.sif"

  # Apps, start and test scripts, docker env, symlinked help, JSON escaping.
  expect_exact "labels sort bytewise" \
    $'Zeta: last <&> "quoted"\nalpha: first\norg.label-schema.build-arch: amd64\n' B inspect "$d/apps.sif"
  expect_exact "--json escapes as Go does" \
    $'{\n\t"data": {\n\t\t"attributes": {\n\t\t\t"labels": {\n\t\t\t\t"Zeta": "last \\u003c\\u0026\\u003e \\"quoted\\"",\n\t\t\t\t"alpha": "first",\n\t\t\t\t"org.label-schema.build-arch": "amd64"\n\t\t\t}\n\t\t}\n\t},\n\t"type": "container"\n}\n' \
    B inspect -j "$d/apps.sif"
  expect_exact "--startscript" $'#!/bin/sh\n\necho started\n' B inspect -s "$d/apps.sif"
  expect_exact "--test trims trailing newlines" $'#!/bin/sh\n\ntest -x /bin/sh\n' B inspect -t "$d/apps.sif"
  expect_exact "help through a relative symlink" $'Usage: run me\n  with care\n' B run-help "$d/apps.sif"
  expect_exact "--environment with docker and 91 scripts" \
    $'=== /.singularity.d/env/10-docker2singularity.sh ===\n#!/bin/sh\nexport PATH=/usr/bin\n\n=== /.singularity.d/env/90-environment.sh ===\n#!/bin/sh\n\nexport A=1\n\n=== /.singularity.d/env/91-environment.sh ===\n#!/bin/sh\nexport B=2\n\n' \
    B inspect -e "$d/apps.sif"
  expect_exact "section order: deffile, runscript, startscript, test, help, env, labels" \
    $'Bootstrap: scratch\n%labels\n  alpha first\n#!/bin/sh\n\nexec /bin/echo "$@"\n#!/bin/sh\n\necho started\n#!/bin/sh\n\ntest -x /bin/sh\nUsage: run me\n  with care\nZeta: last <&> "quoted"\nalpha: first\norg.label-schema.build-arch: amd64\n' \
    B inspect -l -d -r -s -t -H "$d/apps.sif"
  check "no Def.FILE: Apptainer's warning, then /.singularity.d/Singularity" bash -c \
    "timeout 10 '$berth' inspect -d '$d/apps.sif' 2>&1 >/dev/null | grep -qx 'WARNING: No SIF metadata partition, searching in container...'"
  expect_exact "--list-apps: apps with a scif/ directory, sorted" $'bar\nfoo\n' B inspect --list-apps "$d/apps.sif"
  expect_exact "--app labels" $'app: foo\n' B inspect --app foo "$d/apps.sif"
  expect_exact "--app runscript" $'#!/bin/sh\necho foo\n' B inspect --app foo -r "$d/apps.sif"
  expect_exact "--app environment" $'=== /scif/apps/foo/scif/env/90-environment.sh ===\nexport FOO=1\n\n' \
    B inspect --app foo -e "$d/apps.sif"
  expect_exact "--app --json" \
    $'{\n\t"data": {\n\t\t"attributes": {\n\t\t\t"apps": {\n\t\t\t\t"foo": {\n\t\t\t\t\t"labels": {\n\t\t\t\t\t\t"app": "foo"\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}\n\t\t}\n\t},\n\t"type": "container"\n}\n' \
    B inspect --app foo --json "$d/apps.sif"
  expect_exact "run-help --app" $'foo help\n' B run-help --app foo "$d/apps.sif"
  expect_exact "run-help without help" $'No help sections were defined for this image\n' \
    B run-help --app bar "$d/apps.sif"
  expect_exact "unknown app prints nothing" "" B inspect --app nosuch "$d/apps.sif"
  check "--all covers the apps" bash -c "timeout 10 '$berth' inspect --all '$d/apps.sif' 2>/dev/null | python3 -c '
import json, sys
a = json.load(sys.stdin)[\"data\"][\"attributes\"]
assert sorted(a[\"apps\"]) == [\"bar\", \"foo\"], a[\"apps\"]
foo = a[\"apps\"][\"foo\"]
assert foo[\"helpfile\"] == \"foo help\" and foo[\"labels\"] == {\"app\": \"foo\"}
assert foo[\"environment\"] == {\"/scif/apps/foo/scif/env/90-environment.sh\": \"export FOO=1\"}
assert a[\"apps\"][\"bar\"] == {}
assert sorted(a[\"environment\"]) == [\"/.singularity.d/env/10-docker2singularity.sh\", \"/.singularity.d/env/90-environment.sh\", \"/.singularity.d/env/91-environment.sh\"]
assert a[\"labels\"][\"Zeta\"] == \"last <&> \\\"quoted\\\"\"
assert a[\"startscript\"] == \"#!/bin/sh\\n\\necho started\"'"

  # inspect-metadata.json answers instead of the squashfs.
  expect_exact "metadata labels" $'from: metadata\n' B inspect "$d/meta.sif"
  expect_exact "metadata runscript" $'#!/bin/sh\necho meta\n' B inspect -r "$d/meta.sif"
  expect_exact "metadata deffile" $'Bootstrap: metadata\n' B inspect -d "$d/meta.sif"
  expect_exact "metadata app help" $'meta foo help\n' B run-help --app foo "$d/meta.sif"
  expect_exact "metadata apps" $'foo\n' B inspect --list-apps "$d/meta.sif"
  expect_exact "metadata without environment" "" B inspect -e "$d/meta.sif"
  expect_exact "broken metadata falls back to the squashfs" \
    $'Zeta: last <&> "quoted"\nalpha: first\norg.label-schema.build-arch: amd64\n' B inspect "$d/badmeta.sif"
  check "broken metadata is a warning" grep -q '^WARNING: Unable to read inspect-metadata.json SIF descriptor' \
    "$TEST_TMP/stderr"
  expect_exact "bare squashfs; a non-string label is skipped" $'a: 1\nz: 26\n' B inspect "$d/badlabels.sqfs"
  check "a non-string label is a warning" grep -q '^WARNING: Unable to parse labels: ' "$TEST_TMP/stderr"

  # Hostile images: one FATAL line naming the image and the problem.
  expect_fatal "garbage partition" "garbage.sif: primary partition (object 1): reading the super block: not a squashfs" \
    B inspect "$d/garbage.sif"
  expect_fatal "garbage after squashfs magic" "garbage2.sif: primary partition" B inspect --all "$d/garbage2.sif"
  expect_fatal "truncated SIF" "truncated.sif" B inspect "$d/truncated.sif"
  expect_fatal "truncated squashfs in the partition" "cut.sif: primary partition (object 1): the squashfs says it is" \
    B inspect "$d/cut.sif"
  expect_fatal "labels.json symlink loop" "hostile.sif: /.singularity.d/labels.json: too many levels of symbolic links" \
    B inspect "$d/hostile.sif"
  expect_fatal "runscript symlink loop" "/.singularity.d/runscript: too many levels of symbolic links" \
    B inspect -r "$d/hostile.sif"
  expect_fatal "10 MB help is capped" "/.singularity.d/runscript.help is 10485760 bytes, more than the 1048576-byte limit" \
    B run-help "$d/hostile.sif"
  expect_exact "../ links stay inside the image" "" B inspect -s "$d/hostile.sif"
  expect_exact "absolute links stay inside the image" "" B inspect -t "$d/hostile.sif"
  expect_fatal "ext3 partition" "ext3.sif: the primary partition is Ext3, not squashfs" B inspect "$d/ext3.sif"
  expect_fatal "no partition" "nopart.sif: the SIF has no primary system partition" B inspect "$d/nopart.sif"
  expect_fatal "not a SIF" "Failed to open image $d/notsif: not a SIF image" B inspect "$d/notsif"
  expect_fatal "missing image" "Failed to open image $d/nothere" B inspect "$d/nothere"
  expect_fatal "run-help on a missing image" "container not found" B run-help "$d/nothere"
  # A directory is a sandbox (targets_test.sh has real ones); an empty one shows nothing.
  expect_exact "a directory is inspected as a sandbox" "" B inspect "$d"
}

berth=$(readlink -f "$1")
if [ $# -ge 2 ]; then
  run_checks "$2"
  finish
fi

images=$TEST_TMP/images
if build_images "$images"; then ok "test images built"; else bad "test images built" "see above"; finish; fi
run_checks "$images"

# Again as a plain user, with a copy of berth the user can reach: that pass is
# half the test, so without root to set it up the test fails.
if [ "$(id -u)" -ne 0 ]; then
  bad "all checks pass as a plain user" "needs root to run them as the test user"
else
  user=${BERTH_TEST_USER:-berthtest}
  bash "$here/../lib/ensure-test-user.sh" "$user"
  chmod 0755 "$TEST_TMP"
  mkdir -m 0755 "$TEST_TMP/bin" && cp "$berth" "$TEST_TMP/bin/berth" && chmod 0755 "$TEST_TMP/bin/berth"
  cp "$here/lib.sh" "$0" "$TEST_TMP/bin/" && chmod 0644 "$TEST_TMP/bin/lib.sh" "$TEST_TMP/bin/$(basename "$0")"
  out=$(runuser -u "$user" -- bash "$TEST_TMP/bin/$(basename "$0")" "$TEST_TMP/bin/berth" "$images" 2>&1)
  rc=$?
  printf '%s\n' "$out" | sed "s/^/[$user] /"
  if [ "$rc" -eq 0 ]; then ok "all checks pass as $user"; else bad "all checks pass as $user" "rc=$rc"; fi
fi
finish
