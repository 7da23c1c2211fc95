#!/usr/bin/env bash
# `berth pull` as Apptainer 1.4's (cli-compat.md "pull" rows): with no output
# name the image is written in the working directory as NAME_TAG.sif
# (Apptainer's uri.GetName: "latest" when no tag); --dir, the hidden --name,
# -F/--force and FORCE, --no-https and NOHTTPS/NO_HTTPS, --disable-cache
# (nothing read from or added to the node cache); an existing file without
# --force is Apptainer's FATAL. Against a real plain-HTTP docker-registry the
# daemon does not list as insecure (so only --no-https reaches it), as root
# and as the plain test user.
#
# usage: pull_cli_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
setup_binaries "$1" "$2"
tuser=${BERTH_TEST_USER:-berthtest}
bash "$HERE/../lib/ensure-test-user.sh" "$tuser"
start_registry r plain
reg=$REG_r
start_berthd ""

# An ORAS artifact (a SIF header and random bytes: pull does not open it)
# and an OCI image under two tags.
head -c 32768 "$BERTH_TESTDATA/sif/empty.sif" >"$T/img.sif" && head -c 65536 /dev/urandom >>"$T/img.sif"
chmod 0644 "$T/img.sif"
must "push the ORAS artifact" "$BERTH" push -q --no-https "$T/img.sif" "oras://$reg/test/img:v1"
cp "$T/img.sif" "$T/nocache.sif" && head -c 4096 /dev/urandom >>"$T/nocache.sif"
must "push a second artifact" "$BERTH" push -q --no-https "$T/nocache.sif" "oras://$reg/test/nocache:v1"
nocache_digest=sha256:$(sha256sum "$T/nocache.sif" | cut -d' ' -f1)
for tag in 3.19 latest; do
  must "push the OCI image as $tag" $PY "$HERE/../stores/push_image.py" "$reg" t/alp "$tag" tar:alp-layer:16
done
manifest_digest=$(curl -sI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$reg/v2/t/alp/manifests/3.19" | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')
[ -n "$manifest_digest" ] || { bad "setup: the image's manifest digest" "none"; finish; }

# run_in WHO DIR ENV... -- CMD...: runs CMD in DIR as root or the test user with
# only the given environment; stderr in $T/stderr, exit status in $rc.
run_in() {
  local who=$1 dir=$2
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local cmd=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin BERTH_SOCKET="$BERTH_SOCKET" "${envs[@]}" "$@")
  [ "$who" = user ] && cmd=(runuser -u "$tuser" -- "${cmd[@]}")
  (cd "$dir" && "${cmd[@]}") >"$T/stdout" 2>"$T/stderr"
  rc=$?
}
# got NAME: the last command succeeded.
got() { [ "$rc" -eq 0 ] && ok "$1" || bad "$1" "exit $rc: $(head -c 300 "$T/stderr")"; }
# owned FILE WHO: FILE exists, is the pulled artifact and belongs to WHO.
owned() {
  local want=root
  [ "$2" = user ] && want=$tuser
  [ "$(stat -c %U "$1" 2>/dev/null)" = "$want" ] && cmp -s "$T/img.sif" "$1"
}
cache_has() { "$BERTH" cache list --long | grep -q "$1"; }

