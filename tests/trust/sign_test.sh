#!/usr/bin/env bash
# sign_test.sh BERTH TESTDATA: `berth sign` and `berth key` end to end with
# real gpg. Signed images verify with berth, and an independent Python
# re-computation (check_signed.py) agrees with the signed JSON byte for
# byte; DSSE signing with each PEM key type, each signature verified by
# Python's cryptography too; the global keyring is root's.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"

berth=$1 data=$2/sif
TUSER=${BERTH_TEST_USER:-berthtest}
TEST_TMP=$(mktemp -d /tmp/berth-sign-XXXXXX)
chmod 0755 "$TEST_TMP"
export GNUPGHOME=$TEST_TMP/gnupg BERTH_CONFIG_DIR=$TEST_TMP/etc
trap 'gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null; gpgconf --homedir "$TEST_TMP/g2" --kill all 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
mkdir -m 0700 "$GNUPGHOME"; mkdir "$BERTH_CONFIG_DIR"
install -m 0755 "$berth" "$TEST_TMP/berth"; berth=$TEST_TMP/berth  # reachable by the test user

# A key pair made by berth (unprotected), and one protected by a passphrase.
check "key newpair" "$berth" key newpair --name "Berth Signer" --email signer@example.org --no-passphrase
FP=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
check "the new key is listed by gpg" test ${#FP} -eq 40
out=$("$berth" key list 2>&1)
case "$out" in *"Fingerprint:       $FP"*"Berth Signer <signer@example.org>"*|*"Berth Signer <signer@example.org>"*"Fingerprint:       $FP"*) ok "key list shows it" ;; *) bad "key list" "$out" ;; esac
out=$("$berth" key list --secret 2>&1)
case "$out" in *"Private key listing"*"$FP"*) ok "key list --secret shows it" ;; *) bad "key list --secret" "$out" ;; esac

for img in one-group two-groups; do
  cp "$data/$img.sif" "$TEST_TMP/$img.sif"; chmod u+w "$TEST_TMP/$img.sif"
  check "sign $img" "$berth" sign "$TEST_TMP/$img.sif"
  check "$img: berth verify" "$berth" verify "$TEST_TMP/$img.sif"
  check "$img: independent digest re-computation" python3 "$here/check_signed.py" "$TEST_TMP/$img.sif" "$FP"
  check "$img: siftool lists the signature with its hash" grep -qE 'Signature \(SHA-(256|384|512)\)' <<<"$(siftool list "$TEST_TMP/$img.sif")"
done
n=$(siftool list "$TEST_TMP/two-groups.sif" | grep -c 'Signature')
check "two groups: one signature per group" test "$n" -eq 2

# --group-id: only that group is signed.
cp "$data/two-groups.sif" "$TEST_TMP/g1.sif"; chmod u+w "$TEST_TMP/g1.sif"
check "sign --group-id 1" "$berth" sign --group-id 1 "$TEST_TMP/g1.sif"
check "verify --group-id 1" "$berth" verify --group-id 1 "$TEST_TMP/g1.sif"
expect_fatal_after_progress "group 2 stays unsigned" "no signature found for object group 2" "$berth" verify "$TEST_TMP/g1.sif"
# --sif-id: the JSON lists one object; verifying that object works.
cp "$data/two-groups.sif" "$TEST_TMP/o3.sif"; chmod u+w "$TEST_TMP/o3.sif"
check "sign --sif-id 3" "$berth" sign --sif-id 3 "$TEST_TMP/o3.sif"
check "verify --sif-id 3" "$berth" verify --sif-id 3 "$TEST_TMP/o3.sif"
# --keyidx / --key-fingerprint select the key.
cp "$data/one-group.sif" "$TEST_TMP/k.sif"; chmod u+w "$TEST_TMP/k.sif"
check "sign --keyidx 0" "$berth" sign --keyidx 0 "$TEST_TMP/k.sif"
expect_fatal_after_progress "sign --keyidx 5 names the problem" "--keyidx 5" "$berth" sign --keyidx 5 "$TEST_TMP/k.sif"
expect_fatal_after_progress "sign --key-fingerprint of no key" "no secret key" "$berth" sign --key-fingerprint 0000000000000000000000000000000000000000 "$TEST_TMP/k.sif"

# An object added to a signed group after signing breaks it.
echo extra >"$TEST_TMP/extra"
"$berth" sif add "$TEST_TMP/one-group.sif" "$TEST_TMP/extra" --datatype 6 --groupid 1 2>/dev/null
expect_fatal_after_progress "object added after signing" "was added to group 1 after signing" "$berth" verify "$TEST_TMP/one-group.sif"

# Passphrases: loopback pinentry from BERTH_SIGN_PASSPHRASE / APPTAINER_SIGN_PASSPHRASE.
export GNUPGHOME=$TEST_TMP/g2; mkdir -m 0700 "$GNUPGHOME"
check "key newpair with a passphrase" env BERTH_SIGN_PASSPHRASE=s3cret "$berth" key newpair --name "Protected"
gpgconf --homedir "$GNUPGHOME" --reload gpg-agent  # forget the cached passphrase
cp "$data/one-group.sif" "$TEST_TMP/p.sif"; chmod u+w "$TEST_TMP/p.sif"
expect_fatal_after_progress "a wrong passphrase fails in one line" "signing" env BERTH_SIGN_PASSPHRASE=wrong "$berth" sign "$TEST_TMP/p.sif"
check "the image is unchanged after a failed sign" cmp "$data/one-group.sif" "$TEST_TMP/p.sif"
check "APPTAINER_SIGN_PASSPHRASE works" env APPTAINER_SIGN_PASSPHRASE=s3cret "$berth" sign "$TEST_TMP/p.sif"
check "the protected key's signature verifies" "$berth" verify "$TEST_TMP/p.sif"
export GNUPGHOME=$TEST_TMP/gnupg

