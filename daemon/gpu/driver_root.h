// Where the host's GPU driver lives: "/" on a real node, or a fake driver
// root that the test suite builds (stub libraries in its own loader cache,
// nvidia-smi as a script, device nodes made with mknod) and names with the
// test-only setting `[gpu] test_driver_root` of berth.conf.
//
// Every host path the GPU code opens (the loader cache, the libraries it
// lists, binaries, /dev nodes, /proc/driver) is resolved by the kernel
// beneath the root (openat2 RESOLVE_IN_ROOT, no magic links), so a symlink
// inside a fake root can never reach the real host, and on a real node the
// result is exactly the host's own path.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace berth::daemon::gpu {

class DriverRoot {
 public:
  // Opens `path` (absolute) as the root.
  static absl::StatusOr<DriverRoot> Open(const std::string& path);

  const std::string& path() const { return path_; }
  bool is_host() const { return path_ == "/"; }
  int fd() const { return fd_.get(); }

  // `abs` ("/usr/lib/x") opened beneath the root with open(2) `flags`
  // (O_CLOEXEC added); a missing file is NotFound.
  absl::StatusOr<UniqueFd> OpenPath(absl::string_view abs, int flags) const;

  // `abs` as a host path, for messages and the tests' eyes.
  std::string Display(absl::string_view abs) const;

 private:
  DriverRoot(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace berth::daemon::gpu
