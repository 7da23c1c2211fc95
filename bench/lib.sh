# bench/lib.sh: shared by the run-path benchmarks (sourced, bash).
# shellcheck shell=bash disable=SC2034  # (variables are for the scripts that source this)
# Sets up a private work directory, starts berthd (system mode as root, user
# mode as the test user), builds images, times commands, and on every exit
# path (normal, error, Ctrl-C, TERM) stops what it started, detaches leftover
# mounts under the work directory and removes it.
#
#   bench_setup BERTH BERTHD       root check, work dir, cleanup trap, copies
#                                  of the binaries readable by the test user
#   bench_build_setup BERTH BERTHD WORKER  the same, and the build worker
#                                  beside the copy of berthd (it looks there)
#   bench_start_daemon MODE [NAME] [CONF]  starts berthd; sets DAEMON_SOCK/PID
#   as_user CMD...                 CMD as the test user (exec, no extra process)
#   hf NAME CMD                    hyperfine -N; appends the times (s) to NAME
#   bench_stats NAME...            "median p25 p75 n" in ms of pooled times
#   bench_start_registry           docker-registry + a berthd using it; sets reg
set -euo pipefail

BENCH_USER=${BERTH_TEST_USER:-berthtest}
bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_work=
bench_pids=()  # killed (TERM, then KILL) on exit, last started first

