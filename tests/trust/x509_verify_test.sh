#!/usr/bin/env bash
# x509_verify_test.sh BERTH TESTDATA: `verify --certificate` (Apptainer
# 1.2+) end to end, as root and as the test user. A real CA, intermediate
# and leaves made by openssl; SIFs signed with the leaf's key by
# `berth sign --key`; real `openssl ocsp` responders on free local ports
# for --ocsp-verify (a good, a revoked, an unknown and a forged answer).
# Every refusal is one FATAL line naming the file and the problem, exit 255.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"

berth=$1 data=$2/sif
TUSER=${BERTH_TEST_USER:-berthtest}
[ "$(id -u)" = 0 ] || { bad setup "needs root (runs the checks as root and as $TUSER)"; finish; }
bash "$here/../lib/ensure-test-user.sh" "$TUSER"
TEST_TMP=$(mktemp -d /tmp/berth-x509-XXXXXX)
chmod 0755 "$TEST_TMP"
responders=()
cleanup() {
  local p
  for p in "${responders[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT
install -m 0755 "$berth" "$TEST_TMP/berth"; berth=$TEST_TMP/berth  # reachable by the test user
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY no_proxy NO_PROXY
P=$TEST_TMP/pki; mkdir "$P"; cd "$P" || exit 1

cat >ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
[tls]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[ocsp]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
authorityInfoAccess = OCSP;URI:${ENV::OCSP_URL}
CNF
export OCSP_URL=unused
# root NAME: a self-signed CA. issue NAME ISSUER SECTION SERIAL [KEYTYPE]: a
# certificate for a new key, signed by ISSUER.
root() {
  must "root $1" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$1.key" -out "$1.pem" -subj "/CN=$1" -days 2 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
issue() {
  local alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  [ "${5:-}" = rsa ] && alg=(-newkey rsa:2048)
  must "key $1" openssl req "${alg[@]}" -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1"
  must "certificate $1" openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -set_serial "$4" -days 2 -extfile ext.cnf -extensions "$3" -out "$1.pem"
}
root root; root other-root
issue inter root ca 0x10
issue signer inter leaf 0x20
issue signer-rsa inter leaf 0x21 rsa
issue tls-server inter tls 0x22
cat inter.pem >bundle.pem
# An expired leaf (openssl 3.0's x509 cannot back-date; Python's cryptography can).
must "expired leaf" python3 - <<'PY'
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
ca = x509.load_pem_x509_certificate(open("inter.pem", "rb").read())
ca_key = serialization.load_pem_private_key(open("inter.key", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(0x23)
        .not_valid_before(now - datetime.timedelta(days=3)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256()))
open("expired.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open("expired.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
echo "not a certificate" >garbage.pem
{ cat inter.pem; printf -- '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n'; } >bad-bundle.pem
{ cat inter.pem signer.key; } >key-bundle.pem

# OCSP: each responder takes a port of its own (-port 0) and says which;
# the leaves it answers for are issued after, their AIA naming that port.
# (A bare connection probing for readiness would wedge the one-at-a-time
# responder, so readiness is read from its log.)
# responder INDEX SIGNER: starts `openssl ocsp`; sets PORT.
responder() {
  local log=$TEST_TMP/ocsp-$2.log
  # timeout: a test killed outright (ctest's limit) leaves no responder behind for long.
  timeout 300 openssl ocsp -index "$1" -CA ocsp-root.pem -rsigner "$2.pem" -rkey "$2.key" \
    -port 0 -nmin 10 -ignore_err >"$log" 2>&1 &
  responders+=("$!")
  wait_until 10 grep -q 'waiting for OCSP client connections' "$log" ||
    { bad "setup: OCSP responder ($2)" "$(cat "$log")"; finish; }
  PORT=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\) PID=.*/\1/p' "$log")
  [ -n "$PORT" ] || { bad "setup: OCSP responder port ($2)" "$(cat "$log")"; finish; }
}
root ocsp-root; root forger
end=$(date -u -d '+2 days' +%y%m%d%H%M%SZ) revoked_at=$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t31\tunknown\t/CN=ocsp-good\n' "$end" >index.txt
printf 'R\t%s\t%s\t32\tunknown\t/CN=ocsp-revoked\n' "$end" "$revoked_at" >>index.txt
printf 'V\t%s\t\t33\tunknown\t/CN=ocsp-forged\n' "$end" >forged-index.txt
responder index.txt ocsp-root; good_port=$PORT
responder forged-index.txt forger; forged_port=$PORT
OCSP_URL=http://127.0.0.1:$good_port/ issue ocsp-good ocsp-root ocsp 0x31
OCSP_URL=http://127.0.0.1:$good_port/ issue ocsp-revoked ocsp-root ocsp 0x32
OCSP_URL=http://127.0.0.1:$forged_port/ issue ocsp-forged ocsp-root ocsp 0x33
OCSP_URL=http://127.0.0.1:$good_port/ issue ocsp-unknown ocsp-root ocsp 0x34  # not in the index
chmod -R a+rX "$P"
# OpenSSL's own tools agree on the fixtures berth is judged against.
check "openssl verify: the good chain" openssl verify -CAfile root.pem -untrusted bundle.pem signer.pem
check "openssl verify: not to the other root" bash -c '! openssl verify -CAfile other-root.pem -untrusted bundle.pem signer.pem 2>/dev/null'
check "openssl verify: the expired leaf" bash -c '! openssl verify -CAfile root.pem -untrusted bundle.pem expired.pem 2>/dev/null'
check "openssl ocsp: the revoked leaf" bash -c "openssl ocsp -issuer ocsp-root.pem -cert ocsp-revoked.pem -url http://127.0.0.1:$good_port/ -CAfile ocsp-root.pem 2>/dev/null | grep -q 'ocsp-revoked.pem: revoked'"

# Every check runs as root and as the test user, each signing its own copies.
run_as() { if [ "$who" = root ]; then "$@"; else runuser -u "$TUSER" -- "$@"; fi; }
for who in root "$TUSER"; do
  W=$TEST_TMP/$who; mkdir "$W"; [ "$who" = root ] || chown "$TUSER" "$W"
  sign() {  # sign KEY NAME: a copy of one-group.sif signed with KEY
    run_as cp "$data/one-group.sif" "$W/$2.sif"; run_as chmod u+w "$W/$2.sif"
    must "sign $2 ($who)" run_as "$berth" sign --key "$P/$1.key" "$W/$2.sif"
  }
  v() { run_as "$berth" verify "$@"; }
  sign signer s; sign signer-rsa rsa; sign expired exp; sign tls-server tls; sign inter wrongkey
  sign ocsp-good og; sign ocsp-revoked orv; sign ocsp-forged ofg; sign ocsp-unknown ouk
  chain=(--certificate-intermediates "$P/bundle.pem" --certificate-roots "$P/root.pem")

  out=$(v --certificate "$P/signer.pem" "${chain[@]}" "$W/s.sif" 2>&1)
  case "$out" in *"[LOCAL]   Key: $P/signer.pem"*"Verified signature(s) from image"*) ok "a good chain verifies ($who)" ;;
    *) bad "a good chain verifies ($who)" "$out" ;; esac
  check "an RSA leaf verifies ($who)" v --certificate "$P/signer-rsa.pem" "${chain[@]}" "$W/rsa.sif"
  out=$(v -j --certificate "$P/signer.pem" "${chain[@]}" "$W/s.sif" 2>/dev/null)
  check "-j/--json with a certificate ($who)" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["Signatures"]==1 and d["SignerKeys"][0]["Signer"]["Name"].endswith("signer.pem"), d' "$out"
  out=$(v -j --certificate "$P/signer.pem" --certificate-intermediates "$P/bundle.pem" --certificate-roots "$P/other-root.pem" "$W/s.sif" 2>/dev/null); rc=$?
  case "$rc:$out" in '255:{"Signatures":0,"SignerKeys":[],"Reason":"certificate '*'signed by unknown authority'*) ok "-j: a refused certificate still answers in JSON ($who)" ;;
    *) bad "-j: a refused certificate still answers in JSON ($who)" "rc=$rc $out" ;; esac
  check "APPTAINER_VERIFY_CERTIFICATE/INTERMEDIATES/ROOTS ($who)" run_as env APPTAINER_VERIFY_CERTIFICATE="$P/signer.pem" \
    APPTAINER_VERIFY_INTERMEDIATES="$P/bundle.pem" APPTAINER_VERIFY_ROOTS="$P/root.pem" "$berth" verify "$W/s.sif"
  check "SINGULARITY_VERIFY_* forms ($who)" run_as env SINGULARITY_VERIFY_CERTIFICATE="$P/signer.pem" \
    SINGULARITY_VERIFY_INTERMEDIATES="$P/bundle.pem" SINGULARITY_VERIFY_ROOTS="$P/root.pem" "$berth" verify "$W/s.sif"
  expect_fatal_after_progress "BERTH_VERIFY_ROOTS beats APPTAINER_ ($who)" "signed by unknown authority" run_as env \
    BERTH_VERIFY_ROOTS="$P/other-root.pem" APPTAINER_VERIFY_ROOTS="$P/root.pem" "$berth" verify --certificate "$P/signer.pem" \
    --certificate-intermediates "$P/bundle.pem" "$W/s.sif"

  expect_fatal_after_progress "no intermediates ($who)" "certificate $P/signer.pem: x509: certificate signed by unknown authority; give the issuing CAs with --certificate-intermediates" \
    v --certificate "$P/signer.pem" --certificate-roots "$P/root.pem" "$W/s.sif"
  expect_fatal_after_progress "the wrong root ($who)" "certificate $P/signer.pem: x509: certificate signed by unknown authority" \
    v --certificate "$P/signer.pem" --certificate-intermediates "$P/bundle.pem" --certificate-roots "$P/other-root.pem" "$W/s.sif"
  expect_fatal_after_progress "the system roots do not know the test root ($who)" "signed by unknown authority" \
    v --certificate "$P/signer.pem" --certificate-intermediates "$P/bundle.pem" "$W/s.sif"
  expect_fatal_after_progress "an expired leaf ($who)" "certificate $P/expired.pem: x509: certificate has expired or is not yet valid (valid until" \
    v --certificate "$P/expired.pem" "${chain[@]}" "$W/exp.sif"
  expect_fatal_after_progress "a TLS (serverAuth) leaf ($who)" "certificate $P/tls-server.pem: x509: certificate specifies an incompatible key usage" \
    v --certificate "$P/tls-server.pem" "${chain[@]}" "$W/tls.sif"
  expect_fatal_after_progress "signed with another key ($who)" "no DSSE signature verifies with the given key(s); it was not signed with the key of certificate $P/signer.pem" \
    v --certificate "$P/signer.pem" "${chain[@]}" "$W/wrongkey.sif"
  expect_fatal_after_progress "a malformed certificate ($who)" "loading the certificate: $P/garbage.pem: not a PEM certificate" \
    v --certificate "$P/garbage.pem" "${chain[@]}" "$W/s.sif"
  expect_fatal_after_progress "a missing certificate ($who)" "$P/nope.pem" v --certificate "$P/nope.pem" "${chain[@]}" "$W/s.sif"
  expect_fatal_after_progress "a malformed bundle ($who)" "loading intermediate certificates: $P/bad-bundle.pem: PEM block 2 is not a certificate" \
    v --certificate "$P/signer.pem" --certificate-intermediates "$P/bad-bundle.pem" --certificate-roots "$P/root.pem" "$W/s.sif"
  expect_fatal_after_progress "a key inside a bundle ($who)" "loading root certificates: $P/key-bundle.pem: PEM block 2 is not a certificate" \
    v --certificate "$P/signer.pem" --certificate-intermediates "$P/bundle.pem" --certificate-roots "$P/key-bundle.pem" "$W/s.sif"
  expect_fatal_after_progress "an empty roots file ($who)" "loading root certificates: $P/garbage.pem: holds no PEM certificate" \
    v --certificate "$P/signer.pem" --certificate-intermediates "$P/bundle.pem" --certificate-roots "$P/garbage.pem" "$W/s.sif"
  expect_fatal_after_progress "--certificate-roots alone ($who)" "--certificate-roots applies to --certificate" \
    v --certificate-roots "$P/root.pem" "$W/s.sif"
  rc=$(v --certificate "$P/signer.pem" "$W/s.sif" >/dev/null 2>&1; echo $?)
  check "a refusal exits 255 ($who)" test "$rc" = 255

  ochain=(--certificate-roots "$P/ocsp-root.pem" --ocsp-verify)
  check "--ocsp-verify: good ($who)" v --certificate "$P/ocsp-good.pem" "${ochain[@]}" "$W/og.sif"
  expect_fatal_after_progress "--ocsp-verify: revoked ($who)" "certificate $P/ocsp-revoked.pem: OCSP verification has failed: 'CN=ocsp-revoked': certificate revoked at" \
    v --certificate "$P/ocsp-revoked.pem" "${ochain[@]}" "$W/orv.sif"
  check "the revoked leaf verifies without --ocsp-verify ($who)" v --certificate "$P/ocsp-revoked.pem" --certificate-roots "$P/ocsp-root.pem" "$W/orv.sif"
  expect_fatal_after_progress "APPTAINER_VERIFY_OCSP=true: revoked ($who)" "certificate revoked at" run_as env APPTAINER_VERIFY_OCSP=true \
    "$berth" verify --certificate "$P/ocsp-revoked.pem" --certificate-roots "$P/ocsp-root.pem" "$W/orv.sif"
  expect_fatal_after_progress "--ocsp-verify: an answer signed by a stranger ($who)" "the response's signature does not verify" \
    v --certificate "$P/ocsp-forged.pem" "${ochain[@]}" "$W/ofg.sif"
  expect_fatal_after_progress "--ocsp-verify: a certificate the responder does not know ($who)" "'CN=ocsp-unknown': status unknown. certificate cannot be trusted" \
    v --certificate "$P/ocsp-unknown.pem" "${ochain[@]}" "$W/ouk.sif"
  expect_fatal_after_progress "--ocsp-verify: no responder in the certificate ($who)" "'CN=signer': certificate does not support OCSP" \
    v --certificate "$P/signer.pem" "${chain[@]}" --ocsp-verify "$W/s.sif"
done
finish
