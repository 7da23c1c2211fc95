#include "daemon/image/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// Other loop users (losetup, other daemons, our own threads) race for the
// device GET_FREE hands out; a few retries make that invisible.
constexpr int kMaxAttempts = 64;

loop_config MakeConfig(int backing_fd, int64_t offset, int64_t size, const std::string& tag) {
  loop_config config;
  std::memset(&config, 0, sizeof(config));
  config.fd = static_cast<uint32_t>(backing_fd);
  config.info.lo_offset = static_cast<uint64_t>(offset);
  config.info.lo_sizelimit = static_cast<uint64_t>(size);
  // Read-only: the kernel must never write to an image. Autoclear: the
  // device is released with its last reference. No direct I/O: the page
  // cache of the backing file is what makes repeated starts cheap.
  config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
  std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), tag.c_str(),
               sizeof(config.info.lo_file_name) - 1);
  return config;
}

absl::StatusOr<int> GetFreeLoopNumber(int control_fd) {
  int number = ioctl(control_fd, LOOP_CTL_GET_FREE);
  if (number < 0) return ErrnoStatus("LOOP_CTL_GET_FREE", errno);
  return number;
}

}  // namespace

absl::StatusOr<ScopedLoopDevice> ScopedLoopDevice::Attach(int backing_fd, int64_t offset,
                                                          int64_t size, const std::string& tag) {
  ASSIGN_OR_RETURN(UniqueFd control, OpenFile("/dev/loop-control", O_RDWR));
  const loop_config config = MakeConfig(backing_fd, offset, size, tag);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    ASSIGN_OR_RETURN(int number, GetFreeLoopNumber(control.get()));
    std::string path = absl::StrCat("/dev/loop", number);
    auto device = OpenFile(path, O_RDONLY);
    if (!device.ok()) {
      // The node may lag behind GET_FREE for a moment, or vanish (LOOP_CTL_REMOVE).
      if (absl::IsNotFound(device.status())) continue;
      return device.status();
    }
    if (ioctl(device->get(), LOOP_CONFIGURE, &config) == 0) {
      ScopedLoopDevice loop;
      loop.fd_ = std::move(device).value();
      loop.path_ = std::move(path);
      loop.number_ = number;
      spdlog::debug("attached {} (offset {}, size {})", loop.path_, offset, size);
      return loop;
    }
    if (errno != EBUSY) return ErrnoStatus(absl::StrCat("LOOP_CONFIGURE ", path), errno);
    spdlog::debug("{} was taken before we configured it; retrying", path);
  }
  return absl::ResourceExhaustedError(
      absl::StrFormat("no free loop device after %d attempts", kMaxAttempts));
}

}  // namespace berth::daemon::image
