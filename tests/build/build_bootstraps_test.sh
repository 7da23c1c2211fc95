#!/usr/bin/env bash
# build_bootstraps_test.sh BERTH BERTHD WORKER: `berth build` from bases
# that are not local SIFs, as the unprivileged test user against a system
# berthd and a real docker-registry (tests/registry/lib.sh):
# - a busybox SIF made here (packaging/make-busybox-image.sh), signed with
#   the user's own key and pushed with `berth push` to an oras:// ref on a
#   registry that needs credentials; `Bootstrap: oras` + the right
#   `Fingerprints:` builds with the user's --authfile (%post's whoami says
#   root), runs, and `inspect --deffile` prints the def; without
#   credentials the build is refused by the registry even though the base
#   is in the node cache by then; a wrong fingerprint and an unsigned base
#   fail with build.md §3's exact messages, exit 255, and no output;
# - `Bootstrap: docker` (Registry: + Namespace: + From:) from a 3-layer OCI
#   image pushed with skopeo (device nodes left out with a warning, a
#   setuid file of another owner kept), its Entrypoint/Cmd kept as the
#   runscript, and
#   `Bootstrap: oci` from the same layout on disk;
# - `Bootstrap: scratch` with %setup and %files; library and shub refused;
# - hostile: a registry whose manifest is garbage: one FATAL line, no
#   output, no temp file, nothing staged.
set -u
source "$(dirname "$0")/../registry/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
TUSER=${BERTH_TEST_USER:-berthtest}
bash "$HERE/../lib/ensure-test-user.sh" "$TUSER"
setup_binaries "$1" "$2"
cp "$3" "$T/bin/berth-build-worker"   # found beside berthd
OWN=$T/own STAGE=$T/stage
install -d -o "$TUSER" -m 0755 "$OWN"
install -d -o "$TUSER" -m 0700 "$OWN/gnupg"
before_finish() {
  runuser -u "$TUSER" -- gpgconf --homedir "$OWN/gnupg" --kill all 2>/dev/null
  stop_berthds
}
start_registry priv basic
start_registry pub plain
port=$(free_port)
hostile=127.0.0.1:$port
# The test user's own subuid range (this test's file), so that the base's
# files of other owners unpack as they are.
install -d -m 0755 "$T/ids"
printf '%s:300000:65536\n' "$TUSER" | tee "$T/ids/subuid" >"$T/ids/subgid"
start_berthd "[registry]
insecure = [\"$REG_priv\", \"$REG_pub\", \"$hostile\"]
[build]
build_dir = \"$STAGE\"" --subuid-file "$T/ids/subuid" --subgid-file "$T/ids/subgid"
authfile "$OWN/alice.json" "$REG_priv" alice alicepw
chown "$TUSER" "$OWN/alice.json"
# b CMD...: berth as the test user in $OWN, with the user's own GnuPG home.
b() { (cd "$OWN" && runuser -u "$TUSER" -- env BERTH_SOCKET="$BERTH_SOCKET" GNUPGHOME="$OWN/gnupg" "$BERTH" "$@"); }
staging_empty() { [ -z "$(ls -A "$STAGE" 2>/dev/null)" ] && [ -z "$(ls -A "$T/state/build-staging" 2>/dev/null)" ]; }
no_temp() { ! ls -A "$OWN" | grep -q berth-; }

# --- the base: made here, signed by the user, pushed with berth push ---
must "busybox base image" env BERTH="$BERTH" bash "$HERE/../../packaging/make-busybox-image.sh" "$OWN/base.sif"
cp "$OWN/base.sif" "$OWN/unsigned.sif"
chown "$TUSER" "$OWN/base.sif" "$OWN/unsigned.sif"
must "key newpair (the user's)" b key newpair --name "Base Signer" --email base@example.org --no-passphrase
FP=$(runuser -u "$TUSER" -- gpg --homedir "$OWN/gnupg" --batch --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}')
check "the user's key has a fingerprint" test ${#FP} -eq 40
must "sign the base" b sign base.sif
must "push the signed base" b push -q --authfile alice.json base.sif "oras://$REG_priv/base/busybox:signed"
must "push the unsigned base" b push -q --authfile alice.json unsigned.sif "oras://$REG_priv/base/busybox:unsigned"

# --- Bootstrap: oras + the right Fingerprints ---
cat >"$OWN/oras.def" <<DEF
Bootstrap: oras
From: $REG_priv/base/busybox:signed
Fingerprints: $FP   # the signer

%post
    # (the busybox base has neither the applet link nor a passwd file)
    ln -s busybox /bin/whoami
    echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
    whoami >/post-whoami
    echo oras-post-ran

%runscript
    echo "built from oras: \$(cat /post-whoami)"
DEF
chown "$TUSER" "$OWN/oras.def"
b build --authfile alice.json out.sif oras.def >"$T/oras.out" 2>"$T/oras.err"
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$OWN/out.sif" ]; then ok "oras + right fingerprint: builds"
else bad "oras + right fingerprint: builds" "rc=$rc $(tail -5 "$T/oras.err") $(tail -5 "$T/berthd.log")"; fi
check "oras: the fingerprint check is announced" \
  grep -q "INFO:    Checking bootstrap image verifies with fingerprint(s): \[$FP\]" "$T/oras.err"
check "oras: %post ran" grep -qx "oras-post-ran" "$T/oras.out"
expect_out "oras: the result runs (%post's whoami said root)" "built from oras: root" b run out.sif
check "oras: inspect --deffile prints the def" \
  sh -c "cd '$OWN' && runuser -u '$TUSER' -- '$BERTH' inspect --deffile out.sif | grep -q '^Bootstrap: oras'"
check "oras: no temp file beside the output" no_temp
check "oras: staging removed" staging_empty

# The caller's own credentials: the base is in the node cache now, and still
# a build without them is refused by the registry.
expect_fatal_after_progress "oras without the caller's credentials: refused" \
  "conveyor failed to get" b build nocreds.sif oras.def
check "without credentials: no output" test ! -e "$OWN/nocreds.sif"

# --- Fingerprints failures (build.md §3): exact message, exit 255, nothing left ---
fp_case() {  # fp_case NAME REF FINGERPRINTS MESSAGE
  printf 'Bootstrap: oras\nFrom: %s\nFingerprints: %s\n%%post\n    touch /x\n' "$2" "$3" >"$OWN/fp.def"
  chown "$TUSER" "$OWN/fp.def"
  expect_fatal_after_progress "$1: message" \
    "FATAL:   While performing build: conveyor failed to get: while checking fingerprint: $4" \
    b build --authfile alice.json fp.sif fp.def
  expect_rc "$1: exit 255" 255 b build --authfile alice.json fp.sif fp.def
  check "$1: no output file" test ! -e "$OWN/fp.sif"
  check "$1: no temp file, nothing staged" sh -c "! ls -A '$OWN' | grep -q berth- && [ -z \"\$(ls -A '$STAGE')\" ]"
}
fp_case "wrong fingerprint" "$REG_priv/base/busybox:signed" "$(printf '%040d' 1)" \
  "image not signed by required entities"
fp_case "right and wrong fingerprints" "$REG_priv/base/busybox:signed" "$FP, $(printf '%040d' 2)" \
  "image not signed by required entities"
fp_case "unsigned base with a fingerprint" "$REG_priv/base/busybox:unsigned" "$FP" "signature not found"
printf 'Bootstrap: localimage\nFrom: unsigned.sif\nFingerprints:\n' >"$OWN/empty-fp.def"
chown "$TUSER" "$OWN/empty-fp.def"
check "unsigned localimage, empty Fingerprints: builds" b build -F empty.sif empty-fp.def
printf 'Bootstrap: localimage\nFrom: base.sif\nFingerprints: %s\n' "${FP,,}" >"$OWN/lfp.def"
chown "$TUSER" "$OWN/lfp.def"
check "localimage + right fingerprint (lower case): builds" b build -F lfp.sif lfp.def
# A base changed after it was signed: the signer is listed, the data no
# longer matches the signature.
cp "$OWN/base.sif" "$OWN/tampered.sif"
printf 'X' | dd of="$OWN/tampered.sif" bs=1 seek=$(( $(sif_partition_offset "$OWN/tampered.sif") + 100 )) conv=notrunc 2>/dev/null
chown "$TUSER" "$OWN/tampered.sif"
printf 'Bootstrap: localimage\nFrom: tampered.sif\nFingerprints: %s\n' "$FP" >"$OWN/tampered.def"
chown "$TUSER" "$OWN/tampered.def"
expect_fatal_after_progress "localimage changed after signing: refused" \
  "while checking fingerprint: image not signed by required entities" b build tout.sif tampered.def
printf 'Bootstrap: localimage\nFrom: base.sif\nFingerprints: %040d\n' 3 >"$OWN/lbad.def"
chown "$TUSER" "$OWN/lbad.def"
expect_rc "localimage + wrong fingerprint: exit 255" 255 b build lbad.sif lbad.def

# --- Bootstrap: docker, from a 3-layer OCI image ---
# Made by root: a device node, a FIFO and a setuid file of 1234:5678.
must "the OCI image" bash "$HERE/../oci/make_oci_image.sh" "$OWN/layout"
must "skopeo push" skopeo copy -q --dest-tls-verify=false "oci:$OWN/layout:test" "docker://$REG_pub/test/busy:oci"
printf 'Bootstrap: docker\nRegistry: %s\nNamespace: test\nFrom: busy:oci\n%%post\n    echo docker-post >/post-marker\n' "$REG_pub" >"$OWN/docker.def"
chown "$TUSER" "$OWN/docker.def"
b build docker.sif docker.def >"$T/docker.out" 2>"$T/docker.err" ||
  echo "docker build: $(tail -3 "$T/docker.err")"
expect_out "docker: %post ran on the pulled base" "docker-post" b exec docker.sif cat /post-marker
expect_out "docker: the image's layers are there" "new.txt" b exec docker.sif ls /opq
check "docker: device nodes left out with a warning" \
  grep -q "^WARNING: left out 2 device node(s) of the base image" "$T/docker.err"
expect_out "docker: a setuid file of another owner kept as it was" "-rwsr-xr-x 1234 5678" \
  b exec docker.sif sh -c 'set -- $(ls -ln /data/suid); echo "$1 $3 $4"'
check "docker: the FIFO kept" b exec docker.sif sh -c 'ls -l /data/fifo | grep -q "^p"' 
# (as root: the image's WorkingDir /work is 0750 root's)
expect_out "docker: the image's Entrypoint/Cmd stay the runscript" "$(printf 'hello from oci\n/work\nargs:')" \
  "$BERTH" run "$OWN/docker.sif"
check "docker: staging removed" staging_empty
printf 'Bootstrap: oci\nFrom: layout:test\n' >"$OWN/oci.def"
chown "$TUSER" "$OWN/oci.def"
expect_fatal_after_progress "oci: a layout the user cannot read is refused (read as the user)" \
  "index.json: Permission denied" b build oci.sif oci.def
chown -R "$TUSER" "$OWN/layout"
check "oci: builds from the user's layout" b build oci.sif oci.def
expect_out "oci: the image's files are there" "new.txt" b exec oci.sif ls /opq

# --- Bootstrap: scratch, with %setup and %files ---
echo scratch-file >"$OWN/payload"; chown "$TUSER" "$OWN/payload"
cat >"$OWN/scratch.def" <<'DEF'
Bootstrap: scratch

%setup
    mkdir -p "$APPTAINER_ROOTFS/opt"
    echo from-setup >"$APPTAINER_ROOTFS/opt/setup"

%files
    payload /opt/payload
DEF
chown "$TUSER" "$OWN/scratch.def"
check "scratch: builds" b build scratch.sif scratch.def
mkdir -p "$T/mnt"
if off=$(sif_partition_offset "$OWN/scratch.sif") && [ -n "$off" ] && mount -t squashfs -o ro,loop,offset="$off" "$OWN/scratch.sif" "$T/mnt"; then
  test_mounts+=("$T/mnt")
  got=$(cat "$T/mnt/opt/setup" "$T/mnt/opt/payload" 2>&1)
  [ "$got" = "$(printf 'from-setup\nscratch-file')" ] && ok "scratch: %setup and %files in the image" ||
    bad "scratch: %setup and %files in the image" "$got"
  check "scratch: nothing but what the def put there" test ! -e "$T/mnt/bin"
  umount "$T/mnt"
else
  bad "scratch: %setup and %files in the image" "could not mount it"
fi

# --- library and shub: one clear error ---
for agent in library shub; do
  printf 'Bootstrap: %s\nFrom: x/y\n' "$agent" >"$OWN/$agent.def"
  chown "$TUSER" "$OWN/$agent.def"
  expect_fatal "$agent: not supported, names the alternative" \
    "Bootstrap: $agent is not supported by berth: use oras:// or docker://" b build "$agent.sif" "$agent.def"
done

# --- hostile: a registry whose manifest is garbage ---
$PY "$HERE/../registry/hostile_server.py" "$port" "$(free_port)" "$OWN/base.sif" "$T/hostile.log" &
pids+=($!)
wait_until 10 curl -s "http://$hostile/v2/" || bad "hostile server starts" "no answer"
printf 'Bootstrap: oras\nFrom: %s/badjson:v1\n%%post\n    touch /x\n' "$hostile" >"$OWN/bad.def"
chown "$TUSER" "$OWN/bad.def"
expect_fatal_after_progress "garbage manifest: one FATAL line" "malformed JSON" b build bad.sif bad.def
check "garbage manifest: no output, no temp file" sh -c "test ! -e '$OWN/bad.sif' && ! ls -A '$OWN' | grep -q berth-"
check "garbage manifest: nothing staged" staging_empty
finish
