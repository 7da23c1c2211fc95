#!/usr/bin/env bash
# limits_test.sh BERTH BERTHD MODE WHO: cgroup limits (--memory, --pids-limit,
# --cpus, --apply-cgroups) against real cgroups, checked from the
# container's own cgroup files and counters.
#   MODE  system (root berthd)  or  user (a berthd run by the test user)
#   WHO   root  or  user (the unprivileged test user)
# The container's cgroup is berth-<daemon pid>-<n> below the caller's; none
# may be left behind. Needs root to set up (CI runs as root).
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue limits
daemon_pid=
made=()  # test cgroups to remove, deepest last
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # What a failing run left (the check below has reported it): ours only.
  if [ "$MODE" = system ] && [ -n "$daemon_pid" ]; then
    find /sys/fs/cgroup -mindepth 2 -depth -type d -name "berth-${daemon_pid}-*" -exec rmdir {} \; 2>/dev/null
  fi
  for ((i = ${#made[@]} - 1; i >= 0; i--)); do
    d=${made[$i]}
    [ -d "$d/berth-caller" ] && rmdir "$d/berth-caller" 2>/dev/null
    rmdir "$d" 2>/dev/null
  done
  [ -n "${hugetlb_root_added:-}" ] && echo -hugetlb >/sys/fs/cgroup/unified/cgroup.subtree_control
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
bash "$here/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "test image"; finish; }
mkdir -p "$TEST_TMP/etc"
start_test_daemon_in "$TEST_TMP/etc"
if [ "$WHO" = root ]; then
  as() { env BERTH_SOCKET="$SOCK" "$@"; }
else
  as() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$@"; }
fi
b() { as "$BERTH" "$@"; }
# The daemon's pid names its cgroups; a user-mode daemon runs in its own
# namespaces, so match any berth-<pid>-<n> there that the test user owns
# (the only ones it can make: a system daemon's, from a suite running
# alongside, are root's).
tag="berth-${daemon_pid}-"
owner=()
[ "$MODE" = user ] && tag="berth-[0-9]*-" && owner=(-user "$TUSER")
leftovers() { find /sys/fs/cgroup -mindepth 2 -type d -name "${tag}*" "${owner[@]}" 2>/dev/null; }
# container_dir HIERARCHY: the running container's directory there.
container_dir() {
  local d
  for _ in $(seq 1 100); do
    d=$(find "/sys/fs/cgroup/$1" -type d -name "${tag}*" 2>/dev/null | head -1)
    [ -n "$d" ] && { echo "$d"; return 0; }
    sleep 0.05
  done
  return 1
}

if [ "$MODE" = user ]; then
  # A user-mode daemon can only use cgroups delegated to the user: this
  # machine delegates none, so every limit is an error naming its controller.
  expect_fatal "user mode: --memory without a delegated cgroup names the memory controller" \
    "the memory controller" b exec --memory 64M "$IMG" true
  expect_fatal "user mode: --pids-limit names the pids controller" "the pids controller" \
    b exec --pids-limit 10 "$IMG" true
  # Where a cgroup is delegated to the user (here a v1 pids cgroup chowned
  # to them, as an admin or a Slurm prolog would), the same daemon applies
  # limits below it.
  deleg=/sys/fs/cgroup/pids/berth-deleg-$$
  mkdir "$deleg" && made+=("$deleg") && chown -R "$TUSER" "$deleg"
  got=$(sh -c "echo \$\$ >$deleg/cgroup.procs && exec runuser -u $TUSER -- env BERTH_SOCKET=$SOCK \
    $BERTH exec --pids-limit 10 $IMG sh -c 'grep :pids: /proc/self/cgroup; for i in \$(seq 1 20); do sleep 3 & echo \$i; done'" 2>"$TEST_TMP/stderr")
  case "$(head -1 <<<"$got") $(tail -1 <<<"$got")" in
    *":pids:/berth-deleg-$$/berth-"*" 8") ok "user mode, delegated pids cgroup: --pids-limit 10 applies below it" ;;
    *) bad "user mode, delegated pids cgroup: --pids-limit 10 applies below it" "$got $(head -c 300 "$TEST_TMP/stderr")" ;;
  esac
  sleep 0.3
  check "user mode: the container's cgroup in the delegated one is removed" \
    test -z "$(find "$deleg" -mindepth 1 -type d)"
  check "user mode: no cgroup left behind" test -z "$(leftovers)"
  finish
fi

# --- memory ---
expect_rc "--memory 64M: a 100 MB allocation is OOM-killed (137)" 137 \
  b exec --memory 64M "$IMG" dd if=/dev/zero of=/dev/null bs=100M count=1
check "... and the client says so" grep -q "out of memory: the kernel's OOM killer" "$TEST_TMP/stderr"
expect_rc "--memory 256M: the same allocation succeeds" 0 \
  b exec --memory 256M "$IMG" dd if=/dev/zero of=/dev/null bs=100M count=1
expect_rc "APPTAINER_MEMORY=64M is --memory 64M" 137 \
  as env APPTAINER_MEMORY=64M "$BERTH" exec "$IMG" dd if=/dev/zero of=/dev/null bs=100M count=1

# --- pids: init + shell + 8 sleeps = 10; the next fork fails ---
got=$(b exec --pids-limit 10 "$IMG" sh -c 'for i in $(seq 1 20); do sleep 5 & echo $i; done' 2>"$TEST_TMP/stderr" | tail -1)
if [ "$got" = 8 ] && grep -q "can't fork" "$TEST_TMP/stderr"; then ok "--pids-limit 10: the 11th process cannot be forked"
else bad "--pids-limit 10: the 11th process cannot be forked" "last started: $got; $(head -c 200 "$TEST_TMP/stderr")"; fi

# --- cpu: the quota, and the busy loop's usage from the cgroup's counter ---
b exec --cpus 0.5 "$IMG" sh -c 'while :; do :; done' 2>/dev/null &
client=$!
if cpu=$(container_dir cpu) && acct=$(container_dir cpuacct); then
  check "--cpus 0.5: cpu.cfs_quota_us is 50000" test "$(cat "$cpu/cpu.cfs_quota_us")" = 50000
  check "--cpus 0.5: cpu.cfs_period_us is 100000" test "$(cat "$cpu/cpu.cfs_period_us")" = 100000
  sleep 0.3
  u1=$(cat "$acct/cpuacct.usage"); sleep 1; u2=$(cat "$acct/cpuacct.usage")
  ms=$(((u2 - u1) / 1000000))
  # About half a core; loose, the machine is shared.
  if [ "$ms" -gt 150 ] && [ "$ms" -lt 700 ]; then ok "--cpus 0.5: a busy loop used ${ms} ms of CPU in 1 s"
  else bad "--cpus 0.5: a busy loop uses about half a core" "${ms} ms in 1 s"; fi
else
  bad "--cpus 0.5: the container has cgroups in cpu and cpuacct" "none found"
fi
# $client is the subshell of b(): end the berth client itself.
pkill -TERM -f "^$BERTH exec --cpus 0.5 " 2>/dev/null; wait "$client" 2>/dev/null

# --- --apply-cgroups: [unified] goes to cgroup v2 (here only hugetlb is there) ---
printf '[pids]\nlimit = 12\n[unified]\n"hugetlb.2MB.max" = "4194304"\n' >"$TEST_TMP/limits.toml"
chmod 0644 "$TEST_TMP/limits.toml"
grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.subtree_control || hugetlb_root_added=1
b exec --apply-cgroups "$TEST_TMP/limits.toml" "$IMG" sleep 3 2>"$TEST_TMP/stderr" &
client=$!
if v2=$(container_dir unified) && pids=$(container_dir pids); then
  check "TOML [unified] hugetlb.2MB.max applied" test "$(cat "$v2/hugetlb.2MB.max")" = 4194304
  check "TOML [pids] limit applied" test "$(cat "$pids/pids.max")" = 12
else
  bad "TOML: the container has its cgroups" "$(cat "$TEST_TMP/stderr")"
fi
wait "$client"
expect_fatal "TOML plus a limit flag: Apptainer's error" \
  "cannot apply a cgroups TOML file while using limit flags" \
  b exec --apply-cgroups "$TEST_TMP/limits.toml" --memory 1G "$IMG" true
printf '[unified]\n"memory.max" = "100000000"\n' >"$TEST_TMP/v2mem.toml"
chmod 0644 "$TEST_TMP/v2mem.toml"
expect_fatal "a controller cgroup v2 does not offer here: an error naming it" \
  "the memory controller is not available" b exec --apply-cgroups "$TEST_TMP/v2mem.toml" "$IMG" true
printf '[network]\nclassID = 1\n' >"$TEST_TMP/net.toml"; chmod 0644 "$TEST_TMP/net.toml"
expect_fatal "TOML [network]: refused, not ignored" "network: not supported" \
  b exec --apply-cgroups "$TEST_TMP/net.toml" "$IMG" true
printf '[unified]\n"cgroup.procs" = "1"\n' >"$TEST_TMP/procs.toml"; chmod 0644 "$TEST_TMP/procs.toml"
expect_fatal "TOML [unified] cgroup.procs: refused" "is not a cgroup v2 controller file" \
  b exec --apply-cgroups "$TEST_TMP/procs.toml" "$IMG" true
printf '[unified]\n"pids.max" = "5\\n7"\n' >"$TEST_TMP/nl.toml"; chmod 0644 "$TEST_TMP/nl.toml"
expect_fatal "TOML [unified] value with a newline: refused" "one non-empty line" \
  b exec --apply-cgroups "$TEST_TMP/nl.toml" "$IMG" true

# --- cgroup v2 with the caller in a cgroup that holds processes ---
# The daemon moves them into berth-caller (no-internal-process rule); a
# second container from inside that leaf goes beside it, not below it.
V2=/sys/fs/cgroup/unified
[ -n "${hugetlb_root_added:-}" ] && ! grep -qw hugetlb $V2/cgroup.subtree_control &&
  echo +hugetlb >$V2/cgroup.subtree_control
busy=$V2/berth-test-$$
mkdir "$busy" && made+=("$busy")
printf '[unified]\n"hugetlb.2MB.max" = "2097152"\n' >"$TEST_TMP/huge.toml"; chmod 0644 "$TEST_TMP/huge.toml"
out=$(sh -c "echo \$\$ >$busy/cgroup.procs && sleep 30 & sleep 0.2
  echo \$\$ >$busy/cgroup.procs
  $(declare -f as b); SOCK=$SOCK BERTH=$BERTH TUSER=$TUSER
  b exec --apply-cgroups $TEST_TMP/huge.toml $IMG sh -c 'grep ^0:: /proc/self/cgroup; cat /sys/fs/cgroup/unified/berth-test-$$/berth-caller/cgroup.procs | wc -l'
  b exec --apply-cgroups $TEST_TMP/huge.toml $IMG grep ^0:: /proc/self/cgroup" 2>"$TEST_TMP/stderr")
mapfile -t lines <<<"$out"
case "${lines[0]:-}" in
  "0::/berth-test-$$/${tag}"*) ok "v2, caller's cgroup holds processes: the container is below it" ;;
  *) bad "v2, caller's cgroup holds processes: the container is below it" "$out $(cat "$TEST_TMP/stderr")" ;;
