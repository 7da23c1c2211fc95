#!/usr/bin/env bash
# compat_rows_test.sh BERTH BERTHD WORKER WHO: one check per row of the
# Apptainer CLI audit (docs/compat.md "The audit's P0 and P1 rows") that is
# marked P0 or P1 and is not another issue's (GPUs and instances' limits
# have suites of their own; -o/--overlay beyond its basic rows: overlay_*),
# and per P2 row that berth implements, accepts or refuses by name, each
# named after its row, against a real
# system berthd, a real docker-registry and real GnuPG, as root or as the
# unprivileged test user (WHO = root | user). What a row expects is what
# Apptainer 1.4 prints, exits with or writes, unless docs/compat.md lists the
# row as a deliberate difference.
set -u
BERTH_SRC=$1 BERTHD_SRC=$2 WORKER_SRC=$3 WHO=$4
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../registry/lib.sh"
TUSER=${BERTH_TEST_USER:-berthtest}
[ "$(id -u)" -eq 0 ] || { bad setup "needs root"; finish; }
bash "$here/../lib/ensure-test-user.sh" "$TUSER"
setup_binaries "$BERTH_SRC" "$BERTHD_SRC"
install -m 0755 "$WORKER_SRC" "$T/bin/berth-build-worker"
start_registry r plain
reg=$REG_r
start_berthd "" --build-worker "$T/bin/berth-build-worker"
before_finish() {
  "$BERTH" instance stop --all --force -u >/dev/null 2>&1
  [ "$WHO" = user ] && runuser -u "$TUSER" -- env BERTH_SOCKET="$BERTH_SOCKET" "$BERTH" instance stop --all --force >/dev/null 2>&1
  gpgconf --homedir "$T/home/gnupg" --kill all 2>/dev/null
  stop_berthds  # registry/lib.sh: each daemon stops on SIGTERM, leaving no mount
}

# The caller: a home of their own (HOME), a working directory they own.
if [ "$WHO" = root ]; then
  ME=root; MY_UID=0
else
  ME=$TUSER; MY_UID=$(id -u "$TUSER")
fi
H=$T/home W=$T/work
install -d -o "$ME" -m 0755 "$H" "$W"
# The container's HOME is the account's home (Apptainer reads the password
# database, not $HOME).
PWHOME=$(getent passwd "$ME" | cut -d: -f6)
IMG=$T/t.sif
bash "$here/../integration/make_test_image.sh" "$BERTH" "$IMG" compat-image || { bad setup "test image"; finish; }
chmod 0644 "$IMG"

# b ARGS...: berth as the caller, in $W, with a small clean environment plus
# what `envs` holds (set per call with `with`).
envs=()
b() {
  local run=(env -i HOME="$H" USER="$ME" LOGNAME="$ME" PATH=/usr/bin:/bin TERM=dumb
    GNUPGHOME="$H/gnupg" BERTH_SOCKET="$BERTH_SOCKET" "${envs[@]}" "$BERTH" "$@")
  if [ "$WHO" = root ]; then (cd "$W" && "${run[@]}"); else (cd "$W" && runuser -u "$TUSER" -- "${run[@]}"); fi
}
with() { envs=("$@"); }
# row NAME WANT ARGS...: stdout of `b ARGS` (stderr kept in $T/stderr) equals WANT.
row() {
  local name=$1 want=$2; shift 2
  local got
  got=$(b "$@" 2>"$T/stderr")
  if [ "$got" = "$want" ]; then ok "row $name"; else bad "row $name" "got '$got' want '$want'; stderr: $(head -c 300 "$T/stderr")"; fi
  envs=()
}
# row_rc NAME RC ARGS...: exit status RC.
row_rc() {
  local name=$1 want=$2; shift 2
  b "$@" >/dev/null 2>"$T/stderr"
  local rc=$?
  if [ "$rc" = "$want" ]; then ok "row $name"; else bad "row $name" "rc $rc want $want; stderr: $(head -c 300 "$T/stderr")"; fi
  envs=()
}
# row_err NAME RC TEXT ARGS...: exit status RC and TEXT in stderr.
row_err() {
  local name=$1 want=$2 text=$3; shift 3
  b "$@" >/dev/null 2>"$T/stderr"
  local rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$text" "$T/stderr"; then ok "row $name"
  else bad "row $name" "rc $rc want $want; stderr: $(head -c 300 "$T/stderr")"; fi
  envs=()
}
mine() { chown -R "$ME" "$@"; }

