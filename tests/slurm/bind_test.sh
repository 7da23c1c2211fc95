#!/usr/bin/env bash
# bind_test.sh FIXTURE_STATE: the bind model: a site stack (mpi.d/*.toml)
# puts the host's MPICH into an image holding only the application and
# libc, under a real srun --mpi=pmi2, as root and as a plain user; the
# ranks of the step share one container; only the stack's libraries, its
# environment under --cleanenv, its character devices in a minimal /dev;
# `berth mpi check` explaining the plan. Then what must be refused, each
# with one line naming the reason: an Open MPI image under an MPICH stack,
# an image whose glibc is too old, an ABI rule the image's library fails,
# and hostile stack files (paths for sonames, globs escaping /dev, binds of
# '..' paths or of files someone else can write, a stack name with '/').
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
source "$here/lib.sh"
slurm_prologue slurm-bind "$1"
STACKS=$SLURM_DIR/berthd/etc/mpi.d
install -d -m 0755 "$STACKS"
deps='"libhwloc.so.15", "libucp.so.0", "libucs.so.0", "libuct.so.0", "libucm.so.0", "libnuma.so.1", "libudev.so.1", "libm.so.6"'
# stack NAME BODY: writes mpi.d/NAME.toml (root's, 0644).
stack() { printf '%s\n' "$2" >"$STACKS/$1.toml" && chmod 0644 "$STACKS/$1.toml"; }
stack mpich "libraries = [\"libmpich.so.12\"]
dependencies = [$deps]
abi = \"major\"
[env]
UCX_TLS = \"self,sm\""
trap 'rm -rf "$TEST_TMP" "$STACKS"' EXIT

# --- the bind model under srun: ranks 0 and 1 of 2, in one container
for who in root "$TUSER"; do
  out=$(as "$who" srun --mpi=pmi2 -n 2 "$BERTH" exec --mpi=mpich "$IMG/app.sif" /hello 2>"$TEST_TMP/err")
  mnt=$(field_of "$out" mnt)
  if [ "$(ranks_of "$out")" = "0/2 1/2" ] && [ "$(wc -w <<<"$mnt")" = 1 ]; then
    ok "bind model as $who: the host's MPICH in app.sif, ranks 0 and 1 of 2 in one container"
  else bad "bind model as $who" "$out $(head -c 600 "$TEST_TMP/err")"; fi
done
# The same image without the stack cannot start: the check above can fail.
out=$(as "$TUSER" srun --mpi=pmi2 -n 1 "$BERTH" exec "$IMG/app.sif" /hello 2>&1)
printf '%s\n' "$out" | grep -q 'libmpich.so.12' && ok "without --mpi, app.sif lacks libmpich.so.12" ||
  bad "app.sif without the stack" "$out"
# Only what the stack names is bound: its library and dependencies, not
# their neighbours (libmpichfort.so.12 sits beside libmpich.so.12 on the host).
out=$(as "$TUSER" "$BERTH" exec --mpi=mpich "$IMG/app.sif" ls /lib/x86_64-linux-gnu 2>&1)
if printf '%s\n' "$out" | grep -qx libmpich.so.12 && printf '%s\n' "$out" | grep -qx libucp.so.0 &&
  ! printf '%s\n' "$out" | grep -q libmpichfort; then
  ok "the container holds the stack's libraries and no other host library"
else bad "only the listed libraries" "$(printf '%s\n' "$out" | paste -sd' ')"; fi
# The stack's env is set; the launcher's reaches the rank under --cleanenv.
out=$(as "$TUSER" srun --mpi=pmi2 -n 1 "$BERTH" exec --cleanenv --mpi=mpich "$IMG/app.sif" env 2>&1)
if printf '%s\n' "$out" | grep -qx 'UCX_TLS=self,sm' && printf '%s\n' "$out" | grep -q '^PMI_FD=' &&
  printf '%s\n' "$out" | grep -q '^SLURM_STEP_ID='; then
  ok "--cleanenv: the stack's UCX_TLS set, PMI_FD and SLURM_* passed"
else bad "stack environment" "$(printf '%s\n' "$out" | head -c 600)"; fi

