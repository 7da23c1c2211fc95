#!/usr/bin/env bash
# `berth build` as users drive it, before the builder exists:
# - every golden case of defs/ through the real binary: `--dry-run --json`
#   prints CASE.json byte for byte; a failing case prints exactly one
#   "FATAL:   " line with CASE.err, nothing on stdout, exit 255;
# - the human plan of a multi-stage file, in Apptainer's order;
# - the environment forms of the flags (BERTH_, APPTAINER_, SINGULARITY_),
#   and the flag checks the builder will rely on;
# - hostile files (a 10 MB line, NUL bytes, 10,000 stages, self-referring
#   build args, a 2 GB file, a FIFO) each give one FATAL line naming the
#   line, within `timeout 10`;
# - without --dry-run, a bootstrap without its keys: one FATAL line, exit 255;
# - as the unprivileged user: a definition file it cannot read is refused.
#
# usage: build_dry_run_test.sh BERTH DEFS_DIR
set -u

berth=$(realpath "$1")
defs=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
TEST_TMP=$(mktemp -d /tmp/berth-build-XXXXXX)
chmod 0755 "$TEST_TMP"
trap 'rm -rf "$TEST_TMP"' EXIT
B() { timeout 10 "$berth" "$@"; }

# args_of CASE: --build-arg options from CASE.args.
args_of() {
  local file=$defs/$1.args line
  [ -f "$file" ] || return 0
  while IFS= read -r line; do printf -- '--build-arg\n%s\n' "$line"; done <"$file"
}

golden_cases() {
  local def name got rc
  for def in "$defs"/*.def; do
    name=$(basename "$def" .def)
    mapfile -t extra < <(args_of "$name")
    rc=0
    (cd "$defs" && B build --dry-run --json "${extra[@]}" "$name.def") \
      >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
    if [ -f "$defs/$name.json" ]; then
      if [ "$rc" -eq 0 ] && cmp -s "$TEST_TMP/out" "$defs/$name.json"; then ok "json $name"
      else bad "json $name" "rc=$rc $(diff "$defs/$name.json" "$TEST_TMP/out" | head -5) $(head -c 300 "$TEST_TMP/err")"; fi
      continue
    fi
    printf 'FATAL:   %s' "$(cat "$defs/$name.err")" >"$TEST_TMP/want"
    printf '\n' >>"$TEST_TMP/want"
    if [ "$rc" -eq 255 ] && [ ! -s "$TEST_TMP/out" ] && cmp -s "$TEST_TMP/err" "$TEST_TMP/want"; then
      ok "err $name"
    else bad "err $name" "rc=$rc stdout=$(head -c 100 "$TEST_TMP/out") stderr=$(cat "$TEST_TMP/err")"; fi
  done
}

plan_output() {
  local out
  out=$(cd "$defs" && B build --dry-run out.sif multistage.def 2>&1)
  local want
  want=$(cat <<'PLAN'
Definition multistage.def: 2 stages; stage 2 becomes the image
Output: out.sif (SIF, squashfs with the site's compression)

Stage 1 "build" (line 1)
  bootstrap     berthd     docker golang:1.21
  %post         container  line 5

Stage 2 "final" (line 9)
  bootstrap     berthd     docker alpine:3.19
  %files from   berthd     stage "build", line 13
      /hello -> /usr/local/bin/hello
      /etc/ssl/certs -> (same path)
  %files        host       line 17
      README.md -> /README.md
  %runscript    image      /.singularity.d/runscript
PLAN
)
  if [ "$out" = "$want" ]; then ok "plan of a two-stage file"
  else bad "plan of a two-stage file" "$(diff <(echo "$want") <(echo "$out"))"; fi
}

# A JSON definition: `--dry-run` prints its plan, `--dry-run --json` the
# same JSON again (its "raw" written from it).
json_input() {
  (cd "$defs" && B build --dry-run --json multistage.def) >"$TEST_TMP/m.json"
  B build --dry-run out.sif "$TEST_TMP/m.json" >"$TEST_TMP/out" 2>&1
  if grep -qx 'Definition .*/m.json: 2 stages; stage 2 becomes the image' "$TEST_TMP/out" &&
    grep -qx '  %files from   berthd     stage "build", line 91' "$TEST_TMP/out"; then
    ok "the plan of a JSON definition, with its lines"
  else bad "the plan of a JSON definition, with its lines" "$(cat "$TEST_TMP/out")"; fi
  B build --dry-run --json "$TEST_TMP/m.json" >"$TEST_TMP/m2.json" 2>&1
  check "--dry-run --json of a JSON definition: the same stages" \
    python3 -c 'import json,sys; s=lambda f: [{k: v for k, v in d.items() if k != "raw"} for d in json.load(open(f))]; assert s(sys.argv[1]) == s(sys.argv[2])' \
    "$TEST_TMP/m.json" "$TEST_TMP/m2.json"
}