# --- around the verbs ---
row_err "apptainer: an unknown command names itself, exit 1" 1 'unknown command "nosuchcmd"' nosuchcmd
row_err "global -d/--debug: DEBUG lines" 0 "DEBUG" -d exec "$IMG" true
with APPTAINER_DEBUG=1
row_err "global DEBUG env form" 0 "DEBUG" exec "$IMG" true
row_err "global -v/--verbose: VERBOSE lines" 0 "VERBOSE" -v exec "$IMG" true
row_rc "exit codes: the payload's status" 42 exec "$IMG" sh -c 'exit 42'
row_rc "exit codes: a signal is 128+n" 143 exec "$IMG" sh -c 'kill -TERM $$'
row_err "exit codes: FATAL is 255" 255 "FATAL:" exec "$T/missing.sif" true

# --- the verbs ---
row "exec: runs the command" "compat-image" exec "$IMG" cat /opt/marker
row_err "exec: a missing command is a FATAL with 255" 255 "FATAL:" exec "$IMG" /no/such/command
row "run: the runscript with its arguments" "runscript args: a b" run "$IMG" a b
: >"$T/norun" && chmod 0644 "$T/norun"
row "run: no runscript falls back to /bin/sh" "fallback" run -B "$T/norun:/.singularity.d/runscript" "$IMG" -c 'echo fallback'
row "shell: reads commands from stdin" "in-shell" shell "$IMG" < <(echo 'echo in-shell')
row "image: SIF" "$MY_UID" exec "$IMG" id -u
must "push the test image" "$BERTH" push -q --no-https "$IMG" "oras://$reg/compat/t:1"
row "image: docker:// oras:// (pulled, then run)" "compat-image" exec --no-https "oras://$reg/compat/t:1" cat /opt/marker
SBX=$T/sbx
mkdir "$SBX" && unsquashfs -q -f -d "$SBX" -o "$("$BERTH" sif list "$IMG" | awk -F'|' '/Squashfs/ {split($4, r, "-"); gsub(/ /, "", r[1]); print r[1]; exit}')" "$IMG" >/dev/null 2>&1
row "image: sandbox dir" "compat-image" exec "$SBX" cat /opt/marker

# --- action flags ---
install -d -o "$ME" "$T/data" && echo bound >"$T/data/f" && mine "$T/data"
install -d -o "$ME" "$T/data2" && echo second >"$T/data2/g" && mine "$T/data2"
with APPTAINER_BIND="$T/data2:/mnt2"
row "act -B/--bind with BIND: the env form is added to -B" "bound second" exec -B "$T/data:/mnt:ro" "$IMG" sh -c 'echo $(cat /mnt/f) $(cat /mnt2/g)'
row "act -B/--bind: ro is read-only" "1" exec -B "$T/data:/mnt:ro" "$IMG" sh -c 'touch /mnt/x 2>/dev/null; echo $?'
with FOO=host
row "act -e/--cleanenv: the host environment is left out" "unset" exec -e "$IMG" sh -c 'echo ${FOO-unset}'
with FOO=host APPTAINER_CLEANENV=1
row "act CLEANENV env form" "unset" exec "$IMG" sh -c 'echo ${FOO-unset}'
row "act --compat: writable tmpfs, contained /tmp, own PID namespace" "ok 0" exec --compat "$IMG" sh -c 'touch /scratch/new && echo ok $(ls -A /tmp | wc -l)'
host_pidns=$(stat -L -c %i /proc/self/ns/pid)
row "act -C/--containall: own PID namespace, clean environment" "other unset" \
  exec -C "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/pid) != $host_pidns ] && echo other \${FOO-unset}"
echo host-tmp >"$T/../compat-host-tmp-$$" 2>/dev/null
touch "/tmp/compat-mark-$$"
row "act -c/--contain: an empty /tmp" "absent" exec -c "$IMG" sh -c "[ -e /tmp/compat-mark-$$ ] && echo present || echo absent"
rm -f "/tmp/compat-mark-$$" "$T/../compat-host-tmp-$$"
row "act --cwd" "/opt" exec --cwd /opt "$IMG" pwd
with APPTAINER_TARGET_CWD=/opt
row "act TARGET_CWD env form" "/opt" exec "$IMG" pwd
row "act --pwd" "/opt" exec --pwd /opt "$IMG" pwd
with APPTAINER_TARGET_PWD=/opt
row "act TARGET_PWD env form" "/opt" exec "$IMG" pwd
row "act --env: values evaluated by the container's shell" "$PWHOME/x" exec --env 'A=$HOME/x' "$IMG" sh -c 'echo $A'
row "act --env: PATH is set" "/x:/bin" exec --env PATH=/x:/bin "$IMG" sh -c 'echo $PATH'
printf 'A=one\nB=$A-two\n' >"$T/envfile" && chmod 0644 "$T/envfile"
row "act --env-file: evaluated" "one-two" exec --env-file "$T/envfile" "$IMG" sh -c 'echo $B'
row "act -f/--fakeroot: uid 0, HOME /root" "0 /root" exec -f "$IMG" sh -c 'echo $(id -u) $HOME'
install -d -o "$ME" "$T/althome" && echo in-home >"$T/althome/hf" && mine "$T/althome"
row "act -H/--home src:dst" "/myhome in-home" exec -H "$T/althome:/myhome" "$IMG" sh -c 'echo $HOME $(cat /myhome/hf)'
row "act --mount type=bind" "bound" exec --mount "type=bind,src=$T/data,dst=/m,ro" "$IMG" cat /m/f
with APPTAINER_MOUNT="type=bind,src=$T/data,dst=/m"
row "act MOUNT env form" "bound" exec "$IMG" cat /m/f
# image-src: a path inside an image file (a squashfs of data, the SIF
# itself), resolved inside the image: a link to a host directory stays in it.
mkdir -p "$T/dimg/sub" "$T/hostonly" && echo in-image >"$T/dimg/sub/f" && echo host-side >"$T/hostonly/h"
ln -s "$T/hostonly" "$T/dimg/escape"
chmod -R a+rX "$T/hostonly"
mksquashfs "$T/dimg" "$T/data.sqfs" -noappend -quiet -all-root >/dev/null && chmod 0644 "$T/data.sqfs"
row "act --mount image-src: a directory inside an image file" "in-image" \
  exec --mount "type=bind,src=$T/data.sqfs,dst=/d,image-src=/sub" "$IMG" cat /d/f
row "act -B SRC:DST:image-src=PATH" "compat-image" exec -B "$IMG:/img:image-src=/opt" "$IMG" cat /img/marker
row_err "act image-src: a link in the image never reaches the host" 255 "escape" \
  exec --mount "type=bind,src=$T/data.sqfs,dst=/d,image-src=/escape" "$IMG" cat /d/h
row_err "act image-src: '..' is refused" 255 ".." exec -B "$T/data.sqfs:/d:image-src=/sub/../.." "$IMG" true
# id=N: a SIF partition other than the primary, by descriptor id.
cp "$IMG" "$T/multi.sif" && "$BERTH" sif add --datatype 4 --parttype 3 --partfs 1 --partarch 2 "$T/multi.sif" "$T/data.sqfs" >/dev/null
chmod 0644 "$T/multi.sif"
data_id=$("$BERTH" sif list "$T/multi.sif" | awk -F'|' '/Squashfs\/Data/ {print $1 + 0; exit}')
row "act --mount id=N: a squashfs partition other than the primary" "in-image" \
  exec --mount "type=bind,src=$T/multi.sif,dst=/d,image-src=/sub,id=$data_id" "$IMG" cat /d/f
row "act -B SRC:DST:image-src=PATH,id=N" "in-image" exec -B "$T/multi.sif:/d:image-src=/sub,id=$data_id" "$IMG" cat /d/f
row_err "act id=: an object that is not a partition" 255 "is not a partition" \
  exec --mount "type=bind,src=$T/multi.sif,dst=/d,image-src=/,id=1" "$IMG" true
if [ "$WHO" = user ]; then
  install -m 0600 "$T/data.sqfs" "$T/private.sqfs"
  row_err "act image-src: the image is opened as the caller" 255 "Permission denied" \
    exec -B "$T/private.sqfs:/d:image-src=/" "$IMG" true
fi
[ -d "$PWHOME" ] || { bad "setup" "$ME has no home directory $PWHOME"; finish; }
echo mine >"$PWHOME/compat-homefile-$$" && mine "$PWHOME/compat-homefile-$$"
probe="[ -e $PWHOME/compat-homefile-$$ ] && echo present || echo absent"
row "act --no-home: the home is mounted without it" "present" exec "$IMG" sh -c "$probe"
row "act --no-home: the home is not mounted" "absent" exec --no-home "$IMG" sh -c "$probe"
rm -f "$PWHOME/compat-homefile-$$"
touch "/tmp/compat-tmp-$$"
row "act --no-mount tmp: the host /tmp is not mounted" "absent" exec --no-mount tmp "$IMG" sh -c "[ -e /tmp/compat-tmp-$$ ] && echo present || echo absent"
rm -f "/tmp/compat-tmp-$$"
# Apptainer mounts nothing at /dev: the image's own (empty here) is left.
row "act --no-mount dev: the container runs; /dev is the image's own" "0" exec --no-mount dev "$IMG" sh -c 'ls -A /dev | wc -l'
row_err "act --no-mount: an unknown value warns" 0 "WARNING:" exec --no-mount nosuchmount "$IMG" true
row "act -p/--pid: the host's PID namespace by default" "same" \
  exec "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/pid) = $host_pidns ] && echo same"
