// Idmapped clones of the image's mount: how the image's files are owned as
// Apptainer shows them.
//
// The image's squashfs is mounted once per node by root in the initial user
// namespace, so its root-owned files are host uid 0. A --fakeroot container's
// user namespace does not map host 0 (they showed as nobody and no writable
// layer could change them), and a plain user cannot change them through
// --writable-tmpfs or a writable --overlay (copy-up, then their own write,
// was refused). Each container's clone of the image mount is idmapped
// instead (mount_setattr MOUNT_ATTR_IDMAP, Linux >= 5.12; squashfs accepts
// it from 6.2): the shared mount stays as it is, each container gets its
// own cheap view.
//   - --fakeroot: the container's own maps (0 -> the caller, 1..N -> their
//     subordinate range), so image uid N is container uid N;
//   - a plain user with a writable layer: on-disk 0 -> the caller's uid
//     (gid 0 -> their gid), every other id but the caller's own unchanged
//     (an idmap is one-to-one: on-disk ids equal to the caller's show as
//     nobody), so the image's root files are theirs, as with Apptainer's
//     unprivileged squashfuse_ll -o uid=,gid=.
// Only images the caller could read byte for byte are idmapped: a kernel
// squashfs mount, whose file berthd opened with the caller's rights, never a
// sandbox directory or anything else of the host (docs/security.md,
// "Idmapped image mounts").
//
// Privilege: the daemon's (system mode only): a short-lived process of
// CAP_SETUID/CAP_SETGID over the initial user namespace writes the maps of
// a user namespace nobody lives in, kept only as a descriptor.
#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon::launch {

// Whether the mount below `image_fd` may be idmapped at all: a kernel
// squashfs (SQUASHFS_MAGIC), never a directory or FUSE. Only a second check:
// a sandbox directory on a host squashfs passes it too, so the launch spec
// says whether `image_fd` is the image mount of a file the caller opened
// (LaunchSpec::image_from_caller_squashfs).
bool ImageMayBeIdmapped(int image_fd);

// The plain user's map text for `kind` ("uid"/"gid") of id `own` (not 0):
// "0 own 1", and every other id but `own` onto itself.
std::string PlainUserImageMap(uint32_t own);

// A user namespace with these maps (no process in it), as a descriptor for
// mount_setattr's userns_fd.
absl::StatusOr<UniqueFd> MakeMappedUserNamespace(const std::string& uid_map,
                                                 const std::string& gid_map);

// Whether an earlier KernelIdmapsImage saw the kernel refuse: then no
// launch makes the namespace for nothing.
bool KernelRefusedIdmap();

// Whether the kernel idmaps a clone of `image_fd`'s mount with `userns_fd`
// (squashfs before Linux 6.2 refuses: EINVAL). The first refusal is logged
// once, naming the kernel feature.
bool KernelIdmapsImage(int image_fd, int userns_fd);

// What the daemon made as root below `dir_fd` on the session tmpfs (the
// layer roots, the generated /etc files, mount points) is the image's root
// as the idmap shows it: ids 0 become `uid`/`gid` (the caller's, which the
// container sees as 0 with --fakeroot); other owners stay. Never follows a
// symlink; the session tmpfs is the daemon's own, unseen by anyone yet.
absl::Status GiveImageRootOwner(int dir_fd, const std::string& what, uid_t uid, gid_t gid);

}  // namespace berth::daemon::launch
