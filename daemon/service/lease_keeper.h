// Keeps an image mounted for a while after its last container exits.
//
// A job's ranks, an array's tasks and an interactive user's next command all
// start the same image again within seconds. Unmounting at the last exit
// would throw away the squashfs superblock's page cache, and the next start
// would pay the mount plus decompressing ld.so and libc again (+11 ms with
// gzip, performance.md). Holding the lease for `linger` after its last use
// makes such starts warm. berth.conf `[images] idle_unmount_seconds`.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/image/mount_cache.h"

namespace berth::daemon {

class LeaseKeeper {
 public:
  explicit LeaseKeeper(absl::Duration linger);
  ~LeaseKeeper();

  // Holds `lease` (one per mount) until `linger` after the latest call.
  void Keep(std::shared_ptr<image::MountLease> lease);

 private:
  void ExpireLoop();

  struct Held {
    std::shared_ptr<image::MountLease> lease;
    absl::Time until;
  };
  const absl::Duration linger_;
  absl::Mutex mu_;
  std::map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);  // by mount root
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread expirer_;
};

}  // namespace berth::daemon
