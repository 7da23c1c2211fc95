#!/usr/bin/env bash
# cluster.sh start DIR | stop DIR: a private single-node Slurm (munged,
# slurmctld, slurmd on 127.0.0.1) for the Slurm tests, with nothing outside
# DIR: its own munge key and socket, slurm.conf (SLURM_CONF), spool, state,
# logs and pid files, and TCP ports that were free when it started. It
# installs nothing (packaging/install-deps.sh does) and never touches
# /etc/slurm, /etc/munge or /run/munge, so it runs beside a site's Slurm.
#
# DIR/env holds what a client needs (SLURM_CONF); DIR/etc/{prolog,epilog}.sh
# run what DIR/etc/{prolog,epilog}.d/* hold, so a test can add its hooks
# after the start. `stop` cancels every job, stops the three daemons (a
# killed daemon may stay a zombie for a while on this machine, whose PID 1
# reaps late: that counts as stopped) and removes DIR. Recipes: the
# project's docs/mpi.md; Slurm 22.05 (Debian 12).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop DIR} dir=${2:?usage: cluster.sh start|stop DIR}

# gone PID: the process has ended (or is a zombie nobody reaped yet).
gone() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

stop_pidfile() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do gone "$pid" && return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do gone "$pid" && return 0; sleep 0.1; done
  echo "cluster.sh: pid $pid ($file) did not stop" >&2
  return 1
}

# A TCP port nobody listens on (state 0A in /proc/net/tcp*), below the
# ephemeral range.
free_port() {
  local p hex
  for p in $(shuf -i 20000-29999 -n 50); do
    hex=$(printf '%04X' "$p")
    if ! awk -v h=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == h' /proc/net/tcp /proc/net/tcp6 |
      grep -q .; then
      echo "$p"
      return
    fi
  done
  echo "cluster.sh: no free port" >&2
  return 1
}

write_conf() {
  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  [ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$((slurmd_port + 1))
  cat >"$dir/etc/slurm.conf" <<EOF
ClusterName=berthci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
CommunicationParameters=NoInAddrAny
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
PrologFlags=Alloc
Prolog=$dir/etc/prolog.sh
Epilog=$dir/etc/epilog.sh
TmpFS=$dir/tmp
KillWait=5
InactiveLimit=0
MinJobAge=2
# 32 CPUs whatever the machine has (config_overrides), so that 16-rank
# steps and tests running side by side fit on a 2-core CI machine.
SlurmdParameters=config_overrides
NodeName=berthci NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=32 State=UNKNOWN
PartitionName=debug Nodes=berthci Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$dir/etc/plugstack.conf"
  # Prolog and epilog: every executable in the .d directory, in name order,
  # with the job's environment; the first failure is the script's.
  local hook
  for hook in prolog epilog; do
    mkdir -p "$dir/etc/$hook.d"
    cat >"$dir/etc/$hook.sh" <<EOF
#!/bin/sh
echo "$hook job=\$SLURM_JOB_ID uid=\$SLURM_JOB_UID" >>"$dir/log/hooks.log"
for f in "$dir/etc/$hook.d"/*; do
  [ -x "\$f" ] || continue
  "\$f" >>"$dir/log/$hook.out" 2>&1 || exit \$?
done
exit 0
EOF
    chmod 0755 "$dir/etc/$hook.sh"
  done
}

start_munge() {
  # munged insists on a private key and sockets/logs nobody else can write.
  install -d -o munge -g munge -m 0700 "$dir/munge/key"
  install -d -o munge -g munge -m 0755 "$dir/munge"
  dd if=/dev/urandom bs=1 count=1024 status=none >"$dir/munge/key/munge.key"
  chown munge:munge "$dir/munge/key/munge.key"
  chmod 0400 "$dir/munge/key/munge.key"
  runuser -u munge -- /usr/sbin/munged --socket="$dir/munge/munge.socket" \
    --key-file="$dir/munge/key/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --force
  for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && return 0; sleep 0.1; done
  echo "cluster.sh: munged did not start: $(tail -3 "$dir/munge/munged.log")" >&2
  return 1
}

start() {
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root" >&2; exit 1; }
  mkdir -p "$dir"/{etc,state,spool,run,log}
  install -d -m 1777 "$dir/tmp"
  chmod 0755 "$dir" "$dir/etc" "$dir/log"
  write_conf
  start_munge
  export SLURM_CONF=$dir/etc/slurm.conf
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd -N berthci
  echo "SLURM_CONF=$SLURM_CONF" >"$dir/env"
  local state=
  for _ in $(seq 300); do
    state=$(sinfo -h -n berthci -o %T 2>/dev/null || true)
    [ "$state" = idle ] && return 0
    sleep 0.1
  done
  echo "cluster.sh: node not idle after 30 s (state '$state'): $(tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log")" >&2
  return 1
}

stop() {
  [ -d "$dir" ] || return 0
  export SLURM_CONF=$dir/etc/slurm.conf
  local rc=0
  if [ -s "$dir/run/slurmctld.pid" ] && ! gone "$(cat "$dir/run/slurmctld.pid")"; then
    scancel --full --quiet --partition=debug 2>/dev/null || true
    for _ in $(seq 150); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop_pidfile "$dir/run/slurmd.pid" || rc=1
  stop_pidfile "$dir/run/slurmctld.pid" || rc=1
  stop_pidfile "$dir/munge/munged.pid" || rc=1
  [ "$rc" = 0 ] && rm -rf "$dir"
  return $rc
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
