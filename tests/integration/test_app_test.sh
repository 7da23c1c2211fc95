#!/usr/bin/env bash
# test_app_test.sh BERTH BERTHD: `berth test IMG` runs /.singularity.d/test
# (Apptainer's INFO and success when there is none), and `--app NAME` on
# run, exec, shell and test: the app's runscript or test script under
# /scif/apps/NAME (Apptainer's ERROR when it has none), APPTAINER_APPNAME /
# SINGULARITY_APPNAME set so the image's env scripts (94-appsbase.sh, the
# app's scif/env) give the SCIF_APP* variables, the app's bin on PATH and lib
# on LD_LIBRARY_PATH; APP/APPNAME env forms; a hostile app name refused. The
# image is laid out as Apptainer's build writes an image with %app sections.
# A system berthd; as root and as the plain test user.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
test_prologue apptest
daemon_pid=
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
BERTH=$TEST_TMP/berth

# The extra tree: a %test script, app "foo" (runscript, test, bin, lib, env)
# and app "bar" (a bin only), with Apptainer's env scripts for apps.
x=$TEST_TMP/extra
mkdir -p "$x/.singularity.d/env" "$x/scif/apps/foo/scif/env" "$x/scif/apps/foo/bin" \
  "$x/scif/apps/foo/lib" "$x/scif/apps/bar/scif/env" "$x/scif/apps/bar/bin" "$x/scif/data"
printf '#!/bin/sh\necho "test args: $*"\nexit 3\n' >"$x/.singularity.d/test"
printf '#!/bin/sh\necho "foo runscript: $*"\n' >"$x/scif/apps/foo/scif/runscript"
printf '#!/bin/sh\necho "foo test: $*"\n' >"$x/scif/apps/foo/scif/test"
printf '#!/bin/sh\necho foo-tool ran\n' >"$x/scif/apps/foo/bin/foo-tool"
printf '#!/bin/sh\necho bar-tool ran\n' >"$x/scif/apps/bar/bin/bar-tool"
for app in foo bar; do
  cat >"$x/scif/apps/$app/scif/env/01-base.sh" <<EOF
#!/bin/sh
SCIF_APPNAME=$app
SCIF_APPROOT="/scif/apps/$app"
SCIF_APPMETA="/scif/apps/$app/scif"
SCIF_DATA="/scif/data"
SCIF_APPDATA="/scif/data/$app"
export SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_DATA SCIF_APPDATA
EOF
done
printf '#!/bin/sh\nexport FOO_ENV=from-foo-env\n' >"$x/scif/apps/foo/scif/env/90-environment.sh"
cat >"$x/.singularity.d/env/94-appsbase.sh" <<'EOF'
#!/bin/sh
if test -n "${APPTAINER_APPNAME:-}"; then
    export APPTAINER_APPNAME
    if test -d "/scif/apps/${APPTAINER_APPNAME:-}/"; then
        SCIF_APPS="/scif/apps"
        SCIF_APPROOT="/scif/apps/${APPTAINER_APPNAME:-}"
        export SCIF_APPROOT SCIF_APPS
        PATH="/scif/apps/${APPTAINER_APPNAME:-}:$PATH"
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/bin"; then
            PATH="/scif/apps/${APPTAINER_APPNAME:-}/bin:$PATH"
        fi
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/lib"; then
            LD_LIBRARY_PATH="/scif/apps/${APPTAINER_APPNAME:-}/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        fi
        if [ -f "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/01-base.sh" ]; then
            . "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/01-base.sh"
        fi
        if [ -f "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/90-environment.sh" ]; then
            . "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/90-environment.sh"
        fi
        export PATH
    else
        echo "Could not locate the container application: ${APPTAINER_APPNAME}"
        exit 1
    fi
