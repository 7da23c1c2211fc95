#!/usr/bin/env bash
# ecl_test.sh BERTH BERTHD MODE WHO: the ECL enforced by a real daemon.
# whitelist, whitestrict and blacklist allow and deny images signed by key
# A, B, both and none, and an image whose two object groups A and B signed
# one each; execgroups by directory; reloads; start refusal.
#   MODE system|user (a user-mode daemon applies it too, advisory)
#   WHO  root|user
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue ecl
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  gpgconf --homedir "$TEST_TMP/gnupg" --kill all 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
source "$here/ecl_lib.sh"
start_daemon
I=$IMGS

allowed "inactive ECL: unsigned runs" "$I/none.sif"

set_ecl "activated = true
[[execgroup]]
  tagname = \"onlyA\"
  mode = \"whitelist\"
  dirpath = \"\"
  keyfp = [\"$KEY_A\"]"
allowed "whitelist A: signed by A runs" "$I/a.sif"
denied "whitelist A: signed by B is denied" "$I/b.sif" "execgroup 'onlyA' (whitelist)" "$KEY_A" "signed by $KEY_B"
allowed "whitelist A: signed by A and B runs" "$I/ab.sif"
denied "whitelist A: unsigned is denied" "$I/none.sif" "no signature found"
denied "whitelist A: signed by a key outside the keyring is denied" "$I/c.sif" "not valid: $KEY_C"
allowed "whitelist A: a repeated run of an allowed image" "$I/a.sif"
denied "whitelist A: A signed group 1 only, B group 2 is denied" "$I/split.sif" "(whitelist)" "$KEY_B"
allowed "whitelist A: A signed both groups runs" "$I/split-aa.sif"

set_ecl "activated = true
[[execgroup]]
  tagname = \"both\"
  mode = \"whitestrict\"
  dirpath = \"\"
  keyfp = [\"$KEY_A\", \"$KEY_B\"]"
denied "whitestrict A+B: signed by A only is denied (reloaded policy)" "$I/a.sif" "(whitestrict)"
denied "whitestrict A+B: signed by B only is denied" "$I/b.sif" "(whitestrict)"
allowed "whitestrict A+B: signed by both runs" "$I/ab.sif"
denied "whitestrict A+B: unsigned is denied" "$I/none.sif" "no signature found"
denied "whitestrict A+B: A on group 1, B on group 2 is denied" "$I/split.sif" "(whitestrict)"

set_ecl "activated = true
[[execgroup]]
  tagname = \"noB\"
  mode = \"blacklist\"
  dirpath = \"\"
  keyfp = [\"$KEY_B\"]"
allowed "blacklist B: signed by A runs" "$I/a.sif"
denied "blacklist B: signed by B is denied" "$I/b.sif" "(blacklist)" "$KEY_B"
denied "blacklist B: signed by A and B is denied" "$I/ab.sif" "(blacklist)"
denied "blacklist B: unsigned is denied all the same" "$I/none.sif" "no signature found"
denied "blacklist B: B signed only group 2, still denied" "$I/split.sif" "(blacklist)" "$KEY_B"
allowed "blacklist B: A signed both groups runs" "$I/split-aa.sif"

# Execgroups by directory: the exact directory wins over the catch-all.
mkdir -p "$TEST_TMP/other"; chmod 0755 "$TEST_TMP/other"; cp "$I/a.sif" "$I/b.sif" "$TEST_TMP/other/"
set_ecl "activated = true
[[execgroup]]
  tagname = \"imgs\"
  mode = \"whitelist\"
  dirpath = \"$I\"
  keyfp = [\"$KEY_B\"]"
denied "no execgroup for the directory: denied" "$TEST_TMP/other/a.sif" "not part of any execgroup"
set_ecl "activated = true
[[execgroup]]
  tagname = \"imgs\"
  mode = \"whitelist\"
  dirpath = \"$I\"
  keyfp = [\"$KEY_B\"]
[[execgroup]]
  tagname = \"rest\"
  mode = \"whitelist\"
  dirpath = \"\"
  keyfp = [\"$KEY_A\"]"
denied "dirpath group: A denied in $I" "$I/a.sif" "execgroup 'imgs'"
allowed "catch-all group: A allowed elsewhere" "$TEST_TMP/other/a.sif"
out=$(b exec "$I/b.sif" cat /opt/marker 2>&1)
[ "$out" = GOOD-MARKER-0001 ] && ok "dirpath group: B allowed in $I" || bad "dirpath B" "$out"

# A tampered copy of an allowed image.
cp "$TEST_TMP/other/a.sif" "$TEST_TMP/other/t.sif"
python3 - "$TEST_TMP/other/t.sif" <<'PY'
import sys
p = sys.argv[1]; d = open(p, 'rb').read(); i = d.index(b'GOOD-MARKER-0001')
open(p, 'r+b').write(d[:i] + b'EVIL' + d[i + 4:])
PY
chmod 0644 "$TEST_TMP/other/t.sif"
denied "a tampered image is denied, the object named" "$TEST_TMP/other/t.sif" "data of object 1 changed after signing"

# An invalid ecl.toml on reload: logged, the last good policy stays.
set_ecl "activated = true
bogus = 1"
denied "invalid reload keeps the last good policy" "$I/a.sif" "execgroup 'imgs'"
check "the daemon logged the bad line" grep -q "ecl.toml:2: unknown setting 'bogus'" "$TEST_TMP/berthd.log"

# Removing a key from the global keyring takes effect without a restart.
set_ecl "activated = true
[[execgroup]]
  tagname = \"onlyA\"
  mode = \"whitelist\"
  dirpath = \"\"
  keyfp = [\"$KEY_A\"]"
allowed "before removing key A: allowed" "$I/a.sif"
must "remove key A from the global keyring" env BERTH_CONFIG_DIR="$ETC" "$BERTH" key remove --global "$KEY_A"
denied "after removing key A from the global keyring: denied" "$I/a.sif" "not valid: $KEY_A"

# An invalid ecl.toml at start: the daemon refuses, naming the line.
mkdir -p "$TEST_TMP/bad"; printf 'activated = true\n[[execgroup]]\nmode = "sometimes"\n' >"$TEST_TMP/bad/ecl.toml"
out=$("$TEST_TMP/berthd" --socket "$TEST_TMP/bad/s.sock" --config-dir "$TEST_TMP/bad" \
  --state-dir "$TEST_TMP/bad/state" --foreground 2>&1 >/dev/null); rc=$?
case "$rc:$out" in 255:*"ecl.toml:3: mode 'sometimes'"*) ok "invalid ecl.toml: refuses to start, naming the line" ;;
  *) bad "invalid ecl.toml at start" "rc=$rc $out" ;; esac
if [ "$MODE" = system ]; then
  chown "$TUSER" "$TEST_TMP/bad/ecl.toml"; printf 'activated = false\n' >"$TEST_TMP/bad/ecl.toml"
  out=$("$TEST_TMP/berthd" --socket "$TEST_TMP/bad/s.sock" --config-dir "$TEST_TMP/bad" \
    --state-dir "$TEST_TMP/bad/state" --foreground 2>&1 >/dev/null); rc=$?
  case "$rc:$out" in 255:*"must be owned by root"*) ok "a user-owned ecl.toml is refused" ;;
    *) bad "user-owned ecl.toml" "rc=$rc $out" ;; esac
fi
finish
