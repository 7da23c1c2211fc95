#!/usr/bin/env bash
# oras:// push and pull against a real docker-registry, through a private
# system-mode berthd and its node cache: round trip byte-identical,
# Apptainer's manifest field by field, output files owned by the caller, the
# cache serving a second pull without a download, and authentication.
#
# usage: registry_test.sh BERTH BERTHD KIND   (KIND: plain, basic, tls, token; as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
kind=$3
setup_binaries "$1" "$2"
bash "$HERE/../lib/ensure-test-user.sh" berthtest
bash "$HERE/../lib/ensure-test-user.sh" berthtest2
start_registry r "$kind"
reg=$REG_r
case $kind in
  tls) start_berthd "[registry]
ca_file = \"$T/ca.pem\"" ;;
  basic) start_berthd "" ;;  # basic uses --no-https on the command line instead
  *) start_berthd "[registry]
insecure = [\"$reg\"]" ;;
esac
nohttps=()
[ "$kind" = basic ] && nohttps=(--no-https)

bash "$HERE/../integration/make_test_image.sh" "$BERTH" "$T/img.sif" >/dev/null 2>&1 ||
  { echo "FAIL making the test image"; exit 1; }
chmod 0644 "$T/img.sif"
digest=sha256:$(sha256sum "$T/img.sif" | cut -d' ' -f1)
size=$(stat -c %s "$T/img.sif")

# Credentials: alice for the authenticated kinds, readable by root only.
auth=()
if [ "$kind" = basic ] || [ "$kind" = token ]; then
  authfile "$T/alice.json" "$reg" alice alicepw
  auth=(--authfile "$T/alice.json")
fi

check "push" "$BERTH" push -q "${nohttps[@]}" "${auth[@]}" "$T/img.sif" "oras://$reg/test/img:v1"
check "pull as root" "$BERTH" pull -q "${nohttps[@]}" "${auth[@]}" "$T/out1.sif" "oras://$reg/test/img:v1"
check "round trip is byte-identical" cmp -s "$T/img.sif" "$T/out1.sif"
[ "$(blob_gets "$T/r.log" "$digest")" -eq 1 ] && ok "first pull downloads the blob once" ||
  bad "first pull downloads the blob once" "$(blob_gets "$T/r.log" "$digest") GETs"

# The manifest, byte for byte as Apptainer writes it (formats.md §3.1).
curl_auth=()
case $kind in
  basic) curl_auth=(-u alice:alicepw) ;;
  tls) curl_auth=(--cacert "$T/ca.pem") ;;
  token) tok=$(curl -s -u alice:alicepw "$(grep -o 'http://[^"]*token' "$T/reg-r/config.yml")?service=berth-test-registry&scope=repository:test/img:pull" |
                $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
         curl_auth=(-H "Authorization: Bearer $tok") ;;
esac
scheme=http; [ "$kind" = tls ] && scheme=https
curl -s "${curl_auth[@]}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "$scheme://$reg/v2/test/img/manifests/v1" >"$T/manifest.json"
want='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.sylabs.sif.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","data":"e30="},"layers":[{"mediaType":"application/vnd.sylabs.sif.layer.v1.sif","size":'$size',"digest":"'$digest'","annotations":{"org.opencontainers.image.title":"img.sif"}}]}'
[ "$(cat "$T/manifest.json")" = "$want" ] && ok "manifest matches Apptainer's byte for byte" ||
  bad "manifest matches Apptainer's byte for byte" "$(head -c 600 "$T/manifest.json")"
