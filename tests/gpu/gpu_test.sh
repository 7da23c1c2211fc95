#!/usr/bin/env bash
# gpu_test.sh BERTH BERTHD MODE WHO WORKER: --nv, --device (CDI) and the job's GPUs
# end to end, without a GPU: a fake NVIDIA driver root built here
# (make_fake_driver_root.sh) that berthd takes from berth.conf's test-only
# `[gpu] test_driver_root`, CDI specs in a root-owned directory, the real
# daemon, real mounts and namespaces.
#   MODE  system (root berthd)  or  user (a private berthd run by the test user)
#   WHO   root  or  user (the unprivileged test user, created if missing)
#   WORKER  berth-build-worker, installed beside berthd (builds with --nv)
# The device-cgroup cases need the cgroup v1 devices controller (the
# caller's cgroup is what the system daemon's containers join), and run with
# the system daemon only. Needs root to set up; fails, never skips.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 MODE=$3 WHO=$4 WORKER_SRC=$5
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/lib.sh"
test_prologue gpu
daemon_pid=
cgroup_dir=
shm_dir=
cleanup() {
  [ -n "$shm_dir" ] && rm -rf "$shm_dir"
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$cgroup_dir" ] && rmdir "$cgroup_dir" 2>/dev/null
  rm -rf "$TEST_TMP" 2>/dev/null
}
trap cleanup EXIT
install -m 0755 "$BERTH_SRC" "$TEST_TMP/berth"
install -m 0755 "$BERTHD_SRC" "$TEST_TMP/berthd"
install -m 0755 "$WORKER_SRC" "$TEST_TMP/berth-build-worker"
BERTH=$TEST_TMP/berth
IMG=$TEST_TMP/t.sif
bash "$here/../integration/make_test_image.sh" "$BERTH" "$IMG" || { bad setup "test image"; finish; }

# --- the fake driver root, its library list, the CDI specs ---
ROOT=$TEST_TMP/root
ETC=$TEST_TMP/etc
mkdir -p "$ETC"
{ cat "$here/../../packaging/nvliblist.conf"
  echo /usr/lib/x86_64-linux-gnu/libnvidia-extra.so.550.54.14; } >"$ETC/nvliblist.conf"
bash "$here/make_fake_driver_root.sh" "$ROOT" "$ETC/nvliblist.conf" >/dev/null ||
  { bad setup "fake driver root"; finish; }
CDI=$TEST_TMP/cdi
MARKS=$TEST_TMP/marks
mkdir -p "$CDI" "$TEST_TMP/hooks" && mkdir -m 0777 "$MARKS"
cat >"$CDI/devices.json" <<'SPEC'
{"cdiVersion": "0.6.0", "kind": "berth.test/dev", "devices": [
  {"name": "fuse", "containerEdits": {"deviceNodes": [{"path": "/dev/fuse"}, {"path": "/dev/full"}]}},
  {"name": "groups", "containerEdits": {"additionalGids": [44], "env": ["FROM_CDI=yes"]}}]}
SPEC
cat >"$TEST_TMP/hooks/marker.sh" <<HOOK
#!/bin/sh
echo "\$MARKER_TEXT \$(cat)" >"$MARKS/created"
HOOK
cat >"$CDI/hook.yaml" <<SPEC
cdiVersion: "0.6.0"
kind: berth.test/hook
devices:
  - name: marker
    containerEdits:
      hooks:
        - hookName: createContainer
          path: $TEST_TMP/hooks/marker.sh
          env: ["MARKER_TEXT=made-by-hook"]
          timeout: 10
  - name: started
    containerEdits:
      hooks:
        - hookName: startContainer
          path: /bin/sh
          args: ["sh", "-c", "echo started-as \$(id -u) in \$(pwd) >/marks/started"]
SPEC
printf 'cdiVersion: "0.6.0"\nkind: berth.test/bad\ndevices:\n  - name: x\n    containerEdits:\n      deviceNodes:\n        - path: relative/dev\n' >"$CDI/bad.yaml"
chmod 0755 "$TEST_TMP/hooks/marker.sh"
chmod -R go-w "$ETC" "$CDI" "$TEST_TMP/hooks"
write_conf() {
  printf '[gpu]\ntest_driver_root = "%s"\ncdi_dirs = ["%s"]\nalways_use_nv = %s\n' \
    "$ROOT" "$CDI" "$1" >"$ETC/berth.conf"
}
write_conf false

