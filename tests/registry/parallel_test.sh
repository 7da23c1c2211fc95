#!/usr/bin/env bash
# Single-flight node cache: 50 simultaneous pulls of one image by root and
# two plain users download the blob exactly once (counted in the registry's
# access log), and every pull gets a byte-identical file it owns.
#
# usage: parallel_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
setup_binaries "$1" "$2"
bash "$HERE/../lib/ensure-test-user.sh" berthtest
bash "$HERE/../lib/ensure-test-user.sh" berthtest2
start_registry r plain
reg=$REG_r
start_berthd "[registry]
insecure = [\"$reg\"]"
# 32 MiB of incompressible data after a real SIF header: long enough that the
# pulls overlap.
head -c 32768 "$BERTH_TESTDATA/sif/empty.sif" >"$T/img.sif"
head -c $((32 << 20)) /dev/urandom >>"$T/img.sif"
chmod 0644 "$T/img.sif"
digest=sha256:$(sha256sum "$T/img.sif" | cut -d' ' -f1)
check "push" "$BERTH" push -q "$T/img.sif" "oras://$reg/par/img:v1"
for u in berthtest berthtest2; do mkdir -m 0700 "$T/$u" && chown "$u:" "$T/$u"; done
mkdir "$T/root"
jobs_pids=()
for i in $(seq 1 50); do
  case $((i % 3)) in
    0) "$BERTH" pull -q "$T/root/$i.sif" "oras://$reg/par/img:v1" 2>"$T/root/$i.err" & ;;
    1) as_user berthtest "$BERTH" pull -q "$T/berthtest/$i.sif" "oras://$reg/par/img:v1" 2>"$T/err.$i" & ;;
    2) as_user berthtest2 "$BERTH" pull -q "$T/berthtest2/$i.sif" "oras://$reg/par/img:v1" 2>"$T/err.$i" & ;;
  esac
  jobs_pids+=($!)
done
failed=0
for p in "${jobs_pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] && ok "50 parallel pulls by 3 users succeed" ||
  bad "50 parallel pulls by 3 users succeed" "$failed failed: $(cat "$T"/err.* "$T"/root/*.err 2>/dev/null | sort | uniq -c | head -5)"
n=$(blob_gets "$T/r.log" "$digest")
[ "$n" -eq 1 ] && ok "the blob was downloaded once" || bad "the blob was downloaded once" "$n GETs"
same=0
for f in "$T"/root/*.sif "$T"/berthtest/*.sif "$T"/berthtest2/*.sif; do
  cmp -s "$T/img.sif" "$f" && same=$((same + 1))
done
[ "$same" -eq 50 ] && ok "all 50 copies are byte-identical" || bad "all 50 copies are byte-identical" "$same"
owners=$(stat -c %U "$T"/berthtest/*.sif | sort -u)
[ "$owners" = berthtest ] && ok "each copy is owned by its puller" || bad "each copy is owned by its puller" "$owners"
check "cache list shows the entry" sh -c "'$BERTH' cache list --long | grep -q '^oras *$digest'"
check "a plain user's clean leaves what other users share" as_user berthtest "$BERTH" cache clean
check "the shared entry stays" sh -c "'$BERTH' cache list --long | grep -q '^oras *$digest'"
check "root cleans the node cache" "$BERTH" cache clean -T oras
[ "$(cache_entries)" -eq 0 ] && ok "cache is empty after clean" || bad "cache is empty after clean" "$("$BERTH" cache list)"
finish
