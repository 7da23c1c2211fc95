#!/usr/bin/env bash
# verify_golden_test.sh BERTH TESTDATA: `berth verify` on the reference images
# (formats.md §2): every *-signed-pgp and *-signed-legacy* image verifies
# with the public half of keys-private.asc (legacy only with
# --legacy-insecure), *-signed-dsse with the PEM keys, unsigned ones fail,
# and one flipped byte in any object or signed descriptor field fails naming
# the object.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"

berth=$1 data=$2/sif
TEST_TMP=$(mktemp -d /tmp/berth-vg-XXXXXX)
trap 'gpgconf --homedir "$TEST_TMP/gnupg" --kill all 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
export GNUPGHOME=$TEST_TMP/gnupg BERTH_CONFIG_DIR=$TEST_TMP/etc
mkdir -m 0700 "$GNUPGHOME"; mkdir "$BERTH_CONFIG_DIR"
# Only the public half: verification must not need the secret key.
must "import the reference key" gpg --batch --quiet --import "$data/keys-private.asc"
must "export its public half" gpg --batch --output "$TEST_TMP/pub.gpg" --export 12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84
rm -rf "$GNUPGHOME"; mkdir -m 0700 "$GNUPGHOME"
must "berth key import of the public half" "$berth" key import "$TEST_TMP/pub.gpg"
FP=12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84

# verifies NAME IMAGE FLAGS...: exit 0, the signer and the object table.
verifies() {
  local name=$1 img=$2; shift 2
  local out rc
  out=$("$berth" verify "$@" "$img" 2>"$TEST_TMP/stderr"); rc=$?
  if [ $rc -ne 0 ]; then bad "$name" "rc=$rc $(cat "$TEST_TMP/stderr")"; return; fi
  case "$out" in *"Objects verified:"*"ID  |GROUP   |LINK    |TYPE"*) ;; *) bad "$name" "output: $out"; return ;; esac
  grep -q "INFO:    Verified signature(s) from image '$img'" "$TEST_TMP/stderr" || { bad "$name" "no INFO line"; return; }
  ok "$name"
}

for img in one-group-signed-pgp two-groups-signed-pgp; do
  verifies "$img verifies" "$data/$img.sif"
  out=$("$berth" verify "$data/$img.sif" 2>/dev/null)
  check "$img names the signer" grep -q "^\[LOCAL\]   Signing entity: Unit Test <unit@test.com>" <<<"$out"
  check "$img names the fingerprint" grep -q "^\[LOCAL\]   Fingerprint: $FP" <<<"$out"
  check "$img lists object 2" grep -q '^2   |1       |NONE    |FS$' <<<"$out"
  expect_fatal_after_progress "$img has no legacy signature" "no legacy signature found for object 2" "$berth" verify --legacy-insecure "$data/$img.sif"
done
check "two groups: object 3 of group 2 verified" grep -q '^3   |2       |NONE    |FS$' <<<"$("$berth" verify "$data/two-groups-signed-pgp.sif" 2>/dev/null)"
verifies "--group-id 2 only" "$data/two-groups-signed-pgp.sif" --group-id 2
verifies "--sif-id 1 only" "$data/two-groups-signed-pgp.sif" --sif-id 1

# Legacy formats: refused by default, accepted with --legacy-insecure.
for img in one-group-signed-legacy two-groups-signed-legacy two-groups-signed-legacy-all; do
  expect_fatal_after_progress "$img needs --legacy-insecure" "no signature found" "$berth" verify "$data/$img.sif"
  verifies "$img verifies (legacy, primary partition)" "$data/$img.sif" --legacy-insecure
done
verifies "one-group-signed-legacy-all verifies (legacy --all)" "$data/one-group-signed-legacy-all.sif" --legacy-insecure --all
for img in one-group-signed-legacy-group two-groups-signed-legacy-group; do
  expect_fatal_after_progress "$img needs --legacy-insecure" "no signature found" "$berth" verify "$data/$img.sif"
  verifies "$img verifies (legacy group)" "$data/$img.sif" --legacy-insecure --group-id 1