# --- the daemon ---
start_daemon() { start_test_daemon_in "$ETC"; }
start_daemon
if [ "$WHO" = root ]; then
  AS=(env BERTH_SOCKET="$SOCK")
else
  AS=(runuser -u "$TUSER" -- env BERTH_SOCKET="$SOCK")
fi
as() { "${AS[@]}" "$@"; }
b() { as "$BERTH" "$@"; }

# --- --nv: exactly the listed files ---
expected_libs() {
  local prefixes
  prefixes=$(grep -v '^#' "$ETC/nvliblist.conf" | grep -F .so | grep -v '^/')
  ldconfig -r "$ROOT" -p | awk -v p="$prefixes" 'BEGIN { n = split(p, pre, "\n") }
    /=>/ { for (i = 1; i <= n; i++) if (index($1, pre[i]) == 1) { sub(".*/", "", $NF); print $NF; next } }'
  printf '%s\n' libnvidia-extra.so.550.54.14 libnvidia-extra.so.1 libnvidia-extra.so
}
want_libs=$(expected_libs | sort -u | tr '\n' ' ')
expect_out "--nv binds exactly the listed libraries" "$want_libs" \
  b exec --nv "$IMG" sh -c 'ls /.singularity.d/libs | sort | tr "\n" " "'
expect_out "a bound library loads (LD_PRELOAD through LD_LIBRARY_PATH)" "$(id -u "$([ "$WHO" = root ] && echo root || echo "$TUSER")")" \
  b exec --nv "$IMG" env LD_PRELOAD=libcuda.so.1 dyn-id -u
expect_out "LD_LIBRARY_PATH is /.singularity.d/libs" "/.singularity.d/libs" \
  b exec --nv "$IMG" sh -c 'echo $LD_LIBRARY_PATH'
expect_out "APPTAINERENV_LD_LIBRARY_PATH comes first" "/opt/lib:/.singularity.d/libs" \
  as env APPTAINERENV_LD_LIBRARY_PATH=/opt/lib "$BERTH" exec --nv "$IMG" sh -c 'echo $LD_LIBRARY_PATH'
expect_out "without --nv: no libraries, no LD_LIBRARY_PATH" "0 unset" \
  b exec "$IMG" sh -c 'echo $(ls /.singularity.d/libs | wc -l) ${LD_LIBRARY_PATH-unset}'
expect_out "libraries are bound ro,nosuid,nodev" "ro nosuid nodev" \
  b exec --nv "$IMG" sh -c 'grep " /.singularity.d/libs/libcuda.so.1 " /proc/self/mountinfo | cut -d" " -f6 | tr , "\n" | grep -x -e ro -e nosuid -e nodev | tr "\n" " " | sed "s/ $//"'
expect_out "nvidia-smi found in the root's PATH, bound at /usr/bin" \
  "nvidia-smi (fake): GPU 0: Fake GPU (UUID: GPU-00000000-1111-2222-3333-444444444444)" \
  b exec --nv "$IMG" nvidia-smi
expect_out "the caller's PATH is never searched" "absent" \
  as env PATH="$TEST_TMP/hooks:/usr/bin:/bin" "$BERTH" exec --nv "$IMG" sh -c '[ -e /usr/bin/marker.sh ] && echo present || echo absent'
expect_out "ICD file at its own path; persistenced socket" "ICD socket" \
  b exec --nv "$IMG" sh -c 'grep -q libGLX_nvidia /usr/share/vulkan/icd.d/nvidia_icd.json && printf "ICD "; [ -S /var/run/nvidia-persistenced/socket ] && echo socket'

# --- the job's GPUs ---
nodes() { echo "$(ls /dev | grep nvidia | tr '\n' ' ')CVD=${CUDA_VISIBLE_DEVICES-unset}"; }
NODES="$(declare -f nodes); nodes"
expect_out "default: every GPU, CUDA_VISIBLE_DEVICES untouched" \
  "nvidia-uvm nvidia0 nvidia1 nvidiactl CVD=unset" b exec --nv "$IMG" sh -c "$NODES"
