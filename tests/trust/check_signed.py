#!/usr/bin/env python3
"""check_signed.py IMAGE FINGERPRINT
   check_signed.py --dsse PUBLIC_KEY.pem IMAGE

Checks berth's signatures independently of berth (formats.md §2).

PGP: recomputes the signed image metadata of every current-format PGP
signature in IMAGE and compares it byte for byte with the clear-signed JSON;
checks each Signature descriptor: no group, a group link, hash type 1 (the
OpenPGP signature's hash, as the "Hash:" armor header names it: SHA256 1,
SHA384 2, SHA512 3) and FINGERPRINT as the entity.

DSSE: checks that in every DSSE envelope a signature over the
pre-authentication encoding verifies with PUBLIC_KEY.pem through Python's `cryptography` (OpenSSL, not
berth's code; RSA PKCS#1 v1.5 and ECDSA over SHA-256, Ed25519 over the
message), and compares the payload with the recomputed metadata.

Exits non-zero with a message on the first difference."""
import base64
import hashlib
import json
import struct
import sys

HDR, DESC = 128, 585
SIG_TYPE = 0x4005
DSSE_PAYLOAD_TYPE = "application/vnd.sylabs.sif-metadata+json"


def fail(msg):
    sys.exit(f"check_signed: {msg}")


def read_image(path):
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
    sigs = [d for d in descs if d["type"] == SIG_TYPE]
    if not sigs:
        fail("no signature objects")
    for s in sigs:
        if s["group"] != 0 or (s["link"] & 0xF0000000) != 0xF0000000:
            fail(f"signature {s['id']}: must have no group and link to a group")
    return data, hdr, descs, sigs


def expected_metadata(data, hdr, descs, gid):
    """The signed JSON for object group `gid`, computed from the bytes."""
    header_input = hdr[0:45] + hdr[48:64]
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
    return '{"version":1,"header":{"digest":"sha256:%s"},"objects":[%s]}' % (
        hashlib.sha256(header_input).hexdigest(), ",".join(objs))


def check_pgp(path, fingerprint):
    data, hdr, descs, sigs = read_image(path)
    for s in sigs:
        raw = s["raw"]
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
        want = expected_metadata(data, hdr, descs, s["link"] & 0x0FFFFFFF)
        if signed_json != want:
            fail(f"signature {s['id']}: signed JSON differs\n got  {signed_json}\n want {want}")
        json.loads(signed_json)
    print(f"ok: {len(sigs)} signature(s) match")


def b64decode(text):
    return base64.b64decode(text + "=" * (-len(text) % 4))


def verify_with(key, signature, message):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, message)
    else:
        fail(f"unsupported key type {type(key).__name__}")


def check_dsse(key_path, path):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    key = load_pem_public_key(open(key_path, "rb").read())
    data, hdr, descs, sigs = read_image(path)
    for s in sigs:
        env = json.loads(data[s["off"]: s["off"] + s["size"]])
        if env.get("payloadType") != DSSE_PAYLOAD_TYPE:
            fail(f"signature {s['id']}: payloadType {env.get('payloadType')!r}")
        payload = b64decode(env["payload"])
        pae = b"DSSEv1 %d %s %d %s" % (len(DSSE_PAYLOAD_TYPE), DSSE_PAYLOAD_TYPE.encode(),
                                        len(payload), payload)
        verified = 0
        for sig in env.get("signatures", []):
            try:
                verify_with(key, b64decode(sig["sig"]), pae)
                verified += 1
            except InvalidSignature:
                pass  # an envelope may carry signatures by other keys
        if verified == 0:
            fail(f"signature {s['id']}: no signature in the envelope verifies with {key_path}")
        want = expected_metadata(data, hdr, descs, s["link"] & 0x0FFFFFFF)
        if payload.decode() != want:
            fail(f"signature {s['id']}: payload differs\n got  {payload.decode()}\n want {want}")
    print(f"ok: {len(sigs)} DSSE signature(s) verify")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--dsse":
        check_dsse(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3:
        check_pgp(sys.argv[1], sys.argv[2].upper())
    else:
        sys.exit(__doc__)


main()
