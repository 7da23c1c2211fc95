#!/usr/bin/env python3
"""Generates the malformed-SIF corpus that tests/sif/malformed_test.sh runs.

Each case is NAME.sif plus NAME.err, a substring of the one-line error berth
must print for it. Images are built from scratch (formats.md section 1) with
a 4-slot descriptor table right after the header, so each file stays at a few
KB and differs from a valid image in exactly the field under test. The .err
strings quote sif/validate.cc and sif/image.cc; update both together.

Usage: make_corpus.py [--out DIR] [--testdata DIR] [--seeds DIR]
  --out       where to write the corpus (default: this script's directory)
  --testdata  reference images, for the truncated-golden case
              (default: <repo>/tests/testdata/sif)
  --seeds     also write small *valid* images to DIR (the fuzzer's seeds)
"""

import argparse
import os
import struct
import sys

HEADER_SIZE = 128
DESC_SIZE = 585
GROUP_MASK = 0xF0000000
INT64_MAX = (1 << 63) - 1

DEFFILE = 0x4001
PARTITION = 0x4004
SIGNATURE = 0x4005
GENERIC_JSON = 0x4006
GENERIC = 0x4007
CRYPTO_MESSAGE = 0x4008
SBOM = 0x4009
OCI_ROOT_INDEX = 0x400A
OCI_BLOB = 0x400B

FS_SQUASHFS, FS_RAW = 1, 4
PART_SYSTEM, PART_PRIMSYS = 1, 2

CAPACITY = 4
DESC_OFFSET = HEADER_SIZE
DATA_OFFSET = DESC_OFFSET + CAPACITY * DESC_SIZE  # 2468
# A fixed time keeps regenerated files byte-identical.
TIME = 1700000000


def pack_header(*, launch=b"", magic=b"SIF_MAGIC\0", version=b"01\0", arch=b"00\0",
                uuid=bytes(range(16)), ctime=TIME, mtime=TIME, free, total, desc_off,
                desc_size, data_off, data_size):
    return struct.pack("<32s10s3s3s16sqqqqqqqq", launch, magic, version, arch, uuid, ctime,
                       mtime, free, total, desc_off, desc_size, data_off, data_size)


def pack_descriptor(*, dtype=GENERIC, used=1, id, group=0, link=0, offset, size, padded,
                    name=b"", extra=b""):
    return struct.pack("<iBIIIqqqqqqq128s384s", dtype, used, id, group | GROUP_MASK, link,
                       offset, size, padded, TIME, TIME, 0, 0, name, extra)


def partition_extra(fs, part, arch=b"02"):
    return struct.pack("<ii3s", fs, part, arch)


def obj(id, data=b"", **fields):
    """One object: its bytes plus any descriptor field overrides.

    `align` places it like siftool's --alignment; `offset`, `size` and
    `padded` override what the layout computed (the malformed part)."""
    return dict(id=id, data=data, **fields)