$PY - "$T/manifest.json" "$digest" "$size" <<'PY' && ok "manifest fields (formats.md §3.1)" || bad "manifest fields (formats.md §3.1)" "see above"
import json, sys
m = json.load(open(sys.argv[1])); d, n = sys.argv[2], int(sys.argv[3])
assert list(m) == ["schemaVersion", "mediaType", "config", "layers"], list(m)
assert m["schemaVersion"] == 2 and m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
c = m["config"]
assert list(c) == ["mediaType", "size", "digest", "data"], list(c)
assert c == {"mediaType": "application/vnd.sylabs.sif.config.v1+json", "size": 2, "data": "e30=",
             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
(l,) = m["layers"]
assert list(l) == ["mediaType", "size", "digest", "annotations"], list(l)
assert l["mediaType"] == "application/vnd.sylabs.sif.layer.v1.sif" and l["size"] == n and l["digest"] == d
assert l["annotations"] == {"org.opencontainers.image.title": "img.sif"}
PY
# The same manifest against the format's own definition rather than the
# expectations above: the OCI image-spec's published JSON schema (and skopeo
# below, last, since it downloads the blob the cache checks count).
check "manifest is valid by the OCI image-spec's JSON schema" \
  $PY "$HERE/check_oci_schema.py" manifest "$T/manifest.json"
curl -s "${curl_auth[@]}" "$scheme://$reg/v2/test/img/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" >"$T/config.json"
[ "$(cat "$T/config.json")" = "{}" ] && ok "config blob is {}" || bad "config blob is {}" "$(head -c 100 "$T/config.json")"

# A plain user: output created by and owned by the user, served from the cache.
udir=$T/u1
mkdir -m 0700 "$udir" && chown berthtest: "$udir"
uauth=()
if [ ${#auth[@]} -gt 0 ]; then
  cp "$T/alice.json" "$udir/auth.json" && chown berthtest: "$udir/auth.json"
  uauth=(--authfile "$udir/auth.json")
fi
check "pull as a plain user" as_user berthtest "$BERTH" pull -q "${nohttps[@]}" "${uauth[@]}" \
  "$udir/out.sif" "oras://$reg/test/img:v1"
[ "$(stat -c %U "$udir/out.sif" 2>/dev/null)" = berthtest ] && ok "output owned by the caller" ||
  bad "output owned by the caller" "$(stat -c %U "$udir/out.sif" 2>&1)"
check "user's copy is identical" cmp -s "$T/img.sif" "$udir/out.sif"
[ "$(blob_gets "$T/r.log" "$digest")" -eq 1 ] && ok "second pull is served by the node cache" ||
  bad "second pull is served by the node cache" "$(blob_gets "$T/r.log" "$digest") GETs"
expect_fatal "existing output needs --force" "already exists" \
  "$BERTH" pull -q "${nohttps[@]}" "${auth[@]}" "$T/out1.sif" "oras://$reg/test/img:v1"
check "--force overwrites" "$BERTH" pull -q -F "${nohttps[@]}" "${auth[@]}" "$T/out1.sif" "oras://$reg/test/img:v1"
expect_fatal "missing tag is one FATAL line" "does not exist" \
  "$BERTH" pull -q "${nohttps[@]}" "${auth[@]}" "$T/none.sif" "oras://$reg/test/img:nope"
[ ! -e "$T/none.sif" ] && no_debris "$T" && ok "failed pull leaves no file" || bad "failed pull leaves no file" "$(ls -A "$T")"
[ "$(stat -c %a "$T/state/cache")" = 700 ] && ok "cache dir is 0700" || bad "cache dir is 0700" "$(stat -c %a "$T/state/cache")"

# The same bytes pushed to another repository: a cross-repository mount
# (POST ?mount=&from= answered 201), no upload of the blob.
check "push to a second repository" "$BERTH" push -q "${nohttps[@]}" "${auth[@]}" "$T/img.sif" "oras://$reg/test/copy:v1"
mounts=$(grep -c "\"POST /v2/test/copy/blobs/uploads/?[^ ]*mount=sha256%3A${digest#sha256:}[^ ]* HTTP/[0-9.]*\" 201" "$T/r.log" || true)
uploads=$(grep -c "\"PUT /v2/test/copy/blobs/uploads/[^ ]*digest=sha256%3A${digest#sha256:}" "$T/r.log" || true)
[ "$mounts" -eq 1 ] && [ "$uploads" -eq 0 ] && ok "second repository: blob mounted across repositories, not uploaded" ||
  bad "second repository: blob mounted across repositories, not uploaded" "$mounts mounts, $uploads uploads"
check "pull from the second repository" "$BERTH" pull -q "${nohttps[@]}" "${auth[@]}" "$T/out3.sif" "oras://$reg/test/copy:v1"
check "mounted copy is byte-identical" cmp -s "$T/img.sif" "$T/out3.sif"

# Chunked upload (PATCH with Content-Range) round trip, of other bytes (the
# same would be mounted).
cp "$T/img.sif" "$T/img2.sif" && head -c 200000 /dev/urandom >>"$T/img2.sif"
check "chunked push" "$BERTH" push -q --chunk-size 65536 "${nohttps[@]}" "${auth[@]}" "$T/img2.sif" "oras://$reg/test/chunked:v1"
chunks=$(grep -c '"PATCH /v2/test/chunked/blobs/uploads/' "$T/r.log" || true)
[ "$chunks" -ge 30 ] && ok "chunked push sent $chunks PATCH requests" || bad "chunked push in 64 KiB PATCHes" "$chunks PATCH requests"
check "chunked pull" "$BERTH" pull -q "${nohttps[@]}" "${auth[@]}" "$T/out2.sif" "oras://$reg/test/chunked:v1"
check "chunked round trip is byte-identical" cmp -s "$T/img2.sif" "$T/out2.sif"

# registry login asks the registry (through the daemon) before it stores
# anything, as Apptainer does.
login=(registry login "${nohttps[@]}" --authfile "$T/login.json")
case $kind in
  basic | token)
    expect_fatal "$kind: registry login refuses a wrong password" "refused the credentials" \
      "$BERTH" "${login[@]}" -u alice -p wrong "$reg"
    [ ! -e "$T/login.json" ] && ok "$kind: a refused login stores nothing" ||
      bad "$kind: a refused login stores nothing" "$(cat "$T/login.json")"
    check "$kind: registry login with the right password" "$BERTH" "${login[@]}" -u alice -p alicepw "$reg"
    check "$kind: the stored credentials pull" "$BERTH" pull -q "${nohttps[@]}" --authfile "$T/login.json" \
      "$T/login.sif" "oras://$reg/test/img:v1"
    ;;
  *)
    check "$kind: registry login where no authentication is asked" "$BERTH" "${login[@]}" -u any -p thing "$reg"
    ;;
esac
expect_fatal "registry login to a registry that does not answer" "checking the credentials with 127.0.0.1:9" \
  "$BERTH" registry login --authfile "$T/nobody.json" -u a -p b 127.0.0.1:9
expect_fatal "registry login to something that is not a registry host" "is not a registry host" \
  "$BERTH" registry login --authfile "$T/nobody.json" -u a -p b 'bad host!/x:1'

case $kind in
  basic)
    expect_fatal "basic: no credentials" "requires authentication" \
      "$BERTH" pull -q --no-https --authfile /dev/null/none "$T/x.sif" "oras://$reg/test/img:v1"
    authfile "$T/wrong.json" "$reg" alice wrong
    expect_fatal "basic: wrong password" "refused the credentials" \
      "$BERTH" pull -q --no-https --authfile "$T/wrong.json" "$T/x.sif" "oras://$reg/test/img:v1"
    [ ! -e "$T/x.sif" ] && ok "refused pulls leave no file" || bad "refused pulls leave no file" "x.sif exists"
    ;;
  token)
    check "token: anonymous pull of a public repository" "$BERTH" pull -q --authfile /dev/null/none \
      "$T/anon.sif" "oras://$reg/test/img:v1"
    check "token: alice pushes a private repository" "$BERTH" push -q "${auth[@]}" "$T/img.sif" "oras://$reg/private/img:v1"
    check "token: alice pulls it (now cached)" "$BERTH" pull -q "${auth[@]}" "$T/priv.sif" "oras://$reg/private/img:v1"
    authfile "$T/bob.json" "$reg" bob bobpw
    mkdir -m 0700 "$T/u2" && chown berthtest2: "$T/u2"
    cp "$T/bob.json" "$T/u2/auth.json" && chown berthtest2: "$T/u2/auth.json"
    expect_fatal "token: bob cannot obtain alice's cached private blob" "" \
      as_user berthtest2 "$BERTH" pull -q --authfile "$T/u2/auth.json" "$T/u2/stolen.sif" "oras://$reg/private/img:v1"
    grep -q 'FATAL:.*\(refused\|requires authentication\|denied\)' "$T/stderr" && ok "token: bob's refusal names the reason" ||
      bad "token: bob's refusal names the reason" "$(cat "$T/stderr")"
    expect_fatal "token: anonymous cannot obtain it either" "" \
      as_user berthtest2 "$BERTH" pull -q --authfile /dev/null/none "$T/u2/stolen2.sif" "oras://$reg/private/img:v1"
    [ -z "$(ls -A "$T/u2" | grep -v auth.json)" ] && ok "token: nothing written for bob" || bad "token: nothing written for bob" "$(ls -A "$T/u2")"
    grep -q '"user": "alice"' "$T/r-token.log" && grep -q '"user": ""' "$T/r-token.log" &&
      ok "token: tokens issued for alice and anonymously" || bad "token: tokens issued" "$(cat "$T/r-token.log")"
    ;;