bench_cleanup() {
  local rc=$? i p m
  trap - EXIT
  trap "" INT TERM HUP  # a second Ctrl-C must not cut the cleanup short
  for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do
    p=${bench_pids[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ -n "$bench_work" ] && [ -d "$bench_work" ]; then
    # Anything still mounted below the work dir (a peer's FUSE or loop mount,
    # a daemon killed hard): deepest first, lazily.
    awk -v w="$bench_work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true; done
    rm -rf "$bench_work"
  fi
  exit "$rc"
}

bench_setup() {
  [ "$(id -u)" = 0 ] || { echo "$(basename "$0"): run as root (starts berthd, mounts)" >&2; exit 2; }
  [ -x "$1" ] && [ -x "$2" ] || { echo "no berth/berthd at $1 / $2 (build them first)" >&2; exit 2; }
  bench_work=$(mktemp -d /tmp/berth-bench-XXXXXX)
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  chmod 0755 "$bench_work"
  mkdir -m 0777 "$bench_work/out"  # hyperfine JSON, also from the test user
  mkdir -p "$bench_work/times"
  install -m 0755 "$1" "$bench_work/berth"
  install -m 0755 "$2" "$bench_work/berthd"
  BERTH=$bench_work/berth
  BERTHD=$bench_work/berthd
}

bench_wait_until() {  # SECONDS CMD...
  local deadline=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

bench_user_setup() {
  bash "$bench_here/../tests/lib/ensure-test-user.sh" "$BENCH_USER"
  chmod 0666 /dev/fuse  # Debian ships 0666; some machines have 0600
  BENCH_UID=$(id -u "$BENCH_USER")
  BENCH_GID=$(id -g "$BENCH_USER")
  BENCH_HOME=$(getent passwd "$BENCH_USER" | cut -d: -f6)
}

# CMD as the test user (setpriv execs, no extra process). as_user_bg starts
# it in the background so that $! is CMD itself (a backgrounded function
# would give the pid of a subshell, and killing that leaves CMD running).
_user_argv() {
  user_argv=(setpriv --reuid="$BENCH_UID" --regid="$BENCH_GID" --init-groups
    env -i HOME="$BENCH_HOME" USER="$BENCH_USER" LOGNAME="$BENCH_USER"
    PATH=/usr/local/bin:/usr/bin:/bin ${USER_SOCK:+BERTH_SOCKET=$USER_SOCK} "$@")
}
as_user() { _user_argv "$@"; "${user_argv[@]}"; }
as_user_bg() { _user_argv "$@"; "${user_argv[@]}" & }

bench_build_setup() {
  bench_setup "$1" "$2"
  install -m 0755 "$3" "$bench_work/berth-build-worker"
}

# bench_start_daemon system|user [NAME] [BERTH_CONF_TEXT]: a berthd of its own
# (socket, config and state under $bench_work/NAME); sets DAEMON_SOCK and
# DAEMON_PID, and SYS_SOCK/SYS_PID or USER_SOCK/USER_PID for that mode.
bench_start_daemon() {
  local mode=$1 name=${2:-$1} conf=${3:-} dir pid
  dir=$bench_work/$name
  if [ "$mode" = system ]; then
    mkdir -p "$dir/etc"
  else
    [ -n "${BENCH_UID:-}" ] || bench_user_setup
    install -d -o "$BENCH_USER" -m 0700 "$dir"
    install -d -m 0755 "$dir/etc"
  fi
  [ -z "$conf" ] || { printf '%s\n' "$conf" >"$dir/etc/berth.conf"; chmod 0644 "$dir/etc/berth.conf"; }
  DAEMON_SOCK=$dir/run/berthd.sock
  if [ "$mode" = system ]; then
    "$BERTHD" --socket "$DAEMON_SOCK" --config-dir "$dir/etc" --state-dir "$dir/state" \
      --foreground </dev/null >/dev/null 2>"$bench_work/$name.log" &
    pid=$!
  else
    as_user_bg "$BERTHD" --user-mode --socket "$DAEMON_SOCK" --config-dir "$dir/etc" \
      --state-dir "$dir/state" --foreground </dev/null >/dev/null 2>"$bench_work/$name.log"
    pid=$!
  fi
  DAEMON_PID=$pid
  bench_pids+=("$pid")
  bench_wait_until 10 test -S "$DAEMON_SOCK" || { cat "$bench_work/$name.log" >&2; exit 1; }
  if [ "$mode" = system ]; then SYS_SOCK=$DAEMON_SOCK SYS_PID=$pid; else USER_SOCK=$DAEMON_SOCK USER_PID=$pid; fi
}

# The squashfs partition of a SIF: "OFFSET SIZE" of the FS descriptor.
sif_partition() {
  "$BERTH" sif list "$1" | awk -F'|' '/FS \(Squashfs/ {split($4, r, "-"); gsub(/ /, "", r[1]); gsub(/ /, "", r[2]); print r[1], r[2] - r[1]; exit}'
}

# bench_make_sif ROOTFS OUT.sif [mksquashfs options...]: squash and assemble
# as tests/integration/make_test_image.sh does (berth sif new/add).
bench_make_sif() {
  local root=$1 out=$2; shift 2
  local sq=$bench_work/build.sqfs
  mksquashfs "$root" "$sq" -noappend -all-root -quiet "$@" >/dev/null
  rm -f "$out"
  printf 'Bootstrap: scratch\n' >"$bench_work/build.def"
  "$BERTH" sif new --launch-script $'#!/usr/bin/env run-singularity\n' "$out"
  "$BERTH" sif add --datatype 1 --groupid 1 "$out" "$bench_work/build.def"
  "$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 --groupid 1 "$out" "$sq"
  rm -f "$sq"
  chmod 0644 "$out"
}

# A minimal rootfs: busybox-static applets, /etc files the launcher expects.
bench_make_rootfs() {
  local r=$1 t
  mkdir -p "$r"/{bin,dev,proc,sys,tmp,var/tmp,etc,home,root,.singularity.d/env}
  cp /bin/busybox "$r/bin/busybox"
  for t in sh cat dd tar true sleep echo ls wc; do ln -sf busybox "$r/bin/$t"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\n' >"$r/etc/group"
  : >"$r/etc/hosts"; : >"$r/etc/resolv.conf"
}

# hf NAME CMD [hyperfine options]: runs CMD (no shell) and appends its times.
# HF_RUNS / HF_WARMUP set the counts; HF_AS_USER=1 runs hyperfine as the test user.
hf() {
  local name=$1 cmd=$2; shift 2
  local json=$bench_work/out/$name.$RANDOM.json
  local -a pre=()
  [ "${HF_AS_USER:-0}" = 1 ] && pre=(as_user)
  "${pre[@]}" hyperfine -N --style none --warmup "${HF_WARMUP:-3}" --runs "${HF_RUNS:-10}" \
    --export-json "$json" "$@" "$cmd" >/dev/null 2>"$bench_work/out/hf.err" ||
    { echo "hyperfine failed for $name: $cmd" >&2; cat "$bench_work/out/hf.err" >&2; return 1; }
  python3 -c 'import json,sys; print("\n".join(str(t) for t in json.load(open(sys.argv[1]))["results"][0]["times"]))' \
    "$json" >>"$bench_work/times/$name"
  rm -f "$json"
}

# bench_stats NAME: "median p25 p75 n" (ms) over every time recorded for NAME.
bench_stats() {
  python3 - "$bench_work/times/$1" <<'PY'
import statistics, sys
t = sorted(float(x) * 1000 for x in open(sys.argv[1]) if x.strip())
q = statistics.quantiles(t, n=4) if len(t) > 1 else [t[0]] * 3
print("%.2f %.2f %.2f %d" % (statistics.median(t), q[0], q[2], len(t)))
PY
}

# Seconds since the epoch, ns resolution (for wall-clock timing of long runs).
now_ns() { date +%s%N; }

# holder_start system|user IMAGE: one long-running container of IMAGE in the
# background, so the daemon keeps the image mounted. holder_stop ends it.
HOLDER_PID=
holder_start() {
  local tag="sleep $((7000000 + RANDOM))"
  if [ "$1" = system ]; then
    BERTH_SOCKET=$SYS_SOCK "$BERTH" exec "$2" $tag </dev/null >/dev/null 2>&1 &
  else
    as_user_bg "$BERTH" exec "$2" $tag </dev/null >/dev/null 2>&1
  fi
  HOLDER_PID=$!
  bench_pids+=("$HOLDER_PID")
  bench_wait_until 20 pgrep -x -f "$tag" >/dev/null || { echo "holder container did not start" >&2; exit 1; }
}
holder_stop() {
  [ -n "$HOLDER_PID" ] || return 0
  kill -TERM "$HOLDER_PID" 2>/dev/null || true
  wait "$HOLDER_PID" 2>/dev/null || true
  HOLDER_PID=
  sleep 0.2  # the daemon drops the lease (and the mount) after the container ends
}

# bench_start_registry: a docker-registry on a free 127.0.0.1 port (plain
# HTTP, storage under the work dir) and a system-mode berthd that treats it
# as insecure; sets `reg` (host:port) and exports BERTH_SOCKET.
bench_start_registry() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  reg=127.0.0.1:$port
  mkdir -p "$bench_work/reg"
  cat >"$bench_work/reg/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $bench_work/reg/data}}
http: {addr: $reg}
YML
  docker-registry serve "$bench_work/reg/config.yml" >"$bench_work/reg/log" 2>&1 &
  bench_pids+=($!)
  bench_wait_until 10 curl -sf "http://$reg/v2/" -o /dev/null
  mkdir -p "$bench_work/etc"
  printf '[registry]\ninsecure = ["%s"]\n' "$reg" >"$bench_work/etc/berth.conf"
  "$BERTHD" --socket "$bench_work/berthd.sock" --config-dir "$bench_work/etc" \
    --state-dir "$bench_work/state" --foreground 2>"$bench_work/berthd.log" &
  bench_pids+=($!)
  export BERTH_SOCKET=$bench_work/berthd.sock
  bench_wait_until 10 test -S "$BERTH_SOCKET"
}
