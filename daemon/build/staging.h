// Where a build's files live while it runs, and the promise that they do
// not outlive it.
//
// Each build gets `<base>/berth-build-XXXXXX`, owned by the caller (0700):
// base is berth.conf's build_dir (root's, 0711) or, where the admin allows,
// the user's --tmpdir. Before anything is unpacked the base is checked: a
// noexec mount is refused with Apptainer's message, and the free space is
// compared with what the bootstrap will need (CheckFreeSpace), naming the
// directory and the amount.
//
// Removal on every exit path: the BuildStaging destructor (success, error,
// cancellation when the client dies) removes the tree; for a daemon that
// dies mid-build, each build is recorded in <state>/build-staging/ (root's,
// 0700: never where the user could write pids for us to kill) with the
// tree's device and inode and the pid and start time of every process the
// build started; SweepStaleBuilds() at start kills what still runs and
// removes the trees.
//
// Privilege: the daemon's. Directories are created and removed through
// descriptors opened with O_NOFOLLOW (remove_tree.h); a user base is first
// opened as the caller and must be writable by them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace berth::daemon::build {

class StagingRecords {
 public:
  explicit StagingRecords(std::string state_dir);
  // Creates <state>/build-staging (0700).
  absl::Status Init();
  // Kills recorded processes that still run (same pid and start time) and
  // removes recorded trees (same device and inode). Returns how many went.
  // Only recorded trees: a base may be shared (another daemon's, a user's
  // --tmpdir), so nothing is removed there by its name alone.
  absl::StatusOr<int> SweepStaleBuilds();

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

class BuildStaging {
 public:
  // Creates the build's directory in `base_fd` (the path `base` is for
  // messages and for the scripts' $APPTAINER_ROOTFS) and records it.
  static absl::StatusOr<std::unique_ptr<BuildStaging>> Create(StagingRecords& records, int base_fd,
                                                              const std::string& base, uid_t uid,
                                                              gid_t gid);
  ~BuildStaging();  // removes the tree and the record

  int fd() const { return dir_.get(); }
  const std::string& path() const { return path_; }
  // A new directory `name` in the build's directory, owned by the caller,
  // opened with O_NOFOLLOW.
  absl::StatusOr<UniqueFd> MakeDir(const std::string& name, mode_t mode = 0755);
  // Records a process the build started, for the sweep after a crash.
  void RecordProcess(pid_t pid);

 private:
  BuildStaging() = default;
  absl::Status WriteRecord();

  StagingRecords* records_ = nullptr;
  UniqueFd base_;
  UniqueFd dir_;
  std::string name_;
  std::string path_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  absl::Mutex mu_;
  std::string pids_ ABSL_GUARDED_BY(mu_);
};

// Apptainer's refusal of a noexec staging area ("'noexec' mount option set
// on DIR, temporary root filesystem won't be usable at this location").
absl::Status CheckNotNoexec(int dir_fd, const std::string& path);

// Fails early when `dir_fd` has less than `needed` bytes free: "not enough
// space in DIR to build: about N MiB needed, M MiB free (...)".
absl::Status CheckFreeSpace(int dir_fd, const std::string& path, int64_t needed,
                            absl::string_view what);

// The start time of `pid` (/proc/<pid>/stat field 22), or 0.
uint64_t ProcessStartTime(pid_t pid);

}  // namespace berth::daemon::build
