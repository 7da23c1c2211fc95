#!/usr/bin/env bash
# make_oci_image.sh LAYOUT_DIR: builds the test image `LAYOUT_DIR:test` with
# umoci and busybox-static, no network. Layers:
#   1 base: busybox, /bin/sh, dirs, files to be whited out later, a hardlink
#     pair, a symlink, user.* xattrs; as root also a device node, a fifo and a
#     setuid file owned by 1234:5678
#   2 whiteouts: removes /data/gone and /data/gonedir, replaces /opq/ with an
#     opaque directory holding only new.txt, replaces one half of a hardlink
#   3 more: a hardlink made in this layer, a symlink to a directory, a file
#     with an xattr, an updated config (Env, Entrypoint, Cmd, WorkingDir)
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000
rootless=()
[ "$(id -u)" -ne 0 ] && rootless=(--rootless)

umoci init --layout "$out" >/dev/null
umoci new --image "$out:test" >/dev/null

setx() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode("utf-8","surrogateescape"))' "$@"; }

step() {  # step NAME: unpack, run the body (function NAME), repack
  rm -rf "$work/b"
  umoci unpack "${rootless[@]}" --image "$out:test" "$work/b" >/dev/null
  "$1" "$work/b/rootfs"
  umoci repack --image "$out:test" "$work/b" >/dev/null
}

layer1() {
  local r=$1
  mkdir -p "$r/bin" "$r/data/gonedir" "$r/opq/sub" "$r/etc" "$r/work" "$r/links"
  cp /bin/busybox "$r/bin/busybox"
  for t in sh echo cat env pwd ls id; do ln -s busybox "$r/bin/$t"; done
  echo "remove me" > "$r/data/gone"
  echo "in gone dir" > "$r/data/gonedir/f"
  echo "old opaque" > "$r/opq/old.txt"
  echo "old sub" > "$r/opq/sub/x"
  echo "keep" > "$r/data/keep"
  echo "hardlinked" > "$r/links/a"
  ln "$r/links/a" "$r/links/b"
  echo "pair" > "$r/links/p1"
  ln "$r/links/p1" "$r/links/p2"
  ln -s ../data/keep "$r/links/sym"
  echo "with xattrs" > "$r/data/xattr"
  setx "$r/data/xattr" user.berth.test hello
  setx "$r/data/xattr" user.berth.bin $'\x01\xff\x10'
  chmod 0640 "$r/data/keep"
  chmod 0750 "$r/work"
  echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
  if [ "$(id -u)" -eq 0 ]; then
    mknod "$r/data/null" c 1 3
    mknod "$r/data/blk" b 7 200
    mkfifo "$r/data/fifo"
    echo "suid" > "$r/data/suid"
    chown 1234:5678 "$r/data/suid"
    chmod 4755 "$r/data/suid"
    chmod 2775 "$r/work"
  fi
}

layer2() {
  local r=$1
  rm -f "$r/data/gone"
  rm -rf "$r/data/gonedir"
  rm -rf "$r/opq"
  mkdir -p "$r/opq"
  echo "new opaque" > "$r/opq/new.txt"
  rm -f "$r/links/p1"
  echo "replaced p1" > "$r/links/p1"
  echo "layer2" > "$r/data/l2"
}

layer3() {
  local r=$1
  echo "new hardlink" > "$r/data/h1"
  ln "$r/data/h1" "$r/data/h2"
  ln -s /data "$r/datalink"
  echo "changed keep" > "$r/data/keep"
  chmod 0600 "$r/data/keep"
  echo "x3" > "$r/data/x3"
  setx "$r/data/x3" user.layer3 three
}

step layer1
step layer2
step layer3
umoci config --image "$out:test" \
  --config.env "GREETING=hello from oci" --config.env 'QUOTED=a "b" $c' \
  --config.env "PATH=/bin:/usr/bin" \
  --config.entrypoint /bin/sh --config.entrypoint -c \
  --config.cmd 'echo "$GREETING"; pwd; echo "args:$*"' --config.cmd argzero \
  --config.workingdir /work --config.label org.example.label=yes >/dev/null
umoci gc --layout "$out"