# Devices under a minimal /dev (--contain): character devices only, never
# a directory or a link a pattern also matches (/dev/net, /dev/stdin).
stack devs "libraries = [\"libmpich.so.12\"]
dependencies = [$deps]
devices = [\"/dev/fus*\", \"/dev/ne*\", \"/dev/stdi*\"]"
out=$(as "$TUSER" "$BERTH" exec --contain --mpi=devs "$IMG/app.sif" sh -c \
  'test -c /dev/fuse && echo fuse=chr; test -e /dev/net && echo net=yes; test -L /dev/stdin || echo stdin=nolink' 2>&1)
if [ "$out" = "fuse=chr
stdin=nolink" ] || [ "$out" = "fuse=chr" ]; then
  ok "--contain: the stack's /dev/fuse bound, the /dev/net directory not"
else bad "stack devices" "$(printf '%s' "$out" | paste -sd' ')"; fi

# refused WHAT PATTERN CMD...: CMD fails with exactly one line matching PATTERN.
refused() {
  local what=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != 0 ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] && printf '%s\n' "$err" | grep -q -- "$pattern"; then
    ok "$what: $(printf '%s' "$err" | cut -c1-150)"
  else bad "$what" "rc=$rc: $err"; fi
}

refused "Open MPI image, MPICH stack" "image's MPI is Open MPI.*stack 'mpich' is MPICH" \
  as "$TUSER" "$BERTH" exec --mpi=mpich "$IMG/openmpi.sif" /hello
refused "image glibc too old" "need glibc 2\.[0-9]* .*the image has glibc 2\.17" \
  as "$TUSER" "$BERTH" exec --mpi=mpich "$IMG/oldlibc.sif" /hello
stack strict "libraries = [\"libmpich.so.12\"]
dependencies = [$deps]
abi = \"strict\""
refused "ABI rule strict" "libmpich.so.12.[0-9.]* (host) and libmpich.so.12 (image).*rule strict" \
  as "$TUSER" "$BERTH" exec --mpi=strict "$IMG/mpich.sif" /hello
out=$(as "$TUSER" "$BERTH" exec --mpi=mpich "$IMG/mpich.sif" true 2>&1) &&
  ok "ABI rule major: the image's libmpich replaced" || bad "rule major" "$out"

# --- berth mpi check: the plan before a job runs, as INFO lines
out=$(as "$TUSER" srun --mpi=pmi2 -n 1 "$BERTH" mpi check --stack mpich "$IMG/app.sif" 2>&1)
if printf '%s\n' "$out" | grep -q "the image's MPI: none found" &&
  printf '%s\n' "$out" | grep -q "adds /lib/x86_64-linux-gnu/libmpich.so.12 with the host's /usr/lib/x86_64-linux-gnu/libmpich.so.12" &&
  printf '%s\n' "$out" | grep -q 'the launcher offers: PMI-2 (PMI_FD)' &&
  printf '%s\n' "$out" | grep -q "^ok: .*app.sif runs with MPI stack mpich"; then
  ok "mpi check app.sif: libmpich added, PMI-2 offered, ok"
else bad "mpi check app.sif" "$out"; fi
out=$(as "$TUSER" "$BERTH" mpi check --stack mpich "$IMG/mpich.sif" 2>&1)
if printf '%s\n' "$out" | grep -q "the image's MPI: MPICH ABI (libmpich.so.12)" &&
  printf '%s\n' "$out" | grep -q 'ABI: libmpich.so.12.[0-9.]* (host) and libmpich.so.12 (image): same major 12 (rule major)' &&
  printf '%s\n' "$out" | grep -q 'replaces /lib/x86_64-linux-gnu/libmpich.so.12 with' &&
  printf '%s\n' "$out" | grep -q 'the launcher offers: none'; then
  ok "mpi check mpich.sif: the verdict and its rule, the library replaced"
else bad "mpi check mpich.sif" "$out"; fi
# A refusal: what was found (INFO lines), then the reason (one FATAL line).
check_refused() {
  local what=$1 pattern=$2 found=$3; shift 3
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != 0 ] && [ "$(printf '%s\n' "$err" | grep -c '^FATAL')" = 1 ] &&
    printf '%s\n' "$err" | grep '^FATAL' | grep -q -- "$pattern" &&
    printf '%s\n' "$err" | grep '^INFO' | grep -q -- "$found"; then
    ok "$what: $(printf '%s' "$err" | grep '^FATAL' | cut -c1-150)"
  else bad "$what" "rc=$rc: $err"; fi
}
check_refused "mpi check: Open MPI image, MPICH stack" "image's MPI is Open MPI.*stack 'mpich' is MPICH" \
  "the image's MPI: Open MPI" as "$TUSER" "$BERTH" mpi check --stack mpich "$IMG/openmpi.sif"
check_refused "mpi check: glibc too old" "need glibc 2\.[0-9]* .*the image has glibc 2\.17" \
  "glibc: the image has 2\.17" as "$TUSER" "$BERTH" mpi check --stack mpich "$IMG/oldlibc.sif"
