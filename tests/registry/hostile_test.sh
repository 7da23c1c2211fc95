#!/usr/bin/env bash
# A registry that lies (hostile_server.py): wrong digests and sizes,
# truncated and endless bodies, a 50 MB manifest, malformed JSON, a lying
# Docker-Content-Digest, a redirect to another origin. Each pull must end in
# one FATAL line, with no output file, no temp file and nothing cached; the
# credentials must not follow the redirect; resumable and retryable faults
# must recover.
#
# usage: hostile_test.sh BERTH BERTHD   (as root)
set -u
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root"; echo "0 passed, 1 failed"; exit 1; }
setup_binaries "$1" "$2"
port=$(free_port)
port2=$(free_port)
reg=127.0.0.1:$port
cp "$BERTH_TESTDATA/sif/empty.sif" "$T/img.sif"
$PY "$HERE/hostile_server.py" "$port" "$port2" "$T/img.sif" "$T/hostile.log" &
pids+=($!)
wait_until 10 curl -s "http://$reg/v2/" || { echo "hostile server did not start"; exit 1; }
start_berthd "[registry]
insecure = [\"$reg\"]
stall_timeout_seconds = 3
attempts = 3"
authfile "$T/alice.json" "$reg" alice alicepw

refused() {  # refused NAME REPO REASON
  local name=$1 repo=$2 why=$3 before
  before=$(cache_entries)
  expect_fatal "$name" "$why" "$BERTH" pull -q --authfile "$T/alice.json" "$T/out.sif" "oras://$reg/$repo:v1"
  if [ -e "$T/out.sif" ] || ! no_debris "$T"; then bad "$name: no output" "$(ls -A "$T")"; rm -f "$T/out.sif"; fi
  [ "$(cache_entries)" -eq "$before" ] || bad "$name: nothing cached" "$("$BERTH" cache list)"
}

refused "wrong digest" baddigest "digest is sha256:"
refused "body longer than the descriptor" longer "more than the descriptor"
refused "truncated body" truncated "truncated"
refused "endless body" endless "more than the descriptor"
refused "50 MB manifest" bigmanifest "larger than"
refused "malformed manifest" badjson "manifest: document: malformed JSON"
refused "lying Docker-Content-Digest" liedigest "claims manifest digest"
check "redirect to another origin: pull works" "$BERTH" pull -q --authfile "$T/alice.json" "$T/redir.sif" "oras://$reg/redirect:v1"
grep -q 'STORAGE GET /storage/blob auth=no' "$T/hostile.log" && ! grep -q 'STORAGE GET .*auth=yes' "$T/hostile.log" &&
  ok "no Authorization header crosses to another origin" || bad "no Authorization header crosses to another origin" "$(grep STORAGE "$T/hostile.log")"
refused "redirect to a server asking for credentials" redirect401 "asks for credentials"
grep -q 'STORAGE GET /token' "$T/hostile.log" && bad "no token request to the redirect target" "$(grep STORAGE "$T/hostile.log")" ||
  ok "no token request to the redirect target"
! grep -q 'STORAGE GET .*auth=yes' "$T/hostile.log" && ok "still no Authorization header at the other origin" ||
  bad "still no Authorization header at the other origin" "$(grep STORAGE "$T/hostile.log")"
check "broken connection: resumed with Range" "$BERTH" pull -q "$T/flaky.sif" "oras://$reg/flaky:v1"
check "resumed copy is byte-identical" cmp -s "$T/img.sif" "$T/flaky.sif"
check "503 twice: retried" "$BERTH" pull -q "$T/busy.sif" "oras://$reg/busy:v1"
expect_fatal "reference with a bad digest" "invalid image reference" "$BERTH" pull -q "$T/x.sif" "oras://$reg/x@sha256:../../etc"
expect_fatal "reference with a bad repository" "invalid image reference" "$BERTH" pull -q "$T/x.sif" "oras://$reg/../x:v1"

# berthd killed mid-download: nothing of the blob is visible afterwards.
"$BERTH" pull -q "$T/slow.sif" "oras://$reg/slow:v1" 2>"$T/slow.err" &
client=$!
wait_until 10 grep -q 'SLOW started' "$T/hostile.log"
kill -KILL "${pids[-1]}"
wait "$client"
rc=$?
[ "$rc" -ne 0 ] && grep -q '^FATAL:' "$T/slow.err" && ok "killed daemon: the pull fails with a FATAL line" ||
  bad "killed daemon: the pull fails with a FATAL line" "rc=$rc $(cat "$T/slow.err")"
cached=$(find "$T/state/cache/tmp" "$T/state/cache/oras/sha256" -type f | wc -l)
[ "$cached" -eq 1 ] && ok "killed daemon: no partial cache entry" ||
  bad "killed daemon: no partial cache entry" "$(ls -AR "$T/state/cache")"
[ ! -e "$T/slow.sif" ] && no_debris "$T" && ok "killed daemon: no output file" || bad "killed daemon: no output file" "$(ls -A "$T")"
finish