row "act -p/--pid: own PID namespace (-p)" "other" exec -p "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/pid) != $host_pidns ] && echo other"
with APPTAINER_UNSHARE_PID=1
row "act UNSHARE_PID env form" "other" exec "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/pid) != $host_pidns ] && echo other"
row "act -S/--scratch: a writable, empty directory" "0 ok" exec -S /scr "$IMG" sh -c 'echo $(ls -A /scr | wc -l) $(touch /scr/x && echo ok)'
host_userns=$(stat -L -c %i /proc/self/ns/user)
row "act -u/--userns: a user namespace" "other" exec -u "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/user) != $host_userns ] && echo other"
with APPTAINER_UNSHARE_USERNS=1
row "act UNSHARE_USERNS env form" "other" exec "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/user) != $host_userns ] && echo other"
install -d -o "$ME" "$T/wd"
b exec -c -W "$T/wd" "$IMG" sh -c 'echo in-workdir >/tmp/wdfile' >/dev/null 2>&1
if [ "$(cat "$T"/wd/tmp/wdfile 2>/dev/null)" = in-workdir ]; then ok "row act -W/--workdir: /tmp in DIR/tmp"
else bad "row act -W/--workdir: /tmp in DIR/tmp" "$(ls -R "$T/wd" 2>&1 | head -5)"; fi
row "act --writable-tmpfs: the root is writable" "ok" exec --writable-tmpfs "$IMG" sh -c 'touch /scratch/new && echo ok'
row_rc "act --writable-tmpfs: read-only without it" 1 exec "$IMG" touch /scratch/new
# -o/--overlay's basic rows (the rest, and the caller's rights: overlay_*).
install -d -o "$ME" -m 0755 "$T/ov" "$T/ov2"
row "act -o/--overlay: a writable directory, kept" "kept" exec -o "$T/ov" "$IMG" sh -c 'echo kept >/kept && cat /kept'
with APPTAINER_OVERLAY="$T/ov:ro"
row "act -o/--overlay with OVERLAY: DIR:ro, a lower layer" "kept" exec "$IMG" cat /kept
row_err "act -o/--overlay: one writable overlay only" 255 "use '--overlay $T/ov2:ro'" exec -o "$T/ov" -o "$T/ov2" "$IMG" true

# --- environment ---
with 'APPTAINERENV_X=$HOME'
row "env APPTAINERENV_X: evaluated" "$PWHOME" exec "$IMG" sh -c 'echo $X'
with SINGULARITYENV_Y=legacy APPTAINERENV_Z=new SINGULARITYENV_Z=old
row "env SINGULARITYENV_X: legacy, APPTAINERENV_ wins" "legacy new" exec "$IMG" sh -c 'echo $Y $Z'
with APPTAINERENV_PATH=/opt/bin:/bin
row "env APPTAINERENV_PATH: overrides PATH" "/opt/bin:/bin" exec "$IMG" sh -c 'echo $PATH'
with APPTAINERENV_PREPEND_PATH=/pre APPTAINERENV_APPEND_PATH=/post
row "env APPTAINERENV_PREPEND/APPEND_PATH" "/pre /post" exec "$IMG" sh -c 'case $PATH in /pre:*:/post) echo /pre /post ;; *) echo $PATH ;; esac'

# --- instances ---
row_rc "instance start" 0 instance start "$IMG" compat1
got=$(b instance list --json compat1 2>&1 | tr -d ' \n')
case $got in *'"instance":"compat1"'*) ok "row instance list" ;; *) bad "row instance list" "$got" ;; esac
row "image: instance:// joins it" "compat-image" exec instance://compat1 cat /opt/marker
row_rc "instance stop" 0 instance stop compat1

# --- build ---
printf 'Bootstrap: localimage\nFrom: %s\n\n%%post\n    echo "{{ WORD }}" >/built\n' "$IMG" >"$T/b.def"
chmod 0644 "$T/b.def"
row_rc "build: a definition file to a SIF (-f/--fakeroot implied)" 0 build --build-arg WORD=hello b.sif "$T/b.def"
row "build --build-arg" "hello" exec "$W/b.sif" cat /built
row_err "build: an existing output without -F" 255 "already exists" build --build-arg WORD=x b.sif "$T/b.def"
row_rc "build -F/--force overwrites" 0 build -F --build-arg WORD=forced b.sif "$T/b.def"
row "build -F: the new image" "forced" exec "$W/b.sif" cat /built
row_rc "build -s/--sandbox" 0 build -s --build-arg WORD=sbx sbxout "$T/b.def"
got="$(stat -c %U "$W/sbxout/built" 2>/dev/null) $(cat "$W/sbxout/built" 2>/dev/null)"
[ "$got" = "$ME sbx" ] && ok "row build -f/--fakeroot: files are the caller's" || bad "row build -f/--fakeroot: files are the caller's" "$got"

