#!/usr/bin/env bash
# The command line around the verbs, as Apptainer's (cli-compat.md rows
# "apptainer", "global" and "help"): the global -d/-v/-q/-s/--nocolor flags
# and their APPTAINER_*/SINGULARITY_*/BERTH_* forms, usage errors (exit 1,
# Apptainer's wording), an unknown command, `berth help CMD`. Each check runs
# as root and as the unprivileged test user; none needs a daemon.
#
#   cli_global_test.sh PATH/TO/berth
set -u
berth=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
tuser=${BERTH_TEST_USER:-berthtest}
bash "$here/../lib/ensure-test-user.sh" "$tuser"
work=$(mktemp -d /tmp/berth-cli.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }

# A definition file whose %arguments line is no key=value: a WARNING from
# a local verb (build --dry-run), with no daemon involved.
printf 'Bootstrap: docker\nFrom: alpine\n%%arguments\nnot a pair\n%%post\n  true\n' >"$work/warn.def"
chmod 0644 "$work/warn.def"

# as WHO ENV... -- ARGS: runs berth as root or the test user; sets $out
# (stdout), $err (stderr) and $rc. The environment is only what is given.
as() {
  local who=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local home=$work/home-$who
  mkdir -p "$home"
  [ "$who" = user ] && chown "$tuser" "$home"
  local cmd=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$home" "${envs[@]}" "$berth" "$@")
  if [ "$who" = user ]; then cmd=(runuser -u "$tuser" -- "${cmd[@]}"); fi
  out=$(cd "$work" && "${cmd[@]}" 2>"$work/err")
  rc=$?
  err=$(cat "$work/err")
}

# expect NAME RC STDERR_GREP STDOUT_GREP: STDERR/STDOUT_GREP are extended
# regexes that must match ("" skips one); a leading ! means must not match.
expect() {
  local name=$1 want_rc=$2 e=$3 o=$4
  local why=""
  [ "$rc" -eq "$want_rc" ] || why="exit $rc, wanted $want_rc"
  for pair in "stderr:$e" "stdout:$o"; do
    local which=${pair%%:*} pat=${pair#*:} text
    [ -z "$pat" ] && continue
    [ "$which" = stderr ] && text=$err || text=$out
    if [ "${pat:0:1}" = '!' ]; then
      grep -Eq -- "${pat:1}" <<<"$text" && why="$why; $which matches '${pat:1}'"
    else
      grep -Eq -- "$pat" <<<"$text" || why="$why; $which lacks '$pat'"
    fi
  done
  if [ -z "$why" ]; then ok "$name"; else bad "$name" "$why (stderr: $(head -c 300 <<<"$err"))"; fi
}

for who in root user; do
  # --- usage errors: exit 1, Apptainer's wording (cobra's), the command's usage
  as $who -- frobnicate
  expect "[$who] an unknown command names itself, exit 1" 1 \
    '^Error: unknown command "frobnicate" for "berth"' ""
  as $who -- $'frob\nFATAL:   forged'
  expect "[$who] a name with a newline stays on one line (no forged FATAL)" 1 \
    '^Error: unknown command "frob\\x0aFATAL:   forged"' ""
  grep -q '^FATAL' <<<"$err" && bad "[$who] no forged FATAL line" "$err" || ok "[$who] no forged FATAL line"
  as $who -- exec --no-such-flag img.sif true
  expect "[$who] an unknown flag is a usage error of its command, exit 1" 1 \
    '^Error for command "exec": unknown flag: --no-such-flag' ""
  grep -q "Run 'berth --help' for more detailed usage information." <<<"$err" &&
    ok "[$who] a usage error ends with Apptainer's pointer to --help" ||
    bad "[$who] a usage error ends with Apptainer's pointer to --help" "$err"
  as $who --
  expect "[$who] a bare berth prints the usage, exit 1" 1 "Usage:|usage|Subcommands|SUBCOMMANDS" ""

  # --- help CMD
  as $who -- help exec
  expect "[$who] berth help exec prints exec's help" 0 "" "--bind"
  as $who -- help nosuchcommand
  expect "[$who] berth help of an unknown topic says so" 0 "" "Unknown help topic"

  # --- levels: INFO/WARNING shown by default, -q keeps warnings, -s only errors
  as $who -- build --dry-run warn.def
  expect "[$who] a warning is shown by default" 0 '^WARNING: Skipping "not a pair"' ""
  as $who -- -q build --dry-run warn.def
  expect "[$who] -q keeps warnings" 0 '^WARNING: Skipping' ""
  as $who -- -s build --dry-run warn.def
  expect "[$who] -s hides warnings" 0 '!WARNING' ""
  as $who APPTAINER_SILENT=1 -- build --dry-run warn.def
  expect "[$who] APPTAINER_SILENT=1 is -s" 0 '!WARNING' ""
  as $who BERTH_SILENT=true -- build --dry-run warn.def
  expect "[$who] BERTH_SILENT=true is -s" 0 '!WARNING' ""
  as $who -- -s exec "$work/no-such.sif" true
  expect "[$who] -s still shows a FATAL, exit 255" 255 '^FATAL: ' ""
  as $who APPTAINER_QUIET=maybe -- version
  expect "[$who] a non-boolean APPTAINER_QUIET is a FATAL naming it" 255 'APPTAINER_QUIET' ""

  # --- debug: every line tagged with who and which process
  as $who -- -d build --dry-run warn.def
  expect "[$who] -d prints DEBUG lines tagged [U=uid,P=pid]" 0 '^DEBUG +\[U=[0-9]+,P=[0-9]+\]' ""
  as $who SINGULARITY_DEBUG=1 -- build --dry-run warn.def
  expect "[$who] SINGULARITY_DEBUG=1 is -d" 0 '^DEBUG ' ""
  as $who -- build --dry-run warn.def
  expect "[$who] no DEBUG line by default" 0 '!^DEBUG' ""
  as $who -- --nocolor build --dry-run warn.def
  expect "[$who] --nocolor is accepted" 0 '^WARNING: ' ""
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
