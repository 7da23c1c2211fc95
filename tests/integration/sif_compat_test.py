#!/usr/bin/env python3
"""berth sif vs siftool, byte for byte, in both directions.

  sif_compat_test.py BERTH image IMAGE   every verb on one reference image
  sif_compat_test.py BERTH roundtrip     images made by each tool, read by the other

Debian's siftool (2.8.3) predates the two OCI data types and prints "Unknown"
for them; for those images the reference's golden files are the oracle
(testdata/sif/README.md). Prints one line per check and a closing
'N passed, M failed' line; exits non-zero on any failure.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

TESTDATA = os.environ.get(
    "BERTH_TESTDATA",
    os.path.join(os.path.dirname(__file__), "..", "testdata"))
SIFDIR = os.path.join(TESTDATA, "sif")
OCI_IMAGES = {"one-object-oci-blob.sif": "OCIBlob", "one-object-oci-root-index.sif": "OCIRootIndex"}
WORDS = {"oci": "OCI", "pgp": "PGP", "id": "ID", "sbom": "SBOM", "json": "JSON"}

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout, p.stderr


def golden_name(image):
    stem = os.path.basename(image)[:-4]
    return "".join(WORDS.get(w, w.capitalize()) for w in stem.split("-"))


def golden(kind, name):
    path = os.path.join(SIFDIR, "golden", kind, name + ".golden")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return f.read()
    return None


def object_ids(berth, image):
    rc, out, err = run([berth, "sif", "list", image])
    if rc != 0:
        check(f"berth sif list {os.path.basename(image)}", False, err[:300])
        return []
    ids = []
    for line in out.decode().splitlines()[3:]:
        m = re.match(r"(\d+)\s+\|", line)
        if m:
            ids.append(int(m.group(1)))
    return ids


def compare(berth, label, args, oracle=None):
    """Compare `berth sif ARGS` with `siftool ARGS` (or with an oracle text)."""
    b = run([berth, "sif"] + args)
    if oracle is None:
        s = run(["siftool"] + args)
        ok = b[0] == 0 and s[0] == 0 and b[1] == s[1]
        check(label, ok, f"berth rc={b[0]} siftool rc={s[0]} stderr={b[2][:200]!r}"
              f" berth={b[1][:300]!r} siftool={s[1][:300]!r}")
    else:
        check(label, b[0] == 0 and b[1] == oracle, f"berth={b[1][:300]!r} expected={oracle[:300]!r}")


def check_image(berth, image):
    base = os.path.basename(image)
    gname = golden_name(image)
    oci_info = OCI_IMAGES.get(base)
    for verb in ("header", "list"):
        compare(berth, f"{verb} {base}", [verb, image], golden(verb, gname) if oci_info else None)
        g = golden(verb, gname)
        if g is not None:
            compare(berth, f"{verb} {base} = golden", [verb, image], g)
    ids = object_ids(berth, image)
    for i in ids:
        compare(berth, f"info {i} {base}", ["info", str(i), image],
                golden("info", oci_info) if oci_info else None)
        compare(berth, f"dump {i} {base}", ["dump", str(i), image])
    check(f"objects listed {base}", base.startswith("empty") or ids, "no objects listed")


def mask(data):
    """Blank what legitimately differs between two tools' runs: UUID, times."""
    b = bytearray(data)
    b[48:80] = bytes(32)
    total = int.from_bytes(b[88:96], "little")
    off = int.from_bytes(b[96:104], "little")
    for i in range(total):
        d = off + i * 585
        b[d + 41:d + 57] = bytes(16)
    return bytes(b)


def build_same_image(tool, path, inputs):
    """Builds one image with `tool` (a command prefix list) from `inputs`."""
    rc, out, err = run(tool + ["new", path])
    if rc != 0:
        return err.decode()
    for obj, flags in inputs:
        rc, out, err = run(tool + ["add"] + flags + [path, obj])
        if rc != 0:
            return err.decode()
    return None