esac
if [ "$kind" = plain ]; then
  # A user-mode berthd (no root anywhere): same pull, the user's own cache.
  ud=$T/ud
  mkdir -m 0700 "$ud" && chown berthtest: "$ud"
  uid=$(id -u berthtest) gid=$(id -g berthtest)
  setpriv --reuid="$uid" --regid="$gid" --init-groups env HOME="$ud" \
    "$BERTHD" --user-mode --socket "$ud/s.sock" --state-dir "$ud/state" --config-dir "$T/etc" \
    --foreground 2>"$T/userd.log" &
  berthd_pids+=($!)
  if wait_until 10 test -S "$ud/s.sock"; then
    check "user-mode daemon: pull" setpriv --reuid="$uid" --regid="$gid" --init-groups env HOME="$ud" \
      BERTH_SOCKET="$ud/s.sock" "$BERTH" pull -q "$ud/out.sif" "oras://$reg/test/img:v1"
    check "user-mode daemon: identical" cmp -s "$T/img.sif" "$ud/out.sif"
    [ "$(stat -c %U "$ud/state/cache")" = berthtest ] && ok "user-mode daemon: the cache is the user's" ||
      bad "user-mode daemon: the cache is the user's" "$(stat -c %U "$ud/state/cache")"
  else
    bad "user-mode daemon starts" "$(cat "$T/userd.log")"
  fi
fi
# skopeo (containers/image) reads the manifest berth pushed and copies the
# artifact, checking every blob against its digest and size.
skopeo_src=(--src-tls-verify=false)
case $kind in
  basic | token) skopeo_src+=(--src-creds alice:alicepw) ;;
  tls) mkdir -p "$T/certs.d" && cp "$T/ca.pem" "$T/certs.d/ca.crt" && skopeo_src=(--src-cert-dir "$T/certs.d") ;;
esac
skopeo inspect --raw "${skopeo_src[@]/--src-/--}" "docker://$reg/test/img:v1" >"$T/skopeo-manifest.json" 2>"$T/stderr"
check "skopeo reads the same manifest" cmp -s "$T/manifest.json" "$T/skopeo-manifest.json"
check "skopeo copies the artifact, checking its digests" \
  skopeo copy -q "${skopeo_src[@]}" "docker://$reg/test/img:v1" "oci:$T/skopeo-layout:v1"
check "the layer skopeo copied is the image" cmp -s "$T/img.sif" "$T/skopeo-layout/blobs/sha256/${digest#sha256:}"
if grep -q 'alicepw\|YWxpY2' "$T/berthd.log"; then bad "credentials never logged" "found in berthd.log"; else ok "credentials never logged"; fi
finish
