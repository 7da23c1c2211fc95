#!/usr/bin/env python3
"""make_hostile_layout.py DIR KIND: an OCI layout with one hostile layer."""
import gzip, hashlib, io, json, os, sys, tarfile

out, kind = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    def add(name, data=b"x", **kw):
        i = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(i, k, v)
        i.size = len(data) if i.type == tarfile.REGTYPE else 0
        t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)
    add("ok", b"fine")
    if kind == "dotdot":
        add("a/../../escape")
    elif kind == "absolute":
        add("/etc/evil")
    elif kind == "badlink":
        add("link", type=tarfile.LNKTYPE, linkname="missing")
    elif kind == "undersymlink":
        add("s", type=tarfile.SYMTYPE, linkname="/etc")
        add("s/passwd")
    else:
        add("big", os.urandom(200000))
layer = gzip.compress(buf.getvalue())
if kind == "truncated":
    layer = layer[: len(layer) // 2]
elif kind == "corrupt":
    layer = layer[:100] + bytes(b ^ 0xFF for b in layer[100:200]) + layer[200:]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()

os.makedirs(f"{out}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
lb = blob(layer)
if kind == "baddigest":
    with open(f"{out}/blobs/sha256/{lb['digest'][7:]}", "r+b") as f:
        f.seek(10)
        f.write(b"!")
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **blob(config)),
                       "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **lb)]}).encode()
mb = blob(manifest)
if kind == "symlinkblob":
    p = f"{out}/blobs/sha256/{lb['digest'][7:]}"
    os.rename(p, f"{out}/real")
    os.symlink("../../real", p)
with open(f"{out}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [dict(mediaType="application/vnd.oci.image.manifest.v1+json", **mb)]}, f)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
