// Loop devices: a read-only block device over one byte range of a file.
//
// System mode mounts an image's squashfs partition with the kernel driver,
// which needs a block device. The device is configured in one LOOP_CONFIGURE
// call over the descriptor we already hold (never a path re-opened later),
// limited to the partition (offset + size limit), read-only and
// autoclear: the kernel frees it when the last user (our descriptor, then the
// mount) goes away, so a crash of the daemon cannot leak devices.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon::image {

class ScopedLoopDevice {
 public:
  // Attaches `backing_fd` bytes [offset, offset+size) to a free loop device,
  // with `tag` as its lo_file_name (what tells this attach from any later
  // use of the number, loop_ledger.h). Retries when another loop user grabs
  // the free device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
  // Privilege: root (opens /dev/loop-control and /dev/loopN).
  static absl::StatusOr<ScopedLoopDevice> Attach(int backing_fd, int64_t offset, int64_t size,
                                                 const std::string& tag = "berth");

  ScopedLoopDevice() = default;
  ScopedLoopDevice(ScopedLoopDevice&&) = default;
  ScopedLoopDevice& operator=(ScopedLoopDevice&&) = default;
  // Closing our descriptor lets autoclear free the device once it is no
  // longer mounted (or right away if the mount never happened).
  ~ScopedLoopDevice() = default;

  const std::string& path() const { return path_; }  // "/dev/loop7"
  int number() const { return number_; }

 private:
  UniqueFd fd_;
  std::string path_;
  int number_ = -1;
};

}  // namespace berth::daemon::image