# --- pull and push ---
must "push an OCI image" $PY "$here/../stores/push_image.py" "$reg" compat/alp 3.19 tar:alp-layer:16
row_rc "pull: URI alone writes NAME_TAG.sif" 0 pull --no-https "docker://$reg/compat/alp:3.19"
[ -s "$W/alp_3.19.sif" ] && ok "row pull: alp_3.19.sif written" || bad "row pull: alp_3.19.sif written" "$(ls "$W")"
install -d -o "$ME" "$T/pulls"
row_rc "pull --dir" 0 pull --no-https --dir "$T/pulls" "oras://$reg/compat/t:1"
[ -s "$T/pulls/t_1.sif" ] && ok "row pull --dir: written there" || bad "row pull --dir: written there" "$(ls "$T/pulls")"
row_err "pull: an existing file without -F" 255 "already exists" pull --no-https "docker://$reg/compat/alp:3.19"
with APPTAINER_FORCE=1
row_rc "pull FORCE env form overwrites" 0 pull --no-https "docker://$reg/compat/alp:3.19"
row_rc "push: oras://" 0 push --no-https "$IMG" "oras://$reg/compat/pushed:1"
labels=$(b inspect --labels "$IMG" 2>&1)
case $labels in *"maintainer: berth tests"*) ok "row inspect: labels" ;; *) bad "row inspect: labels" "$labels" ;; esac
row "inspect: a sandbox dir" "$labels" inspect --labels "$SBX"

# --- keys, signatures, cache, registry ---
install -d -o "$ME" -m 0700 "$H/gnupg"
row_rc "key newpair" 0 key newpair --name "Compat Signer" --email compat@example.org --no-passphrase
keys=$(b key list 2>&1)
case $keys in *"Compat Signer <compat@example.org>"*) ok "row key list" ;; *) bad "row key list" "$keys" ;; esac
cp "$IMG" "$W/signed.sif" && mine "$W/signed.sif"
row_rc "sign" 0 sign "$W/signed.sif"
row_rc "verify" 0 verify "$W/signed.sif"
row_rc "cache list" 0 cache list
row_rc "cache clean: a user cleans their own entries" 0 cache clean -f
row_rc "registry login" 0 registry login --no-https -u any -p thing "oras://$reg"

# --- P2 rows: what berth implements, accepts or refuses by name (docs/compat.md
# "Audit rows not Y") ---
row_rc "global --nocolor: accepted" 0 --nocolor exec "$IMG" true
row_rc "act --no-nv/--no-rocm" 0 exec --no-nv --no-rocm "$IMG" true
# --nvccli is --nv (berthd finds the driver files itself): the same output,
# messages and status as --nv give on this node, whatever its GPUs; a plain
# exec must differ for the check to mean anything.
nvprobe='echo ${NVIDIA_VISIBLE_DEVICES-unset} $(ls /.singularity.d/libs | wc -l)'
nv_got=$(b exec --nv "$IMG" sh -c "$nvprobe" 2>&1; echo "rc=$?")
plain_got=$(b exec "$IMG" sh -c "$nvprobe" 2>&1; echo "rc=$?")
nvccli_got=$(b exec --nvccli "$IMG" sh -c "$nvprobe" 2>&1; echo "rc=$?")
with APPTAINER_NVCCLI=1
nvccli_env_got=$(b exec "$IMG" sh -c "$nvprobe" 2>&1; echo "rc=$?")
envs=()
if [ "$nv_got" = "$plain_got" ]; then bad "row act --nvccli: as --nv" "--nv and a plain exec agree on this node ($nv_got): the check proves nothing"
elif [ "$nvccli_got" = "$nv_got" ] && [ "$nvccli_env_got" = "$nv_got" ]; then ok "row act --nvccli, NVCCLI: as --nv"
else bad "row act --nvccli, NVCCLI: as --nv" "--nv: $nv_got; --nvccli: $nvccli_got; NVCCLI: $nvccli_env_got"; fi
host_uts=$(stat -L -c %i /proc/self/ns/uts)
row "act --uts: own UTS namespace, the host's hostname" "other $(hostname)" \
  exec --uts "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/uts) != $host_uts ] && echo other \$(hostname)"
