#!/usr/bin/env bash
# fixture.sh setup|cleanup STATE BERTH BERTHD SPANK: the CTest fixture every
# Slurm test shares, so Slurm starts once per test run.
#   setup    a private directory /tmp/berth-slurm-XXXXXX (named in STATE),
#            holding copies of berth, berthd and berth_spank.so, a system
#            berthd on its own socket, config and state, a private
#            single-node Slurm (cluster.sh) whose prolog and epilog call
#            berth (packaging/slurm) and whose plugstack.conf loads the plugin, and the MPI
#            test images (make_mpi_image.sh)
#   cleanup  stops Slurm (cancelling jobs: their epilogs run), then berthd;
#            fails when the daemon leaves a mount or loop device behind
# Tests read the directory's `env` file through lib.sh.
set -euo pipefail
cmd=$1 state=$2 berth_src=${3:-} berthd_src=${4:-} spank_src=${5:-}
here=$(cd "$(dirname "$0")" && pwd)

setup() {
  [ "$(id -u)" = 0 ] || { echo "fixture: needs root" >&2; exit 1; }
  bash "$here/../lib/ensure-test-user.sh" "${BERTH_TEST_USER:-berthtest}"
  bash "$here/../lib/ensure-test-user.sh" berthtest2
  local dir
  dir=$(mktemp -d /tmp/berth-slurm-XXXXXX)
  chmod 0755 "$dir"
  echo "$dir" >"$state"
  # As installed under a prefix: the plugin finds bin/berth from its lib/berth/slurm.
  mkdir -p "$dir"/{bin,lib/berth/slurm,img,berthd/etc,berthd/run}
  install -m 0755 "$berth_src" "$dir/bin/berth"
  install -m 0755 "$berthd_src" "$dir/bin/berthd"
  install -m 0644 "$spank_src" "$dir/lib/berth/slurm/berth_spank.so"
  setsid "$dir/bin/berthd" --socket "$dir/berthd/run/berthd.sock" --config-dir "$dir/berthd/etc" \
    --state-dir "$dir/berthd/state" --foreground </dev/null >"$dir/berthd/log" 2>&1 &
  echo $! >"$dir/berthd/pid"
  for _ in $(seq 100); do [ -S "$dir/berthd/run/berthd.sock" ] && break; sleep 0.1; done
  [ -S "$dir/berthd/run/berthd.sock" ] || { echo "fixture: berthd did not start: $(cat "$dir/berthd/log")" >&2; exit 1; }
  bash "$here/cluster.sh" start "$dir/slurm" </dev/null >"$dir/cluster.log" 2>&1 ||
    { cat "$dir/cluster.log" >&2; exit 1; }
  # The shipped epilog (packaging/slurm/epilog.sh), with this run's berth.
  cat >"$dir/slurm/etc/epilog.d/50-berth" <<EOF
#!/bin/sh
BERTH=$dir/bin/berth BERTH_SOCKET=$dir/berthd/run/berthd.sock exec sh $here/../../packaging/slurm/epilog.sh
EOF
  chmod 0755 "$dir/slurm/etc/epilog.d/50-berth"
  # The shipped prolog (packaging/slurm/prolog.sh): stages --container-image.
  cat >"$dir/slurm/etc/prolog.d/50-berth" <<EOF
#!/bin/sh
BERTH=$dir/bin/berth BERTH_SOCKET=$dir/berthd/run/berthd.sock exec sh $here/../../packaging/slurm/prolog.sh
EOF
  chmod 0755 "$dir/slurm/etc/prolog.d/50-berth"
  # The SPANK plugin (slurmstepd and srun read plugstack.conf at each step).
  echo "required $dir/lib/berth/slurm/berth_spank.so socket=$dir/berthd/run/berthd.sock" \
    >"$dir/slurm/etc/plugstack.conf"
  cat >"$dir/env" <<EOF
SLURM_DIR=$dir
SLURM_CONF=$dir/slurm/etc/slurm.conf
BERTH=$dir/bin/berth
BERTH_SOCKET=$dir/berthd/run/berthd.sock
BERTHD_STATE=$dir/berthd/state
BERTHD_LOG=$dir/berthd/log
EPILOG_OUT=$dir/slurm/log/epilog.out
PROLOG_OUT=$dir/slurm/log/prolog.out
PLUGSTACK=$dir/slurm/etc/plugstack.conf
IMG=$dir/img
EOF
  local kind
  for kind in mpich openmpi app oldlibc; do
    bash "$here/make_mpi_image.sh" "$dir/bin/berth" "$dir/img/$kind.sif" "$kind"
  done
  echo "fixture: Slurm and berthd ready in $dir"
}

cleanup() {
  [ -s "$state" ] || return 0
  local dir rc=0 pid
  dir=$(cat "$state")
  [ -d "$dir" ] || { rm -f "$state"; return 0; }
  bash "$here/cluster.sh" stop "$dir/slurm" || rc=1
  pid=$(cat "$dir/berthd/pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      state_letter=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
      [ -z "$state_letter" ] || [ "$state_letter" = Z ] && break
      sleep 0.1
    done
  fi
  if grep -q " $dir/" /proc/self/mountinfo; then
    echo "fixture: mounts left under $dir:" >&2
    grep " $dir/" /proc/self/mountinfo >&2
    rc=1
  fi
  if losetup -l -n -O BACK-FILE 2>/dev/null | grep -q "^$dir/"; then
    echo "fixture: loop devices left on $dir" >&2
    rc=1
  fi
  [ "$rc" = 0 ] && rm -rf "$dir" && rm -f "$state"
  return $rc
}

case $cmd in
  setup) setup ;;
  cleanup) cleanup ;;
  *) echo "usage: fixture.sh setup|cleanup STATE [BERTH BERTHD SPANK]" >&2; exit 2 ;;
esac
