#!/usr/bin/env bash
# f8_blob_cache_test.sh BERTH BERTHD: review finding 8. The node cache had
# no budget or eviction, kept the blobs of pulls whose conversion failed,
# and only root could clean it (a user's own 150 MiB layer from their own
# registry stayed). Now: a failed pull drops the blobs it alone brought;
# each entry records its users (root-owned, beside the cache); a user lists
# their own entries and `cache clean` removes what only they referenced;
# the cache has a budget with LRU eviction and a per-user share. Against a
# real docker-registry and the system daemon, as two unprivileged users.
#
# usage: f8_blob_cache_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/../registry/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
STORES=$(cd "$(dirname "$0")" && pwd)
setup_binaries "$1" "$2"
A=berthtest B=berthtest2
for u in $A $B; do
  bash "$HERE/../lib/ensure-test-user.sh" "$u"
  mkdir -m 0700 "$T/$u" && chown "$u:" "$T/$u"
done
start_registry r plain
reg=$REG_r

# sif NAME MIB: a SIF header and MIB MiB of incompressible data.
sif() {
  head -c 32768 "$BERTH_TESTDATA/sif/empty.sif" >"$T/$1.sif"
  head -c $(($2 << 20)) /dev/urandom >>"$T/$1.sif"
  chmod 0644 "$T/$1.sif"
  "$BERTH" push -q --no-https "$T/$1.sif" "oras://$reg/t/$1:v1" >/dev/null 2>&1 || bad "push $1" "failed"
  echo "sha256:$(sha256sum "$T/$1.sif" | cut -d' ' -f1)"
}
pull() {  # pull USER NAME
  as_user "$1" "$BERTH" pull -q -F "$T/$1/$2.sif" "oras://$reg/t/$2:v1"
}
listed() { as_user "$1" "$BERTH" cache list --long | awk 'NR > 1 && NF >= 3 {print $2}' | grep '^sha256:' | sort; }
entry_file() { echo "$T/state/cache/$1/sha256/${2#sha256:}"; }

