#!/usr/bin/env python3
"""check_signed.py IMAGE FINGERPRINT: recompute, independently of berth, the
signed image metadata of every current-format PGP signature in IMAGE
(formats.md §2.1) and compare it byte for byte with the clear-signed JSON.
Also checks each Signature descriptor: no group, a group link, hash type 1
(the OpenPGP signature's hash, as the "Hash:" armor header names it: SHA256 1,
SHA384 2, SHA512 3) and FINGERPRINT as the
entity. Exits non-zero with a message on the first difference."""
import hashlib
import json
import struct
import sys

HDR, DESC = 128, 585
SIG_TYPE = 0x4005


def fail(msg):
    sys.exit(f"check_signed: {msg}")


def main():
    path, fingerprint = sys.argv[1], sys.argv[2].upper()
    data = open(path, "rb").read()
    hdr = data[:HDR]
    total, doff = struct.unpack_from("<qq", hdr, 88)
    descs = []
    for i in range(total):
        raw = data[doff + i * DESC: doff + (i + 1) * DESC]
        dtype, used, oid, grp, link, off, size = struct.unpack_from("<iBIIIqq", raw, 0)
        if used:
            descs.append(dict(raw=raw, type=dtype, id=oid, group=grp & 0x0FFFFFFF,
                              link=link, off=off, size=size))
    header_input = hdr[0:45] + hdr[48:64]
    sigs = [d for d in descs if d["type"] == SIG_TYPE]
    if not sigs:
        fail("no signature objects")
    for s in sigs:
        raw = s["raw"]
        if s["group"] != 0 or (s["link"] & 0xF0000000) != 0xF0000000:
            fail(f"signature {s['id']}: must have no group and link to a group")
        gid = s["link"] & 0x0FFFFFFF
        hash_type = struct.unpack_from("<i", raw, 201)[0]
        entity = raw[205:225].hex().upper()
        if entity != fingerprint:
            fail(f"signature {s['id']}: entity {entity}, want {fingerprint}")
        if any(b != 0 for b in raw[225:201 + 384]):
            fail(f"signature {s['id']}: extra area not zero after the fingerprint")
        text = data[s["off"]: s["off"] + s["size"]].decode()
        lines = text.split("\n")
        if lines[0] != "-----BEGIN PGP SIGNED MESSAGE-----" or lines[2] != "":
            fail(f"signature {s['id']}: not a clear-signed message: {lines[:3]}")
        want_type = {"Hash: SHA256": 1, "Hash: SHA384": 2, "Hash: SHA512": 3}.get(lines[1])
        if want_type is None or hash_type != want_type:
            fail(f"signature {s['id']}: hash type {hash_type} does not match '{lines[1]}'")
        signed_json = lines[3]
        if lines[4] != "-----BEGIN PGP SIGNATURE-----":
            fail(f"signature {s['id']}: signed text is not one line of compact JSON")
        members = sorted((d for d in descs if d["group"] == gid), key=lambda d: d["id"])
        min_id = min(d["id"] for d in members)
        objs = []
        for d in members:
            r = d["raw"]
            rel = d["id"] - min_id
            desc_input = (struct.pack("<iBIIqqqq", d["type"], r[4], rel, d["link"],
                                      d["size"], struct.unpack_from("<q", r, 41)[0],
                                      struct.unpack_from("<q", r, 57)[0],
                                      struct.unpack_from("<q", r, 65)[0]) + r[73:585])
            assert len(desc_input) == 557
            objs.append('{"relativeId":%d,"descriptorDigest":"sha256:%s","objectDigest":"sha256:%s"}' % (
                rel, hashlib.sha256(desc_input).hexdigest(),
                hashlib.sha256(data[d["off"]:d["off"] + d["size"]]).hexdigest()))
        want = '{"version":1,"header":{"digest":"sha256:%s"},"objects":[%s]}' % (
            hashlib.sha256(header_input).hexdigest(), ",".join(objs))
        if signed_json != want:
            fail(f"signature {s['id']}: signed JSON differs\n got  {signed_json}\n want {want}")
        json.loads(signed_json)
    print(f"ok: {len(sigs)} signature(s) match")


main()
