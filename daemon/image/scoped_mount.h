// Ownership of the mounts the image cache makes, and cleanup after a crash.
//
// Every mount berthd makes for an image lives in a ScopedMount: the object
// dies, the mount is detached and its mount point removed, on every path
// including errors. Mounts left behind by a daemon that crashed are found in
// /proc/self/mountinfo at start-up and detached the same way.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth::daemon::image {

class ScopedMount {
 public:
  ScopedMount() = default;
  // Takes ownership of the mount at `path` (already mounted by the caller).
  explicit ScopedMount(std::string path) : path_(std::move(path)) {}
  ScopedMount(ScopedMount&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ScopedMount& operator=(ScopedMount&& other) noexcept;
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  // umount2(MNT_DETACH): containers still using the image keep it alive until
  // they exit; the daemon's table forgets it now. Then the mount point goes.
  // Privilege: root, or the owner of the mount namespace (user mode).
  ~ScopedMount() { Reset(); }

  const std::string& path() const { return path_; }
  void Reset();

 private:
  std::string path_;
};

// Creates the (empty) directory a mount goes on. Fails if it exists.
absl::Status MakeMountPoint(const std::string& path);

// Detaches every mount at or below `dir` (deepest first) and removes the
// empty directories left in it: what a crashed daemon left behind.
// Privilege: as ScopedMount.
absl::Status CleanStaleMounts(const std::string& dir);

// Whether some mount in /proc/self/mountinfo is at or below `dir` (tests, checks).
bool HasMountsUnder(const std::string& dir);

}  // namespace berth::daemon::image
