#!/usr/bin/env bash
# rights_test.sh BERTH BERTHD SHIM MODE SECTION: the caller's-rights table of
# docs/security.md, row by row, as the unprivileged test user against a real
# daemon. Every row is fed a path the caller may not traverse and, where a
# descriptor is handed, an O_PATH descriptor (SHIM, an LD_PRELOAD library,
# makes the real client hand one, as a hostile client would).
#   MODE     system (root berthd)  or  user (a private berthd run by the user)
#   SECTION  f1    the working directory (review finding 1)
#            f2    oci:DIR and handed descriptors in pull (review finding 2)
#            rows  every other row of the table
# Another user ($OTHER) owns the files the caller must not reach.
# RIGHTS_VERBOSE=1 also prints each refusal's message.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 SHIM_SRC=$3 MODE=$4 SECTION=$5
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue rights
OTHER=${BERTH_TEST_USER2:-berthtest2}
bash "$here/../lib/ensure-test-user.sh" "$OTHER"
daemon_pid=
cleanup() {
  stop_test_daemon
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
install -m 0755 "$SHIM_SRC" "$TEST_TMP/shim.so"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
if [ "$SECTION" != f2 ]; then  # f2 runs the image it converts
  bash "$here/../integration/make_test_image.sh" "$BERTH" "$IMG" >/dev/null || { bad setup "test image"; finish; }
  chmod 0644 "$IMG"
fi


# as CMD...: runs CMD as the test user, talking to the daemon under test.
as() { runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$@"; }
b() { as "$BERTH" "$@"; }
# shim VAR=VALUE... CMD...: as(), with the O_PATH shim preloaded.
shim() {
  local vars=()
  while [[ $1 == *=* ]]; do vars+=("$1"); shift; done
  as env LD_PRELOAD="$TEST_TMP/shim.so" "${vars[@]}" "$@"
}

# refused NAME WANT SECRET CMD...: CMD fails, its error names WANT, and
# neither its output nor its error contains SECRET (the protected bytes).
refused() {
  local name=$1 want=$2 secret=$3; shift 3
  "$@" >"$TEST_TMP/cmd.out" 2>"$TEST_TMP/cmd.err"
  local rc=$?
  local all
  all=$(cat "$TEST_TMP/cmd.out" "$TEST_TMP/cmd.err")
  if [ "$rc" -eq 0 ]; then bad "$name" "exit 0: $(head -c 300 <<<"$all")"
  elif [ -n "$secret" ] && grep -qF -- "$secret" <<<"$all"; then bad "$name" "leaked '$secret': $(head -c 300 <<<"$all")"
  elif ! grep -qF -- "$want" "$TEST_TMP/cmd.err"; then bad "$name" "error lacks '$want': $(head -c 300 "$TEST_TMP/cmd.err")"
  elif [ "$(grep -c '^FATAL' "$TEST_TMP/cmd.err")" -ne 1 ]; then bad "$name" "not one FATAL line: $(head -c 300 "$TEST_TMP/cmd.err")"
  else ok "$name"; [ -n "${RIGHTS_VERBOSE:-}" ] && sed "s/^/       /" "$TEST_TMP/cmd.err"; fi
}

# --- what the caller must not reach ---
# $OTHER's private directory with a world-readable directory and file inside
# (finding 1's repro), a root-only directory, and a PrivateTmp-style tmp.
install -d -o "$OTHER" -m 0700 "$TEST_TMP/b"
install -d -o "$OTHER" -m 0755 "$TEST_TMP/b/pub"
echo "secret-of-other" >"$TEST_TMP/b/pub/f" && chown "$OTHER" "$TEST_TMP/b/pub/f" && chmod 0644 "$TEST_TMP/b/pub/f"
install -d -m 0700 "$TEST_TMP/rootonly"
install -d -m 0755 "$TEST_TMP/rootonly/pub"
echo "secret-of-root" >"$TEST_TMP/rootonly/pub/f" && chmod 0644 "$TEST_TMP/rootonly/pub/f"
install -d -m 0700 "$TEST_TMP/priv"
install -d -m 1777 "$TEST_TMP/priv/tmp"
# The caller's own places.
install -d -o "$TUSER" -m 0700 "$TEST_TMP/mine"
install -d -o "$TUSER" -m 0755 "$TEST_TMP/mine/a" "$TEST_TMP/mine/a/b"

section_f1() {
  start_test_daemon
  refused "f1: --cwd below another user's 0700 directory" "working directory" "secret-of-other" \
    b exec --cwd "$TEST_TMP/b/pub" "$IMG" cat f
  refused "f1: -B /:/hostroot --cwd into a root-only directory" "working directory" "secret-of-root" \
    b exec -B /:/hostroot --cwd "/hostroot$TEST_TMP/rootonly/pub" "$IMG" cat f
  refused "f1: --cwd into a PrivateTmp-style tmp under a root-only directory" "working directory" "" \
    b exec --cwd "$TEST_TMP/priv/tmp" "$IMG" sh -c 'echo planted > planted; ln -s /etc/shadow link'
  check "f1: nothing was planted there" test -z "$(ls -A "$TEST_TMP/priv/tmp")"
  refused "f1: --fakeroot --cwd below another user's 0700 directory" "working directory" "secret-of-other" \
    b exec --fakeroot --cwd "$TEST_TMP/b/pub" "$IMG" cat f
  expect_out "f1: --cwd into the caller's own 0700 directory" "$TEST_TMP/mine" \
    b exec --cwd "$TEST_TMP/mine" "$IMG" pwd
  expect_out "f1: --fakeroot --cwd into the caller's own 0700 directory" "$TEST_TMP/mine" \
    b exec --fakeroot --cwd "$TEST_TMP/mine" "$IMG" pwd
  expect_out "f1: --cwd into the image" "/opt" b exec --cwd /opt "$IMG" pwd
  # The caller's own working directory, made untraversable after entering
  # it: the cwd bind is opened as the caller, fails, and the container
  # starts in $HOME instead.
  local home
  home=$(getent passwd "$TUSER" | cut -d: -f6)
  expect_out "f1: a working directory the caller can no longer reach is not entered" "$home" \
    as sh -c "cd '$TEST_TMP/mine/a/b' && chmod 0 '$TEST_TMP/mine/a' && exec '$BERTH' exec '$IMG' pwd"
  chmod 0755 "$TEST_TMP/mine/a"
  # Without user binds (user_bind_control = false) nothing changes.
  start_test_daemon $'[binds]\nuser_bind_control = false'
  refused "f1: user_bind_control=false: --cwd below another user's 0700 directory" "working directory" \
    "secret-of-other" b exec --cwd "$TEST_TMP/b/pub" "$IMG" cat f
  refused "f1: user_bind_control=false: --cwd into a PrivateTmp-style tmp" "working directory" "" \
    b exec --cwd "$TEST_TMP/priv/tmp" "$IMG" sh -c 'echo planted > planted'
  check "f1: user_bind_control=false: nothing was planted" test -z "$(ls -A "$TEST_TMP/priv/tmp")"
}

# Local images: the caller's own copy, and $OTHER's behind each protection.
make_images() {
  install -d -o "$TUSER" -m 0755 "$TEST_TMP/ul" "$TEST_TMP/out"
  python3 "$here/make_layouts.py" "$TEST_TMP/ul" && chown -R "$TUSER" "$TEST_TMP/ul" || return 1
  install -d -o "$OTHER" -m 0755 "$TEST_TMP/bl"
  cp -r "$TEST_TMP/ul/." "$TEST_TMP/bl/"
  chown -R "$OTHER" "$TEST_TMP/bl"
  chmod 0700 "$TEST_TMP/bl/layout"
  chmod 0600 "$TEST_TMP/bl/oci.tar" "$TEST_TMP/bl/docker.tar"
  # A layout whose directory the caller may list but whose files are
  # $OTHER's alone, with a tag in index.json: a message that echoes it leaks
  # the file.
  cp -r "$TEST_TMP/ul/layout" "$TEST_TMP/bl/listable"
  sed -i 's/"test"/"secret-tag-of-other"/' "$TEST_TMP/bl/listable/index.json"
  chown -R "$OTHER" "$TEST_TMP/bl/listable"
  chmod 0600 "$TEST_TMP/bl/listable/index.json"
  # ...and one whose index is readable but whose blobs directory is not.
  cp -r "$TEST_TMP/ul/layout" "$TEST_TMP/bl/noblobs"
  chown -R "$OTHER" "$TEST_TMP/bl/noblobs"
  chmod 0700 "$TEST_TMP/bl/noblobs/blobs"
}

section_f2() {
  start_test_daemon
  make_images || { bad setup "local images"; return; }
  check "f2: the caller's own oci: layout converts" \
    b pull -q "$TEST_TMP/out/own.sif" "oci:$TEST_TMP/ul/layout:test"
  expect_out "f2: and runs" "hello from the layout" b exec "$TEST_TMP/out/own.sif" cat /hello
  refused "f2: oci: another user's 0700 layout handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_PATH="$TEST_TMP/bl/layout" \
    "$BERTH" pull -q "$TEST_TMP/out/stolen1.sif" "oci:$TEST_TMP/bl/layout:test"
  check "f2: no image was written from it" test ! -e "$TEST_TMP/out/stolen1.sif"
  refused "f2: oci: a listable layout whose index.json the caller may not read" "index.json" \
    "secret-tag-of-other" b pull -q "$TEST_TMP/out/stolen2.sif" "oci:$TEST_TMP/bl/listable:nope"
  refused "f2: oci: a layout whose blobs the caller may not read" "Permission denied" "" \
    b pull -q "$TEST_TMP/out/stolen3.sif" "oci:$TEST_TMP/bl/noblobs:test"
  check "f2: no image was written from them" test ! -e "$TEST_TMP/out/stolen2.sif" -a ! -e "$TEST_TMP/out/stolen3.sif"
  refused "f2: oci: the output file handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_FDS=0 "$BERTH" pull -q "$TEST_TMP/out/o.sif" "oci:$TEST_TMP/ul/layout:test"
  refused "f2: oci-archive: another user's 0600 archive handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_PATH="$TEST_TMP/bl/oci.tar" \
    "$BERTH" pull -q "$TEST_TMP/out/stolen4.sif" "oci-archive:$TEST_TMP/bl/oci.tar:test"
  refused "f2: docker-archive: another user's 0600 archive handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_PATH="$TEST_TMP/bl/docker.tar" \
    "$BERTH" pull -q "$TEST_TMP/out/stolen5.sif" "docker-archive:$TEST_TMP/bl/docker.tar"
  check "f2: no image was written from the archives" test ! -e "$TEST_TMP/out/stolen4.sif" -a ! -e "$TEST_TMP/out/stolen5.sif"
}

section_rows() {
  start_test_daemon "[binds]
default_binds = [\"$TEST_TMP/b/pub\"]"
  make_images || { bad setup "local images"; return; }
  # image
  cp "$IMG" "$TEST_TMP/b/pub/other.sif" && chmod 0644 "$TEST_TMP/b/pub/other.sif"
  refused "image: below another user's 0700 directory" "Permission denied" "" \
    b exec "$TEST_TMP/b/pub/other.sif" true
  cp "$IMG" "$TEST_TMP/bl/private.sif" && chown "$OTHER" "$TEST_TMP/bl/private.sif" && chmod 0600 "$TEST_TMP/bl/private.sif"
  refused "image: another user's 0600 file" "Permission denied" "" b exec "$TEST_TMP/bl/private.sif" true
  # a sandbox directory (opened O_RDONLY as the caller, like an image file)
  refused "sandbox: below another user's 0700 directory" "Permission denied" "secret-of-other" \
    b exec "$TEST_TMP/b/pub" cat /f
  install -d -o "$OTHER" -m 0700 "$TEST_TMP/bl/sandbox"
  refused "sandbox: another user's 0700 directory" "Permission denied" "" \
    b exec "$TEST_TMP/bl/sandbox" true
  # binds, default binds, home
  refused "--bind: a source below another user's 0700 directory" "Permission denied" "secret-of-other" \
    b exec -B "$TEST_TMP/b/pub:/mnt" "$IMG" cat /mnt/f
  refused "--bind: another user's 0700 directory" "Permission denied" "" \
    b exec -B "$TEST_TMP/bl/layout:/mnt" "$IMG" ls /mnt
  # A mount below a host tree must not tell whether a name exists where the
  # caller may not look: both answers are the same refusal.
  refused "--bind: a destination below another user's 0700 directory (existing name)" \
    "Permission denied" "" b exec -B /:/hostroot -B "$TEST_TMP/mine:/hostroot$TEST_TMP/b/pub" "$IMG" true
  refused "--bind: a destination below another user's 0700 directory (missing name)" \
    "Permission denied" "" b exec -B /:/hostroot -B "$TEST_TMP/mine:/hostroot$TEST_TMP/b/nothing" "$IMG" true
  expect_out "--bind: a destination below the caller's own bind" "ok" \
    b exec -B "$TEST_TMP/mine:/m" -B "$TEST_TMP/ul:/m/a/b" "$IMG" sh -c 'test -d /m/a/b/layout && echo ok'
  expect_out "default bind: one the caller cannot reach is left out" "absent" \
    b exec "$IMG" sh -c "test -e '$TEST_TMP/b/pub/f' && cat '$TEST_TMP/b/pub/f' || echo absent"
  refused "-H: a home below another user's 0700 directory" "Permission denied" "secret-of-other" \
    b exec -H "$TEST_TMP/b/pub:/home/x" "$IMG" cat /home/x/f
  # descriptors handed with a run: stdio, --keep-fd
  refused "run: stdin handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_FDS=0 "$BERTH" exec "$IMG" true </dev/null
  refused "run: --keep-fd handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_FDS=3 "$BERTH" exec --keep-fd 5 "$IMG" true 5</dev/null
  # pull and push outputs and inputs
  refused "pull: the output file handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_FDS=0 "$BERTH" pull -q --no-https "$TEST_TMP/out/r.sif" oras://127.0.0.1:9/x/y:1
  refused "pull: the output file handed read-only" "without write access" "" \
    shim BERTH_SHIM_RDONLY_FDS=0 "$BERTH" pull -q "$TEST_TMP/out/ro.sif" "oci:$TEST_TMP/ul/layout:test"
  refused "pull: an output path the caller may not traverse" "Permission denied" "" \
    b pull -q "$TEST_TMP/b/pub/out.sif" "oci:$TEST_TMP/ul/layout:test"
  refused "oci: a layout below another user's 0700 directory" "Permission denied" "" \
    b pull -q "$TEST_TMP/out/x.sif" "oci:$TEST_TMP/b/pub/layout:test"
  refused "oci-archive: another user's 0600 archive" "Permission denied" "" \
    b pull -q "$TEST_TMP/out/x.sif" "oci-archive:$TEST_TMP/bl/oci.tar:test"
  refused "docker-archive: another user's 0600 archive" "Permission denied" "" \
    b pull -q "$TEST_TMP/out/x.sif" "docker-archive:$TEST_TMP/bl/docker.tar"
  refused "push: the image handed as O_PATH" "O_PATH" "" \
    shim BERTH_SHIM_OPATH_PATH="$TEST_TMP/bl/private.sif" \
    "$BERTH" push -q --no-https "$TEST_TMP/bl/private.sif" oras://127.0.0.1:9/x/y:1
  refused "push: an image the caller may not read" "Permission denied" "" \
    b push -q --no-https "$TEST_TMP/bl/private.sif" oras://127.0.0.1:9/x/y:1
  # client-side files: keys, keyrings, registry credentials, SIF outputs
  cp "$here/../testdata/sif/"*.asc "$TEST_TMP/b/pub/" 2>/dev/null
  refused "key import: a key file below another user's 0700 directory" "Permission denied" "" \
    b key import "$TEST_TMP/b/pub/$(ls "$TEST_TMP/b/pub" | grep -m1 '\.asc$')"
  refused "registry: an --authfile below another user's 0700 directory" "Permission denied" "" \
    b pull -q --authfile "$TEST_TMP/b/pub/auth.json" --no-https "$TEST_TMP/out/r.sif" oras://127.0.0.1:9/x/y:1
  refused "sif: an output below another user's 0700 directory" "Permission denied" "" \
    b sif new "$TEST_TMP/b/pub/new.sif"
}

case "$SECTION" in
  f1) section_f1 ;;
  f2) section_f2 ;;
  rows) section_rows ;;
  *) bad usage "unknown section $SECTION" ;;
esac
finish
