#!/usr/bin/env bash
# apptainer_keyring_test.sh BERTH TESTDATA: keys in Apptainer's own keyring
# (~/.apptainer/keys/pgp-public and pgp-secret: binary OpenPGP packets, as
# Apptainer writes them) are read as well as the GnuPG home by `key list`,
# `sign` and `verify`; APPTAINER_KEYSDIR moves it; `verify -l` is Apptainer's
# --local (not --legacy-insecure). As root and as the plain test user, each
# with an empty GnuPG home of their own.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
berth=$1 data=$2/sif
TUSER=${BERTH_TEST_USER:-berthtest}
bash "$here/../lib/ensure-test-user.sh" "$TUSER"
TEST_TMP=$(mktemp -d /tmp/berth-akeys-XXXXXX)
chmod 0755 "$TEST_TMP"
cleanup() {
  local h
  for h in "$TEST_TMP"/*/gnupg "$TEST_TMP/maker"; do gpgconf --homedir "$h" --kill all 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
install -m 0755 "$berth" "$TEST_TMP/berth"
berth=$TEST_TMP/berth

# The key pair, made by gpg in a home of its own and written out as
# Apptainer keeps it: the public and the (unprotected) secret keyring.
maker=$TEST_TMP/maker
mkdir -m 0700 "$maker"
gpg --homedir "$maker" --batch --passphrase '' --quick-gen-key "Apptainer User <au@example.org>" rsa2048 sign never 2>/dev/null ||
  { bad "setup: gpg makes a key" "failed"; finish; }
FP=$(gpg --homedir "$maker" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
gpg --homedir "$maker" --batch --export "$FP" >"$TEST_TMP/pgp-public"
gpg --homedir "$maker" --batch --pinentry-mode loopback --passphrase '' --export-secret-keys "$FP" >"$TEST_TMP/pgp-secret"
[ -s "$TEST_TMP/pgp-public" ] && [ -s "$TEST_TMP/pgp-secret" ] && ! grep -q 'BEGIN PGP' "$TEST_TMP/pgp-public" ||
  { bad "setup: binary keyrings" "empty or armored"; finish; }

for who in root user; do
  h=$TEST_TMP/$who
  mkdir -p "$h/.apptainer/keys" "$h/gnupg" "$h/elsewhere"
  chmod 0700 "$h/gnupg"
  cp "$TEST_TMP/pgp-public" "$TEST_TMP/pgp-secret" "$h/.apptainer/keys/"
  cp "$TEST_TMP/pgp-public" "$h/elsewhere/"
  cp "$data/one-group.sif" "$h/img.sif"
  [ "$who" = user ] && chown -R "$TUSER:" "$h"
  chmod u+w "$h/img.sif"
  # b ENV... -- ARGS: berth as WHO with HOME=$h and an empty GnuPG home.
  b() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local cmd=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$h" GNUPGHOME="$h/gnupg"
               BERTH_CONFIG_DIR="$TEST_TMP/etc" "${envs[@]}" "$berth" "$@")
    [ "$who" = user ] && cmd=(runuser -u "$TUSER" -- "${cmd[@]}")
    "${cmd[@]}"
  }
  out=$(b -- key list 2>&1)
  case "$out" in
    *"Public key listing ($h/.apptainer/keys/pgp-public):"*"0) User:              Apptainer User <au@example.org>"*"Fingerprint:       $FP"*)
      ok "[$who] key list shows the Apptainer keyring's key" ;;
    *) bad "[$who] key list shows the Apptainer keyring's key" "$out" ;;
  esac
  out=$(b -- key list --secret 2>&1)
  case "$out" in *"Private key listing ($h/.apptainer/keys/pgp-secret):"*"$FP"*) ok "[$who] key list -s shows its secret key" ;;
    *) bad "[$who] key list -s" "$out" ;; esac
  b -- sign "$h/img.sif" >/dev/null 2>"$TEST_TMP/stderr" && ok "[$who] sign with the Apptainer keyring's secret key" ||
    bad "[$who] sign with the Apptainer keyring's secret key" "$(cat "$TEST_TMP/stderr")"
  check "[$who] signed by that key (independent re-computation)" python3 "$here/check_signed.py" "$h/img.sif" "$FP"
  b -- verify "$h/img.sif" >"$TEST_TMP/out" 2>&1 && ok "[$who] verify with the Apptainer keyring's public key" ||
    bad "[$who] verify with the Apptainer keyring's public key" "$(cat "$TEST_TMP/out")"
  b -- verify -l "$h/img.sif" >"$TEST_TMP/out" 2>&1 && ! grep -q legacy "$TEST_TMP/out" &&
    ok "[$who] verify -l is --local (a non-legacy signature verifies)" || bad "[$who] verify -l" "$(cat "$TEST_TMP/out")"
  b -- verify --legacy-insecure "$h/img.sif" >"$TEST_TMP/out" 2>&1
  grep -q "no legacy signature" "$TEST_TMP/out" && ok "[$who] --legacy-insecure is still the legacy check" ||
    bad "[$who] --legacy-insecure" "$(cat "$TEST_TMP/out")"
  rm "$h/.apptainer/keys/pgp-public"
  b -- verify "$h/img.sif" >"$TEST_TMP/out" 2>&1
  [ $? -ne 0 ] && grep -q "not in the keyring" "$TEST_TMP/out" &&
    ok "[$who] without pgp-public the signer is unknown" || bad "[$who] without pgp-public" "$(cat "$TEST_TMP/out")"
  b APPTAINER_KEYSDIR="$h/elsewhere" -- verify "$h/img.sif" >"$TEST_TMP/out" 2>&1 &&
    ok "[$who] APPTAINER_KEYSDIR names the keyring directory" || bad "[$who] APPTAINER_KEYSDIR" "$(cat "$TEST_TMP/out")"
  printf 'not a key' >"$h/elsewhere/pgp-public"
  b APPTAINER_KEYSDIR="$h/elsewhere" -- key list >"$TEST_TMP/out" 2>&1
  [ $? -eq 255 ] && grep -q "^FATAL: .*$h/elsewhere/pgp-public" "$TEST_TMP/out" &&
    ok "[$who] a keyring file that is no keyring is a FATAL naming it" || bad "[$who] a bad keyring file" "$(cat "$TEST_TMP/out")"
done
finish
