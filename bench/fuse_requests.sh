#!/usr/bin/env bash
# bench/fuse_requests.sh [BERTH] [BERTHD] [EXECS=20]: the FUSE requests one
# warm user-mode `berth exec IMG /bin/true` sends to berthd's FUSE server,
# by opcode and by the process that caused them (the daemon preparing the
# launch, the container's shell, ...), averaged over EXECS execs after two
# warm-ups. Counted with the kernel's fuse:fuse_request_send tracepoint
# (perf record -a), filtered to the daemon's own FUSE connection, so other
# FUSE mounts on the machine do not count. Run as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
execs=${3:-20}
bench_user_setup
img=$bench_work/t.sif
bash "$here/../tests/integration/make_test_image.sh" "$BERTH" "$img" >/dev/null
bench_start_daemon user usr
as_user "$BERTH" exec "$img" /bin/true
as_user "$BERTH" exec "$img" /bin/true

# The daemon's FUSE connection is its mount's device number, seen in its own
# mount namespace (user mode mounts where the host does not see it).
dev=$(awk '{for (i = 7; i < NF; i++) if ($i == "-") {if ($(i + 1) ~ /^fuse/) {print $3; exit} break}}' \
  "/proc/$USER_PID/mountinfo")
[ -n "$dev" ] || { echo "no FUSE mount in the daemon's namespace" >&2; exit 1; }
major=${dev%%:*} minor=${dev##*:}
conn=$(((major << 20) | minor))  # the kernel's dev_t, as the tracepoint prints it

runs=$bench_work/runs.sh
cat >"$runs" <<EOF
for i in \$(seq $execs); do "$BERTH" exec "$img" /bin/true; done
EOF
chmod 0755 "$runs"
perf record -q -e fuse:fuse_request_send -a -o "$bench_work/perf.data" -- \
  setpriv --reuid="$BENCH_UID" --regid="$BENCH_GID" --init-groups \
  env -i HOME="$BENCH_HOME" PATH=/usr/bin:/bin BERTH_SOCKET="$USER_SOCK" bash "$runs" \
  >/dev/null 2>"$bench_work/perf.err" || { cat "$bench_work/perf.err" >&2; exit 1; }
perf script -i "$bench_work/perf.data" -F comm,trace 2>/dev/null |
  awk -v conn="$conn" -v n="$execs" '
    {
      c = ""; op = ""
      for (i = 1; i <= NF; i++) {
        if ($i == "connection") c = $(i + 1)
        if ($i ~ /^\(FUSE_/) { op = $i; gsub(/[()]/, "", op) }
      }
      if (c != conn) next
      by_op[op]++; by_comm[$1]++; total++
    }
    END {
      printf "FUSE requests per warm user-mode exec (%d execs)\n", n
      for (o in by_op) printf "  %-18s %6.2f\n", o, by_op[o] / n
      printf "  %-18s %6.2f\n", "total", total / n
      print "by process:"
      for (p in by_comm) printf "  %-18s %6.2f\n", p, by_comm[p] / n
    }'
