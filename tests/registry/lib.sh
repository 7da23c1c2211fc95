# Shared set-up for the registry tests (sourced): a private berthd, real
# docker-registry instances, the token and hostile servers. Everything lives
# in $T and dies with the test.
# shellcheck source=../integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
PY=/usr/bin/python3   # Debian's python: python3-cryptography is a package dependency
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d /tmp/berth-registry.XXXXXX)
TEST_TMP=$T
chmod 0755 "$T"
pids=()          # helpers (registries, token and hostile servers): killed at exit
berthd_pids=()   # daemons: stopped cleanly and checked by stop_berthds
test_mounts=()   # mounts the test itself made under $T (not the daemon's)
cleanup() {
  local p
  for p in "${berthd_pids[@]}" "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# setup_binaries BERTH BERTHD: copies them where a plain user can run them.
setup_binaries() {
  mkdir -m 0755 "$T/bin"
  cp "$1" "$T/bin/berth"
  cp "$2" "$T/bin/berthd"
  BERTH=$T/bin/berth
  BERTHD=$T/bin/berthd
}

# start_berthd [berth.conf text [berthd options...]]: a system-mode daemon
# on $T/berthd.sock.
start_berthd() {
  mkdir -p "$T/etc"
  printf '%s\n' "${1:-}" >"$T/etc/berth.conf"
  chmod 0644 "$T/etc/berth.conf"
  SPDLOG_LEVEL=info "$BERTHD" --socket "$T/berthd.sock" --config-dir "$T/etc" \
    --state-dir "$T/state" --foreground "${@:2}" 2>"$T/berthd.log" &
  berthd_pids+=($!)
  export BERTH_SOCKET=$T/berthd.sock
  wait_until 10 test -S "$T/berthd.sock" || { echo "berthd did not start:"; cat "$T/berthd.log"; exit 1; }
}

# start_registry NAME KIND: docker-registry on a free port; KIND is plain,
# basic (htpasswd alice:alicepw, bob:bobpw), tls (test CA) or token.
# Sets REG_<NAME>=127.0.0.1:PORT; the access log is $T/NAME.log.
start_registry() {
  local name=$1 kind=$2 port
  port=$(free_port)
  local dir=$T/reg-$name
  mkdir -p "$dir/data"
  local auth="" tls=""
  case $kind in
    basic)
      # bcrypt via libxcrypt (Python's crypt): docker-registry accepts only bcrypt.
      $PY -W ignore -c 'import crypt,sys
for u in sys.argv[1:]:
    n,p=u.split(":"); print(n+":"+crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' \
        alice:alicepw bob:bobpw >"$dir/htpasswd"
      auth="auth: {htpasswd: {realm: basic-realm, path: $dir/htpasswd}}" ;;
    tls)
      make_test_ca
      openssl req -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -subj /CN=127.0.0.1 \
        -out "$dir/req.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext"
      openssl x509 -req -in "$dir/req.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/ext" -out "$dir/cert.pem" 2>/dev/null
      tls="tls: {certificate: $dir/cert.pem, key: $dir/key.pem}" ;;
    token)
      local tport
      tport=$(free_port)
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/token.key" -out "$dir/token.crt" \
        -days 2 -subj /CN=berth-test-token 2>/dev/null
      $PY "$HERE/token_server.py" "$tport" "$dir/token.key" "$dir/token.crt" \
        alice:alicepw,bob:bobpw berth-test-issuer berth-test-registry "$T/$name-token.log" &
      pids+=($!)
      auth="auth: {token: {realm: \"http://127.0.0.1:$tport/token\", service: berth-test-registry, issuer: berth-test-issuer, rootcertbundle: $dir/token.crt}}"
      wait_until 10 curl -s "http://127.0.0.1:$tport/token" || { echo "token server did not start"; exit 1; } ;;
  esac
  cat >"$dir/config.yml" <<YML
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port, $tls}
$auth
YML
  docker-registry serve "$dir/config.yml" >"$T/$name.log" 2>&1 &
  pids+=($!)
  local scheme=http curl_ca=()
  [ "$kind" = tls ] && scheme=https && curl_ca=(--cacert "$T/ca.pem")
  wait_until 10 curl -s "${curl_ca[@]}" -o /dev/null "$scheme://127.0.0.1:$port/v2/" ||
    { echo "registry $name did not start:"; cat "$T/$name.log"; exit 1; }
  printf -v "REG_$name" '127.0.0.1:%s' "$port"
}

make_test_ca() {
  [ -f "$T/ca.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
    -subj /CN=berth-test-ca 2>/dev/null
}

# authfile FILE HOST USER PASS: a docker-config credentials file.
authfile() {
  printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$2" "$(printf '%s:%s' "$3" "$4" | base64 -w0)" >"$1"
}

# as_user USER CMD...: runs CMD as USER with BERTH_SOCKET kept.
as_user() {
  local u=$1; shift
  runuser -u "$u" -- env BERTH_SOCKET="$BERTH_SOCKET" HOME="$(getent passwd "$u" | cut -d: -f6)" "$@"
}

# blob_gets LOG DIGEST: how many GETs of that blob the registry served.
blob_gets() { grep -c "\"GET /v2/[^ ]*/blobs/$2 " "$1" || true; }

# sif_partition_offset SIF: where its first squashfs partition starts
# (read from the descriptor table, formats.md §1).
sif_partition_offset() {
  $PY - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb"); h = f.read(128)
total, descr_off = struct.unpack_from("<qq", h, 88)
for i in range(total):
    f.seek(descr_off + i * 585); d = f.read(585)
    dtype, used = struct.unpack_from("<iB", d, 0)
    if used and dtype == 0x4004:
        print(struct.unpack_from("<q", d, 17)[0]); break
PY
}

# no_debris DIR: no temp files left by a failed pull.
no_debris() { ! ls -A "$1" | grep -q 'berth-'; }

cache_entries() { "$BERTH" cache list --long | grep -c '^\(oras\|blob\|sif\) ' || true; }

# leftovers: what the test's daemons left on the node: mounts under $T (but
# the test's own) and loop devices whose backing file is under $T.
leftovers() {
  local own=" ${test_mounts[*]} "
  awk -v t="$T/" '{ split($0, halves, " - "); split(halves[2], fs, " ")
                    if (index($5, t) == 1) print "mount " $5 " (" fs[1] ")" }' /proc/self/mountinfo |
    while read -r kind where rest; do [[ "$own" == *" $where "* ]] || echo "$kind $where $rest"; done
  losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v t="$T/" 'index($2, t) == 1 { print "loop " $0 }'
}

# stop_berthds: SIGTERM to every daemon the test started; each must exit
# within 10 s and leave no mount and no loop device behind. Run by finish.
stop_berthds() {
  local p rc watchdog left
  for p in "${berthd_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || { bad "berthd $p stops on SIGTERM" "it was not running"; continue; }
    (sleep 10; kill -KILL "$p" 2>/dev/null) &
    watchdog=$!
    wait "$p"; rc=$?
    kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
    [ "$rc" -ne 137 ] && ok "berthd $p stops on SIGTERM (exit $rc)" ||
      bad "berthd $p stops on SIGTERM" "still running after 10 s: killed"
  done
  berthd_pids=()
  left=$(leftovers)
  [ -z "$left" ] && ok "the daemons left no mount and no loop device" ||
    bad "the daemons left no mount and no loop device" "$left"
}
before_finish() { stop_berthds; }
