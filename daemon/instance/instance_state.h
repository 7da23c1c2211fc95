// What the daemon records about a running instance, on disk, so that a
// restarted berthd (an upgrade) can adopt the instances it left running.
//
// The record lives in <state_dir>/instances/<uid>/<name>.json, a root-owned
// directory (0700) no user can write. Even so, a record is only a claim:
// adoption believes a pid only once the live process behind it proves to be
// the same one (VerifyInstanceProcess): its start time, its name
// (berth-init) and its mount namespace must be those recorded, checked
// through a pidfd opened first, so a pid recycled since cannot pass.
// Nothing a user can edit decides what a later join enters.
//
// Privilege: the daemon's (its state directory; /proc/<pid>/ns of other
// users' processes).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::instance {

struct InstanceRecord {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
  std::string image;  // the path it was started from (shown, never opened again)
  std::string log_out, log_err;
  pid_t pid = 0;              // the init (holder), in the daemon's pid namespace
  uint64_t start_ticks = 0;   // its start time (/proc/<pid>/stat field 22)
  uint64_t mnt_ns_inode = 0;  // its mount namespace
  int64_t started_unix = 0;
  // What a join needs to know of the container.
  bool fakeroot = false;
  bool ipc_ns = false, uts_ns = false, user_ns = false, net_ns = false;
  std::string home;  // $HOME inside
  std::string cwd;   // where its first process started
  bool has_shell = true;
  std::string restart;
  int restarts = 0;
  // The instance's own cgroup (instance_cgroup.h), one entry per hierarchy;
  // empty when it runs in the daemon's. `limited`: it has limits, and joins
  // land in it.
  struct CgroupDir {
    std::string parent, dir;
    bool v2 = false;
  };
  std::vector<CgroupDir> cgroup;
  bool limited = false;
  // --restart across a daemon restart: the start request (serialized
  // RunRequest, base64) and the owner's groups, to launch it afresh as the
  // owner. Empty without a restart policy.
  std::string request;
  std::vector<gid_t> groups;
};

std::string RecordToJson(const InstanceRecord& record);
absl::StatusOr<InstanceRecord> RecordFromJson(const std::string& json);

// The start time of `pid` in clock ticks since boot.
absl::StatusOr<uint64_t> ProcessStartTicks(pid_t pid);
// The inode of /proc/<pid>/ns/<name>.
absl::StatusOr<uint64_t> NamespaceInode(pid_t pid, const char* name);

// A recorded instance's init, proven live and the same process, with its
// namespaces opened.
struct AdoptedProcess {
  UniqueFd pidfd;
  launch::LiveNamespaces ns;
};
absl::StatusOr<AdoptedProcess> VerifyInstanceProcess(const InstanceRecord& record);

// Opens the namespaces of a live instance init `pid` (pidfd `pidfd`) per
// the record's flags; fails if the process ended meanwhile.
absl::StatusOr<launch::LiveNamespaces> OpenInstanceNamespaces(pid_t pid, int pidfd,
                                                              const InstanceRecord& record);

}  // namespace berth::daemon::instance
