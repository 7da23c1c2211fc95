#!/usr/bin/env bash
# berthd's footprint (issue 3): resident memory (VmRSS, with its anonymous and
# file-backed parts, from /proc/PID/status) and open descriptors
# (/proc/PID/fd) of an idle system-mode daemon right after start, after 1,
# 100 and 1,000 sequential `berth exec IMG true` (a small busybox image); the
# same for a user-mode daemon after start and 100 execs, and while a running
# container holds a mount whose files (/usr/lib/python3.11 copied into a
# second image) were all read through the daemon's FUSE server (its block
# cache and reader pool then hold memory), after that container ended (the
# mount stays for idle_unmount_seconds, 60 s by default) and once the mount
# is gone. "Idle" rows are every row without a running container. Goal: idle RSS under
# 30 MB (1 MB = 2^20 B here, as the kernel reports kB); fds flat over 1,000
# execs. Each reading is taken 1 s after the last exec ended.
#
# Usage (root): bench/daemon_rss.sh [BERTH] [BERTHD] [EXECS]   (EXECS: 1000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}"
execs=${3:-1000}
bench_user_setup
root=$bench_work/rootfs
bench_make_rootfs "$root"
img=$bench_work/small.sif
bench_make_sif "$root" "$img"
mkdir "$root/data"
cp -a /usr/lib/python3.11 "$root/data/"
img_data=$bench_work/data.sif
bench_make_sif "$root" "$img_data" -comp zstd -Xcompression-level 3
rm -rf "$root"

sample() {  # LABEL PID: one table row
  sleep 1
  python3 - "$1" "$2" <<'PY'
import os, sys
label, pid = sys.argv[1], sys.argv[2]
st = {}
for line in open("/proc/%s/status" % pid):
    k, _, v = line.partition(":")
    st[k] = v.split()
mb = lambda k: int(st[k][0]) / 1024
fds = len(os.listdir("/proc/%s/fd" % pid))
print("| %s | %.1f | %.1f | %.1f | %d | %s | %.2f |" % (label, mb("VmRSS"), mb("RssAnon"), mb("RssFile"),
      fds, st["Threads"][0], mb("VmRSS") / 30))
PY
}
execs_as() {  # system|user N
  local i
  for ((i = 0; i < $2; i++)); do
    if [ "$1" = system ]; then "$BERTH" exec "$img" true; else as_user "$BERTH" exec "$img" true; fi
  done
}

bench_start_daemon system
export BERTH_SOCKET=$SYS_SOCK
rows=()
rows+=("$(sample "system: idle after start" "$SYS_PID")")
execs_as system 1
rows+=("$(sample "system: after 1 exec" "$SYS_PID")")
execs_as system 99
rows+=("$(sample "system: after 100 execs" "$SYS_PID")")
t0=$(now_ns)
execs_as system $((execs - 100))
t1=$(now_ns)
rows+=("$(sample "system: after $execs execs" "$SYS_PID")")
bench_start_daemon user
rows+=("$(sample "user: idle after start" "$USER_PID")")
execs_as user 100
rows+=("$(sample "user: after 100 execs" "$USER_PID")")
holder_start user "$img_data"
as_user "$BERTH" exec "$img_data" tar cf - -C / data >/dev/null
rows+=("$(sample "user: mount held, $(du -sm /usr/lib/python3.11 | cut -f1) MB read through FUSE" "$USER_PID")")
holder_stop
rows+=("$(sample "user: container ended, mount kept (idle_unmount_seconds)" "$USER_PID")")
sleep 62  # the default idle_unmount_seconds is 60
rows+=("$(sample "user: 63 s later, mount gone" "$USER_PID")")

echo
echo "Sequential execs 101..$execs took $(python3 -c "print('%.1f' % (($t1 - $t0) / 1e9))") s ($(python3 -c "print('%.1f' % (($t1 - $t0) / 1e6 / max(1, $execs - 100)))") ms each)."
echo
echo "| berthd | VmRSS MB | RssAnon MB | RssFile MB | fds | threads | × 30 MB goal |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${rows[@]}" | python3 -c '
import sys
rows = [l.split("|") for l in sys.stdin if l.strip()]
idle = [r for r in rows if "mount held" not in r[1]]
rss = [float(r[2]) for r in idle]
fds = [int(r[5]) for r in rows]
sysfds = fds[1:4]
worst = max(idle, key=lambda r: float(r[2]))
print("Goal idle RSS < 30 MB: worst idle %.1f MB (%s) -> %s" % (max(rss), worst[1].strip(), "met" if max(rss) < 30 else "not met"))
print("Goal fds flat over execs: system %s (after 1 / 100 / N execs) -> %s" %
      (" / ".join(map(str, sysfds)), "met" if len(set(sysfds)) == 1 else "not met"))
'
