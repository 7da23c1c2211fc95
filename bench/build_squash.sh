#!/usr/bin/env bash
# berth build (issue 11): squashing a >= 300 MB tree into the SIF, against
# mksquashfs alone on the same tree, same compressor and level, same run.
# The tree is /usr/include, /usr/lib/python3.11, /usr/lib/python3 and
# /usr/share/doc of this machine, copied once into the work directory.
#   berth: `berth build out.sif tree.def` (Bootstrap: scratch, `%files` of
#          the tree) through a system-mode berthd; the figure is the build's
#          own "squash" phase (its closing summary: the worker's in-process
#          libsquashfs writer, multi-threaded, on the staged tree), and the
#          whole build's wall time is printed beside it;
#   peer:  `mksquashfs TREE OUT -comp zstd -Xcompression-level LEVEL
#          -noappend`, wall time; berth's build gets the same level through
#          `--mksquashfs-args "-Xcompression-level LEVEL"` (LEVEL 15 by
#          default: mksquashfs's own default; berth's is 3).
# Alternating, REPS rounds; medians. The goal is squash <= 1.0x the peer.
#
# Usage (root): bench/build_squash.sh [BERTH] [BERTHD] [WORKER] [REPS] [LEVEL]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
bench_build_setup "${1:-$here/../build/client/berth}" "${2:-$here/../build/daemon/berthd}" \
  "${3:-$here/../build/daemon/build/worker/berth-build-worker}"
reps=${4:-3}
level=${5:-15}
bench_start_daemon system

tree=$bench_work/tree
mkdir -p "$tree/usr/lib" "$tree/usr/share"
cp -a /usr/include "$tree/usr/"
cp -a /usr/lib/python3.11 /usr/lib/python3 "$tree/usr/lib/"
cp -a /usr/share/doc "$tree/usr/share/"
# %files copies as `cp -L` does (Apptainer's rule): dangling links would fail it.
find "$tree" -xtype l -delete
size_mb=$(du -sm "$tree" | cut -f1)
printf 'Bootstrap: scratch\n\n%%files\n    %s/usr /usr\n' "$tree" >"$bench_work/tree.def"

squash_of() {  # the "squash N.Ns" of a build's closing summary, in seconds
  sed -n 's/.*Build phases:.* squash \([0-9.]*\)s,.*/\1/p' "$1"
}

: >"$bench_work/times/berth_squash" >"$bench_work/times/berth_build" >"$bench_work/times/mksquashfs"
for ((i = 0; i < reps; i++)); do
  rm -f "$bench_work/out.sif" "$bench_work/peer.sqfs"
  start=$(now_ns)
  BERTH_SOCKET=$SYS_SOCK "$BERTH" build --force --compress zstd \
    --mksquashfs-args "-Xcompression-level $level" "$bench_work/out.sif" "$bench_work/tree.def" \
    >/dev/null 2>"$bench_work/build.err" || { cat "$bench_work/build.err" >&2; exit 1; }
  end=$(now_ns)
  squash_of "$bench_work/build.err" >>"$bench_work/times/berth_squash"
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/berth_build"
  start=$(now_ns)
  mksquashfs "$tree" "$bench_work/peer.sqfs" -comp zstd -Xcompression-level "$level" -noappend \
    -quiet >/dev/null
  end=$(now_ns)
  echo "scale=3; ($end - $start) / 1000000000" | bc >>"$bench_work/times/mksquashfs"
done

read -r squash _ <<<"$(bench_stats berth_squash)"
read -r build _ <<<"$(bench_stats berth_build)"
read -r peer _ <<<"$(bench_stats mksquashfs)"
sif_mb=$(($(stat -c %s "$bench_work/out.sif") / 1048576))
peer_mb=$(($(stat -c %s "$bench_work/peer.sqfs") / 1048576))
echo "tree: ${size_mb} MB; $(nproc) CPUs; zstd level $level; ${reps} rounds; medians"
printf 'berth build, squash phase   %8.0f ms  (SIF %s MB)\n' "$squash" "$sif_mb"
printf 'mksquashfs alone            %8.0f ms  (%s MB)\n' "$peer" "$peer_mb"
printf 'ratio squash / mksquashfs   %8.2f x\n' "$(echo "scale=4; $squash / $peer" | bc)"
printf 'berth build, whole          %8.0f ms  (copy of the tree into the staging root included)\n' "$build"