environment_forms() {
  local d=$defs/docker.def
  APPTAINER_NOTEST=1 B build --dry-run "$d" >"$TEST_TMP/out" 2>&1
  grep -q '^  %test  .*(skipped: --notest)$' "$TEST_TMP/out" && ok "APPTAINER_NOTEST" ||
    bad "APPTAINER_NOTEST" "$(cat "$TEST_TMP/out")"
  BERTH_SECTION=post,test B build --dry-run "$d" >"$TEST_TMP/out" 2>&1
  grep -q '^  %files  .*(skipped: --section post,test)$' "$TEST_TMP/out" && ok "BERTH_SECTION" ||
    bad "BERTH_SECTION" "$(cat "$TEST_TMP/out")"
  SINGULARITY_SANDBOX=true B build --dry-run dir "$d" >"$TEST_TMP/out" 2>&1
  grep -qx 'Output: dir (sandbox directory)' "$TEST_TMP/out" && ok "SINGULARITY_SANDBOX" ||
    bad "SINGULARITY_SANDBOX" "$(cat "$TEST_TMP/out")"
  BERTH_COMPRESS=gzip B build --dry-run o.sif "$d" >"$TEST_TMP/out" 2>&1
  grep -qx 'Output: o.sif (SIF, squashfs gzip)' "$TEST_TMP/out" && ok "BERTH_COMPRESS" ||
    bad "BERTH_COMPRESS" "$(cat "$TEST_TMP/out")"
  APPTAINER_MKSQUASHFS_ARGS='-comp lz4 -processors 2' B build --dry-run o.sif "$d" >"$TEST_TMP/out" 2>&1
  grep -qx 'Output: o.sif (SIF, squashfs lz4)' "$TEST_TMP/out" && ok "APPTAINER_MKSQUASHFS_ARGS" ||
    bad "APPTAINER_MKSQUASHFS_ARGS" "$(cat "$TEST_TMP/out")"
  BERTH_COMPRESS=gzip B build --dry-run --compress xz o.sif "$d" >"$TEST_TMP/out" 2>&1
  grep -qx 'Output: o.sif (SIF, squashfs xz)' "$TEST_TMP/out" && ok "a flag beats its environment form" ||
    bad "a flag beats its environment form" "$(cat "$TEST_TMP/out")"
  expect_fatal "APPTAINER_UPDATE without --sandbox" \
    "only sandbox update is supported: --sandbox flag is missing" \
    env APPTAINER_UPDATE=1 "$berth" build --dry-run "$d"
  expect_fatal "a bad boolean names its variable" "SINGULARITY_FORCE='maybe' is not a boolean" \
    env SINGULARITY_FORCE=maybe "$berth" build --dry-run "$d"
  APPTAINER_JSON=1 B build --dry-run "$d" >"$TEST_TMP/out" 2>&1
  cmp -s "$TEST_TMP/out" "$defs/docker.json" && ok "APPTAINER_JSON" || bad "APPTAINER_JSON" "$(head -3 "$TEST_TMP/out")"
}

