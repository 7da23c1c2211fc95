#!/usr/bin/env bash
# instance_test.sh BERTH BERTHD MODE WHO: named instances end to end against a
# real daemon: start/run, list (Apptainer's table and JSON), joins through
# instance://, stop (signal, timeout, force, --all, globs), the per-user cap
# and a flood of starts against it, who may see and stop what, each
# instance's own cgroup (below berthd's, its stats, its limits tightened to
# the caller's, removed at stop), --fakeroot and --userns instances (joins in
# the user namespace the init made) and (system mode) a daemon restart that
# keeps cgroups, --restart policies and --fakeroot instances.
#   MODE  system (root berthd)  or  user (a private berthd run by the test user)
#   WHO   root  or  user (the unprivileged test user)
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue instance
daemon_pid=
sleepers=
cleanup() {
  [ -n "$sleepers" ] && kill $sleepers 2>/dev/null
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # Instances outlive a system daemon by design: end what this test left.
  for p in $(pgrep -x berth-init 2>/dev/null); do
    grep -qs "$TEST_TMP" "/proc/$p/mountinfo" 2>/dev/null && kill -9 "$p" 2>/dev/null
  done
  # Instance cgroups a failing run left (system mode; reported below), then the test's own.
  [ -n "$(leftover_cgroups)" ] && leftover_cgroups | xargs rmdir 2>/dev/null
  [ -n "${ceil:-}" ] && rmdir "$ceil" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
TEST_TAG=t$$
# The daemons' pids name their instances' cgroups (berth-instance-UID-NAME-PID-N).
daemon_pids=
leftover_cgroups() {
  local p
  for p in $daemon_pids; do
    find /sys/fs/cgroup -mindepth 2 -depth -type d -name "berth-instance-*-$p-*" 2>/dev/null
  done
}
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
bash "$here/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "test image"; finish; }
mkdir -m 0777 "$TEST_TMP/shared"
# Every instance then binds this directory (the caller's cwd), which is how
# the clean-up tells this test's instances from anyone else's.
cd "$TEST_TMP/shared" || exit 1
mkdir -p "$TEST_TMP/etc"
printf '[limits]\nmax_instances_per_user = 6\n' >"$TEST_TMP/etc/berth.conf"

start_daemon() {
  if [ "$MODE" = system ]; then
    SOCK=$TEST_TMP/run/berthd.sock
    "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" \
      --state-dir "$TEST_TMP/state" --foreground 2>>"$TEST_TMP/berthd.log" &
  else
    chmod 0666 /dev/fuse
    install -d -o "$TUSER" -m 0700 "$TEST_TMP/u"
    chown "$TUSER" "$TEST_TMP/etc" "$TEST_TMP/etc/berth.conf"
    SOCK=$TEST_TMP/u/berthd.sock
    runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$SOCK" \
      --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/u/state" --foreground \
      2>>"$TEST_TMP/berthd.log" &
  fi
  daemon_pid=$!
  [ "$MODE" = system ] && daemon_pids="$daemon_pids $daemon_pid"
  wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(tail -5 "$TEST_TMP/berthd.log")"; finish; }
}
stop_daemon() {
  kill "$daemon_pid" && wait "$daemon_pid" 2>/dev/null
  daemon_pid=
  rm -f "$SOCK"
}
start_daemon

if [ "$WHO" = root ]; then
  ME=root ME_UID=0
else
  ME=$TUSER ME_UID=$(id -u "$TUSER")
fi
CFG=$TEST_TMP/cfg-$WHO
install -d -o "$ME" -m 0700 "$CFG"
# as USER CMD...: the client as USER, with Apptainer's config dir in the test's tree.
as_user() {
  local u=$1; shift
  if [ "$u" = root ]; then env BERTH_SOCKET="$SOCK" APPTAINER_CONFIGDIR="$TEST_TMP/cfg-root" "$@"
  else runuser -u "$u" -- env BERTH_SOCKET="$SOCK" APPTAINER_CONFIGDIR="$TEST_TMP/cfg-user" "$@"; fi
}
b() { as_user "$ME" "$BERTH" "$@"; }
pid_of() { b instance list --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0]["pid"])'; }
listed() { b instance list "$1" 2>/dev/null | grep -q "^$1 "; }
not_listed() { ! listed "$1"; }

