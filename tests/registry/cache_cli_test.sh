#!/usr/bin/env bash
# `berth cache` as Apptainer 1.4's (cli-compat.md "cache" rows): `cache list`
# prints Apptainer's summary, -v its table (NAME, DATE CREATED, SIZE, TYPE),
# -T filters by Apptainer's type names (oci/oci-tmp: converted images, blob,
# oras; library/shub/net select nothing); `cache clean` takes -D/--days,
# -T/--type, -n/--dry-run, -f/--force; a plain user cleans their own entries,
# never another user's, nor an entry a pull is using (a proxy holds one
# layer of a pull back while the user cleans). As root and as the plain test
# user, against a real docker-registry and a private system daemon.
#
# usage: cache_cli_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
setup_binaries "$1" "$2"
A=${BERTH_TEST_USER:-berthtest}
B=berthtest2
for u in $A $B; do
  bash "$HERE/../lib/ensure-test-user.sh" "$u"
  mkdir -m 0700 "$T/$u" && chown "$u:" "$T/$u"
done
mkdir -m 0700 "$T/root"
start_registry r plain
reg=$REG_r
pport=$(free_port)
proxy=127.0.0.1:$pport
start_berthd "[registry]
insecure = [\"$reg\", \"$proxy\"]"

# An ORAS artifact and an OCI image (two layers and a config).
head -c 32768 "$BERTH_TESTDATA/sif/empty.sif" >"$T/img.sif" && head -c 100000 /dev/urandom >>"$T/img.sif"
chmod 0644 "$T/img.sif"
must "push the artifact" "$BERTH" push -q "$T/img.sif" "oras://$reg/test/img:v1"
oras_digest=sha256:$(sha256sum "$T/img.sif" | cut -d' ' -f1)
layers=$($PY "$HERE/../stores/push_image.py" "$reg" t/two v1 tar:first:16 tar:second:16) ||
  { bad "setup: push the image" "failed"; finish; }
first=$(echo "$layers" | head -1) second=$(echo "$layers" | tail -1)
entry_file() { echo "$T/state/cache/$1/sha256/${2#sha256:}"; }

# as WHO CMD...: runs CMD as root or the user WHO (A or B).
as() {
  local who=$1
  shift
  if [ "$who" = root ]; then "$@"; else as_user "$who" "$@"; fi
}

for who in root $A; do
  as $who "$BERTH" cache clean -f >/dev/null 2>&1
  check "[$who] pull an ORAS artifact" as $who "$BERTH" pull -q -F "$T/$who/img.sif" "oras://$reg/test/img:v1"
  check "[$who] pull an OCI image" as $who "$BERTH" pull -q -F "$T/$who/two.sif" "docker://$reg/t/two:v1"
  # --- list: Apptainer's summary (one SIF file and the converted image; the
  # OCI image's two layers and config are blobs)
  out=$(as $who "$BERTH" cache list 2>&1)
  grep -Eq '^There are 2 container file\(s\) using [0-9.]+ kB and 3 oci blob file\(s\) using [0-9.]+ kB of space$' <<<"$out" &&
    grep -Eq '^Total space used: [0-9.]+ kB$' <<<"$out" && [ "$(wc -l <<<"$out")" -eq 2 ] &&
    ok "[$who] cache list: Apptainer's summary" || bad "[$who] cache list: Apptainer's summary" "$out"
  out=$(as $who "$BERTH" cache list -v 2>&1)
  [ "$(head -1 <<<"$out")" = "$(printf '%-24s %-22s %-16s %s' NAME 'DATE CREATED' SIZE TYPE)" ] &&
    ok "[$who] cache list -v: Apptainer's header" || bad "[$who] cache list -v header" "$(head -1 <<<"$out")"
  short=${oras_digest#sha256:}
  grep -Eq "^${short:0:22}   [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}    [0-9.]+ kB +oras$" <<<"$out" &&
    ok "[$who] cache list -v: the artifact's row (22 characters of its digest, date, size, type)" ||
    bad "[$who] cache list -v: the artifact's row" "$out"
  [ "$(grep -c ' oci-tmp$' <<<"$out")" -eq 1 ] && [ "$(grep -c ' blob$' <<<"$out")" -eq 3 ] &&
    ok "[$who] cache list -v: the converted image is oci-tmp, the layers blob" || bad "[$who] cache list -v types" "$out"
  out=$(as $who "$BERTH" cache list -T blob 2>&1)
  [ "$(head -1 <<<"$out")" = "$(printf 'There are 3 oci blob file(s) using %s of space' "$(sed -n 's/.* and 3 oci blob file(s) using \(.*\) of space/\1/p' <<<"$(as $who "$BERTH" cache list)")")" ] &&
    ok "[$who] cache list -T blob: only the blobs" || bad "[$who] cache list -T blob" "$out"
  out=$(as $who "$BERTH" cache list -v --type oras,library 2>&1)
  [ "$(grep -c ' oras$' <<<"$out")" -eq 1 ] && ! grep -q ' blob$\| oci-tmp$' <<<"$out" &&
    grep -q '^There are 1 container file(s) using' <<<"$out" &&
    ok "[$who] cache list -v --type oras,library" || bad "[$who] cache list --type oras,library" "$out"
  out=$(as $who "$BERTH" cache list -T nonsense 2>&1)
  grep -q "^FATAL:   cache list: unknown cache type 'nonsense'" <<<"$out" && ok "[$who] an unknown type is a FATAL" ||
    bad "[$who] an unknown type is a FATAL" "$out"
  # --- clean: Apptainer's flags
  out=$(as $who "$BERTH" cache clean -n -T oras 2>&1)
  [ "$(head -1 <<<"$out")" = "User requested a dry run. Not actually deleting any data!" ] && [ -f "$(entry_file oras "$oras_digest")" ] &&
    ok "[$who] clean -n: Apptainer's line, nothing removed" || bad "[$who] clean -n" "$out"
  check "[$who] clean -D 1 (nothing is a day old)" as $who "$BERTH" cache clean -f -D 1
  [ -f "$(entry_file oras "$oras_digest")" ] && ok "[$who] -D 1 keeps today's entries" || bad "[$who] -D 1" "removed"
  check "[$who] clean --days 0 -T library,shub,net" as $who "$BERTH" cache clean -f --days 0 -T library,shub,net
  [ -f "$(entry_file oras "$oras_digest")" ] && [ -f "$(entry_file blob "$first")" ] &&
    ok "[$who] library, shub and net select nothing here" || bad "[$who] library,shub,net" "something was removed"
  check "[$who] clean -T oci" as $who "$BERTH" cache clean -f -T oci
  [ -z "$(ls -A "$T/state/cache/sif/sha256")" ] && [ -f "$(entry_file blob "$first")" ] &&
    ok "[$who] -T oci removes the converted image only" || bad "[$who] -T oci" "$(ls -R "$T/state/cache" | head -30)"
  check "[$who] clean --type=blob,oras --force" as $who "$BERTH" cache clean --type=blob,oras --force
  [ ! -e "$(entry_file oras "$oras_digest")" ] && [ ! -e "$(entry_file blob "$first")" ] &&
    ok "[$who] the blobs and the artifact are gone" || bad "[$who] clean blob,oras" "$(ls -R "$T/state/cache" | head -30)"
  out=$(as $who "$BERTH" cache list)
  grep -q '^There are 0 container file(s) using 0.00 kB and 0 oci blob file(s) using 0.00 kB of space$' <<<"$out" &&
    ok "[$who] an empty cache lists nothing" || bad "[$who] empty list" "$out"
done

# --- a plain user cleans their own entries, never another user's
check "B pulls the artifact" as_user $B "$BERTH" pull -q -F "$T/$B/img.sif" "oras://$reg/test/img:v1"
check "A pulls the image" as_user $A "$BERTH" pull -q -F "$T/$A/two.sif" "docker://$reg/t/two:v1"
check "A cleans" as_user $A "$BERTH" cache clean -f
[ -f "$(entry_file oras "$oras_digest")" ] && ok "B's entry stays when A cleans" || bad "B's entry stays when A cleans" "removed"
[ ! -e "$(entry_file blob "$first")" ] && ok "A's own entries are removed" || bad "A's own entries are removed" "kept"

# --- an entry a pull is using stays: the proxy holds the second layer back
# until the gate file exists, so the first layer is cached and pinned.
$PY "$HERE/slow_proxy.py" "$pport" "$reg" "$second" "$T/gate" &
pids+=($!)
wait_until 10 curl -s -o /dev/null "http://$proxy/v2/" || { bad "setup: the proxy" "did not start"; finish; }
as_user $A "$BERTH" pull -q -F "$T/$A/slow.sif" "docker://$proxy/t/two:v1" >"$T/slow.out" 2>&1 &
slow_pull=$!
wait_until 30 test -f "$(entry_file blob "$first")" || bad "the first layer is cached while the second waits" "not cached"
out=$(as_user $A "$BERTH" cache clean -f 2>&1)
[ -f "$(entry_file blob "$first")" ] && ok "A's clean leaves the layer A's own pull is using" ||
  bad "A's clean leaves the layer a pull is using" "removed: $out"
grep -q "^kept, in use by a pull: blob $first" <<<"$out" && ok "the clean says it kept it, in use" ||
  bad "the clean says it kept it, in use" "$out"
out=$(as_user $B "$BERTH" cache clean -f 2>&1)
[ -f "$(entry_file blob "$first")" ] && ok "B's clean leaves it too" || bad "B's clean leaves it too" "removed: $out"
touch "$T/gate"
wait "$slow_pull" && ok "the held-back pull completes" || bad "the held-back pull completes" "$(cat "$T/slow.out")"
check "after the pull, A cleans" as_user $A "$BERTH" cache clean -f
[ ! -e "$(entry_file blob "$first")" ] && ok "no longer in use: A's clean removes it" || bad "no longer in use: removed" "kept"
check "root cleans everything" "$BERTH" cache clean -f
[ "$(cache_entries)" -eq 0 ] && ok "the cache is empty" || bad "the cache is empty" "$("$BERTH" cache list --long)"
finish