esac
check "... the caller's processes moved into berth-caller" test "${lines[1]:-0}" -ge 2
case "${lines[2]:-}" in
  "0::/berth-test-$$/${tag}"*) ok "... a second container from the leaf goes beside it" ;;
  *) bad "... a second container from the leaf goes beside it" "${lines[2]:-none}" ;;
esac
pkill -P $$ -x sleep 2>/dev/null  # the sleep 30 started above, ours only

# --- a limit larger than the caller's does not loosen it (v1 memory) ---
mem_parent=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
mem_parent=${mem_parent%/}
tight=$mem_parent/berth-test-$$
mkdir "$tight" && made+=("$tight")
echo $((64 << 20)) >"$tight/memory.limit_in_bytes"
rc=$(sh -c "echo \$\$ >$tight/cgroup.procs; $(declare -f as b); SOCK=$SOCK BERTH=$BERTH TUSER=$TUSER
  b exec --memory 1G $IMG dd if=/dev/zero of=/dev/null bs=100M count=1 >/dev/null 2>&1; echo \$?")
check "--memory 1G under a 64 MB parent: the parent's limit still kills (137)" test "$rc" = 137

# --- hostile and malformed values ---
expect_fatal "--memory 12q: refused" "invalid --memory value" b exec --memory 12q "$IMG" true
expect_fatal "--cpus 1000: refused" "must be between 0.01 and" b exec --cpus 1000 "$IMG" true
expect_fatal "--blkio-weight 5: refused by the daemon" "outside 10..1000" b exec --blkio-weight 5 "$IMG" true
expect_fatal "--cpuset-cpus with a newline: refused" "--cpuset-cpus" b exec --cpuset-cpus $'0\n1' "$IMG" true
expect_fatal "--memory 1k: below the 4 MiB floor" "--memory 1024 bytes is outside" b exec --memory 1k "$IMG" true
expect_fatal "--blkio-weight-device on a non-device" "not a block device" \
  b exec --blkio-weight-device /etc/hostname:100 "$IMG" true

expect_fatal "--sharens with limits: refused (a cgroup of its own is never shared)" \
  "never shared" b exec --sharens --memory 64M "$IMG" true

# --- a process left behind (no PID namespace) ends with the container ---
# (A length of this run's own: the suite runs as root and as the user at once.)
nap=$((1000 + $$ % 9000))
b exec --no-pid --pids-limit 20 "$IMG" sh -c "sleep $nap &" >/dev/null 2>&1
sleep 0.2
check "--no-pid: a process left in the container's cgroup is ended" bash -c "! pgrep -x -f 'sleep $nap' >/dev/null"

# --- nothing left behind ---
check "no container cgroup left behind" test -z "$(leftovers)"
finish