with APPTAINER_UNSHARE_UTS=1
row "act UTS env form (UNSHARE_UTS)" "other" exec "$IMG" sh -c "[ \$(stat -L -c %i /proc/self/ns/uts) != $host_uts ] && echo other"
host_net=$(stat -L -c %i /proc/self/ns/net)
netprobe="[ \$(stat -L -c %i /proc/self/ns/net) != $host_net ] && echo other \$(cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ') \$(busybox ip link show lo | grep -c ',UP')"
row "act -n/--net: own network namespace, loopback only and up" "other lo 1" exec -n "$IMG" sh -c "$netprobe"
row "act --network none" "other lo 1" exec --network none "$IMG" sh -c "$netprobe"
with APPTAINER_NET=1
row "act NET env form" "other lo 1" exec "$IMG" sh -c "$netprobe"
row_err "act --network: a CNI network is refused by name" 255 "no CNI networks" exec --network bridge "$IMG" true
row_err "act --network-args: refused by name" 255 "--network-args is not supported" exec --network-args portmap=80:80/tcp "$IMG" true
row "act --dns: the container's resolv.conf" "nameserver 192.0.2.1 nameserver 2001:db8::1" \
  exec --dns 192.0.2.1,2001:db8::1 "$IMG" sh -c 'echo $(cat /etc/resolv.conf)'
with APPTAINER_DNS=192.0.2.7
row "act DNS env form" "nameserver 192.0.2.7" exec "$IMG" cat /etc/resolv.conf
# The daemon, not the client, checks each address: it becomes a line of a
# file the container's resolver reads.
row_err "act --dns: only addresses" 255 "not an IPv4 or IPv6 address" exec --dns $'192.0.2.1\nsearch evil' "$IMG" true
ns=berthcompat$$
ip netns add "$ns" && ns_ino=$(stat -L -c %i "/var/run/netns/$ns")
if [ "$WHO" = root ]; then
  row "act --netns-path: root runs in that network namespace" "$ns_ino" \
    exec --netns-path "/var/run/netns/$ns" "$IMG" stat -L -c %i /proc/self/ns/net
  row_err "act --netns-path: not a network namespace" 255 "not a network namespace" \
    exec --netns-path /proc/self/ns/uts "$IMG" true
  mkfifo "$T/netns-fifo"
  row_err "act --netns-path: a FIFO is refused, not waited on" 255 "not a network namespace" \
    exec --netns-path "$T/netns-fifo" "$IMG" true
else
  row_err "act --netns-path: refused for a plain user" 255 "only root may" \
    exec --netns-path "/var/run/netns/$ns" "$IMG" true
fi
ip netns del "$ns"
row "act --no-privs, --drop-caps: accepted, no capabilities either way" "0000000000000000" \
  exec --no-privs --drop-caps CAP_NET_RAW "$IMG" sh -c 'grep CapEff /proc/self/status | cut -f2'
for flag in "--add-caps CAP_NET_RAW" --keep-privs --allow-setuid "--fusemount host:x" \
  "--security seccomp:x" "--dmtcp-launch x" "--docker-host unix:///x" --docker-login \
  --passphrase "--pem-path x.pem" --ignore-subuid; do
  # shellcheck disable=SC2086
  row_err "act ${flag%% *}: refused by name" 255 "${flag%% *} is not supported" exec $flag "$IMG" true
done
row_rc "act --tmpdir, --underlay, --unsquash: accepted" 0 exec --tmpdir /tmp --underlay --unsquash "$IMG" true
row_err "act --runscript-timeout: accepted with a warning" 0 "WARNING: --runscript-timeout" exec --runscript-timeout 5s "$IMG" true
echo 'not really a library' >"$T/libcompat.so.1" && chmod 0644 "$T/libcompat.so.1"
row "act --containlibs: in /.singularity.d/libs, on LD_LIBRARY_PATH" "not really a library yes" \
  exec --containlibs "$T/libcompat.so.1" "$IMG" sh -c 'echo $(cat /.singularity.d/libs/libcompat.so.1) $(case :$LD_LIBRARY_PATH: in *:/.singularity.d/libs:*) echo yes ;; esac)'