start_berthd "[registry]
insecure = [\"$reg\"]"
x=$(sif x 1) y=$(sif y 1)
check "A pulls x" pull $A x
check "A pulls y" pull $A y
check "B pulls y" pull $B y
[ "$(listed $A)" = "$(printf '%s\n' "$x" "$y" | sort)" ] && ok "A lists their two entries" ||
  bad "A lists their two entries" "$(listed $A)"
[ "$(listed $B)" = "$y" ] && ok "B lists only their own entry" || bad "B lists only their own entry" "$(listed $B)"
refs=$T/state/cache/refs
[ "$(stat -c '%U %a' "$refs")" = "root 700" ] && [ -z "$(find "$refs" -type f ! -user root -o -type f -perm /077)" ] &&
  ok "the users' records are root's (0700 directory, 0600 files)" ||
  bad "the users' records are root's" "$(ls -la "$refs")"
check "clean takes Apptainer's flags (-T, -D, --dry-run, -f)" as_user $A "$BERTH" cache clean -T oras -D 0 --dry-run -f
[ -f "$(entry_file oras "$x")" ] && ok "a dry run removes nothing" || bad "a dry run removes nothing" "x is gone"
check "A cleans their cache as a plain user" as_user $A "$BERTH" cache clean
[ ! -e "$(entry_file oras "$x")" ] && ok "what only A referenced is removed" || bad "what only A referenced is removed" "x is still cached"
[ -f "$(entry_file oras "$y")" ] && ok "what B also referenced stays" || bad "what B also referenced stays" "y is gone"
[ -z "$(listed $A)" ] && ok "A lists nothing after the clean" || bad "A lists nothing after the clean" "$(listed $A)"
[ "$(listed $B)" = "$y" ] && ok "B still lists their entry" || bad "B still lists their entry" "$(listed $B)"
expect_out "root sees y's users" "$(id -u $B)" sh -c "'$BERTH' cache list --long | awk '\$2 == \"$y\" {print \$NF}'"

# A failed conversion: the blobs only that pull brought go, shared ones stay.
layers=$($PY "$STORES/push_image.py" "$reg" t/good v1 tar:shared-layer) || bad "push good" "failed"
shared=$(echo "$layers" | head -1)
bad_layers=$($PY "$STORES/push_image.py" "$reg" t/broken v1 tar:shared-layer junk:own-layer) || bad "push broken" "failed"
junk=$(echo "$bad_layers" | tail -1)
check "B pulls an image with a good layer" as_user $B "$BERTH" pull -q -F "$T/$B/good.sif" "docker://$reg/t/good:v1"
expect_fatal_after_progress "A's pull of an image with a broken layer fails" "converting" \
  as_user $A "$BERTH" pull -q -F "$T/$A/broken.sif" "docker://$reg/t/broken:v1"
[ ! -e "$(entry_file blob "$junk")" ] && ok "the broken layer is not kept" || bad "the broken layer is not kept" "$junk cached"
[ -f "$(entry_file blob "$shared")" ] && ok "the layer B's pull also uses is kept" || bad "the layer B's pull also uses is kept" "$shared gone"
[ -z "$(ls -A "$T/state/cache/tmp")" ] && ok "no debris in the cache's tmp" || bad "no debris in the cache's tmp" "$(ls -A "$T/state/cache/tmp")"
# A layer the failing pull only used (A's own earlier pull brought it, no one
# else references it) is not the failed pull's to drop either.
mine=$($PY "$STORES/push_image.py" "$reg" t/mine v1 tar:a-own-layer | head -1) || bad "push mine" "failed"
$PY "$STORES/push_image.py" "$reg" t/broken2 v1 tar:a-own-layer junk:own-layer-2 >/dev/null || bad "push broken2" "failed"
check "A pulls an image with a layer of its own" as_user $A "$BERTH" pull -q -F "$T/$A/mine.sif" "docker://$reg/t/mine:v1"
expect_fatal_after_progress "A's pull of a broken image using that layer fails" "converting" \
  as_user $A "$BERTH" pull -q -F "$T/$A/broken2.sif" "docker://$reg/t/broken2:v1"
[ -f "$(entry_file blob "$mine")" ] && ok "the layer A's failed pull only used is kept" || bad "the layer A's failed pull only used is kept" "$mine gone"

# The budget: 3 MiB, least recently used first; a share of 2 MiB per user.
check "root cleans every entry" "$BERTH" cache clean -f
stop_berthds
start_berthd "[registry]
insecure = [\"$reg\"]
cache_max_mib = 3
[limits]
max_cache_mib_per_user = 2"
mkdir -p "$T/root"
z1=$(sif z1 1) z2=$(sif z2 1) z3=$(sif z3 1) w=$(sif w 1) big=$(sif big 4)
check "A pulls z1" pull $A z1
check "root pulls z3" "$BERTH" pull -q -F "$T/root/z3.sif" "oras://$reg/t/z3:v1"
check "B pulls w (over the budget)" pull $B w
[ ! -e "$(entry_file oras "$z1")" ] && [ -f "$(entry_file oras "$z3")" ] && [ -f "$(entry_file oras "$w")" ] &&
  ok "the least recently used entry made room" || bad "the least recently used entry made room" \
  "z1=$z1 z3=$z3 w=$w; cached: $(ls "$T/state/cache/oras/sha256" | tr '\n' ' '); $(grep 'node cache' "$T/berthd.log" | tail -5)"
check "an evicted image pulls again" pull $A z1
cmp -s "$T/z1.sif" "$T/$A/z1.sif" && ok "the pulled image is intact" || bad "the pulled image is intact" "differs"
check "A pulls z2 (over A's 2 MiB share)" pull $A z2
[ ! -e "$(entry_file oras "$z1")" ] && [ -f "$(entry_file oras "$z2")" ] && ok "A's own oldest entry made room in A's share" ||
  bad "A's own oldest entry made room in A's share" "$(ls "$T/state/cache/oras/sha256")"
[ -f "$(entry_file oras "$w")" ] && ok "B's entry is untouched by A's share" || bad "B's entry is untouched by A's share" "w gone"
used=$(du -k -c "$T"/state/cache/{oras,blob,sif}/sha256/* 2>/dev/null | tail -1 | cut -f1)
[ "$used" -le 3072 ] && ok "the cache stays within 3 MiB ($used KiB)" || bad "the cache stays within 3 MiB" "$used KiB"
expect_fatal_after_progress "a blob larger than a user's share is refused, naming it" "max_cache_mib_per_user" \
  as_user $A "$BERTH" pull -q -F "$T/$A/big.sif" "oras://$reg/t/big:v1"
expect_fatal_after_progress "a blob larger than the budget is refused, naming it" "cache_max_mib" \
  "$BERTH" pull -q -F "$T/root/big.sif" "oras://$reg/t/big:v1"
[ -z "$(ls -A "$T/state/cache/tmp")" ] && ok "no debris after the refusals" || bad "no debris after the refusals" "$(ls -A "$T/state/cache/tmp")"

# A conversion larger than the room its own layers leave: it serves its pull
# unnamed, and the layers the pull is using are not evicted for it.
two=$($PY "$STORES/push_image.py" "$reg" t/two v1 tar:two-a:1100 tar:two-b:1100) || bad "push two" "failed"
check "root pulls an image whose conversion does not fit beside its layers" \
  "$BERTH" pull -q -F "$T/root/two.sif" "docker://$reg/t/two:v1"
for l in $two; do
  [ -f "$(entry_file blob "$l")" ] && ok "layer ${l:7:12} in use was not evicted" || bad "layer ${l:7:12} in use was not evicted" "gone"
done
[ -z "$(ls "$T/state/cache/sif/sha256")" ] && ok "the conversion that does not fit is not kept" ||
  bad "the conversion that does not fit is not kept" "$(ls "$T/state/cache/sif/sha256")"
check "its image is complete" "$BERTH" sif list "$T/root/two.sif"
finish
