// The loop devices the daemon attached, each counted against the user whose
// request attached it until the kernel has really let it go.
//
// The end of a mount is not the end of its loop device: a user holding a
// descriptor on /proc/PID/root of a container (or a cwd inside it) keeps the
// squashfs superblock alive after the daemon unmounted its own view, and with
// it the loop device and its backing file, which may be a store copy whose
// name the store's budget already deleted. Counting what the daemon thinks it
// holds let a user with max_loop_devices_per_user = 2 hold 5 devices, 4 of
// them over deleted copies beyond the store's budget. So a device the daemon
// let go stays on this ledger, counted against its user and (when it reads a
// store copy) against the stores' budgets and the user's share of them,
// until LOOP_GET_STATUS64 on /dev/loopN says it is unbound or bound to
// something else. Each attach writes a tag unique to it into lo_file_name,
// so a reuse of the number is never mistaken for ours.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/image/immutable_copy.h"

namespace berth::daemon::image {

struct LoopLimits {
  int max_loops = 16;           // devices per user (berth.conf max_loop_devices_per_user)
  int64_t max_store_bytes = 0;  // store copies per user (max_store_mib_per_user); 0: none
};

// The share a user may hold of stores with budget `store_budget`: at most
// half of it whatever `per_user` says (0: none), so one user pinning copies
// always leaves the other half to everyone else.
int64_t UserShareOf(int64_t per_user, int64_t store_budget);

class LoopLedger {
 public:
  // `store_dirs`: the directories of the daemon's copy stores; a backing file
  // in one of them is a store copy.
  LoopLedger(std::vector<std::string> store_dirs, LoopLimits limits);

  struct Ticket {
    uint64_t id = 0;
    std::string tag;  // for lo_file_name
  };

  // Books a loop device over `backing_fd` for `uid` (`limited`: false for
  // root), or refuses, in one line naming the setting, when the user already
  // holds their limit of devices or of store bytes. Released devices are
  // probed first. Privilege: root (opens /dev/loopN).
  absl::StatusOr<Ticket> Reserve(uid_t uid, bool limited, int backing_fd);
  // The device the ticket's mount got; Cancel when the mount failed.
  void Bind(uint64_t id, int loop_number);
  void Cancel(uint64_t id);
  // The daemon let go of the device (unmounted, closed its descriptor): it
  // leaves the ledger once the kernel has detached it.
  void Release(uint64_t id);

  // Whether `uid` may have the daemon copy `bytes` more into a store for a
  // new mount: below their loop devices, and with room in their share (the
  // copy counts against them once mounted). Asked before copying, so a user
  // at a limit costs nobody a copy or an eviction.
  absl::Status CheckNewCopy(uid_t uid, bool limited, int64_t bytes);

  // Files the booked devices read, released ones still attached included.
  std::vector<HeldFile> Held();

 private:
  struct Record {
    uid_t uid = 0;
    int number = -1;  // -1 until bound
    std::string tag;
    HeldFile file;
    bool store_copy = false;
    bool released = false;
  };

  void SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t StoreBytesLocked(uid_t uid, const HeldFile* also) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckLoopsLocked(uid_t uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckStoreLocked(uid_t uid, const HeldFile& file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> store_dirs_;
  const LoopLimits limits_;
  absl::Mutex mu_;
  std::map<uint64_t, Record> records_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace berth::daemon::image
