# Shared setup for the ECL tests (sourced after integration/lib.sh):
# two signing keys A and B, a global keyring holding both, small uncompressed
# test images signed by A, B, both and none, and a daemon in MODE run for WHO.
# Needs: BERTH_SRC BERTHD_SRC MODE WHO TUSER here TEST_TMP.
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth
export GNUPGHOME=$TEST_TMP/gnupg
mkdir -m 0700 "$GNUPGHOME"
ETC=$TEST_TMP/etc IMGS=$TEST_TMP/imgs
mkdir -p "$ETC" "$IMGS"; chmod 0755 "$ETC" "$IMGS"

new_key() {  # new_key NAME -> fingerprint (ed25519: fast to generate)
  gpg --batch --passphrase '' --quick-gen-key "$1 <$1@example.org>" ed25519 sign never 2>/dev/null
  gpg --batch --with-colons --list-keys "$1@example.org" | awk -F: '/^fpr/ {print $10; exit}'
}
KEY_A=$(new_key keya) KEY_B=$(new_key keyb) KEY_C=$(new_key keyc)
gpg --batch --export "$KEY_A" "$KEY_B" >"$TEST_TMP/ab.gpg"
BERTH_CONFIG_DIR=$ETC "$BERTH" key import --global "$TEST_TMP/ab.gpg" 2>/dev/null

# make_image OUT MARKER: busybox and /opt/marker, squashed uncompressed so the
# marker's bytes appear verbatim in the SIF (the race test rewrites them).
make_image() {
  local r=$TEST_TMP/rootfs-$$
  rm -rf "$r"; mkdir -p "$r"/{bin,opt,dev,proc,sys,tmp,etc}
  cp /bin/busybox "$r/bin/busybox"
  for t in sh cat sleep true echo; do ln -sf busybox "$r/bin/$t"; done
  printf '%s\n' "$2" >"$r/opt/marker"
  mksquashfs "$r" "$TEST_TMP/root.sqfs" -noappend -all-root -quiet -noI -noD -noF -noX >/dev/null
  rm -f "$1"
  "$BERTH" sif new "$1" && "$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 \
    --groupid 1 "$1" "$TEST_TMP/root.sqfs"
  chmod 0644 "$1"; rm -rf "$r"
}
make_image "$IMGS/none.sif" GOOD-MARKER-0001
for who in a b ab; do cp "$IMGS/none.sif" "$IMGS/$who.sif"; done
"$BERTH" sign --key-fingerprint "$KEY_A" "$IMGS/a.sif" 2>/dev/null
"$BERTH" sign --key-fingerprint "$KEY_B" "$IMGS/b.sif" 2>/dev/null
"$BERTH" sign --key-fingerprint "$KEY_A" "$IMGS/ab.sif" 2>/dev/null
"$BERTH" sign --key-fingerprint "$KEY_B" "$IMGS/ab.sif" 2>/dev/null
cp "$IMGS/none.sif" "$IMGS/c.sif"
"$BERTH" sign --key-fingerprint "$KEY_C" "$IMGS/c.sif" 2>/dev/null  # C is not in the global keyring
chmod 0644 "$IMGS"/*.sif

# set_ecl TEXT: replace ecl.toml atomically (the daemon notices the change).
set_ecl() {
  printf '%s\n' "$1" >"$ETC/ecl.toml.new"; chmod 0644 "$ETC/ecl.toml.new"
  mv -f "$ETC/ecl.toml.new" "$ETC/ecl.toml"
}
set_ecl 'activated = false'

start_daemon() {
  if [ "$MODE" = system ]; then
    SOCK=$TEST_TMP/run/berthd.sock
    "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$ETC" --state-dir "$TEST_TMP/state" \
      --foreground 2>"$TEST_TMP/berthd.log" &
  else
    chmod 0666 /dev/fuse  # Debian ships 0666; this machine has 0600 (recipes.md)
    install -d -o "$TUSER" -m 0700 "$TEST_TMP/u"
    SOCK=$TEST_TMP/u/berthd.sock
    runuser -u "$TUSER" -- "$TEST_TMP/berthd" --user-mode --socket "$SOCK" --config-dir "$ETC" \
      --state-dir "$TEST_TMP/u/state" --foreground 2>"$TEST_TMP/berthd.log" &
  fi
  daemon_pid=$!
  wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }
}
if [ "$WHO" = root ]; then
  as() { env BERTH_SOCKET="$SOCK" "$@"; }
else
  as() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$@"; }
fi
b() { as "$BERTH" "$@"; }

# allowed NAME IMAGE / denied NAME IMAGE WANT...: runs cat /opt/marker.
allowed() {
  local out
  out=$(b exec "$2" cat /opt/marker 2>&1)
  if [ "$out" = GOOD-MARKER-0001 ]; then ok "$1"; else bad "$1" "$out"; fi
}
denied() {
  local name=$1 img=$2; shift 2
  local out rc
  out=$(b exec "$img" cat /opt/marker 2>&1); rc=$?
  [ $rc -ne 0 ] || { bad "$name" "ran: $out"; return; }
  [ "$(printf '%s\n' "$out" | grep -c .)" -eq 1 ] || { bad "$name" "not one line: $out"; return; }
  local w
  for w in "denied by the ECL" "$@"; do
    case "$out" in *"$w"*) ;; *) bad "$name" "missing '$w' in: $out"; return ;; esac
  done
  ok "$name"
}
