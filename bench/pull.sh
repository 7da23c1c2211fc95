#!/usr/bin/env bash
# Registry pull throughput (issue 4): a 1 GiB single-blob SIF pushed to a
# local docker-registry (plain HTTP on 127.0.0.1), then pulled, alternating:
#   berth:  `berth pull -F OUT oras://…` through a system-mode berthd with an
#           empty node cache (`berth cache clean` first): download, sha256
#           while streaming, cache file written + fsync'ed + published, then
#           the output file written from the cache (copy_file_range);
#   peer:   `curl -s URL | tee FILE | openssl dgst -sha256`, the obvious
#           verified download (no fsync, no cache).
# MB/s = 1 GiB / wall time (1 MB = 1e6); median of REPS rounds.
#
# Usage (root): bench/pull.sh [BERTH] [BERTHD] [REPS] [SIZE_MIB]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
reps=${3:-5}
mib=${4:-1024}
bench_start_registry

img=$bench_work/img.sif
cp "${BERTH_TESTDATA:-$here/../tests/testdata}/sif/empty.sif" "$img"
head -c $((mib << 20)) /dev/urandom >>"$img"
bytes=$(stat -c %s "$img")
digest=sha256:$(openssl dgst -sha256 -r "$img" | cut -d' ' -f1)
"$BERTH" push -q "$img" "oras://$reg/bench/img:v1"
url="http://$reg/v2/bench/img/blobs/$digest"

t_berth=() t_peer=()
now() { date +%s.%N; }
for ((i = 0; i < reps; i++)); do
  "$BERTH" cache clean >/dev/null 2>&1
  rm -f "$bench_work/a.sif" "$bench_work/b.sif"
  sync
  s=$(now); "$BERTH" pull -q -F "$bench_work/a.sif" "oras://$reg/bench/img:v1"; e=$(now)
  t_berth+=("$(echo "$e - $s" | bc -l)")
  sync
  s=$(now)
  got=$(curl -s "$url" | tee "$bench_work/b.sif" | openssl dgst -sha256 -r | cut -d' ' -f1)
  e=$(now)
  [ "sha256:$got" = "$digest" ] || { echo "peer digest mismatch" >&2; exit 1; }
  t_peer+=("$(echo "$e - $s" | bc -l)")
  cmp -s "$img" "$bench_work/a.sif" || { echo "berth output differs" >&2; exit 1; }
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${t_berth[@]}") mp=$(median "${t_peer[@]}")
printf 'blob %d bytes, %d rounds (interleaved)\n' "$bytes" "$reps"
printf 'berth pull (cache + output, verified): median %.2f s = %.0f MB/s   [%s]\n' "$mb" \
  "$(echo "$bytes / $mb / 1000000" | bc -l)" "${t_berth[*]}"
printf 'curl | tee | openssl dgst:             median %.2f s = %.0f MB/s   [%s]\n' "$mp" \
  "$(echo "$bytes / $mp / 1000000" | bc -l)" "${t_peer[*]}"
printf 'ratio (berth throughput / peer): %.2fx\n' "$(echo "$mp / $mb" | bc -l)"