for who in root user; do
  d=$T/$who
  mkdir -m 0755 "$d" "$d/out" "$d/env-out"
  [ "$who" = user ] && chown "$tuser:" "$d" "$d/out" "$d/env-out"
  # --- the default name, in the working directory
  run_in $who "$d" -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  got "[$who] pull URI with no output name"
  check "[$who] it is written as NAME_TAG.sif in the working directory, the caller's" owned "$d/img_v1.sif" $who
  run_in $who "$d" -- "$BERTH" pull -q --no-https "docker://$reg/t/alp:3.19"
  got "[$who] pull docker://…/alp:3.19"
  [ -f "$d/alp_3.19.sif" ] && ok "[$who] docker://…/alp:3.19 is alp_3.19.sif" || bad "[$who] alp_3.19.sif" "$(ls "$d")"
  run_in $who "$d" -- "$BERTH" pull -q --no-https "docker://$reg/t/alp"
  [ "$rc" -eq 0 ] && [ -f "$d/alp_latest.sif" ] && ok "[$who] no tag: alp_latest.sif" ||
    bad "[$who] no tag: alp_latest.sif" "exit $rc, $(ls "$d") $(head -c 300 "$T/stderr")"
  run_in $who "$d" -- "$BERTH" pull -q --no-https "docker://$reg/t/alp@$manifest_digest"
  [ "$rc" -eq 0 ] && [ -f "$d/alp@sha256_${manifest_digest#sha256:}.sif" ] &&
    ok "[$who] a digest reference: Apptainer's NAME@sha256_HEX.sif" ||
    bad "[$who] a digest reference" "exit $rc, $(ls "$d") $(head -c 300 "$T/stderr")"
  # --- an existing file
  run_in $who "$d" -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  [ "$rc" -eq 255 ] && [ "$(cat "$T/stderr")" = 'FATAL:   Image file already exists: "img_v1.sif" - will not overwrite' ] &&
    ok "[$who] an existing file: Apptainer's FATAL, exit 255" || bad "[$who] an existing file" "exit $rc: $(cat "$T/stderr")"
  : >"$d/img_v1.sif"
  run_in $who "$d" -- "$BERTH" pull -q -F --no-https "oras://$reg/test/img:v1"
  got "[$who] -F overwrites"
  check "[$who] -F wrote the image" owned "$d/img_v1.sif" $who
  : >"$d/img_v1.sif"
  run_in $who "$d" APPTAINER_FORCE=1 -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  got "[$who] APPTAINER_FORCE=1 overwrites"
  check "[$who] APPTAINER_FORCE wrote the image" owned "$d/img_v1.sif" $who
  run_in $who "$d" SINGULARITY_FORCE=0 -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  [ "$rc" -eq 255 ] && ok "[$who] SINGULARITY_FORCE=0 does not overwrite" || bad "[$who] SINGULARITY_FORCE=0" "exit $rc"
  run_in $who "$d" APPTAINER_FORCE=maybe -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  [ "$rc" -eq 255 ] && grep -q "APPTAINER_FORCE='maybe' is not a boolean" "$T/stderr" &&
    ok "[$who] a FORCE that is no boolean is a FATAL naming it" || bad "[$who] FORCE=maybe" "exit $rc: $(cat "$T/stderr")"
  # --- --dir, PULLDIR, --name
  run_in $who "$d" -- "$BERTH" pull -q --no-https --dir out "oras://$reg/test/img:v1"
  got "[$who] --dir"
  check "[$who] --dir DIR writes DIR/NAME_TAG.sif" owned "$d/out/img_v1.sif" $who
  run_in $who "$d" -- "$BERTH" pull -q --no-https --dir out mine.sif "oras://$reg/test/img:v1"
  check "[$who] --dir applies to a given name too" owned "$d/out/mine.sif" $who
  run_in $who "$d" APPTAINER_PULLDIR="$d/env-out" -- "$BERTH" pull -q --no-https "oras://$reg/test/img:v1"
  check "[$who] APPTAINER_PULLDIR" owned "$d/env-out/img_v1.sif" $who
  run_in $who "$d" SINGULARITY_PULLFOLDER="$d/env-out" -- "$BERTH" pull -q --no-https --name f.sif "oras://$reg/test/img:v1"
  check "[$who] SINGULARITY_PULLFOLDER with --name" owned "$d/env-out/f.sif" $who
  run_in $who "$d" -- "$BERTH" pull -q --no-https --name named.sif other.sif "oras://$reg/test/img:v1"
  [ -f "$d/named.sif" ] && [ ! -e "$d/other.sif" ] && ok "[$who] --name beats the positional name, as Apptainer" ||
    bad "[$who] --name beats the positional name" "$(ls "$d")"
  run_in $who "$d" -- "$BERTH" pull -q --no-https plain-name.sif
  [ "$rc" -eq 255 ] && grep -q '^FATAL:   No transport type URI supplied$' "$T/stderr" &&
    ok "[$who] a single argument without a transport: Apptainer's FATAL" ||
    bad "[$who] no transport" "exit $rc: $(cat "$T/stderr")"
  # --- --no-https and its environment forms: the daemon does not treat the
  # registry as insecure, so without them the pull tries HTTPS and fails.
  run_in $who "$d" -- "$BERTH" pull -q https.sif "oras://$reg/test/img:v1"
  [ "$rc" -ne 0 ] && [ ! -e "$d/https.sif" ] && ok "[$who] without --no-https the plain-HTTP registry is refused" ||
    bad "[$who] without --no-https" "exit $rc"
  run_in $who "$d" APPTAINER_NOHTTPS=1 -- "$BERTH" pull -q nohttps.sif "oras://$reg/test/img:v1"
  check "[$who] APPTAINER_NOHTTPS=1 is --no-https" owned "$d/nohttps.sif" $who
  run_in $who "$d" SINGULARITY_NO_HTTPS=true -- "$BERTH" pull -q no_https.sif "oras://$reg/test/img:v1"
  check "[$who] SINGULARITY_NO_HTTPS=true is --no-https" owned "$d/no_https.sif" $who
  # --- --disable-cache: downloaded again, nothing added to the node cache
  before=$(blob_gets "$T/r.log" "$nocache_digest")
  run_in $who "$d" -- "$BERTH" pull -q --no-https --disable-cache nc.sif "oras://$reg/test/nocache:v1"
  got "[$who] --disable-cache"
  cmp -s "$T/nocache.sif" "$d/nc.sif" && ok "[$who] --disable-cache writes the image" || bad "[$who] --disable-cache image" "differs"
  [ "$(blob_gets "$T/r.log" "$nocache_digest")" -eq $((before + 1)) ] && ok "[$who] --disable-cache downloads" ||
    bad "[$who] --disable-cache downloads" "$before → $(blob_gets "$T/r.log" "$nocache_digest") GETs"
  cache_has "$nocache_digest" && bad "[$who] --disable-cache adds nothing to the node cache" "it is cached" ||
    ok "[$who] --disable-cache adds nothing to the node cache"
  run_in $who "$d" APPTAINER_DISABLE_CACHE=1 -- "$BERTH" pull -q --no-https nc2.sif "oras://$reg/test/nocache:v1"
  [ "$rc" -eq 0 ] && ! cache_has "$nocache_digest" && [ "$(blob_gets "$T/r.log" "$nocache_digest")" -eq $((before + 2)) ] &&
    ok "[$who] APPTAINER_DISABLE_CACHE=1 is --disable-cache" || bad "[$who] APPTAINER_DISABLE_CACHE" "exit $rc"
  [ -z "$(ls -A "$T/state/cache/tmp")" ] && ok "[$who] no debris in the cache's tmp" || bad "[$who] cache tmp" "$(ls -A "$T/state/cache/tmp")"
done
# The artifact pulled with the cache is served from it, --disable-cache or not:
# a cached entry is not read by a --disable-cache pull.
img_digest=sha256:$(sha256sum "$T/img.sif" | cut -d' ' -f1)
before=$(blob_gets "$T/r.log" "$img_digest")
must "a --disable-cache pull of a cached artifact" "$BERTH" pull -q --no-https --disable-cache "$T/again.sif" "oras://$reg/test/img:v1"
[ "$(blob_gets "$T/r.log" "$img_digest")" -eq $((before + 1)) ] && ok "--disable-cache does not read the node cache" ||
  bad "--disable-cache does not read the node cache" "$before → $(blob_gets "$T/r.log" "$img_digest") GETs"
finish