# --json: one object on stdout, for scripts, refusals included.
json_field() { python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print(eval(sys.argv[1]))' "$1"; }
out=$(as "$TUSER" "$BERTH" mpi check --json --stack mpich "$IMG/mpich.sif" 2>"$TEST_TMP/err")
got=$(printf '%s' "$out" | json_field '[j["ok"], j["stack"], j["abi_rule"], j["abi"][0]["verdict"], j["replaces"][0]["path"], j["refused"], j["launcher_offers"]]' 2>&1)
[ "$got" = "[True, 'mpich', 'major', 'compatible', '/lib/x86_64-linux-gnu/libmpich.so.12', None, 'none']" ] &&
  ok "mpi check --json mpich.sif: one object with the verdict" || bad "mpi check --json" "$got / $out / $(cat "$TEST_TMP/err")"
out=$(as "$TUSER" "$BERTH" mpi check --json --stack mpich "$IMG/openmpi.sif" 2>/dev/null); rc=$?
got=$(printf '%s' "$out" | json_field '[j["ok"], j["image"]["family"], "Open MPI" in j["refused"]]' 2>&1)
[ "$rc" != 0 ] && [ "$got" = "[False, 'Open MPI', True]" ] &&
  ok "mpi check --json of a refused image: the object says why, exit $rc" || bad "mpi check --json refused" "rc=$rc $got / $out"

# --- berth mpi detect: the host's MPICH as a stack, then used under srun
out=$(as root env BERTH_CONFIG_DIR="$SLURM_DIR/berthd/etc" "$BERTH" mpi detect --name detected 2>&1)
[ "$out" = "wrote $STACKS/detected.toml" ] && ok "mpi detect: $out" || bad "mpi detect" "$out"
out=$(as "$TUSER" srun --mpi=pmi2 -n 2 "$BERTH" exec --mpi=detected "$IMG/app.sif" /hello 2>"$TEST_TMP/err")
[ "$(ranks_of "$out")" = "0/2 1/2" ] && ok "the detected stack runs app.sif: ranks 0 and 1 of 2" ||
  bad "detected stack" "$out $(head -c 600 "$TEST_TMP/err")"
refused "mpi detect over an existing stack" "detected.toml.*--force replaces it" \
  as root env BERTH_CONFIG_DIR="$SLURM_DIR/berthd/etc" "$BERTH" mpi detect --name detected

# --- hostile stack files and names
stack path 'libraries = ["/etc/shadow"]'
refused "a path for a library" "path.toml:1: libraries entry '/etc/shadow' is not a soname" \
  as "$TUSER" "$BERTH" exec --mpi=path "$IMG/app.sif" true
stack dotdot 'libraries = ["libmpich.so.12"]
dependencies = ["../../etc/shadow.so"]'
refused "a '..' dependency" "dependencies entry '../../etc/shadow.so' is not a soname" \
  as "$TUSER" "$BERTH" exec --mpi=dotdot "$IMG/app.sif" true
stack devglob 'libraries = ["libmpich.so.12"]
devices = ["/dev/../etc/*"]'
refused "a device glob escaping /dev" "devices entry '/dev/../etc/\*' must be a normal path below /dev/" \
  as "$TUSER" "$BERTH" exec --mpi=devglob "$IMG/app.sif" true
stack bindup 'libraries = ["libmpich.so.12"]
binds = ["/usr/lib/../../root"]'
refused "a bind through '..'" "binds entry '/usr/lib/../../root' must be an absolute, normal path" \
  as "$TUSER" "$BERTH" exec --mpi=bindup "$IMG/app.sif" true
userdir=$TEST_TMP/userdir
install -d -o "$TUSER" "$userdir"
stack userbind "libraries = [\"libmpich.so.12\"]
dependencies = [$deps]
binds = [\"$userdir\"]"
refused "a bind someone else can change" "$userdir is owned by uid $(id -u "$TUSER") or writable by others" \
  as root "$BERTH" exec --mpi=userbind "$IMG/app.sif" true
stack badabi 'libraries = ["libmpich.so.12"]
abi = "loose"'
refused "an unknown ABI rule" "unknown ABI rule 'loose' (use major, full or strict)" \
  as "$TUSER" "$BERTH" exec --mpi=badabi "$IMG/app.sif" true
refused "a stack name with '/'" "MPI stack name '../../etc/passwd' is invalid" \
  as "$TUSER" "$BERTH" exec --mpi=../../etc/passwd "$IMG/app.sif" true
refused "a stack that does not exist" "no MPI stack 'nosuch' on this node" \
  as "$TUSER" "$BERTH" exec --mpi=nosuch "$IMG/app.sif" true
stack writable 'libraries = ["libmpich.so.12"]'
chmod 0666 "$STACKS/writable.toml"
refused "a stack file others can write" "writable" \
  as "$TUSER" "$BERTH" exec --mpi=writable "$IMG/app.sif" true
finish