expect_out "CUDA_VISIBLE_DEVICES=1: nvidia1 and the control nodes, 0 inside" \
  "nvidia-uvm nvidia1 nvidiactl CVD=0" as env CUDA_VISIBLE_DEVICES=1 "$BERTH" exec --nv "$IMG" sh -c "$NODES"
expect_out "the same with --contain (minimal /dev)" \
  "nvidia-uvm nvidia1 nvidiactl CVD=0" as env CUDA_VISIBLE_DEVICES=1 "$BERTH" exec --contain --nv "$IMG" sh -c "$NODES"
expect_out "SLURM_STEP_GPUS wins over CUDA_VISIBLE_DEVICES" \
  "nvidia-uvm nvidia0 nvidiactl CVD=0" as env SLURM_STEP_GPUS=0 CUDA_VISIBLE_DEVICES=1 "$BERTH" exec --nv "$IMG" sh -c "$NODES"
expect_out "a GPU named by UUID" "nvidia-uvm nvidia1 nvidiactl CVD=0" \
  as env NVIDIA_VISIBLE_DEVICES=GPU-00000001-aaaa-bbbb-cccc-dddddddddddd "$BERTH" exec --nv "$IMG" sh -c "$NODES"
expect_fatal "a GPU the node lacks is refused by name" "CUDA_VISIBLE_DEVICES='7': this node has no GPU 7" \
  as env CUDA_VISIBLE_DEVICES=7 "$BERTH" exec --nv "$IMG" true
expect_fatal "a malformed list is refused by name" "CUDA_VISIBLE_DEVICES='0;id': not a GPU number" \
  as env 'CUDA_VISIBLE_DEVICES=0;id' "$BERTH" exec --nv "$IMG" true
if [ "$MODE" = system ]; then
  # The caller's device cgroup forbids GPU 0: left out by default, refused when asked for.
  [ -d /sys/fs/cgroup/devices ] || { bad "device cgroup" "no cgroup v1 devices controller"; finish; }
  cgroup_dir=/sys/fs/cgroup/devices/$(basename "$TEST_TMP")
  mkdir "$cgroup_dir" && echo 'c 195:0 rwm' >"$cgroup_dir/devices.deny"
  # The client (and so its container) runs in that cgroup.
  in_cgroup() { sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup_dir" "${AS[@]}" "$@"; }
  expect_out "a GPU the caller's cgroup forbids is left out" \
    "nvidia-uvm nvidia1 nvidiactl CVD=unset" in_cgroup "$BERTH" exec --nv "$IMG" sh -c "$NODES"
  expect_fatal "asking for a GPU the caller's cgroup forbids is refused" \
    "/dev/nvidia0 (GPU 0, asked for by CUDA_VISIBLE_DEVICES) at /dev/nvidia0: the caller's device cgroup does not allow it" \
    in_cgroup env CUDA_VISIBLE_DEVICES=0 "$BERTH" exec --nv "$IMG" true
fi
if [ "$MODE" = system ] && [ "$WHO" = user ]; then
  # The rebuilt /dev binds the host's /dev/shm: a mount below it must not
  # tell whether a name exists in a directory the caller may not search.
  shm_dir=$(mktemp -d -p /dev/shm berth-gpu.XXXXXX) && chmod 0700 "$shm_dir" && mkdir -m 0755 "$shm_dir/pub"
  expect_fatal "--nv: a bind below a private host /dev/shm directory (existing name)" \
    "Permission denied" b exec --nv -B "$MARKS:$shm_dir/pub" "$IMG" true
  expect_fatal "--nv: a bind below a private host /dev/shm directory (missing name)" \
    "Permission denied" b exec --nv -B "$MARKS:$shm_dir/nothing" "$IMG" true
fi

# --- CDI ---
expect_rc "--contain: no /dev/fuse without --device" 1 b exec --contain "$IMG" ls /dev/fuse /dev/full
expect_rc "--contain --device: /dev/fuse and /dev/full" 0 \
  b exec --contain --device berth.test/dev=fuse "$IMG" ls /dev/fuse /dev/full
expect_out "--device and --nv combine" "fuse nvidiactl" \
  b exec --nv --device berth.test/dev=fuse "$IMG" sh -c 'ls /dev | grep -x -e fuse -e nvidiactl | tr "\n" " " | sed "s/ $//"'
rm -f "$MARKS/created"
b exec --device berth.test/hook=marker "$IMG" true >/dev/null 2>&1
marker=$(cat "$MARKS/created" 2>/dev/null)
case "$marker" in
  'made-by-hook {"ociVersion":'*'"status":"creating"'*) ok "a createContainer hook ran with its env and the OCI state" ;;
  *) bad "createContainer hook" "marker: '$marker' log: $(tail -3 "$TEST_TMP/berthd.log")" ;;
