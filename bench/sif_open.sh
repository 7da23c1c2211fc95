#!/usr/bin/env bash
# Opening and listing a SIF whose partition is 8 GiB (sparse) must read only
# the header and descriptor table. Measures, in the same run:
#   - wall time of `berth sif list` and `siftool list` (hyperfine, median)
#   - bytes each one reads (strace: sum of read/pread64 results on the image)
# Usage: bench/sif_open.sh [BERTH] [RUNS]   (prints a markdown table)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
berth=${1:-$here/../build/client/berth}
runs=${2:-50}
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
img=$work/sparse-8g.sif
python3 "$here/make_sparse_sif.py" "$img" 8
"$berth" sif list "$img" >/dev/null

median_ms() {
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" "$1" >/dev/null 2>&1
  python3 -c "import json,sys; r=json.load(open('$work/h.json'))['results'][0]; print('%.2f' % (r['median']*1000))"
}

bytes_read() {
  # Sum what read(2)/pread64(2) returned on the image's descriptor(s).
  strace -f -qq -e trace=openat,read,pread64 -o "$work/trace" "$@" >/dev/null 2>&1
  python3 - "$work/trace" "$img" <<'PY'
import re, sys
fds, total = set(), 0
for line in open(sys.argv[1]):
    m = re.search(r'openat\(.*"%s".*\) = (\d+)' % re.escape(sys.argv[2]), line)
    if m:
        fds.add(m.group(1)); continue
    m = re.search(r'(?:read|pread64)\((\d+),.*\) = (\d+)', line)
    if m and m.group(1) in fds:
        total += int(m.group(2))
print(total)
PY
}

b_ms=$(median_ms "$berth sif list $img")
s_ms=$(median_ms "siftool list $img")
b_bytes=$(bytes_read "$berth" sif list "$img")
s_bytes=$(bytes_read siftool list "$img")
echo "| tool | median ms (n=$runs) | bytes read from the 8 GiB image |"
echo "| --- | --- | --- |"
echo "| berth sif list | $b_ms | $b_bytes |"
echo "| siftool list (peer) | $s_ms | $s_bytes |"
python3 -c "print('| ratio berth/siftool | %.2f | |' % ($b_ms / $s_ms))"
