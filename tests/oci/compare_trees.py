#!/usr/bin/env python3
"""compare_trees.py REF CANDIDATE: compares two unpacked root filesystems.

REF is `umoci unpack`'s rootfs, CANDIDATE the SIF's squashfs unpacked with
`unsquashfs -d`. Compared per path: type, mode (incl. setuid/sgid/sticky),
uid/gid, size, sha256 of content, symlink target, device numbers, user.*
xattrs, and hardlink groups. Paths berth adds (/.singularity.d layout) are
ignored, as are the mtimes of the root and of directories either tool made up.
Prints one line per difference; exit 1 when there is any.
"""
import hashlib
import os
import stat
import sys

GENERATED = {".singularity.d", ".run", ".exec", ".test", ".shell", "singularity",
             "environment", "dev", "proc", "root", "sys", "home", "tmp", "var", "var/tmp",
             "etc/hosts", "etc/resolv.conf"}


def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel.split("/")[0] in GENERATED and rel.split("/")[0] not in ("etc",) or rel in GENERATED:
                continue
            st = os.lstat(full)
            info = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                info["size"] = st.st_size
                with open(full, "rb") as f:
                    info["sha256"] = hashlib.sha256(f.read()).hexdigest()
                info["mtime"] = int(st.st_mtime)
                info["_ino"] = st.st_ino
                info["nlink"] = st.st_nlink
            elif stat.S_ISLNK(st.st_mode):
                info["target"] = os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                info["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                names = os.listxattr(full, follow_symlinks=False)
            except OSError:
                names = []
            info["xattrs"] = sorted((n, os.getxattr(full, n, follow_symlinks=False))
                                    for n in names if n.startswith("user."))
            out[rel] = info
    return out


def link_groups(tree):
    by_ino = {}
    for rel, info in tree.items():
        if "_ino" in info:
            by_ino.setdefault(info.pop("_ino"), []).append(rel)
    return sorted(sorted(g) for g in by_ino.values() if len(g) > 1)


def main():
    ref, cand = walk(sys.argv[1]), walk(sys.argv[2])
    diffs = []
    ref_groups, cand_groups = link_groups(ref), link_groups(cand)
    for rel in sorted(set(ref) | set(cand)):
        if rel not in cand:
            diffs.append(f"missing in SIF: {rel}")
        elif rel not in ref:
            diffs.append(f"extra in SIF: {rel}")
        elif ref[rel] != cand[rel]:
            keys = sorted(k for k in set(ref[rel]) | set(cand[rel]) if ref[rel].get(k) != cand[rel].get(k))
            diffs.append(f"{rel}: " + ", ".join(f"{k} {ref[rel].get(k)!r} != {cand[rel].get(k)!r}" for k in keys))
    if ref_groups != cand_groups:
        diffs.append(f"hardlink groups differ: {ref_groups} != {cand_groups}")
    for d in diffs:
        print(d)
    print(f"compared {len(ref)} paths, {len(ref_groups)} hardlink groups: {len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
