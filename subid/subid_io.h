// Reading and replacing the subuid/subgid files.
//
// ReadTrustedSubidFile is for berthd, which maps what the file says as root:
// the file must be one no user but root can change (a regular file owned by
// root, not group/other-writable, and every directory above it owned by root
// and not group/other-writable unless sticky), otherwise a user could grant
// themselves any host id. A missing file lists nobody (as in Apptainer).
//
// ReplaceSubidFile is for `berth config fakeroot` (root only): it takes
// shadow's lock file (FILE.lock, the convention usermod and lckpwdf follow),
// writes a temporary file beside FILE with FILE's mode and owner, fsyncs it
// and renames it over FILE, so a reader sees the old or the new file, never
// half of one.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace berth::subid {

inline constexpr size_t kMaxSubidFileBytes = 64 << 20;

// Privilege: none needed beyond reading the file; the checks are on owners.
absl::StatusOr<std::string> ReadTrustedSubidFile(const std::string& path,
                                                 size_t limit = kMaxSubidFileBytes);

// Holds FILE.lock while alive. A lock left by a process that no longer
// exists is taken over.
class SubidLock {
 public:
  static absl::StatusOr<SubidLock> Acquire(const std::string& path);
  SubidLock(SubidLock&& other) noexcept;
  SubidLock& operator=(SubidLock&&) = delete;
  ~SubidLock();

 private:
  explicit SubidLock(std::string lock_path) : lock_path_(std::move(lock_path)) {}
  std::string lock_path_;
};

// Reads FILE for editing ("" when it does not exist yet), at most `limit` bytes.
absl::StatusOr<std::string> ReadSubidFile(const std::string& path,
                                          size_t limit = kMaxSubidFileBytes);

// Privilege: root (writes beside /etc/subuid). Call with the lock held.
absl::Status ReplaceSubidFile(const std::string& path, absl::string_view text);

}  // namespace berth::subid