fi
EOF
chmod -R a+rX "$x" && chmod 0755 "$x/.singularity.d/test" "$x"/scif/apps/*/scif/runscript \
  "$x/scif/apps/foo/scif/test" "$x"/scif/apps/*/bin/* "$x"/.singularity.d/env/*.sh "$x"/scif/apps/*/scif/env/*.sh
IMG=$TEST_TMP/apps.sif PLAIN=$TEST_TMP/plain.sif
BERTH_TEST_IMAGE_EXTRA=$x bash "$here/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "apps image"; finish; }
bash "$here/make_test_image.sh" "$BERTH" "$PLAIN" || { bad setup "plain image"; finish; }

SOCK=$TEST_TMP/run/berthd.sock
mkdir -p "$TEST_TMP/etc"
"$TEST_TMP/berthd" --socket "$SOCK" --config-dir "$TEST_TMP/etc" --state-dir "$TEST_TMP/state" \
  --foreground 2>"$TEST_TMP/berthd.log" &
daemon_pid=$!
wait_until 10 test -S "$SOCK" || { bad "daemon starts" "$(cat "$TEST_TMP/berthd.log")"; finish; }

# b WHO ENV... -- ARGS: berth as WHO; stdout in $out, stderr in $err, exit in $rc.
b() {
  local who=$1
  shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local cmd=(env BERTH_SOCKET="$SOCK" "${envs[@]}" "$BERTH" "$@")
  [ "$who" = user ] && cmd=(runuser -u "$TUSER" -- "${cmd[@]}")
  out=$(cd / && "${cmd[@]}" 2>"$TEST_TMP/err" </dev/null)
  rc=$?
  err=$(cat "$TEST_TMP/err")
}
# want NAME RC STDOUT [STDERR]: exact matches.
want() {
  local why=""
  [ "$rc" -eq "$2" ] || why="exit $rc, wanted $2"
  [ "$out" = "$3" ] || why="$why; stdout '$out', wanted '$3'"
  [ $# -lt 4 ] || [ "$err" = "$4" ] || why="$why; stderr '$err', wanted '$4'"
  [ -z "$why" ] && ok "$1" || bad "$1" "$why (stderr: ${err:0:300})"
}

for who in root user; do
  b $who -- test "$IMG" a b
  want "[$who] test runs /.singularity.d/test with the arguments, its status passed" 3 "test args: a b"
  b $who -- test "$PLAIN"
  want "[$who] test without a test script: Apptainer's INFO, exit 0" 0 "" \
    "INFO:    No test script found in container, exiting"
  b $who -- run --app foo "$IMG" x y
  want "[$who] run --app foo: the app's runscript" 0 "foo runscript: x y"
  b $who -- test --app foo "$IMG" z
  want "[$who] test --app foo: the app's test" 0 "foo test: z"
  b $who -- exec --app foo "$IMG" sh -c \
    'echo $APPTAINER_APPNAME $SINGULARITY_APPNAME $SCIF_APPNAME $SCIF_APPROOT $SCIF_APPMETA $SCIF_APPDATA $FOO_ENV'
  want "[$who] exec --app foo: APPNAME and the app's SCIF_APP* variables and env" 0 \
    "foo foo foo /scif/apps/foo /scif/apps/foo/scif /scif/data/foo from-foo-env"
  b $who -- exec --app foo "$IMG" sh -c 'foo-tool; echo ${PATH%%:*}; echo ${LD_LIBRARY_PATH%%:*}'
  want "[$who] exec --app foo: the app's bin first on PATH, its lib on LD_LIBRARY_PATH" 0 \
    "foo-tool ran
/scif/apps/foo/bin
/scif/apps/foo/lib"
  b $who -- exec "$IMG" sh -c 'echo "${APPTAINER_APPNAME:-none} ${SCIF_APPNAME:-none}"; command -v foo-tool || echo no-tool'
  want "[$who] without --app: no app" 0 "none none
no-tool"
  b $who -- run --app bar "$IMG"
  want "[$who] run --app of an app without a runscript: Apptainer's ERROR, exit 1" 1 "" \
    "ERROR:   no runscript for contained app: bar"
  b $who -- test --app bar "$IMG"
  want "[$who] test --app of an app without tests: Apptainer's ERROR, exit 1" 1 "" \
    "ERROR:   No tests for contained app: bar"
  b $who -- run --app nope "$IMG"
  [ "$rc" -eq 1 ] && [ "$out" = "Could not locate the container application: nope" ] &&
    ok "[$who] run --app of no app: the image's appsbase says so, exit 1" || bad "[$who] --app nope" "exit $rc: $out $err"
  b $who APPTAINER_APP=foo -- run "$IMG" e
  want "[$who] APPTAINER_APP=foo is --app foo" 0 "foo runscript: e"
  b $who SINGULARITY_APPNAME=foo -- test "$IMG"
  want "[$who] SINGULARITY_APPNAME=foo is --app foo" 0 "foo test: "
  out=$(printf 'echo $SCIF_APPNAME; bar-tool\n' | { if [ $who = user ]; then runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK" "$BERTH" shell --app bar "$IMG"; else env BERTH_SOCKET="$SOCK" "$BERTH" shell --app bar "$IMG"; fi; } 2>"$TEST_TMP/err")
  rc=$?
  [ "$rc" -eq 0 ] && [ "$out" = "bar
bar-tool ran" ] && ok "[$who] shell --app bar: the app's environment" || bad "[$who] shell --app bar" "exit $rc: $out $(cat "$TEST_TMP/err")"
  b $who -- run --app ../foo "$IMG"
  [ "$rc" -eq 255 ] && grep -q "^FATAL: .*--app.*at most 128 letters" <<<"$err" &&
    ok "[$who] a hostile app name is refused" || bad "[$who] --app ../foo" "exit $rc: $err"
done
finish