# export / remove / import round trip; verification follows the keyring.
check "key export (armored)" "$berth" key export --armor "$TEST_TMP/pub.asc" "$FP"
check "the export is an armored public key" grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$TEST_TMP/pub.asc"
check "key remove -b (the key and its secret key)" "$berth" key remove -b "$FP"
expect_fatal_after_progress "after remove: unknown signer" "not in the keyring" "$berth" verify "$TEST_TMP/two-groups.sif"
check "key import" "$berth" key import "$TEST_TMP/pub.asc"
check "after import: verifies again" "$berth" verify "$TEST_TMP/two-groups.sif"
expect_fatal_after_progress "key remove of a bad fingerprint" "not a key fingerprint" "$berth" key remove xyz
expect_fatal_after_progress "key import of a non-key" "no OpenPGP key" bash -c "echo junk >$TEST_TMP/junk; $berth key import $TEST_TMP/junk"

# The global keyring: root only; verify falls back to it.
check "key import --global (root)" "$berth" key import --global "$TEST_TMP/pub.asc"
check "global-pgp-public is a binary keyring, 0644" test "$(stat -c %a "$BERTH_CONFIG_DIR/global-pgp-public")" = 644
check "gpg reads the global keyring" bash -c "gpg --batch --show-keys '$BERTH_CONFIG_DIR/global-pgp-public' 2>/dev/null | grep -q $FP"
out=$("$berth" key list --global 2>&1)
case "$out" in *"$FP"*) ok "key list --global" ;; *) bad "key list --global" "$out" ;; esac
out=$(env GNUPGHOME="$TEST_TMP/empty" bash -c "mkdir -m 0700 \$GNUPGHOME; '$berth' verify '$TEST_TMP/two-groups.sif'" 2>&1)
case "$out" in *"[GLOBAL]  Fingerprint: $FP"*) ok "verify uses the global keyring" ;; *) bad "global verify" "$out" ;; esac
bash "$here/../lib/ensure-test-user.sh" "$TUSER"
expect_fatal_after_progress "key import --global as a user" "needs root" runuser -u "$TUSER" -- env GNUPGHOME=/nonexistent BERTH_CONFIG_DIR="$BERTH_CONFIG_DIR" "$berth" key import --global "$TEST_TMP/pub.asc"
expect_fatal_after_progress "key remove --global as a user" "needs root" runuser -u "$TUSER" -- env BERTH_CONFIG_DIR="$BERTH_CONFIG_DIR" "$berth" key remove --global "$FP"
check "key remove --global" "$berth" key remove --global "$FP"
out=$("$berth" key list --global 2>&1)
case "$out" in *"$FP"*) bad "removed from global" "$out" ;; *) ok "key list --global no longer shows it" ;; esac

# DSSE: sign with each PEM key type, verify with its public half only.
for kt in rsa ecdsa ed25519; do
  cp "$data/two-groups.sif" "$TEST_TMP/d-$kt.sif"; chmod u+w "$TEST_TMP/d-$kt.sif"
  check "sign --key ($kt)" "$berth" sign --key "$data/keys-$kt-private.pem" "$TEST_TMP/d-$kt.sif"
  check "verify --key ($kt)" "$berth" verify --key "$data/keys-$kt-public.pem" "$TEST_TMP/d-$kt.sif"
  check "the DSSE signatures verify with Python's cryptography ($kt)" \
    python3 "$here/check_signed.py" --dsse "$data/keys-$kt-public.pem" "$TEST_TMP/d-$kt.sif"
  other=rsa; [ $kt = rsa ] && other=ed25519
  expect_fatal_after_progress "verify with the wrong key ($kt)" "no DSSE signature verifies" "$berth" verify --key "$data/keys-$other-public.pem" "$TEST_TMP/d-$kt.sif"
  expect_rc "Python's cryptography refuses the wrong key ($kt)" 1 \
    python3 "$here/check_signed.py" --dsse "$data/keys-$other-public.pem" "$TEST_TMP/d-$kt.sif"
done
check "DSSE envelope has the SIF payload type" bash -c "siftool dump 4 '$TEST_TMP/d-rsa.sif' | python3 -c 'import json,sys; e=json.load(sys.stdin); assert e[\"payloadType\"]==\"application/vnd.sylabs.sif-metadata+json\"'"
expect_fatal_after_progress "sign --key with a public key" "not a PEM private key" "$berth" sign --key "$data/keys-rsa-public.pem" "$TEST_TMP/k.sif"
expect_fatal_after_progress "sign a read-only image" "ro.sif" bash -c "cp $data/one-group.sif $TEST_TMP/ro.sif; chmod 0444 $TEST_TMP/ro.sif; runuser -u $TUSER -- $berth sign $TEST_TMP/ro.sif"
finish