# --- start, list ---
cat >"$TEST_TMP/shared/start.sh" <<'S'
#!/bin/sh
echo "startscript $APPTAINER_INSTANCE args: $*"
echo "to stderr" >&2
S
chmod 0755 "$TEST_TMP/shared/start.sh"
expect_out "instance start prints nothing on stdout" "" \
  b instance start --pid-file "$TEST_TMP/shared/web.pid" -B "$TEST_TMP/shared:/shared" \
  -B "$TEST_TMP/shared/start.sh:/.singularity.d/startscript" "$IMG" web one two
check "... and Apptainer's INFO line" grep -qx 'INFO:    instance started successfully' "$TEST_TMP/stderr"
pid=$(pid_of web 2>/dev/null)
check "--pid-file holds the instance's pid" test "$(cat "$TEST_TMP/shared/web.pid" 2>/dev/null)" = "$pid"
check "the init runs as berth-init" test "$(cat "/proc/$pid/comm" 2>/dev/null)" = berth-init
b instance list >"$TEST_TMP/list.txt" 2>&1
# Go's tabwriter (padding 4): each column as wide as its widest cell + 4.
tab() { python3 -c '
import sys
rows = [r.split("\t") for r in sys.argv[1:]]
w = [max(len(r[i]) for r in rows if len(r) > i + 1) + 4 for i in range(max(map(len, rows)) - 1)]
print("\n".join("".join(c.ljust(w[i]) if i + 1 < len(r) else c for i, c in enumerate(r)) for r in rows))' "$@"; }
check "list: Apptainer's table" test "$(cat "$TEST_TMP/list.txt")" = "$(tab "INSTANCE NAME	PID	IP	IMAGE" "web	$pid		$IMG")"
b instance list --json >"$TEST_TMP/list.json" 2>&1
check "list --json: Apptainer's keys, tab-indented" python3 - "$TEST_TMP/list.json" "$pid" "$IMG" <<'P'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
i = d["instances"]
assert list(d) == ["instances"] and len(i) == 1, d
assert list(i[0]) == ["instance", "pid", "img", "ip", "logErrPath", "logOutPath"], i[0]
assert i[0]["instance"] == "web" and i[0]["pid"] == int(sys.argv[2]) and i[0]["img"] == sys.argv[3]
assert text.startswith('{\n\t"instances": [\n\t\t{\n\t\t\t"instance": "web",\n'), text
P
logdir=$CFG/instances/logs/$(hostname)/$ME
check "list --logs: .err on the row, .out below" \
  test "$(b instance list --logs web)" = "$(tab "INSTANCE NAME	PID	LOGS" "web	$pid	$logdir/web.err" "		$logdir/web.out")"
wait_until 5 grep -q "startscript" "$logdir/web.out"
check "the startscript ran with APPTAINER_INSTANCE and its arguments (log .out)" \
  grep -qx "startscript web args: one two" "$logdir/web.out"
check "... its stderr in .err" grep -qx "to stderr" "$logdir/web.err"
check "the logs belong to the user, not root" test "$(stat -c %u "$logdir/web.out")" = "$ME_UID"
sleep 0.5
check "the startscript exited and the instance lives on" listed web
expect_fatal "the same name twice is refused" "instance web already exists" \
  b instance start "$IMG" web

# --- stats, from the instance's own cgroup (below berthd's, made for it) ---
# inst_dir NAME HIERARCHY: the instance's directory there (system mode).
inst_dir() {
  local p
  for p in $daemon_pids; do
    find "/sys/fs/cgroup/$2" -type d -name "berth-instance-$ME_UID-$1-$p-*" 2>/dev/null
  done | head -1
}
b instance stats --json web >"$TEST_TMP/stats.json" 2>"$TEST_TMP/stderr"
check "stats --json: the cgroups Stats keys, memory in use" python3 - "$TEST_TMP/stats.json" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["cpu_stats", "cpuset_stats", "memory_stats", "pids_stats", "blkio_stats",
                   "hugetlb_stats", "rdma_stats", "misc_stats"], list(d)
assert d["memory_stats"]["usage"]["usage"] > 0, d
assert "current" in d["pids_stats"] and "total_usage" in d["cpu_stats"]["cpu_usage"], d
P
if [ "$MODE" = system ]; then
  check "stats: no warning (the figures are the instance's own)" test ! -s "$TEST_TMP/stderr"
  mem=$(inst_dir web memory) pids=$(inst_dir web pids)
  own_mem=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' "/proc/$daemon_pid/cgroup")
  check "the instance has a memory cgroup of its own, below berthd's" test "${mem%/*}" = "${own_mem%/}"
  check "... its init is in it" grep -q ":memory:${mem#/sys/fs/cgroup/memory}\$" "/proc/$pid/cgroup"
  check "stats: pids are the cgroup's own (pids.current), non-zero" python3 - "$TEST_TMP/stats.json" "$pids/pids.current" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pids_stats"]["current"] == int(open(sys.argv[2]).read()) > 0, d["pids_stats"]
P
  check "stats: memory is the cgroup's own (memory.usage_in_bytes, within 50%)" python3 - "$TEST_TMP/stats.json" "$mem/memory.usage_in_bytes" <<'P'
import json, sys
got = json.load(open(sys.argv[1]))["memory_stats"]["usage"]["usage"]
want = int(open(sys.argv[2]).read())
assert want > 0 and abs(got - want) <= want / 2, (got, want)
P
  expect_out "a join into an instance without limits stays in the caller's cgroup" "" \
    b exec instance://web sh -c 'grep berth-instance /proc/self/cgroup; true'
else
  # No cgroup is delegated to a user-mode berthd here: the instance shares
  # the daemon's, and its stats say so rather than pass for its own.
  check "user mode, no delegated cgroup: stats warn that the figures are berthd's cgroup's" \
    grep -q "^WARNING: .*has no cgroup of its own.*which it shares with berthd" "$TEST_TMP/stderr"
fi
expect_fatal "stats of an instance that is not there" "no instance found with name nosuch" \
  b instance stats nosuch

# --- joining ---
want_ns=$(readlink "/proc/$pid/ns/mnt")
expect_out "exec instance://: the init's mount namespace" "$want_ns" \
  b exec instance://web readlink /proc/self/ns/mnt
expect_out "exec instance://: the instance's binds" "#!/bin/sh" b exec instance://web head -1 /shared/start.sh
expect_out "exec instance://: APPTAINER_INSTANCE" "web" b exec instance://web sh -c 'echo $APPTAINER_INSTANCE'
expect_out "exec instance://: the image's environment" "from-image" b exec instance://web sh -c 'echo $IMAGE_VAR'
expect_out "exec instance://: the caller's uid" "$ME_UID" b exec instance://web id -u
expect_out "exec instance://: its exit status" "" b exec instance://web true
expect_rc "exec instance://: exit 3 -> 3" 3 b exec instance://web sh -c 'exit 3'
got=$(echo 'readlink /proc/self/ns/mnt' | b shell instance://web 2>/dev/null)
[ "$got" = "$want_ns" ] && ok "shell instance://: the same mount namespace" || bad "shell instance://" "got '$got'"
expect_out "run instance://: the runscript" "runscript args: x y" b run instance://web x y
b exec --fakeroot instance://web id -u >"$TEST_TMP/out" 2>"$TEST_TMP/stderr"
check "exec --fakeroot instance://: ignored, with a warning" \
  sh -c "[ \"\$(cat '$TEST_TMP/out')\" = '$ME_UID' ] && grep -q 'WARNING: .*--fakeroot is ignored' '$TEST_TMP/stderr'"
b exec --pids-limit 50 instance://web id -u >"$TEST_TMP/out" 2>"$TEST_TMP/stderr"
check "exec --pids-limit instance://: ignored, with Apptainer's warning" \
  sh -c "[ \"\$(cat '$TEST_TMP/out')\" = '$ME_UID' ] && grep -q 'WARNING: .*cgroup limits are ignored when joining' '$TEST_TMP/stderr'"
expect_fatal "a missing instance: one line" "no instance found with name nosuch" \
  b exec instance://nosuch true
b exec instance://web sh -c 'echo $$ > /shared/joined.pid; exec sleep 100' &
client=$!
wait_until 5 test -s "$TEST_TMP/shared/joined.pid"
kill -9 "$client"; wait "$client" 2>/dev/null
sleep 0.3
check "a join's client SIGKILLed: the instance lives" listed web
expect_out "... and is joinable" "ok" b exec instance://web echo ok
expect_out "exec instance://: the init's PID namespace" "$(readlink "/proc/$pid/ns/pid")" \
  b exec instance://web readlink /proc/self/ns/pid

# --- --fakeroot and --userns instances: the init makes the user namespace ---
# (in user mode --userns adds none: the daemon's own confines the container)
host_userns=$(readlink /proc/self/ns/user)
cat >"$TEST_TMP/shared/fr-start.sh" <<'S'
#!/bin/sh
echo "startscript uid $(id -u) $(readlink /proc/self/ns/user)"
S
chmod 0755 "$TEST_TMP/shared/fr-start.sh"
must "start fr --fakeroot" b instance start --fakeroot -B "$TEST_TMP/shared:/shared" \
  -B "$TEST_TMP/shared/fr-start.sh:/.singularity.d/startscript" "$IMG" fr
frpid=$(pid_of fr)
fr_userns=$(readlink "/proc/$frpid/ns/user")
check "--fakeroot instance: its init is in a user namespace of its own" \
  test -n "$fr_userns" -a "$fr_userns" != "$host_userns"
wait_until 10 grep -q "startscript uid" "$logdir/fr.out"
got=$(cat "$logdir/fr.out" 2>/dev/null)
[ "$got" = "startscript uid 0 $fr_userns" ] && ok "... the startscript ran as root of that namespace" ||
  bad "... the startscript ran as root of that namespace" "got '$got'"
expect_out "exec instance:// of a --fakeroot instance: uid 0" "0" b exec instance://fr id -u
expect_out "... in the init's user namespace" "$fr_userns" b exec instance://fr readlink /proc/self/ns/user
expect_out "... and its mount namespace" "$(readlink "/proc/$frpid/ns/mnt")" \
  b exec instance://fr readlink /proc/self/ns/mnt
expect_rc "... root there writes as the caller on the host" 0 b exec instance://fr sh -c 'echo x >/shared/fr-owned'
check "... (the file is the caller's, uid $ME_UID)" test "$(stat -c %u "$TEST_TMP/shared/fr-owned")" = "$ME_UID"
if [ "$MODE" = system ]; then
  expect_out "... its namespace maps uid 0 to the caller" "0 $ME_UID 1" \
    b exec instance://fr sh -c "head -1 /proc/self/uid_map | tr -s ' ' | sed 's/^ //'"
fi
got=$(echo 'id -u; readlink /proc/self/ns/user' | b shell instance://fr 2>/dev/null | tr '\n' ' ')
check "shell instance:// of a --fakeroot instance: root, the same namespace" test "$got" = "0 $fr_userns "
# (A user-mode daemon runs as the caller: its inits are the caller's.)
if [ "$MODE" = system ]; then
  if [ "$WHO" = user ]; then
    check "the caller cannot signal the --fakeroot instance's init" \
      sh -c "! runuser -u '$TUSER' -- kill -0 $frpid 2>/dev/null"
  fi
  check "... which holds no capability and no supplementary group" \
    sh -c "grep -q '^CapEff:.0*\$' /proc/$frpid/status && grep -qE '^Groups:[[:space:]]*\$' /proc/$frpid/status"
fi
b instance stats --json fr >"$TEST_TMP/stats.json" 2>/dev/null
check "stats of a --fakeroot instance: memory in use" python3 - "$TEST_TMP/stats.json" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["memory_stats"]["usage"]["usage"] > 0 and "current" in d["pids_stats"], d
P
if [ "$MODE" = system ]; then
  check "... its pids non-zero, its own cgroup's (pids.current)" python3 - "$TEST_TMP/stats.json" "$(inst_dir fr pids)/pids.current" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pids_stats"]["current"] == int(open(sys.argv[2]).read()) > 0, d["pids_stats"]
P
fi
expect_rc "stop the --fakeroot instance" 0 b instance stop fr
check "... gone" wait_until 3 test ! -e "/proc/$frpid"
must "start un --userns" b instance start --userns "$IMG" un
unpid=$(pid_of un)
un_userns=$(readlink "/proc/$unpid/ns/user")
expect_out "exec instance:// of a --userns instance: the caller's uid" "$ME_UID" b exec instance://un id -u
expect_out "... in the init's user namespace" "$un_userns" b exec instance://un readlink /proc/self/ns/user
check "... not the host's" test -n "$un_userns" -a "$un_userns" != "$host_userns"
expect_rc "stop the --userns instance" 0 b instance stop un

# --- instance run ---
expect_rc "instance run starts the runscript" 0 b instance run "$IMG" runner a b
wait_until 5 grep -q "runscript args" "$logdir/runner.out"
check "... whose output is in the log" grep -qx "runscript args: a b" "$logdir/runner.out"
check "... and the instance stays" listed runner

# --- kill -9 of the init ---
rpid=$(pid_of runner)
kill -9 "$rpid"
check "kill -9 of the init: gone from list" not_listed runner
expect_rc "... and the name is reusable at once" 0 b instance start "$IMG" runner
b instance stop runner >/dev/null 2>&1

# --- --restart (berth's own) ---
back() { local p; p=$(pid_of "$1" 2>/dev/null) && [ -n "$p" ] && [ "$p" != "$2" ]; }
restarts_of() { b instance list --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instances"][0].get("restarts", 0))'; }
must "start --restart always" b instance start --restart always -B "$TEST_TMP/shared:/shared" "$IMG" phoenix
p1=$(pid_of phoenix)
kill -9 "$p1"
check "--restart always: kill -9 of the init, back within 2 s" wait_until 2 back phoenix "$p1"
check "... counted in list --json" test "$(restarts_of phoenix)" = 1
expect_out "... joinable, with its binds" "#!/bin/sh" b exec instance://phoenix head -1 /shared/start.sh
p2=$(pid_of phoenix)
kill -9 "$p2"
check "... and again" wait_until 2 back phoenix "$p2"
check "... counted twice" test "$(restarts_of phoenix)" = 2
expect_rc "... stoppable" 0 b instance stop phoenix
sleep 0.5
check "... and a stop is not restarted" not_listed phoenix
must "start --restart on-failure:1" b instance start --restart on-failure:1 "$IMG" once
p1=$(pid_of once)
kill -9 "$p1"
check "--restart on-failure:1: back once" wait_until 2 back once "$p1"
p2=$(pid_of once)
kill -9 "$p2"
sleep 1
check "... not twice" not_listed once
expect_rc "... and its name is free" 0 b instance start "$IMG" once
expect_rc "... stop" 0 b instance stop once
expect_fatal "a --restart policy that is none" "use no, always, on-failure" \
  b instance start --restart sometimes "$IMG" bad

# --- stop ---
cat >"$TEST_TMP/shared/trap.sh" <<'S'
#!/bin/sh
trap 'echo "got $1" > /shared/trapped-$APPTAINER_INSTANCE; exit 0' INT TERM
while :; do sleep 0.1; done
S
cat >"$TEST_TMP/shared/deaf.sh" <<'S'
#!/bin/sh
trap '' INT
while :; do sleep 0.1; done
S
chmod 0755 "$TEST_TMP/shared/trap.sh" "$TEST_TMP/shared/deaf.sh"
start_with() { b instance start -B "$TEST_TMP/shared:/shared" -B "$TEST_TMP/shared/$1:/.singularity.d/startscript" "$IMG" "$2" "${3:-}"; }
must "start trap-int" start_with trap.sh trapint INT
must "start trap-term" start_with trap.sh trapterm TERM
must "start deaf" start_with deaf.sh deaf
sleep 0.5
t0=$(date +%s%N)
expect_out "stop: Apptainer's INFO line" "" b instance stop trapint
check "... names it" grep -q "^INFO:    Stopping trapint instance of $IMG (PID=" "$TEST_TMP/stderr"
t1=$(date +%s%N)
check "stop sends SIGINT by default (the script's trap ran)" grep -qx "got INT" "$TEST_TMP/shared/trapped-trapint"
check "... and returns once the processes ended (< 3 s)" test $(( (t1 - t0) / 1000000 )) -lt 3000
check "... gone from list" not_listed trapint
expect_rc "stop --signal TERM" 0 b instance stop --signal TERM trapterm
check "... the script got SIGTERM" grep -qx "got TERM" "$TEST_TMP/shared/trapped-trapterm"
t0=$(date +%s%N)
expect_rc "stop --timeout 2 of a process ignoring SIGINT" 0 b instance stop --timeout 2 deaf
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "... waited the timeout, then SIGKILL ($ms ms)" test "$ms" -ge 1900 -a "$ms" -lt 6000
check "... gone" not_listed deaf
must "start deaf again" start_with deaf.sh deaf
t0=$(date +%s%N)
expect_rc "stop --force" 0 b instance stop --force deaf
t1=$(date +%s%N)
check "... at once ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -lt 1500
for n in a1 a2 b1; do must "start $n" b instance start "$IMG" "$n"; done
expect_rc "stop 'a*' (a glob)" 0 b instance stop 'a*'
check "... stopped a1 and a2 only" test "$(b instance list --json | python3 -c 'import json,sys; print(" ".join(sorted(i["instance"] for i in json.load(sys.stdin)["instances"])))')" = "b1 web"
expect_fatal "stop of a name that matches nothing" "no instance found with name zz" b instance stop zz
expect_fatal "stop without a name" "needs an instance name" b instance stop
expect_fatal "a hostile name: '/'" "instance name" b instance start "$IMG" a/b
expect_fatal "a hostile name: '..'" "instance name" b instance start "$IMG" ..
expect_fatal "a hostile name: 10 KB" "instance name" b instance start "$IMG" "$(head -c 10240 /dev/zero | tr '\0' n)"
expect_fatal "a hostile glob" "instance pattern" b instance list '../*'

# --- limits: the instance's own cgroup has them; joins land in it ---
if [ "$MODE" = system ]; then
  must "start lim --memory 64M --pids-limit 10 --restart always" \
    b instance start --memory 64M --pids-limit 10 --restart always "$IMG" lim
  lmem=$(inst_dir lim memory) lpids=$(inst_dir lim pids)
  check "--memory 64M: the instance's memory.limit_in_bytes" test "$(cat "$lmem/memory.limit_in_bytes" 2>/dev/null)" = 67108864
  check "--pids-limit 10: the instance's pids.max" test "$(cat "$lpids/pids.max" 2>/dev/null)" = 10
  expect_rc "a 100 MB allocation in a join is OOM-killed (137)" 137 \
    b exec instance://lim dd if=/dev/zero of=/dev/null bs=100M count=1
  check "... and the client says so" grep -q "out of memory" "$TEST_TMP/stderr"
  check "... the instance lives on" listed lim
  # The instance's init, the join's own process (it forks the payload into
  # the PID namespace), the shell and 7 sleeps = 10: the next fork fails.
  got=$(b exec instance://lim sh -c 'for i in $(seq 1 20); do sleep 3 & echo $i; done' 2>"$TEST_TMP/stderr" | tail -1)
  if [ "$got" = 7 ] && grep -q "can't fork" "$TEST_TMP/stderr"; then ok "--pids-limit 10: the 11th process in the instance cannot be forked"
  else bad "--pids-limit 10: the 11th process in the instance cannot be forked" "last started: $got; $(head -c 200 "$TEST_TMP/stderr")"; fi
  sleep 3.2
  expect_out "a join into a limited instance lands in its cgroup" "${lpids#/sys/fs/cgroup/pids}" \
    b exec instance://lim sh -c 'grep :pids: /proc/self/cgroup | cut -d: -f3'
  b instance stats --json lim >"$TEST_TMP/stats.json" 2>/dev/null
  check "stats --json: the limits" python3 - "$TEST_TMP/stats.json" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["memory_stats"]["usage"]["limit"] == 64 << 20 and d["pids_stats"]["limit"] == 10, d
P
  lp=$(pid_of lim)
  kill -9 "$lp"
  check "--restart with limits: back in the same cgroup" wait_until 3 sh -c "[ -e '$lpids/pids.max' ] && grep -q ':pids:${lpids#/sys/fs/cgroup/pids}\$' /proc/\$(cat '$lpids/cgroup.procs' | head -1)/cgroup && [ \$(cat '$lpids/pids.max') = 10 ]"
  expect_rc "stop lim" 0 b instance stop lim
  check "... its cgroups are removed" test ! -e "$lmem" -a ! -e "$lpids"
  printf '[pids]\nlimit = 12\n' >"$TEST_TMP/pids.toml"; chmod 0644 "$TEST_TMP/pids.toml"
  must "start toml --apply-cgroups" b instance start --apply-cgroups "$TEST_TMP/pids.toml" "$IMG" toml
  check "--apply-cgroups: the TOML's [pids] limit on the instance's cgroup" \
    test "$(cat "$(inst_dir toml pids)/pids.max" 2>/dev/null)" = 12
  b instance stop toml >/dev/null 2>&1

  # A limit can only tighten what the caller has: the caller in a cgroup
  # with pids.max 20 gets at most 20 (asked more or nothing), and the
  # instance's cgroup is below berthd's, never the caller's.
  # (200: the client's own threads count against pids.max too.)
  ceil=/sys/fs/cgroup/pids/berth-ceiling-$TEST_TAG
  mkdir "$ceil" && echo 200 >"$ceil/pids.max"
  in_ceil() { bash -c 'echo $$ >"$0/cgroup.procs" && "$@"' "$ceil" as_user "$ME" "$BERTH" "$@"; }
  export -f as_user; export SOCK TEST_TMP
  in_ceil instance start --pids-limit 1000 "$IMG" ceil1 2>"$TEST_TMP/stderr"
  check "--pids-limit 1000 under a caller's pids.max 200: lowered to 200" test "$(cat "$(inst_dir ceil1 pids)/pids.max" 2>/dev/null)" = 200
  check "... with a notice" grep -q "pids-limit lowered to 200" "$TEST_TMP/stderr"
  own_pids=/sys/fs/cgroup/pids$(awk -F: '$2 == "pids" {print $3}' "/proc/$daemon_pid/cgroup")
  check "... its cgroup is below berthd's, not the caller's" test "$(dirname "$(inst_dir ceil1 pids)")" = "${own_pids%/}"
  in_ceil instance start "$IMG" ceil2 2>"$TEST_TMP/stderr"
  check "no limit asked under a caller's pids.max 200: the instance keeps 200" test "$(cat "$(inst_dir ceil2 pids)/pids.max" 2>/dev/null)" = 200
  b instance stop 'ceil*' >/dev/null 2>&1
  rmdir "$ceil" 2>/dev/null && ceil=
else
  expect_fatal "user mode, no delegated cgroup: a limited instance is refused, naming the controller" \
    "the memory controller" b instance start --memory 64M "$IMG" lim
fi

# --- the per-user cap (6 in this test's berth.conf) ---
for n in c1 c2 c3 c4; do must "start $n" b instance start "$IMG" "$n"; done
expect_fatal "over max_instances_per_user: refused, naming the setting" "max_instances_per_user" \
  b instance start "$IMG" c5
expect_rc "stop --all" 0 b instance stop --all
check "... none left" test -z "$(b instance list | tail -n +2)"
expect_rc "after stop --all the name is free" 0 b instance start "$IMG" c5

# --- hostile: 1,000 starts from one user stop at the cap, clearly ---
for n in c1 c2 c3 c4 c6; do must "fill to the cap: $n" b instance start "$IMG" "$n"; done
# (xargs gives up at a command's exit 255, a FATAL's: each start is wrapped.)
printf '#!/bin/sh\n"$BERTH_BIN" instance start "$IMG_PATH" "f$1" 2>&1\nexit 0\n' >"$TEST_TMP/one_start.sh"
flood() {
  as_user "$ME" env BERTH_BIN="$BERTH" IMG_PATH="$IMG" \
    sh -c 'seq 1 1000 | xargs -P 8 -n 1 sh "$0"' "$TEST_TMP/one_start.sh"
}
t0=$(date +%s%N)
flood >"$TEST_TMP/flood.txt"
t1=$(date +%s%N)
check "1,000 starts at the cap: each refused with the setting named ($(( (t1 - t0) / 1000000 )) ms)" \
  test "$(grep -c '^FATAL: .*max_instances_per_user in berth.conf' "$TEST_TMP/flood.txt")" = 1000
check "... and nothing else printed" test "$(wc -l <"$TEST_TMP/flood.txt")" = 1000
expect_out "... the user's instances still answer" "ok" b exec instance://c1 echo ok
if [ "$MODE" = system ]; then
  OTHER=$([ "$WHO" = root ] && echo "$TUSER" || echo root)
  install -d -o "$OTHER" -m 0700 "$TEST_TMP/cfg-$([ "$OTHER" = root ] && echo root || echo user)"
  expect_rc "another user's start works while this one is at the cap" 0 \
    as_user "$OTHER" "$BERTH" instance start "$IMG" other1
  expect_out "... and their exec" "ok" as_user "$OTHER" "$BERTH" exec instance://other1 echo ok
  as_user "$OTHER" "$BERTH" instance stop other1 >/dev/null 2>&1
fi
b instance stop --all >/dev/null 2>&1

# --- other users (system daemon: root and the test user share it) ---
if [ "$MODE" = system ]; then
  if [ "$WHO" = root ]; then OTHER=$TUSER; else OTHER=root; fi
  o() { as_user "$OTHER" "$BERTH" "$@"; }
  install -d -o "$OTHER" -m 0700 "$TEST_TMP/cfg-$([ "$OTHER" = root ] && echo root || echo user)"
  must "the other user starts 'theirs'" o instance start "$IMG" theirs
  check "a user does not see another's instance" not_listed theirs
  expect_fatal "nor joins it" "no instance found with name theirs" b exec instance://theirs true
  expect_fatal "nor stops it" "no instance found with name theirs" b instance stop theirs
  expect_fatal "nor reads its stats" "no instance found with name theirs" b instance stats theirs
  expect_rc "names are per user: the same name is free for this user" 0 b instance start "$IMG" theirs
  if [ "$WHO" = user ]; then
    expect_fatal "a user may not list with -u" "only root" b instance list -u root
    expect_fatal "nor stop with -u" "only root" b instance stop -u root theirs
    check "root lists the user's with -u" sh -c "'$BERTH' --socket '$SOCK' instance list -u '$TUSER' | grep -q '^theirs '"
    check "root sees everyone's with --all" test "$(env BERTH_SOCKET="$SOCK" "$BERTH" instance list --all theirs | grep -c '^theirs ')" = 2
  else
    check "root lists the user's with -u" sh -c "'$BERTH' --socket '$SOCK' instance list -u '$TUSER' | grep -q '^theirs '"
    expect_rc "root stops the user's with -u" 0 "$BERTH" --socket "$SOCK" instance stop -u "$TUSER" theirs
  fi
  o instance stop --all >/dev/null 2>&1
fi

# --- a daemon restart (system mode: instances outlive it) ---
if [ "$MODE" = system ]; then
  must "start keep" b instance start -B "$TEST_TMP/shared:/shared" "$IMG" keep
  kpid=$(pid_of keep)
  kns=$(readlink "/proc/$kpid/ns/mnt")
  kcg=$(inst_dir keep pids)
  must "start frkeep --fakeroot" b instance start --fakeroot "$IMG" frkeep
  frkpid=$(pid_of frkeep)
  frk_userns=$(readlink "/proc/$frkpid/ns/user")
  must "start phoenix --restart on-failure:3" b instance start --restart on-failure:3 "$IMG" phoenix
  ppid=$(pid_of phoenix)
  # A forged record: another process claimed as an instance's init.
  setpriv --reuid="$TUSER" --regid="$(id -g "$TUSER")" --clear-groups sleep 300 &
  sleepers=$!
  stop_daemon
  check "the instance outlives berthd" test "$(cat "/proc/$kpid/comm" 2>/dev/null)" = berth-init
  check "... in its own cgroup, left in place" grep -q ":pids:${kcg#/sys/fs/cgroup/pids}\$" "/proc/$kpid/cgroup"
  rec=$TEST_TMP/state/instances/$ME_UID/keep.json
  python3 - "$rec" "$TEST_TMP/state/instances/$ME_UID/forged.json" "$sleepers" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
r["name"] = "forged"; r["pid"] = int(sys.argv[3])
json.dump(r, open(sys.argv[2], "w"))
P
  start_daemon
  check "berthd restarted: the instance is listed with its pid" test "$(pid_of keep)" = "$kpid"
  expect_out "... joinable, in the same mount namespace" "$kns" b exec instance://keep readlink /proc/self/ns/mnt
  expect_out "... its image still readable" "image-file" b exec instance://keep cat /opt/marker
  b instance stats --json keep >/dev/null 2>"$TEST_TMP/stderr"
  check "... its cgroup re-found: stats read it, no warning" test ! -s "$TEST_TMP/stderr"
  check "a --fakeroot instance is re-adopted with its pid" test "$(pid_of frkeep)" = "$frkpid"
  expect_out "... joinable: root, in its user namespace" "0 $frk_userns" \
    b exec instance://frkeep sh -c 'echo $(id -u) $(readlink /proc/self/ns/user)'
  expect_rc "... stoppable" 0 b instance stop frkeep
  check "... and gone" wait_until 3 test ! -e "/proc/$frkpid"
  kill -9 "$ppid"
  check "... --restart kept across the berthd restart: back within 2 s" wait_until 2 back phoenix "$ppid"
  check "... counted" test "$(restarts_of phoenix)" = 1
  expect_rc "... stop phoenix" 0 b instance stop phoenix
  check "a record naming another process is not adopted" not_listed forged
  check "... and is dropped" test ! -e "$TEST_TMP/state/instances/$ME_UID/forged.json"
  expect_rc "... stoppable" 0 b instance stop keep
  check "... and gone" wait_until 3 test ! -e "/proc/$kpid"
  check "... its re-found cgroup removed" test ! -e "$kcg"
else
  must "start keep" b instance start "$IMG" keep
  kpid=$(pid_of keep)
  stop_daemon
  check "a user-mode daemon's instances end with it" wait_until 5 test ! -e "/proc/$kpid"
  start_daemon
fi

b instance stop --all >/dev/null 2>&1
if [ "$MODE" = system ]; then
  sleep 0.3
  check "no instance cgroup left behind" test -z "$(leftover_cgroups)"
fi
finish
