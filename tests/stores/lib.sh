# Shared set-up for the store tests (sourced after integration/lib.sh and
# test_prologue): two unprivileged users, the binaries where they can run
# them, small images, private daemons, and "nothing left behind" checks
# scoped to what this test's daemons made (their state directories and the
# loop devices whose backing file lies in them): other tests run daemons and
# loop devices on this machine at the same time.
# Needs: BERTH_SRC BERTHD_SRC TEST_TMP TUSER.
TUSER2=${BERTH_TEST_USER2:-berthtest2}
bash "$(dirname "${BASH_SOURCE[0]}")/../lib/ensure-test-user.sh" "$TUSER2"
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
daemon_pids=()
stores_cleanup() {
  local p
  for p in "${holder_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${daemon_pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  gpgconf --homedir "$TEST_TMP/gnupg" --kill all 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
holder_pids=()
trap stores_cleanup EXIT

# make_image OUT MARKER [OWNER]: busybox and /opt/marker, squashed
# uncompressed (about 2 MiB), world-readable, owned by OWNER (a user's own
# file: not trusted in place, so the system daemon copies it).
make_image() {
  local out=$1 r=$TEST_TMP/rootfs-$$
  rm -rf "$r"; mkdir -p "$r"/{bin,opt,dev,proc,sys,tmp,etc}
  cp /bin/busybox "$r/bin/busybox"
  local t
  for t in sh cat sleep true echo; do ln -sf busybox "$r/bin/$t"; done
  printf '%s\n' "$2" >"$r/opt/marker"
  mksquashfs "$r" "$TEST_TMP/root-$$.sqfs" -noappend -all-root -quiet -noI -noD -noF -noX >/dev/null
  rm -f "$out"
  "$BERTH" sif new "$out" && "$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 \
    --groupid 1 "$out" "$TEST_TMP/root-$$.sqfs"
  rm -rf "$r" "$TEST_TMP/root-$$.sqfs"
  chmod 0644 "$out"
  [ -z "${3:-}" ] || chown "$3:" "$out"
}

# signing_key: a fresh GnuPG home with one signing key (its fingerprint in
# KEY), and the settings the next start_daemon turns into an activated ECL
# that admits only images that key signed (ECL_TEXT, KEYRING).
signing_key() {
  export GNUPGHOME=$TEST_TMP/gnupg
  mkdir -m 0700 "$GNUPGHOME"
  gpg --batch --passphrase '' --quick-gen-key "keya <keya@example.org>" ed25519 sign never 2>/dev/null
  KEY=$(gpg --batch --with-colons --list-keys keya@example.org | awk -F: '/^fpr/ {print $10; exit}')
  KEYRING=$TEST_TMP/keyring.gpg
  gpg --batch --export "$KEY" >"$KEYRING"
  ECL_TEXT="activated = true
[[execgroup]]
  tagname = \"signed\"
  mode = \"whitelist\"
  dirpath = \"\"
  keyfp = [\"$KEY\"]"
}

# start_daemon NAME MODE [BERTH.CONF TEXT]: a private berthd (system: as
# root; user: a user-mode daemon of $TUSER) with its own config and state
# under $TEST_TMP/NAME; sets SOCK and STATE.
start_daemon() {
  local name=$1 mode=$2 conf=${3:-} dir=$TEST_TMP/$1
  if [ "$mode" = system ]; then mkdir -p "$dir"; else install -d -o "$TUSER" -m 0700 "$dir"; fi
  install -d -m 0755 "$dir/etc"
  printf '%s\n' "$conf" >"$dir/etc/berth.conf"
  [ -z "${ECL_TEXT:-}" ] || printf '%s\n' "$ECL_TEXT" >"$dir/etc/ecl.toml"
  [ -z "${KEYRING:-}" ] || BERTH_CONFIG_DIR=$dir/etc "$BERTH" key import --global "$KEYRING" >/dev/null 2>&1
  chmod -R go-w "$dir/etc"
  STATE=$dir/state
  if [ "$mode" = system ]; then
    SOCK=$dir/run/berthd.sock
    "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$dir/etc" --state-dir "$STATE" \
      --foreground 2>"$dir/berthd.log" &
  else
    chmod 0666 /dev/fuse  # Debian ships 0666; some machines have 0600 (recipes.md)
    SOCK=$dir/berthd.sock
    runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$SOCK" --config-dir "$dir/etc" \
      --state-dir "$STATE" --foreground 2>"$dir/berthd.log" &
  fi
  daemon_pids+=($!)
  wait_until 10 test -S "$SOCK" || { bad "daemon $name starts" "$(cat "$dir/berthd.log")"; finish; }
}

# stop_daemon: ends the last daemon started (it unmounts what it holds).
stop_daemon() {
  local p=${daemon_pids[-1]}
  kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  unset 'daemon_pids[-1]'
}

# as USER CMD...: CMD as USER (root: as root) against $SOCK.
as() {
  local u=$1; shift
  if [ "$u" = root ]; then env BERTH_SOCKET="$SOCK" "$@"
  else runuser -u "$u" -- env BERTH_SOCKET="$SOCK" HOME="$(getent passwd "$u" | cut -d: -f6)" "$@"; fi
}

# loops_backed_by DIR: loop devices whose backing file lies in DIR (deleted
# ones included), one "loopN PATH" per line.
loops_backed_by() {
  local f back
  for f in /sys/block/loop*/loop/backing_file; do
    [ -r "$f" ] || continue
    back=$(cat "$f" 2>/dev/null) || continue
    case "$back" in "$1"/*) echo "$(basename "$(dirname "$(dirname "$f")")") $back" ;; esac
  done
}

# mounts_below DIR: mount points under DIR in this namespace.
mounts_below() { awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo; }

# nothing_left NAME DIR: no loop device backed by a file in DIR and no mount
# under DIR (waits a little: a container's namespace goes after its exit).
nothing_left() {
  if wait_until 10 sh -c "[ -z \"\$(. '$TEST_TMP/nl.sh'; loops_backed_by '$2'; mounts_below '$2')\" ]"; then
    ok "$1"
  else
    bad "$1" "$(loops_backed_by "$2"; mounts_below "$2")"
  fi
}
declare -f loops_backed_by mounts_below >"$TEST_TMP/nl.sh"

# allocated_kib PATH...: disk blocks the files use, in KiB.
allocated_kib() { du -k -c "$@" 2>/dev/null | tail -1 | cut -f1; }
