#!/usr/bin/env bash
# What joining a cgroup costs a fresh process (issue 3, start latency): the
# launcher's child writes "0" to cgroup.procs of every hierarchy the caller
# is in. Compiles a small C program (cc) that times, per variant, clone3 of a
# child that exits, waited for, 100 ms apart (as separate container starts are):
#   plain       clone3 + exit
#   write       clone3, the child writes "0" to DIR/cgroup.procs, exit
#   into        clone3(CLONE_INTO_CGROUP, DIR) + exit (cgroup v2 only)
# DIR is this shell's own cgroup (nothing moves anywhere: the same no-op the
# daemon's child does when the caller shares its cgroups): the cgroup2 one
# when mounted, and the first v1 hierarchy for `write`.
#
# Usage (root): bench/cgroup_join.sh [RUNS]   (prints a markdown table)
set -euo pipefail
runs=${1:-30}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
work=$(mktemp -d /tmp/berth-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
cat >"$work/cg.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}
int main(int argc, char** argv) {  // MODE DIR RUNS
  const char* mode = argv[1];
  int n = atoi(argv[3]);
  char procs[4096];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", argv[2]);
  int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  double* v = calloc(n, sizeof(double));
  for (int i = 0; i < n; i++) {
    int pfd = open(procs, O_WRONLY | O_CLOEXEC);
    if (dfd < 0 || pfd < 0) { perror(argv[2]); return 1; }
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    if (!strcmp(mode, "into")) { a.flags = CLONE_INTO_CGROUP; a.cgroup = dfd; }
    double t0 = now_ms();
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0) {
      if (!strcmp(mode, "write") && write(pfd, "0", 1) != 1) _exit(3);
      _exit(0);
    }
    if (pid < 0) { perror("clone3"); return 1; }
    int st;
    waitpid(pid, &st, 0);
    v[i] = now_ms() - t0;
    close(pfd);
    if (st != 0) { fprintf(stderr, "child failed (%d)\n", st); return 1; }
    usleep(100000);
  }
  qsort(v, n, sizeof(double), cmp);
  printf("%.3f %.3f %.3f\n", v[n / 2], v[n / 4], v[3 * n / 4]);
  return 0;
}
C
cc -O2 -o "$work/cg" "$work/cg.c"
v2=
v1=
while IFS=: read -r id ctrl path; do
  [ "$path" = / ] && path=
  if [ "$id" = 0 ]; then
    for m in /sys/fs/cgroup/unified /sys/fs/cgroup; do
      if [ -e "$m$path/cgroup.procs" ] && [ "$(stat -f -c %T "$m")" = cgroup2fs ]; then v2=$m$path; break; fi
    done
  elif [ -z "$v1" ] && [ -e "/sys/fs/cgroup/${ctrl#name=}$path/cgroup.procs" ]; then
    v1=/sys/fs/cgroup/${ctrl#name=}$path
  fi
done </proc/self/cgroup
echo "| child of clone3 (median of $runs, 100 ms apart) | median ms | p25–p75 |"
echo "| --- | --- | --- |"
line() { read -r m a b < <("$work/cg" "$2" "$3" "$runs"); echo "| $1 | $m | $a–$b |"; }
line "exits (plain)" plain "${v2:-$v1}"
[ -z "$v1" ] || line "writes \"0\" to $v1/cgroup.procs (v1), exits" write "$v1"
[ -z "$v2" ] || line "writes \"0\" to $v2/cgroup.procs (v2), exits" write "$v2"
[ -z "$v2" ] || line "created by clone3(CLONE_INTO_CGROUP, $v2), exits" into "$v2"
