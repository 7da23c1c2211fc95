# Shared by the Slurm tests (sourced after tests/integration/lib.sh): reads
# the fixture's environment (fixture.sh) and gives srun/sbatch helpers.
# usage in a test: slurm_prologue NAME FIXTURE_STATE
slurm_prologue() {
  test_prologue "$1"
  local state=$2
  [ -s "$state" ] || { bad setup "no Slurm fixture ($state): run the slurm_setup test first"; finish; }
  set -a
  # shellcheck disable=SC1091
  source "$(cat "$state")/env"
  set +a
  TUSER2=berthtest2
  trap 'rm -rf "$TEST_TMP"' EXIT
}

# as WHO CMD...: runs CMD as root, or as user $TUSER / $TUSER2, in $TEST_TMP,
# with the fixture's Slurm and berthd.
as() {
  local who=$1; shift
  local e=(env SLURM_CONF="$SLURM_CONF" BERTH_SOCKET="$BERTH_SOCKET" PATH=/usr/sbin:/usr/bin:/sbin:/bin)
  case $who in
    root) (cd "$TEST_TMP" && "${e[@]}" "$@") ;;
    *) (cd "$TEST_TMP" && runuser -u "$who" -- "${e[@]}" "$@") ;;
  esac
}

# ranks_of TEXT: "R/N" of every "rank R of N" line, sorted, space-separated.
ranks_of() {
  printf '%s\n' "$1" | sed -n 's/^rank \([0-9]*\) of \([0-9]*\).*/\1\/\2/p' | sort | paste -sd' ' -
}

# field_of TEXT NAME: the distinct values of NAME=V in TEXT, space-separated.
field_of() {
  printf '%s\n' "$1" | grep -o "$2=[^ ]*" | cut -d= -f2 | sort -u | paste -sd' ' -
}
