#!/usr/bin/env bash
# bench/verify.sh BERTH BERTHD: trust figures for docs/benchmarks.md (issue 5).
#  1. `berth verify` of a 1 GiB signed image vs `openssl dgst -sha256` of the
#     same file, same run, page cache warm (goal: >= 85% of openssl's rate).
#  2. The ECL's cost on a repeated exec of an unchanged image: the daemon's
#     own timing of the cached check (debug log), and exec latency with vs
#     without an activated ECL (goal: <= 1 ms).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_setup "$1" "$2"
export GNUPGHOME=$bench_work/gnupg
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key "bench <bench@example.org>" ed25519 sign never 2>/dev/null
FP=$(gpg --batch --with-colons --list-keys bench@example.org | awk -F: '/^fpr/ {print $10; exit}')

echo "== 1. verify of a 1 GiB image vs openssl dgst -sha256"
big=$bench_work/big.sif
head -c $((1 << 30)) /dev/urandom >"$bench_work/blob"
"$BERTH" sif new "$big"
"$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$big" "$bench_work/blob"
rm -f "$bench_work/blob"
"$BERTH" sign "$big" 2>/dev/null
cat "$big" >/dev/null  # warm the page cache for both
hyperfine -N --warmup 1 --runs 5 --export-json "$bench_work/out/verify.json" \
  -n openssl "openssl dgst -sha256 $big" -n berth-verify "$BERTH verify $big" >/dev/null 2>&1
python3 - "$bench_work/out/verify.json" "$(stat -c %s "$big")" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
size = int(sys.argv[2]) / 1e9
o, v = r["openssl"]["median"], r["berth-verify"]["median"]
print(f"openssl dgst -sha256: {o*1000:.0f} ms ({size/o:.2f} GB/s)")
print(f"berth verify:         {v*1000:.0f} ms ({size/v:.2f} GB/s)")
print(f"berth verify / openssl throughput: {o/v*100:.0f}%")
PY

echo "== 2. ECL check cost on a repeated exec"
r=$bench_work/rootfs; bench_make_rootfs "$r"
img=$bench_work/small.sif; bench_make_sif "$r" "$img"
"$BERTH" sign "$img" 2>/dev/null
bench_start_daemon system plain
PLAIN_SOCK=$DAEMON_SOCK
mkdir -p "$bench_work/ecl/etc"
printf 'activated = true\n[[execgroup]]\n  tagname = "bench"\n  mode = "whitelist"\n  dirpath = ""\n  keyfp = ["%s"]\n' "$FP" >"$bench_work/ecl/etc/ecl.toml"
gpg --batch --export "$FP" >"$bench_work/ecl/etc/global-pgp-public"
SPDLOG_LEVEL=debug bench_start_daemon system ecl
ECL_SOCK=$DAEMON_SOCK
BERTH_SOCKET=$PLAIN_SOCK "$BERTH" exec "$img" true
BERTH_SOCKET=$ECL_SOCK "$BERTH" exec "$img" true
hyperfine -N --warmup 5 --runs 60 --export-json "$bench_work/out/ecl.json" \
  -n plain "env BERTH_SOCKET=$PLAIN_SOCK $BERTH exec $img true" \
  -n ecl "env BERTH_SOCKET=$ECL_SOCK $BERTH exec $img true" >/dev/null 2>&1
python3 - "$bench_work/out/ecl.json" "$bench_work/ecl.log" <<'PY'
import json, re, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
p, e = r["plain"]["median"] * 1000, r["ecl"]["median"] * 1000
print(f"exec latency without ECL: {p:.2f} ms, with ECL: {e:.2f} ms (difference {e - p:+.2f} ms, medians of 60)")
us = [float(m.group(1)) for m in re.finditer(r"allowed by execgroup '\w+' \(([\d.]+) us, cached\)", open(sys.argv[2]).read())]
if us:
    q = statistics.quantiles(us, n=20)
    print(f"daemon-timed cached ECL check: median {statistics.median(us):.0f} us, p95 {q[18]:.0f} us (n={len(us)})")
first = re.search(r"allowed by execgroup '\w+' \(([\d.]+) us\)", open(sys.argv[2]).read())
if first:
    print(f"first (copy + verify) check of the small image: {float(first.group(1))/1000:.1f} ms")
PY