def roundtrip(berth):
    tmp = tempfile.mkdtemp(prefix="berth-compat-")
    try:
        def w(name, data):
            p = os.path.join(tmp, name)
            with open(p, "wb") as f:
                f.write(data)
            return p
        deffile = w("a.def", b"Bootstrap: scratch\n")
        rootfs = w("rootfs.img", os.urandom(5000))
        ext3 = w("data.img", b"\x00" * 3000)
        sig = w("sig.bin", b"-----BEGIN PGP SIGNED MESSAGE-----\n")
        sbom = w("sbom.json", b'{"bomFormat":"CycloneDX"}')
        labels = w("labels.json", b'{"a":"b"}')
        crypt = w("key.pem", b"pem")
        inputs = [
            (deffile, ["--datatype", "1", "--groupid", "1"]),
            (labels, ["--datatype", "3", "--groupid", "1", "--filename", "labels"]),
            (rootfs, ["--datatype", "4", "--parttype", "2", "--partfs", "1", "--partarch", "2",
                      "--groupid", "1", "--filename", "rootfs"]),
            (ext3, ["--datatype", "4", "--parttype", "3", "--partfs", "2", "--partarch", "4",
                    "--groupid", "2", "--alignment", "512"]),
            (sig, ["--datatype", "5", "--signhash", "1", "--link", "3",
                   "--signentity", "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84"]),
            (sbom, ["--datatype", "9", "--sbomformat", "spdx-json", "--groupid", "1"]),
            (crypt, ["--datatype", "8", "--link", "3"]),
            (deffile, ["--datatype", "7", "--groupid", "3"]),
        ]
        by_berth = os.path.join(tmp, "berth.sif")
        by_siftool = os.path.join(tmp, "siftool.sif")
        err = build_same_image([berth, "sif"], by_berth, inputs)
        check("berth builds the image", err is None, err)
        err = build_same_image(["siftool"], by_siftool, inputs)
        check("siftool builds the image", err is None, err)
        with open(by_berth, "rb") as f:
            bb = f.read()
        with open(by_siftool, "rb") as f:
            sb = f.read()
        check("images are byte-identical but for UUID and times", mask(bb) == mask(sb),
              f"sizes {len(bb)} vs {len(sb)}")
        for img, who in ((by_berth, "berth-made"), (by_siftool, "siftool-made")):
            for verb in ("list",):
                compare(berth, f"{verb} {who}", [verb, img])
            for i in object_ids(berth, img):
                compare(berth, f"info {i} {who}", ["info", str(i), img])
                compare(berth, f"dump {i} {who}", ["dump", str(i), img])
        # header shows times; compare each tool against itself on the other's file
        compare(berth, "header berth-made", ["header", by_berth])
        compare(berth, "header siftool-made", ["header", by_siftool])

        # Edits: each tool deletes/sets primary on the other's image.
        for img, tool in ((by_berth, ["siftool"]), (by_siftool, [berth, "sif"])):
            rc, _, err = run(tool + ["del", "8", img])
            check(f"del by {tool[0]}", rc == 0, err)
            rc, _, err = run(tool + ["setprim", "4", img])  # data partition: refused by both
            check(f"setprim on a data partition is refused by {tool[0]}", rc != 0)
        compare(berth, "list after cross edits (berth-made)", ["list", by_berth])
        compare(berth, "list after cross edits (siftool-made)", ["list", by_siftool])
        with open(by_berth, "rb") as f:
            bb = f.read()
        with open(by_siftool, "rb") as f:
            sb = f.read()
        check("edited images still match", mask(bb) == mask(sb))

        # berth's own extensions read back by siftool.
        det = os.path.join(tmp, "det.sif")
        rc, _, err = run([berth, "sif", "new", "--deterministic", det])
        check("new --deterministic", rc == 0, err)
        rc, _, err = run([berth, "sif", "add", "--datatype", "7", det, deffile])
        check("add to the deterministic image", rc == 0, err)
        compare(berth, "header deterministic", ["header", det])
        rc, _, err = run([berth, "sif", "del", "--compact", "1", det])
        check("del --compact last object", rc == 0, err)
        check("compact truncates to the data offset", os.path.getsize(det) == 32176,
              str(os.path.getsize(det)))
        compare(berth, "list after compact", ["list", det])
    finally:
        shutil.rmtree(tmp)


def main():
    berth = sys.argv[1]
    if sys.argv[2] == "image":
        check_image(berth, sys.argv[3])
    elif sys.argv[2] == "roundtrip":
        roundtrip(berth)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