esac
# Inside the container, as the caller, in the working directory, before the payload.
expect_out "a startContainer hook runs as the caller just before the payload" \
  "started-as $(as id -u) in /marks" \
  b exec --bind "$MARKS:/marks" --cwd /marks --device berth.test/hook=started "$IMG" cat /marks/started
if [ "$MODE" = system ]; then
  expect_out "additionalGids are visible in id" "yes video" \
    b exec --device berth.test/dev=groups "$IMG" sh -c 'echo $FROM_CDI $(id | grep -o "44(video)" | cut -d"(" -f2 | tr -d ")")'
else
  expect_fatal "additionalGids need the system daemon" "additionalGids 44 cannot be granted by a user-mode daemon" \
    b exec --device berth.test/dev=groups "$IMG" true
fi
expect_fatal "an unknown CDI device is refused by name" "CDI device berth.test/dev=nope: no such device" \
  b exec --device berth.test/dev=nope "$IMG" true
expect_fatal "a device of a malformed spec names the spec" "bad.yaml:7: devices[0].containerEdits.deviceNodes[0].path: 'relative/dev' is not an absolute path" \
  b exec --device berth.test/bad=x "$IMG" true
list=$(b cdi list 2>"$TEST_TMP/cdi.err")
case "$list" in
  *"berth.test/dev=fuse "*"berth.test/hook=marker"*) ok "cdi list shows the devices" ;;
  *) bad "cdi list" "$list" ;;
esac
grep -q "WARNING: CDI spec $CDI/bad.yaml refused: " "$TEST_TMP/cdi.err" && ok "cdi list names the broken spec" ||
  bad "cdi list broken" "$(cat "$TEST_TMP/cdi.err")"
expect_fatal "--cdi-dirs replaces the configured directories" "no such device in $TEST_TMP/hooks" \
  b exec --cdi-dirs "$TEST_TMP/hooks" --device berth.test/dev=fuse "$IMG" true
if [ "$MODE" = system ]; then
  mkdir -m 0777 "$TEST_TMP/open" && cp "$CDI/devices.json" "$TEST_TMP/open/"
  expect_fatal "a spec directory others can write is refused" "writable by nobody else" \
    b exec --cdi-dirs "$TEST_TMP/open" --device berth.test/dev=fuse "$IMG" true
  chmod 0777 "$TEST_TMP/hooks/marker.sh"
  expect_fatal "a hook binary others can write is refused" "marker.sh: it is owned by uid 0 with mode 0777" \
    b exec --device berth.test/hook=marker "$IMG" true
  chmod 0755 "$TEST_TMP/hooks/marker.sh"
fi

# --- builds: --nv in %post and %test, as Apptainer's build --nv ---
# A build binds a driver file only where the image has its place (nothing
# is left in the image): pre.sif has an nvidia-smi to bind over, and no
# /var/run for the persistenced socket.
printf 'Bootstrap: localimage\nFrom: %s\n\n%%post\n    touch /usr/bin/nvidia-smi\n    chmod 0755 /usr/bin/nvidia-smi\n' "$IMG" >"$TEST_TMP/pre.def"
chmod 0644 "$TEST_TMP/pre.def"
(cd "$MARKS" && as "$BERTH" build pre.sif "$TEST_TMP/pre.def") >/dev/null 2>&1 || bad "build pre.sif" "failed"
cat >"$TEST_TMP/gpu.def" <<DEF
Bootstrap: localimage
From: $MARKS/pre.sif