flag_checks() {
  local d=$defs/docker.def
  expect_fatal "--compress" "--compress brotli: use zstd, gzip, lz4 or xz" B build --dry-run --compress brotli "$d"
  expect_fatal "--mksquashfs-args unknown" "--mksquashfs-args: -noappend is not supported" \
    B build --dry-run --mksquashfs-args "-noappend x" "$d"
  expect_fatal "--mksquashfs-args level" "-Xcompression-level needs -comp gzip or zstd" \
    B build --dry-run --mksquashfs-args "-comp xz -Xcompression-level 3" "$d"
  expect_fatal "--compress and -comp disagree" "--compress gzip and --mksquashfs-args -comp zstd disagree" \
    B build --dry-run --compress gzip --mksquashfs-args "-comp zstd" "$d"
  expect_fatal "--section all with others" "cannot have all and any other option" \
    B build --dry-run --section all,post "$d"
  expect_fatal "--section unknown" "--section psot: no such section" B build --dry-run --section psot "$d"
  expect_fatal "--build-arg without =" '--build-arg: "VERSION" is not a key=value pair' \
    B build --dry-run --build-arg VERSION "$d"
  expect_fatal "--build-arg-file missing" "nope.env" B build --dry-run --build-arg-file "$TEST_TMP/nope.env" "$d"
  expect_fatal "--json without --dry-run needs a JSON definition" \
    "$d: not a JSON definition (it starts with neither '{' nor '['); --json builds from" \
    B build --json out.sif "$d"
  expect_fatal "--tmpdir missing" "--tmpdir $TEST_TMP/nodir: No such file or directory" \
    B build --dry-run --tmpdir "$TEST_TMP/nodir" "$d"
  expect_fatal "APPTAINER_TMPDIR not a directory" "--tmpdir $d: not a directory" \
    env APPTAINER_TMPDIR="$d" "$berth" build --dry-run "$d"
  printf 'Bootstrap: debootstrap\nMirrorURL: http://127.0.0.1:9/debian\n' >"$TEST_TMP/bb.def"
  expect_fatal "a bootstrap without its keys, refused before the daemon" \
    "Bootstrap: debootstrap needs a value for OSVersion:" B build out.sif "$TEST_TMP/bb.def"
  expect_rc "a bootstrap without its keys: exit 255" 255 B build out.sif "$TEST_TMP/bb.def"
  expect_fatal "build needs IMAGE and SPEC" "usage: berth build [options] IMAGE SPEC" B build "$d"
  expect_fatal "bootstrap checked in the plan" "Bootstrap: library is not supported by berth" \
    B build --dry-run library://alpine
  printf 'A=1\njunk\n' >"$TEST_TMP/args.env"
  printf 'Bootstrap: docker\nFrom: alpine:{{ A }}\n' >"$TEST_TMP/a.def"
  B build --dry-run --build-arg-file "$TEST_TMP/args.env" "$TEST_TMP/a.def" >"$TEST_TMP/out" 2>"$TEST_TMP/err"
  if grep -qx '  build args: A=1' "$TEST_TMP/out" &&
    grep -qx "WARNING: Skipping \"junk\" in build arg file: \"junk\" is not a key=value pair" "$TEST_TMP/err"; then
    ok "--build-arg-file and its warning"
  else bad "--build-arg-file and its warning" "$(cat "$TEST_TMP/out" "$TEST_TMP/err")"; fi
  B build --dry-run --warn-unused-build-args --build-arg A=2 --build-arg Z=9 "$TEST_TMP/a.def" >/dev/null 2>"$TEST_TMP/err"
  grep -qx 'WARNING: Unused build args: Z' "$TEST_TMP/err" && ok "--warn-unused-build-args" ||
    bad "--warn-unused-build-args" "$(cat "$TEST_TMP/err")"
}

