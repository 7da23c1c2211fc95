#!/usr/bin/env bash
# berth build --cache (issue 11, the stage cache): a two-stage definition
# whose first stage's %post does a few seconds of real work (3 s standing in
# for package downloads, then 2000 small files and a 64 MB file written),
# the second stage copying from it and running a short %post of its own.
# Each round, same run:
#   first:   the node cache cleaned, `berth build --cache` (both stages built
#            and kept);
#   rebuild: the definition's %runscript changed, `berth build --cache`
#            again (both stages unpacked from the cache, the metadata and
#            the image written afresh).
# Alternating, REPS rounds; medians. The goal is rebuild <= 0.2x first.
#
# Usage (root): bench/build_cache.sh [BERTH] [BERTHD] [WORKER] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}" \
  "${3:-$here/../build/daemon/build/worker/berth-build-worker}"
reps=${4:-3}
bench_start_daemon system sys "$(printf '[build]\nbuild_dir = "%s/stage"' "$bench_work")"
export BERTH_SOCKET=$DAEMON_SOCK

root=$bench_work/rootfs
bench_make_rootfs "$root"
for t in mkdir seq dd sh; do ln -sf busybox "$root/bin/$t"; done
bench_make_sif "$root" "$bench_work/base.sif" -comp zstd
def() {  # def WORD: the definition, its runscript printing WORD
  cat >"$bench_work/app.def" <<DEF
Bootstrap: localimage
From: $bench_work/base.sif
Stage: one

%post
    sleep 3
    mkdir -p /opt/tree
    for d in \$(seq 20); do
      mkdir /opt/tree/\$d
      for f in \$(seq 100); do echo "file \$d \$f" >/opt/tree/\$d/\$f; done
    done
    dd if=/dev/zero of=/opt/blob bs=1M count=64 2>/dev/null

Bootstrap: localimage
From: $bench_work/base.sif

%files from one
    /opt/tree /opt/tree
    /opt/blob /opt/blob

%post
    echo built >/built

%runscript
    echo $1
DEF
}
build() {  # build NAME
  "$BERTH" build --cache --force "$bench_work/out.sif" "$bench_work/app.def" \
    >/dev/null 2>"$bench_work/$1.err" || { cat "$bench_work/$1.err" >&2; exit 1; }
}
: >"$bench_work/times/first" >"$bench_work/times/rebuild"
for ((i = 0; i < reps; i++)); do
  echo "round $((i + 1))/$reps" >&2
  "$BERTH" cache clean -f -T build-stage >/dev/null
  def "first-$i"
  start=$(now_ns); build first; end=$(now_ns)
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/first"
  def "rebuild-$i"
  start=$(now_ns); build rebuild; end=$(now_ns)
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/rebuild"
  grep -q "Using cached stage 2" "$bench_work/rebuild.err" ||
    { echo "the rebuild did not use the cache" >&2; cat "$bench_work/rebuild.err" >&2; exit 1; }
  [ "$("$BERTH" run "$bench_work/out.sif")" = "rebuild-$i" ] || { echo "the rebuilt image does not run" >&2; exit 1; }
done
echo "per round (s): first $(tr "\n" " " <"$bench_work/times/first")/ rebuild $(tr "\n" " " <"$bench_work/times/rebuild")"
read -r f _ <<<"$(bench_stats first)"
read -r r _ <<<"$(bench_stats rebuild)"
echo "$(nproc) CPUs; $reps rounds; medians; stage entries $("$BERTH" cache list --long -T build-stage | grep -c '^build-stage') ($(du -sm "$bench_work/sys/state/cache/build-stage" | cut -f1) MB)"
printf 'first build (--cache, both stages kept)       %8.0f ms\n' "$f"
printf 'rebuild, only %%runscript changed (cached)     %8.0f ms\n' "$r"
printf 'ratio rebuild / first                         %8.2f x\n' "$(echo "scale=4; $r / $f" | bc)"
grep -o 'Build phases:.*' "$bench_work/first.err" | head -1 | sed 's/^/first:   /'
grep -o 'Build phases:.*' "$bench_work/rebuild.err" | head -1 | sed 's/^/rebuild: /'
