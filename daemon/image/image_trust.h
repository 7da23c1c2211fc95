// Whether the kernel's squashfs driver may read an image file in place.
//
// The policy `kernel squashfs = trusted` (mount_cache.h) loop-mounts a file
// directly only if no user can change its bytes while it is mounted;
// everything else is first copied into the daemon's store. A file qualifies
// when it is root-owned and not writable by group or other (with POSIX ACLs
// the group bits are the mask, so no ACL entry can grant a write either), it
// is not on a FUSE filesystem (whose server, possibly a user's process,
// decides the bytes whatever the owner says), and every directory from / to
// it is root-owned and not group/other-writable (the site's image area, the
// same rule Apptainer applies to "allow setuid-mount" images).
#pragma once

#include <string>

namespace berth::daemon::image {

struct TrustVerdict {
  bool trusted = false;
  std::string reason;  // why not, for the log ("owned by uid 1001")
};

// Judges the file behind `fd` (opened as the caller). Reads /proc/self/fd to
// learn its path and re-walks that path with O_NOFOLLOW, requiring it to lead
// to the very same inode; any doubt makes the verdict "not trusted".
// Privilege: none needed beyond the daemon's own (root) view of the path.
TrustVerdict JudgeImageFile(int fd);

}  // namespace berth::daemon::image