%post
    ls /.singularity.d/libs | sort | tr '\n' ' ' >/post-libs
    echo "\$LD_LIBRARY_PATH \${CUDA_VISIBLE_DEVICES-unset} \$(ls /dev | grep nvidia | tr '\n' ' ')" >/post-env
    nvidia-smi >/post-smi

%test
    test -e /.singularity.d/libs/libcuda.so.1
DEF
chmod 0644 "$TEST_TMP/gpu.def"
# A failed build prints its INFO lines too: the FATAL line must name the cause.
build_fails() {
  local name=$1 want=$2; shift 2
  (cd "$MARKS" && as "$@") >/dev/null 2>"$TEST_TMP/stderr"
  local rc=$?
  if [ "$rc" -ne 0 ] && grep -q "^FATAL:.*$want" "$TEST_TMP/stderr"; then ok "$name"
  else bad "$name" "rc $rc: $(tail -3 "$TEST_TMP/stderr")"
  fi
}
if (cd "$MARKS" && as env CUDA_VISIBLE_DEVICES=1 "$BERTH" build --nv gpu.sif "$TEST_TMP/gpu.def") >"$TEST_TMP/build.out" 2>&1; then
  expect_out "build --nv: %post sees exactly the listed libraries" "$want_libs" b exec "$MARKS/gpu.sif" cat /post-libs
  expect_out "build --nv: %post has LD_LIBRARY_PATH and only the chosen GPU" \
    "/.singularity.d/libs 0 nvidia-uvm nvidia1 nvidiactl " b exec "$MARKS/gpu.sif" cat /post-env
  expect_out "build --nv: nvidia-smi runs in %post" \
    "nvidia-smi (fake): GPU 0: Fake GPU (UUID: GPU-00000000-1111-2222-3333-444444444444)" b exec "$MARKS/gpu.sif" cat /post-smi
  expect_out "build --nv: no driver file is left in the image" "0 0" \
    b exec "$MARKS/gpu.sif" sh -c 'echo $(ls -A /.singularity.d/libs | wc -l) $(stat -c %s /usr/bin/nvidia-smi)'
  grep -q "^WARNING: --nv/--rocm: not bound in this build, the image has no .*/var/run/nvidia-persistenced/socket" "$TEST_TMP/build.out" &&
    ok "build --nv: a file the image has no place for is named in a warning" ||
    bad "build --nv: missing place warned" "$(grep WARNING "$TEST_TMP/build.out")"
else
  bad "build --nv" "$(tail -5 "$TEST_TMP/build.out")"
fi
build_fails "build without --nv: %test finds no driver library" "exit status 1 (%test, gpu.def:9)" \
  "$BERTH" build --force gpu.sif "$TEST_TMP/gpu.def"
build_fails "build --nv: a GPU the node lacks is refused by name" "CUDA_VISIBLE_DEVICES='7': this node has no GPU 7" \
  env CUDA_VISIBLE_DEVICES=7 "$BERTH" build --nv --force gpu.sif "$TEST_TMP/gpu.def"

# --- the list is resolved once, not per launch; always_use_nv and --no-nv ---
resolved=$(grep -c 'nvliblist.conf: [0-9]* libraries' "$TEST_TMP/berthd.log")
[ "$resolved" = 1 ] && ok "the library list was resolved once for every --nv launch" ||
  bad "resolved once" "$resolved resolutions: $(grep nvliblist "$TEST_TMP/berthd.log")"
if [ "$MODE" = system ]; then
  chmod 0666 "$ETC/nvliblist.conf"
  expect_fatal "a library list others can write is refused" "nvliblist.conf: must be owned by root" \
    b exec --nv "$IMG" true
  chmod 0644 "$ETC/nvliblist.conf"
fi
stop_test_daemon
write_conf true
start_daemon
expect_out "always_use_nv gives --nv" "nvidiactl" b exec "$IMG" sh -c 'ls /dev | grep -x nvidiactl'
expect_out "--no-nv opts out" "0" b exec --no-nv "$IMG" sh -c 'ls /.singularity.d/libs | wc -l'
finish
