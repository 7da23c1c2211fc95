#include "daemon/doctor/squashfs_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/loop_device.h"
#include "daemon/image/scoped_mount.h"
#include "daemon/image/squashfs_mount.h"

namespace berth::daemon::doctor {
namespace {

// The image in an unnamed file of the scratch directory's filesystem.
absl::StatusOr<UniqueFd> ImageFile(const std::string& scratch_dir, const ProbeImage& image) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(scratch_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  RETURN_IF_ERROR(WriteAll(fd.get(), image.bytes));
  return fd;
}

absl::Status CheckContent(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  std::span<const uint8_t> expected = ProbeExpectedContent();
  std::vector<uint8_t> got(expected.size());
  RETURN_IF_ERROR_CTX(PreadFull(fd.get(), got, 0), absl::StrCat("reading ", path));
  if (!std::equal(got.begin(), got.end(), expected.begin())) {
    return absl::DataLossError(absl::StrCat(path, " reads back different bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ProbeSquashfs(const std::string& scratch_dir, const ProbeImage& image) {
  ASSIGN_OR_RETURN(UniqueFd file, ImageFile(scratch_dir, image));
  ASSIGN_OR_RETURN(auto loop, image::ScopedLoopDevice::Attach(
                                  file.get(), 0, static_cast<int64_t>(image.bytes.size())));
  std::string target = absl::StrCat(scratch_dir, "/", image.compressor, ".", ::getpid());
  RETURN_IF_ERROR(image::MakeMountPoint(target));
  absl::StatusOr<image::ScopedMount> mount = image::MountKernelSquashfs(loop.path(), target);
  if (!mount.ok()) {
    ::rmdir(target.c_str());
    return mount.status();
  }
  return CheckContent(target + "/probe.txt");
}

}  // namespace berth::daemon::doctor