done
expect_fatal_after_progress "legacy --all with an unsigned object fails" "no legacy signature found for object 3" "$berth" verify --legacy-insecure --all "$data/two-groups-signed-legacy-all.sif"

# DSSE: with the PEM keys; a key that signed nothing fails.
for img in one-group-signed-dsse two-groups-signed-dsse; do
  verifies "$img verifies with RSA" "$data/$img.sif" --key "$data/keys-rsa-public.pem"
  verifies "$img verifies with Ed25519" "$data/$img.sif" --key "$data/keys-ed25519-public.pem"
  # The independent checker sign_test.sh uses on berth's own signatures
  # agrees with the reference signer's.
  for kt in rsa ed25519; do
    check "$img: Python's cryptography verifies the reference's $kt signature" \
      python3 "$here/check_signed.py" --dsse "$data/keys-$kt-public.pem" "$data/$img.sif"
  done
  expect_fatal_after_progress "$img does not verify with the ECDSA key" "no DSSE signature verifies" "$berth" verify --key "$data/keys-ecdsa-public.pem" "$data/$img.sif"
  expect_fatal_after_progress "$img needs --key" "verify it with --key" "$berth" verify "$data/$img.sif"
done

# Unsigned images fail, each with one line.
for img in one-group two-groups; do
  expect_fatal_after_progress "$img (unsigned) fails" "no signature found for object group 1" "$berth" verify "$data/$img.sif"
done
expect_fatal_after_progress "empty.sif fails" "no object groups" "$berth" verify "$data/empty.sif"
for img in "$data"/one-object-*.sif; do
  expect_fatal_after_progress "$(basename "$img") (unsigned) fails" "no signature found for object group 1" "$berth" verify "$img"
done

# An unknown signer: an empty keyring.
GNUPGHOME=$TEST_TMP/empty; mkdir -m 0700 "$GNUPGHOME"
expect_fatal_after_progress "unknown signer" "which is not in the keyring" env GNUPGHOME="$GNUPGHOME" "$berth" verify "$data/one-group-signed-pgp.sif"
GNUPGHOME=$TEST_TMP/gnupg

# flip IMG OFFSET OUT: a copy of IMG with the low bit of the byte at OFFSET flipped.
flip() {
  cp "$1" "$3" && chmod u+w "$3"
  python3 - "$3" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, 'r+b') as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x01]))
PY
}
desc() { echo $((4096 + ($1 - 1) * 585 + $2)); }  # descriptor of object $1, field offset $2