row "act --disable-cache: pulls without the node cache" "compat-image" exec --no-https --disable-cache "oras://$reg/compat/t:1" cat /opt/marker
row_err "instance start --boot: refused by name" 255 "--boot is not supported" instance start --boot "$IMG" compat2
row_rc "sign --groupid (deprecated name), -a (deprecated no-op)" 0 sign --groupid 1 -a "$W/signed.sif"
row_rc "verify --groupid, --id (deprecated names)" 0 verify --groupid 1 "$W/signed.sif"
secret_list=$(b key list -s 2>/dev/null)
with APPTAINER_SECRET=1
row "key list SECRET env form: as -s" "$secret_list" key list
# A keyring file that holds no key is a FATAL naming it: -d is where it is read.
install -d -o "$ME" "$T/otherkeys" && echo garbage >"$T/otherkeys/pgp-public" && mine "$T/otherkeys"
row_err "key -d/--keysdir: another Apptainer keyring directory" 255 "$T/otherkeys/pgp-public" key -d "$T/otherkeys" list
row_rc "pull -U/--allow-unsigned, --allow-unauthenticated (no-ops)" 0 pull -F -U --allow-unauthenticated --no-https "oras://$reg/compat/t:1"
row_rc "pull --no-cleanup, --tmpdir: accepted" 0 pull -F --no-cleanup --tmpdir /tmp --no-https "oras://$reg/compat/t:1"
row_err "pull --docker-login: refused by name" 255 "--docker-login is not supported" pull --docker-login --no-https "oras://$reg/compat/t:1"
row_err "pull --sandbox: refused by name" 255 "--sandbox is not supported" pull --sandbox --no-https "oras://$reg/compat/t:1"
row_err "push --library: refused by name" 255 "--library is not supported" push --library https://x "$IMG" "oras://$reg/compat/t:9"
# build's P2 rows (docs/compat.md "Audit rows not Y").
row_rc "build --no-cleanup, --userns: accepted" 0 build -F --no-cleanup --userns --build-arg WORD=x b.sif "$T/b.def"
row_rc "build --writable-tmpfs: a discarded layer for %test" 0 \
  build -F --writable-tmpfs --build-arg WORD=x b.sif "$T/b.def"
b build -F --nv --build-arg WORD=x b.sif "$T/b.def" >/dev/null 2>&1; nv_rc=$?
b build -F --nvccli --build-arg WORD=x b.sif "$T/b.def" >/dev/null 2>"$T/stderr"; nvccli_rc=$?
[ "$nv_rc" = "$nvccli_rc" ] && ! grep -q "nvccli" "$T/stderr" && ok "row build --nvccli: taken as --nv" ||
  bad "row build --nvccli: taken as --nv" "rc $nvccli_rc, --nv $nv_rc: $(head -c 300 "$T/stderr")"
for flag in "--library https://x" "--docker-host unix:///x" --docker-login "--docker-username u" \
  "--docker-password p" --ignore-userns --ignore-fakeroot-command; do
  # shellcheck disable=SC2086
  row_err "build ${flag%% *}: refused by name" 255 "${flag%% *} is not supported" build -F $flag --build-arg WORD=x b.sif "$T/b.def"
done
# -B/--bind and --mount in %post and %test: the source opened as the caller,
# the destination one the image has (/data), nothing of the bind left in it.
install -d -o "$ME" -m 0755 "$T/bsrc" && echo bound-in-build >"$T/bsrc/f" && chown "$ME" "$T/bsrc/f"
printf 'Bootstrap: localimage\nFrom: %s\n\n%%post\n    cat /data/f >/from-bind\n    touch /data/w 2>/dev/null && echo rw >/mode || echo ro >/mode\n\n%%test\n    test -f /data/f\n' "$IMG" >"$T/bind.def"
chmod 0644 "$T/bind.def"
row_rc "build -B/--bind: in %post and %test" 0 build -F -B "$T/bsrc:/data:ro" bind.sif "$T/bind.def"
row "build -B/--bind: %post read it, read-only; nothing of it in the image" "bound-in-build ro 0" \
  exec "$W/bind.sif" sh -c 'echo $(cat /from-bind) $(cat /mode) $(ls -A /data | wc -l)'
rm -f "$T/bsrc/w"
row_rc "build --mount" 0 build -F --mount "type=bind,src=$T/bsrc,dst=/data" bind.sif "$T/bind.def"
row "build --mount: read-write; the file written stays on the host" "rw 0 yes" \
  exec "$W/bind.sif" sh -c 'echo $(cat /mode) $(ls -A /data | wc -l) '"$([ -e "$T/bsrc/w" ] && echo yes || echo no)"
row_err "build -B: a destination the image lacks is an error" 255 "/nosuch is not in the build's root" \
  build -F -B "$T/bsrc:/nosuch" bind.sif "$T/bind.def"
if [ "$WHO" = user ]; then
  install -d -m 0700 "$T/rootonly" && echo secret >"$T/rootonly/f"
  row_err "build -B: a source the caller cannot read is refused" 255 "Permission denied" \
    build -F -B "$T/rootonly:/data" bind.sif "$T/bind.def"
fi
row_err "build --arch-variant: not with --arch OS/ARCH/VARIANT" 255 "give the variant either there or in --arch" \
  build -F --arch linux/arm64/v8 --arch-variant v8 --build-arg WORD=x b.sif "$T/b.def"