def image(objects=(), *, extra_slots=(), tail=b"", **header_fields):
    """Lays objects out like siftool: header, the 4-slot table at 128, then
    the data area, then `tail`. header_fields override computed header
    values; the bytes stay where a well-formed image has them, so only the
    header lies."""
    data = bytearray()
    slots = []
    for o in objects:
        o = dict(o)
        payload = o.pop("data")
        align = o.pop("align", 0)
        start = DATA_OFFSET + len(data)
        offset = start if align <= 1 else -(-start // align) * align
        data += bytes(offset - start) + payload
        desc = dict(offset=offset, size=len(payload), padded=offset - start + len(payload))
        desc.update(o)
        slots.append(pack_descriptor(**desc))
    slots += list(extra_slots)
    used = len(slots)
    slots += [bytes(DESC_SIZE)] * (CAPACITY - used)
    hdr = dict(free=CAPACITY - used, total=CAPACITY, desc_off=DESC_OFFSET,
               desc_size=CAPACITY * DESC_SIZE, data_off=DATA_OFFSET, data_size=len(data))
    hdr.update(header_fields)
    return pack_header(**hdr) + b"".join(slots) + bytes(data) + tail


def generic(id, n=8, **fields):
    """An object of n bytes, each the letter for its ID ('A' for 1)."""
    return obj(id, bytes([0x40 + id]) * n, **fields)


def valid_objects():
    """A plausible image: a def file, a primary squashfs, a signature over
    group 1, in the order apptainer + siftool sign would write them."""
    return [
        obj(1, b"Bootstrap: docker\nFrom: alpine\n", dtype=DEFFILE, group=1),
        obj(2, b"hsqs" + bytes(60), dtype=PARTITION, group=1, align=64, name=b"rootfs",
            extra=partition_extra(FS_SQUASHFS, PART_PRIMSYS)),
        obj(3, b"-----BEGIN PGP SIGNED MESSAGE-----\n", dtype=SIGNATURE, link=1 | GROUP_MASK,
            extra=struct.pack("<i", 1) + bytes(range(1, 21))),
    ]


def cases(testdata):
    """(name, bytes, expected error substring) for every malformed case."""
    good = valid_objects()
    valid = image(good)
    yield "empty", b"", "file is 0 bytes, smaller than the 128-byte SIF header"
    yield "short-header", valid[:100], "file is 100 bytes, smaller than the 128-byte SIF header"
    yield "wrong-magic", image(good, magic=b"SIF_MAGIX\0"), "not a SIF image: no SIF_MAGIC"
    yield "wrong-version", image(good, version=b"02\0"), 'unsupported SIF version "02"'
    # Control bytes in the version must be escaped: the error stays one line.
    yield ("version-newline", image(good, version=b"\n1\0"),
           'unsupported SIF version "\\n1"')
    yield ("table-truncated", valid[:DESC_OFFSET + 2 * DESC_SIZE],
           f"descriptor table (offset 128, {CAPACITY * DESC_SIZE} bytes) extends beyond the "
           "end of the file (1298 bytes)")
    yield ("table-beyond-eof", image(good, desc_off=1 << 20),
           "descriptor table (offset 1048576, 2340 bytes) extends beyond the end of the file")
    # The biggest capacity we accept, in a small file: must fail before the
    # 38 MB table is allocated.
    yield ("max-count-small-file", image(good, total=65536, free=65536 - 3,
                                         desc_size=65536 * DESC_SIZE),
           "descriptor table (offset 128, 38338560 bytes) extends beyond the end of the file")
    yield ("negative-count", image(good, total=-1, desc_size=-DESC_SIZE),
           "descriptor capacity -1 is out of range")
    yield ("huge-count", image(good, total=1 << 40, desc_size=(1 << 40) * DESC_SIZE),
           "descriptor capacity 1099511627776 is out of range")
    yield ("count-over-limit", image(good, total=65537, desc_size=65537 * DESC_SIZE),
           "descriptor capacity 65537 is out of range (0..65536)")
    yield ("table-size-mismatch", image(good, desc_size=CAPACITY * DESC_SIZE + 1),
           "descriptor table size 2341 does not match 4 descriptors of 585 bytes")
    yield ("table-size-short", image(good, desc_size=CAPACITY * DESC_SIZE - DESC_SIZE),
           "descriptor table size 1755 does not match 4 descriptors of 585 bytes")
    yield ("table-in-header", image(good, desc_off=64),
           "descriptor table offset 64 overlaps the 128-byte header")
    yield ("table-offset-negative", image(good, desc_off=-4096),
           "descriptor table offset -4096")
    yield ("table-offset-overflow", image(good, desc_off=INT64_MAX - 100),
           f"descriptor table offset {INT64_MAX - 100}")
    yield ("data-truncated", valid[:-10],
           f"data area (offset {DATA_OFFSET}, {len(valid) - DATA_OFFSET} bytes) extends beyond "
           f"the end of the file ({len(valid) - 10} bytes)")
    yield ("data-size-beyond-eof", image(good, data_size=1 << 40),
           f"data area (offset {DATA_OFFSET}, 1099511627776 bytes) extends beyond the end of "
           "the file")
    yield ("data-size-negative", image(good, data_size=-1),
           f"data area (offset {DATA_OFFSET}, size -1) is malformed")
    yield ("data-offset-in-header", image(good, data_off=16), "data area (offset 16, size")
    yield ("data-offset-overflow", image(good, data_off=INT64_MAX - 10, data_size=100),
           f"data area (offset {INT64_MAX - 10}, size 100) is malformed")
    yield ("data-overlaps-table", image(good, data_off=DESC_OFFSET + DESC_SIZE),
           "data area (offset 713) overlaps the descriptor table (ends at 2468)")
    yield ("free-count-over-total", image(good, free=CAPACITY + 1),
           "free descriptor count 5 is out of range (0..4)")
    yield ("free-count-negative", image(good, free=-1),
           "free descriptor count -1 is out of range (0..4)")
    yield ("free-count-inconsistent", image(good, free=CAPACITY),
           "header counts 4 free descriptors but 1 are unused")
    yield ("free-count-inconsistent-low", image(good, free=0),
           "header counts 0 free descriptors but 1 are unused")
    yield ("used-flag-2", image([good[0], dict(good[1], used=2), good[2]]),
           "descriptor 2: 'used' flag is 2 (must be 0 or 1)")
    yield ("used-flag-255", image([good[0], good[1], good[2]],
                                  extra_slots=[bytes([0x07, 0x40, 0, 0, 0xFF]) +
                                               bytes(DESC_SIZE - 5)]),
           "descriptor 4: 'used' flag is 255")
    yield ("object-id-zero", image([good[0], dict(good[1], id=0), good[2]]),
           "a used descriptor has object ID 0")
    yield ("duplicate-id", image([good[0], dict(good[1], id=1), good[2]]),
           "object ID 1 is used by two descriptors")
    yield ("object-after-data-area", image([generic(1), generic(2, offset=DATA_OFFSET + 100)]),
           f"object 2 (offset {DATA_OFFSET + 100}, size 8) lies outside the data area "
           f"[{DATA_OFFSET}, {DATA_OFFSET + 16})")
    yield ("object-in-descriptor-table", image([generic(1), generic(2, offset=DESC_OFFSET + 10)]),
           f"object 2 (offset {DESC_OFFSET + 10}, size 8) lies outside the data area")
    yield ("object-past-data-end", image([generic(1), generic(2, size=9, padded=9)]),
           f"object 2 (offset {DATA_OFFSET + 8}, size 9) lies outside the data area")
    yield ("object-offset-overflow", image([generic(1), generic(2, offset=INT64_MAX - 4)]),
           f"object 2 (offset {INT64_MAX - 4}, size 8) lies outside the data area")
    yield ("object-size-overflow", image([generic(1), generic(2, size=INT64_MAX, padded=INT64_MAX)]),
           f"object 2 (offset {DATA_OFFSET + 8}, size {INT64_MAX}) lies outside the data area")
    yield ("object-size-negative", image([generic(1), generic(2, size=-5)]),
           f"object 2: negative offset/size or padding smaller than size (offset "
           f"{DATA_OFFSET + 8}, size -5, padded 8)")
    yield ("object-offset-negative", image([generic(1), generic(2, offset=-8)]),
           "object 2: negative offset/size or padding smaller than size (offset -8,")
    yield ("padded-smaller-than-size", image([generic(1), generic(2, padded=5)]),
           "padding smaller than size (offset 2476, size 8, padded 5)")
    yield ("objects-overlap", image([generic(1), generic(2), generic(3, offset=DATA_OFFSET + 12)]),
           f"objects 2 and 3 overlap (2 ends at {DATA_OFFSET + 16}, 3 starts at "
           f"{DATA_OFFSET + 12})")
    # Equal offsets sort either way, so the message may name 2 before 1.
    yield ("objects-same-range", image([generic(1), generic(2, offset=DATA_OFFSET)]), " overlap (")
    yield ("object-inside-object", image([generic(1, 32), generic(2, 4, offset=DATA_OFFSET + 8)]),
           "objects 1 and 2 overlap")
    yield ("link-missing-object", image([generic(1), generic(2, link=7)]),
           "object 2 links to object 7, which does not exist")
    yield ("link-to-self", image([generic(1), generic(2, link=2)]),
           "object 2 links to object 2, which does not exist")
    yield ("link-empty-group", image([generic(1, group=1), generic(2, link=5 | GROUP_MASK)]),
           "object 2 links to group 5, which has no objects")
    yield ("link-group-zero", image([generic(1), generic(2, link=GROUP_MASK)]),
           "object 2 links to group 0, which has no objects")
    yield ("two-primary-partitions",
           image([good[0], good[1],
                  obj(3, b"hsqs" + bytes(60), dtype=PARTITION, group=1,
                      extra=partition_extra(FS_SQUASHFS, PART_PRIMSYS))]),
           "objects 2 and 3 are both the primary system partition")
    for name, raw in [("truncated", b"ab\xc3"), ("overlong", b"\xc0\xafetc"),
                      ("surrogate", b"\xed\xa0\x80"), ("latin1", b"caf\xe9"),
                      ("beyond-max", b"\xf4\x90\x80\x80")]:
        yield (f"name-utf8-{name}", image([generic(1), generic(2, name=raw)]),
               "object 2: name is not valid UTF-8")
    digest = b"sha256:" + b"ab" * 32
    yield ("oci-digest-newline",
           image([obj(1, b"{}", dtype=OCI_BLOB, extra=digest[:20] + b"\n" + digest[21:])]),
           "object 1: OCI digest is not printable ASCII")
    yield ("oci-digest-space",
           image([obj(1, b"{}", dtype=OCI_ROOT_INDEX, extra=b"sha256: " + b"0" * 64)]),
           "object 1: OCI digest is not printable ASCII")
    yield ("oci-digest-high-bytes",
           image([obj(1, b"{}", dtype=OCI_BLOB, extra=b"sha256:\xff\xfe")]),
           "object 1: OCI digest is not printable ASCII")
    golden = os.path.join(testdata, "one-group.sif")
    with open(golden, "rb") as f:
        raw = f.read()
    half = len(raw) // 2
    yield ("truncated-golden", raw[:half],
           f"descriptor table (offset 4096, 28080 bytes) extends beyond the end of the file "
           f"({half} bytes): the image is truncated")


def seeds():
    """Small valid images for the fuzzer: every typed extra area, links to
    objects and groups, and the less usual layouts the validator accepts."""
    good = valid_objects()
    yield "small-signed", image(good)
    yield "small-empty", image([])
    yield "small-typed", image([
        obj(1, b"raw", dtype=PARTITION, group=1, extra=partition_extra(FS_RAW, PART_SYSTEM)),
        obj(2, b"hsqs" + bytes(28), dtype=PARTITION, group=1, align=4096,
            extra=partition_extra(FS_SQUASHFS, PART_SYSTEM, b"04")),
        obj(3, b"-----BEGIN PGP MESSAGE-----\n", dtype=CRYPTO_MESSAGE, link=2,
            extra=struct.pack("<ii", 2, 0x200)),
        obj(4, b'{"bomFormat":"CycloneDX"}', dtype=SBOM, group=2, link=1 | GROUP_MASK,
            extra=struct.pack("<i", 1)),
    ])
    yield "small-oci", image([
        obj(1, b'{"schemaVersion":2}', dtype=OCI_ROOT_INDEX,
            extra=b"sha256:" + b"1f" * 32),
        obj(2, b"layer", dtype=OCI_BLOB, extra=b"sha256:" + b"2e" * 32),
        obj(3, b"", dtype=GENERIC_JSON, name=b"empty.json"),
    ])
    # Valid images one edit away from the bugs the fuzzer found in
    # sif/mutate.cc; each edit must now be refused and leave a valid image.
    # `sif add`: the first free slot's ID (2) is taken by the object in slot 1.
    yield "regress-add-id-taken", image([generic(2)])
    # `sif del 1`: object 2 links to it; then the same through group 1.
    yield "regress-del-linked-object", image([generic(1), generic(2, link=1)])
    yield "regress-del-linked-group", image([generic(1, group=1),
                                             generic(2, link=1 | GROUP_MASK)])
    # `sif del --compact 2`: its padding claims the end of object 1, or the
    # data area has slack after it.
    yield "regress-compact-padding", image([generic(1), generic(2, padded=12)])
    yield "regress-compact-slack", image([generic(1), generic(2)], data_size=20, tail=bytes(4))
    # Legal but unusual: the data area [128, 132) lies before a descriptor
    # table at 4096, so growing the data area would run into the table.
    desc = pack_descriptor(id=1, offset=HEADER_SIZE, size=4, padded=4)
    hdr = pack_header(free=CAPACITY - 1, total=CAPACITY, desc_off=4096,
                      desc_size=CAPACITY * DESC_SIZE, data_off=HEADER_SIZE, data_size=4)
    blob = hdr + b"data"
    yield "small-table-after-data", (blob + bytes(4096 - len(blob)) + desc +
                                     bytes((CAPACITY - 1) * DESC_SIZE))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=here)
    ap.add_argument("--testdata",
                    default=os.path.join(repo, "tests", "testdata", "sif"))
    ap.add_argument("--seeds")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    names = set()
    for name, data, err in cases(args.testdata):
        assert name not in names, name
        assert "\n" not in err, name
        names.add(name)
        write(os.path.join(args.out, name + ".sif"), data)
        write(os.path.join(args.out, name + ".err"), (err + "\n").encode())
    # Drop cases this script no longer makes (a .sif with its .err, nothing
    # else), so the committed corpus always matches it.
    for entry in os.listdir(args.out):
        stem, ext = os.path.splitext(entry)
        pair = [os.path.join(args.out, stem + e) for e in (".sif", ".err")]
        if ext == ".err" and stem not in names and os.path.exists(pair[0]):
            for path in pair:
                os.remove(path)
    print(f"wrote {len(names)} cases to {args.out}")
    if args.seeds:
        os.makedirs(args.seeds, exist_ok=True)
        n = 0
        for name, data in seeds():
            write(os.path.join(args.seeds, name + ".sif"), data)
            n += 1
        print(f"wrote {n} seeds to {args.seeds}")


if __name__ == "__main__":
    sys.exit(main())