t=$TEST_TMP/flip.sif
for img in two-groups-signed-pgp two-groups-signed-dsse; do
  keyflag=(); [ "${img#*dsse}" != "$img" ] && keyflag=(--key "$data/keys-rsa-public.pem")
  for obj in 1:32768 2:36864 3:40960; do
    id=${obj%%:*} off=${obj#*:}
    flip "$data/$img.sif" "$off" "$t"
    expect_fatal_after_progress "$img: flipped data of object $id" "data of object $id changed after signing" "$berth" verify "${keyflag[@]}" "$t"
    flip "$data/$img.sif" "$(desc "$id" 73)" "$t"   # name
    expect_fatal_after_progress "$img: flipped name of object $id" "descriptor of object $id changed after signing" "$berth" verify "${keyflag[@]}" "$t"
    flip "$data/$img.sif" "$(desc "$id" 201)" "$t"  # extra (fs type)
    expect_fatal_after_progress "$img: flipped fs type of object $id" "descriptor of object $id changed after signing" "$berth" verify "${keyflag[@]}" "$t"
    flip "$data/$img.sif" "$(desc "$id" 41)" "$t"   # ctime
    expect_fatal_after_progress "$img: flipped ctime of object $id" "descriptor of object $id changed after signing" "$berth" verify "${keyflag[@]}" "$t"
  done
  flip "$data/$img.sif" 0 "$t"  # launch script
  expect_fatal_after_progress "$img: flipped header" "global header changed after signing" "$berth" verify "${keyflag[@]}" "$t"
  flip "$data/$img.sif" 50 "$t"  # UUID
  expect_fatal_after_progress "$img: flipped UUID" "global header changed after signing" "$berth" verify "${keyflag[@]}" "$t"
done
# The signature descriptor's fingerprint (pgp object 4 signs group 1).
flip "$data/two-groups-signed-pgp.sif" "$(desc 4 210)" "$t"
expect_fatal_after_progress "flipped signer fingerprint" "is not the signer's" "$berth" verify "$t"
# The signed text itself.
flip "$data/one-group-signed-pgp.sif" $((40960 + 200)) "$t"
expect_fatal_after_progress "flipped signed JSON" "signature object 3" "$berth" verify "$t"
# Legacy: the digest covers the data.
flip "$data/one-group-signed-legacy.sif" 36864 "$t"
expect_fatal_after_progress "legacy: flipped object 2" "data of object 2 changed after signing" "$berth" verify --legacy-insecure "$t"
flip "$data/one-group-signed-legacy-group.sif" 32768 "$t"
expect_fatal_after_progress "legacy group: flipped object 1" "data of object group 1 changed" "$berth" verify --legacy-insecure --group-id 1 "$t"

# --json: the shape scripts parse.
out=$("$berth" verify --json "$data/one-group-signed-pgp.sif" 2>/dev/null)
check "--json is one JSON document with 2 signed objects" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); k=d["SignerKeys"]
assert d["Signatures"]==1 and len(k)==2, d
assert k[0]["Signer"]["Fingerprint"]=="12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"
assert k[0]["Signer"]["Name"]=="Unit Test <unit@test.com>" and k[1]["Signer"]["DataCheck"]' "$out"
out=$("$berth" verify --json "$data/one-group.sif" 2>/dev/null)
check "--json on failure carries the reason" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert "no signature found" in d["Reason"], d' "$out"
expect_fatal_after_progress "a missing image is one line" "no-such.sif" "$berth" verify "$TEST_TMP/no-such.sif"
expect_fatal_after_progress "a non-SIF file is one line" "not.sif" bash -c "echo hi >$TEST_TMP/not.sif; $berth verify $TEST_TMP/not.sif"
# Hostile signature objects: junk, a forged clear-signed block, a broken DSSE
# envelope. Each is one clear line, never a crash.
hostile() {  # hostile OUT PAYLOAD: one-group.sif plus a signature object linked to group 1
  cp "$data/one-group.sif" "$1" && chmod u+w "$1"
  must "a hostile signature object in $1" "$berth" sif add --datatype 5 --signhash 1 \
    --signentity 0000000000000000000000000000000000000001 --link 4026531841 "$1" "$2"
}
head -c 5000 /dev/urandom >"$TEST_TMP/junk"; hostile "$TEST_TMP/h1.sif" "$TEST_TMP/junk"
expect_fatal_after_progress "a junk signature object" "signature object 3" "$berth" verify "$TEST_TMP/h1.sif"
printf -- '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{"version":1}\n-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n' >"$TEST_TMP/forged"
hostile "$TEST_TMP/h2.sif" "$TEST_TMP/forged"
expect_fatal_after_progress "a forged clear-signed block" "signature object 3" "$berth" verify "$TEST_TMP/h2.sif"
printf '{"payloadType":"application/vnd.sylabs.sif-metadata+json","payload":"!!!","signatures":[{"sig":"x"}]}' >"$TEST_TMP/dsse"
hostile "$TEST_TMP/h3.sif" "$TEST_TMP/dsse"
expect_fatal_after_progress "a broken DSSE envelope" "malformed base64" "$berth" verify --key "$data/keys-rsa-public.pem" "$TEST_TMP/h3.sif"
finish