# --disable-cache: a base never pulled before leaves the node cache as it was.
must "push an OCI image for build --disable-cache" $PY "$here/../stores/push_image.py" "$reg" compat/nocache 1 tar:nocache-layer:16
printf 'Bootstrap: docker\nFrom: %s/compat/nocache:1\n' "$reg" >"$T/nc.def" && chmod 0644 "$T/nc.def"
cache_before=$(b cache list -v 2>&1)
row_rc "build --disable-cache: a registry base" 0 build -F --no-https --disable-cache nc.sif "$T/nc.def"
cache_after=$(b cache list -v 2>&1)
[ "$cache_before" = "$cache_after" ] && ok "row build --disable-cache: the node cache is left as it was" ||
  bad "row build --disable-cache: the node cache is left as it was" "before: $cache_before; after: $cache_after"
with APPTAINER_LOGIN_USERNAME=any APPTAINER_LOGIN_PASSWORD=thing APPTAINER_AUTH_FILE="$H/compat-auth.json"
row_rc "registry login LOGIN_USERNAME/LOGIN_PASSWORD, AUTH_FILE env forms" 0 registry login --no-https "oras://$reg"
if grep -q "$reg" "$H/compat-auth.json" 2>/dev/null; then ok "row registry login AUTH_FILE: written there"
else bad "row registry login AUTH_FILE: written there" "$(ls -l "$H")"; fi
row_rc "instance start -n/--net" 0 instance start --net "$IMG" compat3
row "instance start -n/--net: a join is in its network namespace" "other lo 1" exec instance://compat3 sh -c "$netprobe"
row_rc "instance stop (--net)" 0 instance stop compat3
# Last: a second secret key (and one with a passphrase) would change which key
# the sign rows above use.
row_rc "key newpair -b/--bit-length, -P/--password" 0 key newpair -b 2048 -P compat-pass --name "Bits Key"
got=$(b key list 2>&1)
case $got in *"Bits Key"*rsa2048*) ok "row key newpair -b: an RSA key of that length" ;; *) bad "row key newpair -b: an RSA key of that length" "$got" ;; esac
row_err "key newpair -U/--push: refused by name" 255 "--push is not supported" key newpair -U --name "No Push"
# key remove -p/-s/-b and import --new-password, on the "Bits Key" pair.
bits_fp=$(b key list 2>/dev/null | grep -A2 'Bits Key' | sed -n 's/.*Fingerprint: *//p')
# agent_forget: gpg-agent drops cached passphrases, so the next use asks.
agent_forget() {
  if [ "$WHO" = root ]; then gpgconf --homedir "$H/gnupg" --reload gpg-agent
  else runuser -u "$TUSER" -- gpgconf --homedir "$H/gnupg" --reload gpg-agent; fi
}
with BERTH_SIGN_PASSPHRASE=compat-pass
row_rc "key export -s of the Bits Key pair" 0 key export -s "$W/bits-secret.gpg" "$bits_fp"
row_err "key remove: the public key of a pair is refused" 255 "remove the secret key first with -s/--secret" key remove "$bits_fp"
row_rc "key remove -s/--secret: the secret key alone" 0 key remove -s "$bits_fp"
# listed WANT NAME: how often the Bits Key is in `key list -s` and `key list`.
listed() {
  local got
  got="$(b key list -s 2>&1 | grep -c "$bits_fp") $(b key list 2>&1 | grep -c "$bits_fp")"
  if [ "$got" = "$1" ]; then ok "row $2"; else bad "row $2" "secret, public listed: $got, want $1"; fi
}
listed "0 1" "key remove -s: the public key stays"
row_rc "key remove -p/--public: the public key" 0 key remove -p "$bits_fp"
listed "0 0" "key remove -p: the public key is gone"
agent_forget
with BERTH_SIGN_PASSPHRASE=compat-pass BERTH_NEW_PASSPHRASE=compat-new
row_rc "key import --new-password" 0 key import --new-password "$W/bits-secret.gpg"
agent_forget
cp "$IMG" "$W/bits.sif" && mine "$W/bits.sif"
with BERTH_SIGN_PASSPHRASE=compat-pass
row_rc "key import --new-password: the old passphrase no longer signs" 255 sign --key-fingerprint "$bits_fp" "$W/bits.sif"
with BERTH_SIGN_PASSPHRASE=compat-new
row_rc "key import --new-password: the new passphrase signs" 0 sign --key-fingerprint "$bits_fp" "$W/bits.sif"
row_rc "key remove -b/--both" 0 key remove -b "$bits_fp"
listed "0 0" "key remove -b: neither key is left"
finish
