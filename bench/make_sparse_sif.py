#!/usr/bin/env python3
"""make_sparse_sif.py OUT SIZE_GIB: a valid SIF whose primary squashfs
partition is SIZE_GIB of sparse zeros (the file takes no disk space), for
measuring what opening and listing an image really reads."""
import struct
import sys

out, gib = sys.argv[1], int(sys.argv[2])
total, desc_off = 48, 4096
desc_size = total * 585
data_off = desc_off + desc_size
part_off = (data_off + 4095) // 4096 * 4096
part_size = gib << 30
zero_time = -62135596800

header = struct.pack("<32s10s3s3s16sqqqqqqqq", b"", b"SIF_MAGIC\0", b"01\0", b"02\0", bytes(16),
                     zero_time, zero_time, total - 1, total, desc_off, desc_size, data_off,
                     part_off - data_off + part_size)
extra = struct.pack("<ii3s", 1, 2, b"02\0").ljust(384, b"\0")
desc = struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 1, 1, 0xF0000001, 0, part_off, part_size,
                   part_off - data_off + part_size, zero_time, zero_time, 0, 0,
                   b"rootfs", extra)
with open(out, "wb") as f:
    f.write(header)
    f.seek(desc_off)
    f.write(desc)
    f.truncate(part_off + part_size)
