#!/usr/bin/env python3
"""make_layouts.py DIR: a minimal one-layer image (/hello holds "hello from
the layout", /bin/cat is busybox), written three ways under DIR: an OCI
layout `layout/` (tag `test`), its tar `oci.tar` (oci-archive) and a
`docker save` tar `docker.tar` (tag test/img:1). Pure Python, no network: the caller's-rights tests need a
small local image they can copy and chmod, not a realistic one."""
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def tar_bytes(members):
    """members: (name, bytes, mode) files, or (name, None, link target) symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, extra in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, extra
                t.addfile(info)
                continue
            info.size, info.mode = len(data), extra
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def main(out):
    with open("/bin/busybox", "rb") as f:  # busybox-static, as the other tests use
        busybox = f.read()
    layer_tar = tar_bytes([("hello", b"hello from the layout\n", 0o644),
                           ("bin/busybox", busybox, 0o755), ("bin/cat", None, "busybox")])
    layer_gz = gzip.compress(layer_tar, mtime=0)
    config = json.dumps({
        "architecture": ARCH, "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer_tar)]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + sha(layer_gz), "size": len(layer_gz)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": "sha256:" + sha(manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": "test"}}],
    }).encode()
    layout = os.path.join(out, "layout")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    files += [("blobs/sha256/" + sha(b), b) for b in (layer_gz, config, manifest)]
    for name, data in files:
        with open(os.path.join(layout, name), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "oci.tar"), "wb") as f:
        f.write(tar_bytes([(name, data, 0o644) for name, data in files]))
    docker_manifest = json.dumps([{"Config": sha(config) + ".json", "RepoTags": ["test/img:1"],
                                   "Layers": [sha(layer_tar) + "/layer.tar"]}]).encode()
    with open(os.path.join(out, "docker.tar"), "wb") as f:
        f.write(tar_bytes([("manifest.json", docker_manifest, 0o644),
                           (sha(config) + ".json", config, 0o644),
                           (sha(layer_tar) + "/layer.tar", layer_tar, 0o644)]))


if __name__ == "__main__":
    main(sys.argv[1])
