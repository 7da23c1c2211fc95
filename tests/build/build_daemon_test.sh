#!/usr/bin/env bash
# build_daemon_test.sh BERTH BERTHD WORKER: `berth build out.sif app.def`
# end to end against a system berthd, as the unprivileged test user (whose
# subuid range is this test's own subuid file) and as root:
# - a localimage def with every section this builder handles: %setup on the
#   host with $APPTAINER_ROOTFS, %files, %post (whoami says root, output
#   streamed), %environment, %runscript, %labels, %help, %test; the image
#   runs, `inspect --deffile` prints the definition, the file is the
#   user's, and the daemon's staging is empty afterwards;
# - the same definition as JSON (`build --json`), as the user; a two-stage
#   one as root; a hostile app name refused;
# - --notest and --section; a failing %post (Apptainer's exit status line);
# - `berth build out.sif base.sif` (conversion) and the root-mapped mode
#   (no subuid entry); --sandbox, and a failed one leaving nothing;
# - the client SIGKILLed mid-%post, and berthd SIGKILLed and restarted
#   mid-%post: %post is killed and the staging removed;
# - hostile definitions: %files sources the caller cannot read (/etc/shadow,
#   a root-only file), %files destinations through an absolute symlink and
#   `..` in the root (they stay inside it), %setup writing where the caller
#   may not, an output directory the caller cannot write, a --tmpdir the
#   caller cannot write; each fails with one FATAL line and leaves nothing.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 WORKER_SRC=$3
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue build
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
install -m 0755 "$WORKER_SRC" "$TEST_TMP/berth-build-worker"
BERTH=$TEST_TMP/berth
BASE=$TEST_TMP/base.sif
bash "$here/../integration/make_test_image.sh" "$BERTH" "$BASE" base-image || { bad setup "test image"; finish; }
install -d -m 0755 "$TEST_TMP/ids"
ME=$(id -u "$TUSER")
printf '%s:200000:65536\n' "$TUSER" >"$TEST_TMP/ids/subuid"
printf '%s:200000:65536\n' "$TUSER" >"$TEST_TMP/ids/subgid"
chmod 0644 "$TEST_TMP/ids/subuid" "$TEST_TMP/ids/subgid"
SOCK=$TEST_TMP/run/berthd.sock STATE=$TEST_TMP/state STAGE=$TEST_TMP/stage
mkdir -p "$TEST_TMP/etc"
printf '[build]\nbuild_dir = "%s"\n' "$STAGE" >"$TEST_TMP/etc/berth.conf"
"$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" --state-dir "$STATE" \
  --subuid-file "$TEST_TMP/ids/subuid" --subgid-file "$TEST_TMP/ids/subgid" \
  --build-worker "$TEST_TMP/berth-build-worker" --foreground \
  2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }
OWN=$TEST_TMP/own
install -d -o "$TUSER" -m 0755 "$OWN"
cp "$BASE" "$OWN/base.sif" && chown "$TUSER" "$OWN/base.sif"
b() { (cd "$OWN" && runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" "$@"); }
r() { (cd "$OWN" && env BERTH_SOCKET="$SOCK" "$BERTH" "$@"); }
staging_empty() { [ -z "$(ls -A "$STAGE" 2>/dev/null)" ] && [ -z "$(ls -A "$STATE/build-staging")" ]; }

# --- every section, as the user ---
echo "copied-content" >"$OWN/data.txt"; chown "$TUSER" "$OWN/data.txt"
mkdir -p "$OWN/tree/sub"; echo deep >"$OWN/tree/sub/f"; chown -R "$TUSER" "$OWN/tree"
cat >"$OWN/app.def" <<'DEF'
Bootstrap: localimage
From: base.sif

%setup
    echo setup-ran >"$APPTAINER_ROOTFS/setup-marker"

%files
    data.txt /opt/data.txt
    tree /opt/tree

%post
    whoami >/post-whoami
    echo "post-output-line"
    echo "export FROM_POST=yes" >>"$APPTAINER_ENVIRONMENT"

%environment
    export GREETING=hello-from-env

%runscript
    echo "runscript: $GREETING $*"

%labels
    Maintainer berth-tests

%help
    This image was built by berth.

%test
    test -f /opt/data.txt
    echo "test-section-ran"
DEF
chown "$TUSER" "$OWN/app.def"
b build out.sif app.def >"$TEST_TMP/build.out" 2>"$TEST_TMP/build.err"
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$OWN/out.sif" ]; then ok "user: build succeeds"
else bad "user: build succeeds" "rc=$rc $(cat "$TEST_TMP/build.err") $(tail -5 "$TEST_TMP/berthd.log")"; finish; fi
check "user: %post output streamed to the client" grep -qx "post-output-line" "$TEST_TMP/build.out"
check "user: a closing summary of phase times" \
  grep -qE '^INFO:    Build phases: .*%post [0-9.]+s, .*squash [0-9.]+s, total [0-9.]+s$' "$TEST_TMP/build.err"
check "user: not on a terminal, plain lines (no redrawn line)" sh -c "! grep -q \$'\\r' '$TEST_TMP/build.err'"
check "user: %test ran and streamed" grep -qx "test-section-ran" "$TEST_TMP/build.out"
expect_out "user: the image file is the caller's" "$TUSER" stat -c %U "$OWN/out.sif"
expect_out "user: %post's whoami says root" "root" b exec out.sif cat /post-whoami
expect_out "user: %setup wrote into the root" "setup-ran" b exec out.sif cat /setup-marker
expect_out "user: %files copied a file" "copied-content" b exec out.sif cat /opt/data.txt
expect_out "user: %files copied a tree" "deep" b exec out.sif cat /opt/tree/sub/f
expect_out "user: runscript with %environment" "runscript: hello-from-env a b" b run out.sif a b
expect_out "user: \$APPTAINER_ENVIRONMENT from %post" "yes" b exec out.sif sh -c 'echo $FROM_POST'
expect_out "user: the base's files are there" "base-image" b exec out.sif cat /opt/marker
check "user: inspect --deffile prints the definition" \
  sh -c "cd '$OWN' && runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' inspect --deffile out.sif | grep -q '^Bootstrap: localimage'"
check "user: inspect --labels has %labels" \
  sh -c "cd '$OWN' && '$BERTH' inspect --labels out.sif | grep -q 'berth-tests'"
check "user: inspect --helpfile has %help" \
  sh -c "cd '$OWN' && '$BERTH' inspect --helpfile out.sif | grep -q 'built by berth'"
check "user: SIF holds Def.FILE and a squashfs PrimSys" \
  sh -c "'$BERTH' sif list '$OWN/out.sif' | grep -q 'Def.FILE' && '$BERTH' sif list '$OWN/out.sif' | grep -q 'Squashfs'"
# inspect-metadata.json (JSON.Generic, the image's group): berth inspect
# answers from it exactly as from the filesystem (the same output once the
# object is deleted).
meta_id=$("$BERTH" sif list "$OWN/out.sif" | awk -F'|' '/JSON.Generic/ {gsub(/ /, "", $1); print $1; exit}')
if [ -n "$meta_id" ]; then
  "$BERTH" sif dump "$meta_id" "$OWN/out.sif" >"$TEST_TMP/meta.json" 2>/dev/null
  check "user: inspect-metadata.json is Apptainer's inspect JSON" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["type"] == "container" and "Bootstrap: localimage" in d["data"]["attributes"]["deffile"]' "$TEST_TMP/meta.json"
  "$BERTH" inspect --json --all "$OWN/out.sif" >"$TEST_TMP/inspect-meta.json" 2>&1
  cp "$OWN/out.sif" "$TEST_TMP/nometa.sif" && "$BERTH" sif del "$meta_id" "$TEST_TMP/nometa.sif"
  "$BERTH" inspect --json --all "$TEST_TMP/nometa.sif" >"$TEST_TMP/inspect-fs.json" 2>&1
  check "user: inspect answers the same from inspect-metadata.json as from the filesystem" \
    cmp -s "$TEST_TMP/inspect-meta.json" "$TEST_TMP/inspect-fs.json"
else
  bad "user: the SIF holds inspect-metadata.json" "$("$BERTH" sif list "$OWN/out.sif")"
fi
check "user: no temp file left beside the output" sh -c "! ls -A '$OWN' | grep -q berth-"
check "user: staging removed after success" staging_empty

# --- multi-stage: %files from an earlier stage, resolved inside that stage ---
cat >"$OWN/multi.def" <<'DEF'
Bootstrap: localimage
From: base.sif
Stage: one

%post
    mkdir -p /opt/built/sub /etc/only-in-one
    echo built-in-one >/opt/built/app
    echo nested >/opt/built/sub/n
    echo a >/opt/built/a.txt; echo b >/opt/built/b.txt
    echo stage-one-file >/etc/only-in-one/target
    ln -s /etc/only-in-one/target /opt/built/abs-link
    touch /post-one

Bootstrap: localimage
From: base.sif
Stage: two

%files from one
    /opt/built/app /new/deep/dir/app
    /opt/built/sub /opt/sub
    /opt/built/*.txt /opt/
    /opt/built/abs-link /opt/through-link

%post
    cat /opt/through-link >/post-two
DEF
chown "$TUSER" "$OWN/multi.def"
b build multi.sif multi.def >"$TEST_TMP/multi.out" 2>&1
if [ -f "$OWN/multi.sif" ]; then ok "multi-stage: builds"
else bad "multi-stage: builds" "$(tail -5 "$TEST_TMP/multi.out")"; fi
check "multi-stage: each stage is announced" grep -q "Building stage one" "$TEST_TMP/multi.out"
expect_out "multi-stage: a file into missing parent directories" "built-in-one" b exec multi.sif cat /new/deep/dir/app
expect_out "multi-stage: a directory" "nested" b exec multi.sif cat /opt/sub/n
expect_out "multi-stage: a glob" "a b" b exec multi.sif sh -c 'echo $(cat /opt/a.txt /opt/b.txt)'
expect_out "multi-stage: an absolute symlink resolves in the stage, not on the host" "stage-one-file" b exec multi.sif cat /opt/through-link
expect_out "multi-stage: the copy happens before the last stage's %post" "stage-one-file" b exec multi.sif cat /post-two
expect_rc "multi-stage: only the last stage is the image" 1 b exec multi.sif test -e /post-one
check "multi-stage: staging removed" staging_empty
printf 'Bootstrap: localimage\nFrom: base.sif\nStage: one\n\nBootstrap: localimage\nFrom: base.sif\n\n%%files from one\n    /no/such/file /x\n' >"$OWN/multi-missing.def"
expect_fatal_after_progress "multi-stage: a source missing in the stage" "/no/such/file: No such file or directory" \
  b build multi-missing.sif multi-missing.def
check "multi-stage: staging removed after a failure" staging_empty

# --- a JSON definition (build --json): the same build, Def.FILE written from it ---
b build --dry-run --json app.def >"$OWN/app.json" 2>"$TEST_TMP/json.err"
b build --json json.sif app.json >"$TEST_TMP/json.out" 2>&1
if [ -f "$OWN/json.sif" ]; then ok "json: user: build --json succeeds"
else bad "json: user: build --json succeeds" "$(cat "$TEST_TMP/json.err") $(tail -5 "$TEST_TMP/json.out")"; fi
check "json: user: %test ran" grep -qx "test-section-ran" "$TEST_TMP/json.out"
expect_out "json: user: runscript with %environment" "runscript: hello-from-env a b" b run json.sif a b
expect_out "json: user: %files and %setup" "copied-content setup-ran" \
  b exec json.sif sh -c 'echo $(cat /opt/data.txt /setup-marker)'
check "json: user: inspect --deffile prints the definition written from the JSON" \
  sh -c "cd '$OWN' && '$BERTH' inspect --deffile json.sif | grep -qx '%runscript'"
b build --dry-run --json multi.def >"$OWN/multi.json" 2>/dev/null
r build --json multi-json.sif multi.json >"$TEST_TMP/json-multi.out" 2>&1
expect_out "json: root: two stages, %files from the first" "stage-one-file" r exec multi-json.sif cat /post-two
printf '{"header": {"bootstrap": "localimage", "from": "base.sif"},\n "customData": {"apprun ../x": "id"}}\n' >"$OWN/bad.json"
expect_fatal "json: a hostile app name, refused with its line" \
  "bad.json:2: app section apprun: app name \"../x\" is not a directory name" b build --json bad.sif bad.json
check "json: staging removed" staging_empty

# --- %pre, and SCIF apps: Apptainer's layout, %appfiles, %appinstall at the end of %post ---
cat >"$OWN/apps.def" <<'DEF'
Bootstrap: localimage
From: base.sif

%pre
    echo "pre-ran $APPTAINER_ROOTFS" >pre-marker

%post
    echo post-ran >/post-marker

%appinstall tool
    echo "installed-in $(pwd) $SCIF_APPNAME $(cat /post-marker)" >installed.txt

%appfiles tool
    data.txt            # a comment
    data.txt bin/data-copy

%appenv tool
    export TOOL_ENV=tool-env

%apprun tool
    echo "tool runs: $*"

%applabels tool
    Version 1.2 <beta>

%apphelp tool
    Tool help.

%apprun other-app
    echo other
DEF
chown "$TUSER" "$OWN/apps.def"
b build apps.sif apps.def >"$TEST_TMP/apps.out" 2>&1
if [ -f "$OWN/apps.sif" ]; then ok "apps: builds"
else bad "apps: builds" "$(tail -5 "$TEST_TMP/apps.out")"; fi
expect_out "%pre runs on the host in the working directory, with no root yet" "pre-ran " cat "$OWN/pre-marker"
expect_out "%pre runs as the caller" "$TUSER" stat -c %U "$OWN/pre-marker"
expect_out "apps: %appinstall runs after %post, in the app's root, with its SCIF_ variables" \
  "installed-in /scif/apps/tool tool post-ran" b exec apps.sif cat /scif/apps/tool/installed.txt
expect_out "apps: %appfiles into the app's root (same name, and a destination)" "copied-content copied-content" \
  b exec apps.sif sh -c 'echo $(cat /scif/apps/tool/data.txt /scif/apps/tool/bin/data-copy)'
expect_out "apps: %apprun is the app's runscript" "tool runs: a b" b exec apps.sif /scif/apps/tool/scif/runscript a b
expect_out "apps: %appenv" "tool-env" b exec apps.sif sh -c '. /scif/apps/tool/scif/env/90-environment.sh; echo $TOOL_ENV'
expect_out "apps: 01-base.sh" "tool /scif/data/tool/output" \
  b exec apps.sif sh -c '. /scif/apps/tool/scif/env/01-base.sh; echo $SCIF_APPNAME $SCIF_APPOUTPUT'
expect_out "apps: 94-appsbase.sh exports every app's paths (names made variable-safe)" \
  "/scif/apps/tool/bin /scif/apps/tool/scif/env/90-environment.sh /scif/apps/other-app/scif/runscript unset" \
  b exec apps.sif sh -c 'echo $SCIF_APPBIN_tool $SCIF_APPENV_tool $SCIF_APPRUN_other_app ${SCIF_APPENV_other_app-unset}'
expect_out "apps: labels.json as Go writes it" \
  "$(printf '{\n\t"SCIF_APP_NAME": "tool",\n\t"Version": "1.2 \\u003cbeta\\u003e"\n}')" \
  b exec apps.sif cat /scif/apps/tool/scif/labels.json
expect_out "apps: run --app runs the app's runscript" "tool runs: x" b run --app tool apps.sif x
expect_out "apps: --app gives the app's environment (95-apps.sh)" "/scif/apps/tool tool-env /scif/apps/tool/bin" \
  b exec --app tool apps.sif sh -c 'echo $SCIF_APPROOT $TOOL_ENV ${PATH%%:*}'
expect_out "apps: without --app, no app's environment" "unset" b exec apps.sif sh -c 'echo ${TOOL_ENV-unset}'
expect_out "apps: %apphelp (the section as written, as Apptainer keeps it)" "    Tool help." b exec apps.sif cat /scif/apps/tool/scif/runscript.help
expect_out "apps: data directories" "yes" b exec apps.sif sh -c 'test -d /scif/data/other-app/input && test -d /scif/data/other-app/output && echo yes'

# --- Bootstrap: busybox, from file:// and from http:// ---
cat >"$OWN/bb.def" <<'DEF'
Bootstrap: busybox
MirrorURL: file:///bin/busybox

%post
    whoami >/post-whoami
DEF
chown "$TUSER" "$OWN/bb.def"
b build bb.sif bb.def >"$TEST_TMP/bb.out" 2>&1
if [ -f "$OWN/bb.sif" ]; then ok "busybox: builds from file://"
else bad "busybox: builds from file://" "$(tail -5 "$TEST_TMP/bb.out")"; fi
expect_out "busybox: the applets are linked in /bin, %post ran with them" "root" b exec bb.sif cat /post-whoami
expect_out "busybox: Apptainer's account files" "root:!:0:0:root:/root:/bin/sh" b exec bb.sif head -n1 /etc/passwd
expect_out "busybox: an empty runscript" "#!/bin/sh" b exec bb.sif cat /.singularity.d/runscript
mkdir -p "$TEST_TMP/www" && cp /bin/busybox "$TEST_TMP/www/busybox" && chmod -R a+rX "$TEST_TMP/www"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$TEST_TMP/www" && exec python3 -m http.server --bind 127.0.0.1 "$port") >/dev/null 2>&1 &
www_pid=$!
wait_until 10 sh -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null
printf 'Bootstrap: busybox\nMirrorURL: http://127.0.0.1:%s/busybox\n' "$port" >"$OWN/bbhttp.def"
b build bbhttp.sif bbhttp.def >"$TEST_TMP/bbhttp.out" 2>&1
expect_out "busybox: builds from http://" "ok" b exec bbhttp.sif sh -c 'ls /bin/ls >/dev/null && echo ok'
printf 'Bootstrap: busybox\nMirrorURL: http://127.0.0.1:%s/missing\n' "$port" >"$OWN/bb404.def"
expect_fatal_after_progress "busybox: a MirrorURL that is not there" "HTTP status 404" b build bb404.sif bb404.def
kill "$www_pid" 2>/dev/null; wait "$www_pid" 2>/dev/null
echo "not a binary" >"$OWN/notbb"; chown "$TUSER" "$OWN/notbb"
printf 'Bootstrap: busybox\nMirrorURL: file://%s/notbb\n' "$OWN" >"$OWN/bbbad.def"
expect_fatal_after_progress "busybox: a MirrorURL that is no busybox" "while performing busybox install" b build bbbad.sif bbbad.def
install -d -m 0700 "$TEST_TMP/rootonly"; echo secret >"$TEST_TMP/rootonly/secret"
printf 'Bootstrap: busybox\nMirrorURL: file://%s/rootonly/secret\n' "$TEST_TMP" >"$OWN/bbsecret.def"
expect_fatal_after_progress "busybox: a MirrorURL file the caller cannot read" "Permission denied" b build bbsecret.sif bbsecret.def
# A "busybox" that lists an applet outside /bin: refused, nothing linked.
printf '#!/bin/sh\necho ../../../escaped-applet\n' >"$OWN/fakebb"; chmod 0755 "$OWN/fakebb"; chown "$TUSER" "$OWN/fakebb"
printf 'Bootstrap: busybox\nMirrorURL: file://%s/fakebb\n' "$OWN" >"$OWN/bbfake.def"
expect_fatal_after_progress "busybox: an applet name that leaves /bin is refused" "'../../../escaped-applet' is not an applet name" \
  b build bbfake.sif bbfake.def
check "busybox: ... and nothing was linked outside the root" sh -c "! find '$STAGE' '$OWN' -name escaped-applet | grep -q ."
check "busybox: staging removed" staging_empty

# --- on a terminal: each phase's line redrawn with its time (percent on squash) ---
script -qec "cd '$OWN' && runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' build --notest tty.sif app.def" \
  /dev/null >"$TEST_TMP/tty.out" 2>&1
check "terminal: the squash line is redrawn with its percent, then its time" \
  sh -c "grep -aqE 'squash: [a-z0-9]+ +[0-9]+%' '$TEST_TMP/tty.out' && grep -aqE 'squash: [a-z0-9]+ \\([0-9.]+s\\)' '$TEST_TMP/tty.out'"

# --- flags ---
expect_fatal_after_progress "user: an existing output needs --force" "already exists; use --force" \
  b build out.sif app.def
b build --force --notest out.sif app.def >"$TEST_TMP/notest.out" 2>&1
check "user: --force rebuilds, --notest skips %test" sh -c "! grep -q test-section-ran '$TEST_TMP/notest.out' && grep -q post-output-line '$TEST_TMP/notest.out'"
b build --section setup out.sif.2 app.def >"$TEST_TMP/section.out" 2>&1
check "user: --section setup skips %post" sh -c "! grep -q post-output-line '$TEST_TMP/section.out' && test -f '$OWN/out.sif.2'"
# %test sees the root read-only, as Apptainer's; --writable-tmpfs gives it
# a discarded layer (in "/" and, copied up, in the image's /opt).
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%test\n    touch /opt/test-deep\n    touch /test-top\n    echo test-wrote\n' >"$OWN/tmpfs.def"
b build tmpfs.sif tmpfs.def >"$TEST_TMP/ro.out" 2>"$TEST_TMP/ro.err"
check "user: %test cannot write: its root is read-only" sh -c "grep -q '^FATAL:.*exit status 1 (%test, tmpfs.def:4)' '$TEST_TMP/ro.err' && grep -q 'Read-only file system' '$TEST_TMP/ro.out' '$TEST_TMP/ro.err'"
b build --force --writable-tmpfs tmpfs.sif tmpfs.def >"$TEST_TMP/tmpfs.out" 2>&1
check "user: --writable-tmpfs: %test writes" grep -qx test-wrote "$TEST_TMP/tmpfs.out"
expect_rc "user: --writable-tmpfs: what %test wrote is not in the image" 1 \
  b exec tmpfs.sif sh -c 'test -e /test-top || test -e /opt/test-deep'

# The account files %test's generated ones merge are the staged root's, read
# with the caller's rights: a hard link there to a root-only file (what a host
# without fs.protected_hardlinks lets a user make; root makes it here while
# %setup waits) is refused, never read as root into the container.
printf 'secret-%s:x:0:0::/:/bin/sh\n' "$$" >"$TEST_TMP/secret" && chmod 0600 "$TEST_TMP/secret"
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%%%setup\n    touch %s/acct-paused\n    i=0; while [ ! -e %s/acct-go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done\n\n%%%%test\n    cat /etc/passwd\n' \
  "$OWN" "$OWN" >"$OWN/acct.def"
(b build acct.sif acct.def >"$TEST_TMP/acct.out" 2>&1; echo $? >"$TEST_TMP/acct.rc") &
acct_build=$!
if wait_until 30 test -e "$OWN/acct-paused"; then
  ln -f "$TEST_TMP/secret" "$(ls -d "$STAGE"/berth-build-*/rootfs | head -1)/etc/passwd"
  touch "$OWN/acct-go"
  wait_until 60 test -e "$TEST_TMP/acct.rc"
  check "user: %test's account files are read as the caller: a linked root-only file is not read" \
    sh -c "! grep -q 'secret-$$' '$TEST_TMP/acct.out' && grep -q \"the build's root.*Permission denied\" '$TEST_TMP/acct.out'"
else
  bad "user: %test's account files are read as the caller: a linked root-only file is not read" "%setup never paused: $(cat "$TEST_TMP/acct.out")"
fi
wait "$acct_build"

# --- failures ---
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%post\n    echo before-fail\n    exit 3\n' >"$OWN/fail.def"
expect_fatal_after_progress "user: failing %post gives the exit status" \
  "while running engine: exit status 3 (%post, fail.def:4)" b build fail.sif fail.def
check "user: failed build leaves no output" sh -c "! ls -A '$OWN' | grep -q 'fail.sif'"
check "user: staging removed after a failure" staging_empty

# --- hostile, as the user ---
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%files\n    /etc/shadow /x\n' >"$OWN/shadow.def"
expect_fatal_after_progress "hostile: %files /etc/shadow is read as the caller" \
  "/etc/shadow: Permission denied" b build shadow.sif shadow.def
install -d -m 0700 "$TEST_TMP/rootonly"; echo secret >"$TEST_TMP/rootonly/secret"
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%files\n    %s /x\n' "$TEST_TMP/rootonly/secret" >"$OWN/secret.def"
expect_fatal_after_progress "hostile: %files of a root-only file" "Permission denied" b build secret.sif secret.def
# A symlink in the root pointing at a host directory of the caller's, and
# a destination climbing with "..": both land inside the root.
install -d -o "$TUSER" -m 0755 "$OWN/target"
cat >"$OWN/escape.def" <<DEF
Bootstrap: localimage
From: base.sif

%setup
    ln -s $OWN/target "\$APPTAINER_ROOTFS/evil"

%files
    data.txt /evil/through-symlink
    data.txt /../../../../../..$OWN/target/through-dotdot
DEF
b build escape.sif escape.def >"$TEST_TMP/escape.out" 2>&1
check "hostile: the escape def builds" test -f "$OWN/escape.sif"
check "hostile: %files through an absolute symlink stays in the root" \
  sh -c "! test -e '$OWN/target/through-symlink'"
check "hostile: %files with .. stays in the root" sh -c "! test -e '$OWN/target/through-dotdot'"
# (from /, without the host's /tmp over the image's: $OWN lives there)
at_root() { (cd / && runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" "$@"); }
expect_out "hostile: the symlinked copy is in the image" "copied-content" \
  at_root exec --no-mount tmp "$OWN/escape.sif" cat "$OWN/target/through-symlink"
expect_out "hostile: the dotdot copy is in the image" "copied-content" \
  at_root exec --no-mount tmp "$OWN/escape.sif" cat "$OWN/target/through-dotdot"
install -d -m 0755 "$TEST_TMP/rootdir"
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%setup\n    touch %s/by-setup\n' "$TEST_TMP/rootdir" >"$OWN/setup.def"
expect_fatal_after_progress "hostile: %setup runs as the caller, not root" \
  "while running engine: exit status 1 (%setup" b build setup.sif setup.def
check "hostile: %setup created nothing in root's directory" sh -c "! test -e '$TEST_TMP/rootdir/by-setup'"
expect_fatal_after_progress "hostile: output in a directory the caller cannot write" \
  "Permission denied" b build "$TEST_TMP/rootdir/out.sif" app.def
check "hostile: nothing written there" sh -c "test -z \"\$(ls -A '$TEST_TMP/rootdir')\""
expect_fatal_after_progress "hostile: --tmpdir the caller cannot write" \
  "--tmpdir: $TEST_TMP/rootdir: Permission denied" b build --tmpdir "$TEST_TMP/rootdir" t.sif app.def
check "hostile: nothing staged in that --tmpdir" sh -c "test -z \"\$(ls -A '$TEST_TMP/rootdir')\""
install -d -o "$TUSER" -m 0700 "$OWN/tmp"
b build --tmpdir "$OWN/tmp" tmpdir.sif app.def >/dev/null 2>"$TEST_TMP/tmpdir.err"
check "user: --tmpdir of the caller's is used and emptied" \
  sh -c "test -f '$OWN/tmpdir.sif' && test -z \"\$(ls -A '$OWN/tmp')\""
expect_fatal_after_progress "user: Bootstrap: yum on a host without dnf names the package" \
  "neither yum nor dnf in path (looked in /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin): install the Debian package dnf" \
  sh -c "cd '$OWN' && printf 'Bootstrap: yum\nMirrorURL: http://127.0.0.1:9/bb\n' >d.def && runuser -u '$TUSER' -- env BERTH_SOCKET='$SOCK' '$BERTH' build d.sif d.def"
check "staging empty after the hostile cases" staging_empty

# --- conversion: a SIF as the spec (a localimage definition made by the client) ---
b build conv.sif base.sif >/dev/null 2>"$TEST_TMP/conv.err"
expect_out "user: build out.sif base.sif converts the image" "base-image" b exec conv.sif cat /opt/marker

# --- --sandbox: the tree in a directory of the caller's ---
b build --sandbox sbx/ app.def >"$TEST_TMP/sbx.out" 2>&1 || echo "sandbox build output: $(tail -5 "$TEST_TMP/sbx.out")"
check "sandbox: builds" test -d "$OWN/sbx/.singularity.d"
expect_out "sandbox: the directory is the caller's" "$TUSER" stat -c %U "$OWN/sbx"
expect_out "sandbox: %post's whoami says root" "root" cat "$OWN/sbx/post-whoami"
expect_out "sandbox: %files copied" "copied-content" cat "$OWN/sbx/opt/data.txt"
check "sandbox: the runscript is there" grep -q 'runscript: $GREETING' "$OWN/sbx/.singularity.d/runscript"
b build --sandbox fsbx fail.def >/dev/null 2>"$TEST_TMP/fsbx.err"
check "sandbox: a failed build leaves no directory" sh -c "! ls -A '$OWN' | grep -q fsbx"
check "sandbox: staging empty" staging_empty

# --- --update: the sections run over the existing sandbox, no base ---
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%post\n    echo updated >/updated\n    test -e /post-whoami\n' >"$OWN/upd.def"
expect_rc "sandbox without --update or --force: refused" 255 b build --sandbox sbx upd.def
b build --sandbox --update sbx upd.def >"$TEST_TMP/upd.out" 2>&1
expect_out "--update: %post ran in the existing sandbox" "updated root" \
  sh -c "echo \$(cat '$OWN/sbx/updated') \$(cat '$OWN/sbx/post-whoami')"
check "--update: says it builds into the existing container" grep -q "Building into existing container" "$TEST_TMP/upd.out"
b build --sandbox --update sbx fail.def >/dev/null 2>&1
check "--update: a failed update leaves the sandbox as it was" test -s "$OWN/sbx/updated"
check "--update: staging empty" staging_empty
expect_fatal "--update of a SIF is refused" "only sandbox update is supported" b build --update x.sif upd.def
install -d -m 0755 "$OWN/rootsbx"
expect_fatal_after_progress "--update of a directory that is not the caller's is refused" \
  "the sandbox must be a directory of the caller's" b build --sandbox --update rootsbx upd.def

# --- --fix-perms: the owner may read, write and delete everything unpacked ---
# /locked/link points at a host file of the caller's: --fix-perms must not follow it.
echo host >"$OWN/hostfile" && chown "$TUSER" "$OWN/hostfile" && chmod 0400 "$OWN/hostfile"
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%post\n    mkdir -p /locked/sub\n    echo x >/locked/sub/f\n    ln -s %s/hostfile /locked/link\n    chmod 0444 /locked/sub/f\n    chmod 0555 /locked/sub\n    chmod 0500 /locked\n' "$OWN" >"$OWN/locked.def"
b build locked.sif locked.def >/dev/null 2>&1
b build --sandbox plain locked.sif >/dev/null 2>&1
expect_out "without --fix-perms: the modes are the image's" "500 555 444" \
  sh -c "stat -c %a '$OWN/plain/locked' '$OWN/plain/locked/sub' '$OWN/plain/locked/sub/f' | tr '\n' ' ' | sed 's/ \$//'"
b build --sandbox --fix-perms fixed locked.sif >/dev/null 2>&1
expect_out "--fix-perms: directories u+rwx, files u+rw" "700 755 644" \
  sh -c "stat -c %a '$OWN/fixed/locked' '$OWN/fixed/locked/sub' '$OWN/fixed/locked/sub/f' | tr '\n' ' ' | sed 's/ \$//'"
expect_out "--fix-perms: a link is never followed" "400" stat -c %a "$OWN/hostfile"
check "--fix-perms: the user can delete the sandbox" sh -c "cd '$OWN' && runuser -u '$TUSER' -- rm -rf fixed && ! test -e fixed"
chmod -R u+rwX "$OWN/plain"

# --- no subuid entry: the root-mapped namespace, as Apptainer falls back ---
cp "$TEST_TMP/ids/subuid" "$TEST_TMP/ids/subuid.keep"; : >"$TEST_TMP/ids/subuid"
b build --notest rootmapped.sif app.def >/dev/null 2>"$TEST_TMP/rootmapped.err"
check "user, no subuid entry: Apptainer's root-mapped INFO line" \
  grep -q "User not listed in $TEST_TMP/ids/subuid, trying root-mapped namespace" "$TEST_TMP/rootmapped.err"
expect_out "user, no subuid entry: %post's whoami says root" "root" b exec rootmapped.sif cat /post-whoami
cp "$TEST_TMP/ids/subuid.keep" "$TEST_TMP/ids/subuid"

# --- the client killed mid-%post, then the daemon killed mid-%post ---
printf 'Bootstrap: localimage\nFrom: base.sif\n\n%%post\n    echo started-post\n    exec sleep 67\n' >"$OWN/slow.def"
post_running() { pgrep -u "$TUSER" -f "sleep 67" >/dev/null; }
slow_build() {
  (cd "$OWN" && exec runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" build slow.sif slow.def) \
    >"$TEST_TMP/slow.out" 2>&1 &
  wait_until 30 grep -q started-post "$TEST_TMP/slow.out" && wait_until 10 post_running
}
if slow_build; then
  kill -9 "$(pgrep -u "$TUSER" -f "$BERTH build slow.sif")"
  check "client SIGKILL mid-%post: %post is killed" wait_until 15 sh -c "! pgrep -u '$TUSER' -f 'sleep 67'"
  check "client SIGKILL mid-%post: staging removed" wait_until 15 staging_empty
else bad "client SIGKILL mid-%post" "the build did not reach %post: $(cat "$TEST_TMP/slow.out")"; fi
start_daemon() {
  "$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" --state-dir "$STATE" \
    --subuid-file "$TEST_TMP/ids/subuid" --subgid-file "$TEST_TMP/ids/subgid" \
    --build-worker "$TEST_TMP/berth-build-worker" --foreground 2>>"$TEST_TMP/berthd.log" &
  daemon_pid=$!
  wait_until 10 test -S "$SOCK"
}
if slow_build; then
  kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; rm -f "$SOCK"
  start_daemon
  check "daemon restart mid-%post: the stale %post is killed" wait_until 15 sh -c "! pgrep -u '$TUSER' -f 'sleep 67'"
  check "daemon restart mid-%post: stale staging swept" wait_until 15 staging_empty
else bad "daemon restart mid-%post" "the build did not reach %post: $(cat "$TEST_TMP/slow.out")"; fi

# --- as root ---
cp "$OWN/app.def" "$TEST_TMP/root.def"
(cd "$OWN" && env BERTH_SOCKET="$SOCK" "$BERTH" build "$TEST_TMP/root.sif" "$TEST_TMP/root.def") \
  >"$TEST_TMP/root.out" 2>&1
check "root: build succeeds" test -f "$TEST_TMP/root.sif"
expect_out "root: %post's whoami says root" "root" r exec "$TEST_TMP/root.sif" cat /post-whoami
expect_out "root: runscript" "runscript: hello-from-env x" r run "$TEST_TMP/root.sif" x
cp "$OWN/tmpfs.def" "$TEST_TMP/tmpfs.def"
sed -i "s|^From: base.sif|From: $OWN/base.sif|" "$TEST_TMP/tmpfs.def"
r build "$TEST_TMP/tmpfs.sif" "$TEST_TMP/tmpfs.def" >"$TEST_TMP/ro.out" 2>"$TEST_TMP/ro.err"
check "root: %test cannot write: its root is read-only" sh -c "grep -q '^FATAL:.*exit status 1 (%test, tmpfs.def:4)' '$TEST_TMP/ro.err' && grep -q 'Read-only file system' '$TEST_TMP/ro.out' '$TEST_TMP/ro.err'"
r build --force --writable-tmpfs "$TEST_TMP/tmpfs.sif" "$TEST_TMP/tmpfs.def" >"$TEST_TMP/tmpfs.out" 2>&1
check "root: --writable-tmpfs: %test writes" grep -qx test-wrote "$TEST_TMP/tmpfs.out"
expect_rc "root: --writable-tmpfs: what %test wrote is not in the image" 1 \
  r exec "$TEST_TMP/tmpfs.sif" sh -c 'test -e /test-top || test -e /opt/test-deep'
check "staging empty at the end" staging_empty
finish
