#include "daemon/gpu/libs_tree.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/mount_api.h"

namespace berth::daemon::gpu {
namespace {

constexpr uint64_t kLibAttributes = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

// One library's bind onto its placeholder in the tree's tmpfs `tree`.
absl::Status BindLibrary(int tree, const DriverFile& lib) {
  std::string name = lib.destination.substr(lib.destination.find_last_of('/') + 1);
  UniqueFd placeholder(
      ::openat(tree, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!placeholder) return ErrnoStatus(absl::StrCat("placeholder for ", name), errno);
  ASSIGN_OR_RETURN(UniqueFd mnt, launch::CloneDetached(lib.fd.get(), "", /*recursive=*/false));
  RETURN_IF_ERROR(launch::SetMountAttributes(mnt.get(), kLibAttributes, MS_PRIVATE, false));
  ASSIGN_OR_RETURN(UniqueFd target,
                   launch::OpenAt2(tree, name, O_PATH | O_NOFOLLOW, RESOLVE_BENEATH));
  if (::move_mount(mnt.get(), "", target.get(), "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return ErrnoStatus(absl::StrCat("binding ", lib.host_path), errno);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UniqueFd> BuildLibsTree(const std::vector<DriverFile>& libraries) {
  ASSIGN_OR_RETURN(UniqueFd tree, launch::NewDetachedMount(
                                      "tmpfs", {{"mode", "0755"}, {"size", "1048576"}},
                                      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
  for (const DriverFile& lib : libraries) {
    RETURN_IF_ERROR_CTX(BindLibrary(tree.get(), lib), "the driver libraries' tree");
  }
  return tree;
}

}  // namespace berth::daemon::gpu