other_specs() {
  B build --dry-run docker://alpine:3.19 >"$TEST_TMP/out" 2>&1
  grep -qx '  bootstrap     berthd     docker alpine:3.19' "$TEST_TMP/out" && ok "a docker:// spec" ||
    bad "a docker:// spec" "$(cat "$TEST_TMP/out")"
  mkdir -p "$TEST_TMP/sandbox"
  B build --dry-run "$TEST_TMP/sandbox" >"$TEST_TMP/out" 2>&1
  grep -q "bootstrap     berthd     localimage $TEST_TMP/sandbox" "$TEST_TMP/out" && ok "a sandbox spec" ||
    bad "a sandbox spec" "$(cat "$TEST_TMP/out")"
  "$berth" sif new "$TEST_TMP/img.sif" >/dev/null 2>&1
  B build --dry-run "$TEST_TMP/img.sif" >"$TEST_TMP/out" 2>&1
  grep -q "localimage $TEST_TMP/img.sif" "$TEST_TMP/out" && ok "a SIF spec" || bad "a SIF spec" "$(cat "$TEST_TMP/out")"
}

hostile_files() {
  local h=$TEST_TMP/h
  python3 - "$h" <<'PY'
import sys
h = sys.argv[1]
open(h + "-longline.def", "w").write("Bootstrap: scratch\n%post\n  echo " + "x" * (10 << 20) + "\n")
open(h + "-nul.def", "wb").write(b"Bootstrap: scratch\n%post\n  echo \x00\n")
open(h + "-stages.def", "w").write("Bootstrap: scratch\n%post\n  true\n" * 10000)
refs = "{{ A }}" * 30
open(h + "-recursion.def", "w").write("Bootstrap: scratch\n%arguments\n  A=" + refs + "\n%post\n  " + refs + "\n" + "  {{ A }}\n" * 2000)
open(h + "-unknown.def", "w").write("Bootstrap: scratch\n%post\n  true\n%evil\n")
open(h + "-continuation.def", "w").write("Bootstrap: docker\nFrom: alpine \\\n")
PY
  expect_fatal "hostile: 10 MB line" "h-longline.def:3: line is longer than 1 MiB" B build --dry-run "$h-longline.def"
  expect_fatal "hostile: NUL bytes" "h-nul.def:3: NUL byte" B build --dry-run "$h-nul.def"
  expect_fatal "hostile: 10,000 stages" "h-stages.def:385: more than 128 stages" B build --dry-run "$h-stages.def"
  expect_fatal "hostile: build-arg recursion" "h-recursion.def:1276: build var A makes the definition file larger than 8 MiB" \
    B build --dry-run "$h-recursion.def"
  expect_fatal "hostile: unknown section" "h-unknown.def:4: invalid section(s) specified: evil" B build --dry-run "$h-unknown.def"
  expect_fatal "hostile: unterminated continuation" "h-continuation.def:2: failed to parse deffile header: unterminated continuation" \
    B build --dry-run "$h-continuation.def"
  truncate -s 2G "$h-huge.def"
  expect_fatal "hostile: a 2 GB file is not read whole" "h-huge.def:1: line is longer than 1 MiB" B build --dry-run "$h-huge.def"
  mkfifo "$h-fifo.def"
  expect_fatal "hostile: a FIFO" "not a regular file" B build --dry-run "$h-fifo.def"
}

as_test_user() {
  local user=${BERTH_TEST_USER:-berthtest}
  if [ "$(id -u)" != 0 ]; then bad "as the test user" "needs root to switch users"; return; fi
  bash "$here/../lib/ensure-test-user.sh" "$user"
  cp "$defs/docker.def" "$TEST_TMP/public.def" && chmod 0644 "$TEST_TMP/public.def"
  cp "$defs/docker.def" "$TEST_TMP/secret.def" && chmod 0600 "$TEST_TMP/secret.def"
  expect_rc "as $user: a readable file" 0 setpriv --reuid="$user" --regid="$user" --clear-groups \
    "$berth" build --dry-run "$TEST_TMP/public.def"
  expect_fatal "as $user: root's 0600 file is refused" "secret.def: Permission denied" \
    setpriv --reuid="$user" --regid="$user" --clear-groups "$berth" build --dry-run "$TEST_TMP/secret.def"
}

golden_cases
plan_output
json_input
environment_forms
flag_checks
other_specs
hostile_files
as_test_user
finish
