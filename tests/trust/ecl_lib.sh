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
for fp in "$KEY_A" "$KEY_B" "$KEY_C"; do
  [ ${#fp} -eq 40 ] || { bad "setup: signing keys" "got fingerprint '$fp'"; finish; }
done
must "export keys A and B" gpg --batch --output "$TEST_TMP/ab.gpg" --export "$KEY_A" "$KEY_B"
must "global keyring" env BERTH_CONFIG_DIR="$ETC" "$BERTH" key import --global "$TEST_TMP/ab.gpg"

# make_image OUT MARKER: busybox and /opt/marker, squashed uncompressed so the
# marker's bytes appear verbatim in the SIF (the race test rewrites them).
make_image() {
  local r=$TEST_TMP/rootfs-$$
  rm -rf "$r"; mkdir -p "$r"/{bin,opt,dev,proc,sys,tmp,etc}
  cp /bin/busybox "$r/bin/busybox"
  for t in sh cat sleep true echo; do ln -sf busybox "$r/bin/$t"; done
  printf '%s\n' "$2" >"$r/opt/marker"
  must "squashfs of $1" mksquashfs "$r" "$TEST_TMP/root.sqfs" -noappend -all-root -quiet -noI -noD -noF -noX
  rm -f "$1"
  must "sif new $1" "$BERTH" sif new "$1"
  must "sif add $1" "$BERTH" sif add --datatype 4 --parttype 2 --partfs 1 --partarch 2 \
    --groupid 1 "$1" "$TEST_TMP/root.sqfs"
  chmod 0644 "$1"; rm -rf "$r"
}
# sign IMAGE KEY [sign flags]: signs or stops the test.
sign() { must "sign $1 with $2" "$BERTH" sign --key-fingerprint "$2" "${@:3}" "$1"; }
make_image "$IMGS/none.sif" GOOD-MARKER-0001
for who in a b ab c; do cp "$IMGS/none.sif" "$IMGS/$who.sif"; done
sign "$IMGS/a.sif" "$KEY_A"
sign "$IMGS/b.sif" "$KEY_B"
sign "$IMGS/ab.sif" "$KEY_A"
sign "$IMGS/ab.sif" "$KEY_B"
sign "$IMGS/c.sif" "$KEY_C"  # C is not in the global keyring
# Two object groups signed by different keys: A signs group 1 (the rootfs),
# B signs group 2 (a data object). Each key signed some group, neither all.
cp "$IMGS/none.sif" "$IMGS/split.sif"
printf 'group two\n' >"$TEST_TMP/g2.txt"
must "a second object group" "$BERTH" sif add --datatype 6 --groupid 2 "$IMGS/split.sif" "$TEST_TMP/g2.txt"
cp "$IMGS/split.sif" "$IMGS/split-aa.sif"
sign "$IMGS/split.sif" "$KEY_A" --group-id 1
sign "$IMGS/split.sif" "$KEY_B" --group-id 2
sign "$IMGS/split-aa.sif" "$KEY_A"  # both groups by A: the control
chmod 0644 "$IMGS"/*.sif

# set_ecl TEXT: replace ecl.toml atomically (the daemon notices the change).
set_ecl() {
  printf '%s\n' "$1" >"$ETC/ecl.toml.new"; chmod 0644 "$ETC/ecl.toml.new"
  mv -f "$ETC/ecl.toml.new" "$ETC/ecl.toml"
}
set_ecl 'activated = false'

start_daemon() { start_test_daemon_in "$ETC"; }
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
