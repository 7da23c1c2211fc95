#!/usr/bin/env python3
"""push_image.py REGISTRY REPO TAG LAYER...: pushes an OCI image to a plain
HTTP registry (docker-registry's API: monolithic blob uploads, then the
manifest) and prints the digests of its layers, one per line.

LAYER is tar:NAME[:KIB] (a gzip'ed tar holding /NAME, KIB (default 256) KiB
of bytes derived from NAME: the same NAME gives the same layer in every
image) or junk:NAME (bytes that are no gzip at all, labelled as a tar+gzip
layer: the conversion to SIF fails on them)."""
import gzip
import hashlib
import io
import json
import random
import sys
import tarfile
import urllib.request


def payload(name, kib=256):
    return random.Random(name).randbytes(kib << 10)


def layer(spec):
    kind, name, *size = spec.split(":")
    if kind == "junk":
        return payload(name), None
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = payload(name, int(size[0]) if size else 256)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), "sha256:" + hashlib.sha256(plain).hexdigest()


def request(method, url, body=b"", ctype="application/octet-stream"):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return r.headers


def upload(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = request("POST", f"{base}/v2/{repo}/blobs/uploads/")["Location"]
    if loc.startswith("/"):
        loc = base + loc
    request("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest, data)
    return {"mediaType": "", "digest": digest, "size": len(data)}


def main():
    reg, repo, tag, specs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    base = "http://" + reg
    layers, diff_ids = [], []
    for spec in specs:
        data, diff_id = layer(spec)
        desc = upload(base, repo, data)
        desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        layers.append(desc)
        diff_ids.append(diff_id or desc["digest"])
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdesc = upload(base, repo, config)
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cdesc, "layers": layers}).encode()
    request("PUT", f"{base}/v2/{repo}/manifests/{tag}", manifest,
            "application/vnd.oci.image.manifest.v1+json")
    for desc in layers:
        print(desc["digest"])


main()
