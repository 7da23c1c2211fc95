#!/usr/bin/env python3
"""grow_partition.py SIF MIB: appends a MIB MiB hole to the SIF's primary
partition (which must be its last object), updating the descriptor's size
and the header's data size: the image then takes the same disk space but
is MIB MiB longer, the shape of a sparse image (review finding 7)."""
import struct
import sys

path, grow = sys.argv[1], int(sys.argv[2]) << 20
with open(path, "r+b") as f:
    hdr = bytearray(f.read(128))
    count = struct.unpack_from("<q", hdr, 88)[0]
    desc_off = struct.unpack_from("<q", hdr, 96)[0]
    for i in range(count):
        f.seek(desc_off + i * 585)
        d = bytearray(f.read(585))
        dtype, used = struct.unpack_from("<iB", d, 0)
        if not used or dtype != 0x4004:
            continue
        off, size, stored = struct.unpack_from("<qqq", d, 17)
        struct.pack_into("<qq", d, 25, size + grow, stored + grow)
        f.seek(desc_off + i * 585)
        f.write(d)
        f.truncate(off + size + grow)
        break
    else:
        sys.exit("no partition in " + path)
    struct.pack_into("<q", hdr, 120, struct.unpack_from("<q", hdr, 120)[0] + grow)
    f.seek(0)
    f.write(hdr)
