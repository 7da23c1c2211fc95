#include "daemon/service/run_overlay.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/mount_api.h"

namespace berth::daemon {
namespace {

constexpr int kMaxOverlays = 32;

bool IsSquashfs(int fd) {
  char magic[4] = {};
  return ::pread(fd, magic, sizeof magic, 0) == sizeof magic && magic[0] == 'h' &&
         magic[1] == 's' && magic[2] == 'q' && magic[3] == 's';
}

// `writable`: the path of the writable overlay so far (for the message
// when there would be two), set here when this one is.
absl::Status AddDirectory(const image::CallerCreds& caller, const std::string& path, bool ro,
                          bool writable_tmpfs, const std::string& what, UniqueFd fd,
                          std::string& writable, launch::LaunchSpec& spec) {
  launch::OverlaySet& o = spec.overlays;
  // Non-recursive: a mount below DIR stays out, as with a sandbox.
  auto cloned = launch::CloneDetached(fd.get(), "", /*recursive=*/false);
  if (!cloned.ok()) return Annotate(cloned.status(), what);
  UniqueFd tree = *std::move(cloned);
  if (ro) {
    launch::OverlayLayer layer{std::move(tree), UniqueFd(), what};
    // DIR/upper when it is there (O_PATH|O_NOFOLLOW opens a symlink itself,
    // which is refused), else DIR.
    const std::string upper_path = absl::StrCat(what, ": ", path, "/upper");
    auto found = image::OpenAtAsCaller(caller, layer.tree.get(), "upper", O_PATH | O_NOFOLLOW);
    if (found.ok()) {
      struct stat st;
      if (::fstat(found->get(), &st) != 0) return ErrnoStatus(upper_path, errno);
      if (!S_ISDIR(st.st_mode)) {
        return absl::InvalidArgumentError(
            absl::StrCat(upper_path, " is not a directory (a symlink there is refused)"));
      }
      auto dir = image::OpenAtAsCaller(caller, layer.tree.get(), "upper",
                                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (!dir.ok()) return Annotate(dir.status(), upper_path);
      layer.dir = *std::move(dir);
    } else if (!absl::IsNotFound(found.status())) {
      return Annotate(found.status(), upper_path);
    }
    o.lowers.push_back(std::move(layer));
    return absl::OkStatus();
  }
  if (o.upper) {
    return absl::InvalidArgumentError(
        absl::StrCat("you can't specify more than one writable overlay, ", writable,
                     " contains a writable overlay, requires to use '--overlay ", path, ":ro'"));
  }
  if (writable_tmpfs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "you can't specify --writable-tmpfs with another writable overlay image (", path, ")"));
  }
  launch::OverlayLayer layer{std::move(tree), UniqueFd(), what};
  for (const char* name : {"upper", "work"}) {
    auto dir = image::MakeDirAtAsCaller(caller, layer.tree.get(), name, 0755);
    if (!dir.ok()) return Annotate(dir.status(), absl::StrCat(what, ": ", path, "/", name));
    (name[0] == 'u' ? layer.dir : o.work) = *std::move(dir);
  }
  o.upper = std::move(layer);
  writable = path;
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOverlayRequest(const v1::RunRequest& r, bool ecl_active) {
  if (r.overlay().empty()) return absl::OkStatus();
  if (r.writable()) {
    return absl::InvalidArgumentError("you could not use --overlay in conjunction with --writable");
  }
  if (ecl_active) {
    return absl::PermissionDeniedError(
        "--overlay adds unsigned content; this node's ECL (ecl.toml) runs signed SIF images only");
  }
  // Each is a mount (and a squashfs image one more) held for the container.
  if (r.overlay_size() > kMaxOverlays) {
    return absl::InvalidArgumentError(
        absl::StrCat("--overlay: ", r.overlay_size(), " overlays given, at most ", kMaxOverlays));
  }
  return absl::OkStatus();
}

absl::Status AddOverlays(const v1::RunRequest& r, const image::CallerCreds& caller, bool ecl_active,
                         const AcquireOverlayImage& acquire,
                         std::vector<std::shared_ptr<image::MountLease>>& leases,
                         launch::LaunchSpec& spec) {
  RETURN_IF_ERROR(CheckOverlayRequest(r, ecl_active));
  std::string writable;
  for (const std::string& entry : r.overlay()) {
    bool ro = absl::EndsWith(entry, ":ro");
    std::string path = ro ? entry.substr(0, entry.size() - 3) : entry;
    std::string what = absl::StrCat("--overlay ", path);
    RETURN_IF_ERROR_CTX(image::ValidateCallerPath(path, "overlay path"), "--overlay");
    // O_RDONLY as the caller: like a sandbox, a directory must be readable.
    auto fd = image::OpenAsCaller(caller, path, O_RDONLY);
    if (!fd.ok()) return Annotate(fd.status(), what);
    struct stat st;
    if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(what, errno);
    if (S_ISDIR(st.st_mode)) {
      RETURN_IF_ERROR(
          AddDirectory(caller, path, ro, r.writable_tmpfs(), what, *std::move(fd), writable, spec));
      continue;
    }
    if (!S_ISREG(st.st_mode) || !IsSquashfs(fd->get())) {
      return absl::InvalidArgumentError(absl::StrCat(
          what,
          ": not a directory or a squashfs image; berth does not mount ext3 overlay "
          "images (use a directory: --overlay DIR, or a squashfs image as a read-only layer)"));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<image::MountLease> lease, acquire(*std::move(fd), path));
    UniqueFd root(::open(lease->root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return ErrnoStatus(absl::StrCat(what, ": the image's mount"), errno);
    ASSIGN_OR_RETURN(UniqueFd tree, launch::CloneDetached(root.get(), "", /*recursive=*/false));
    spec.overlays.lowers.push_back({std::move(tree), UniqueFd(), what});
    leases.push_back(std::move(lease));
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon
