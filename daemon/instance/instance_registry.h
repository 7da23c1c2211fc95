// The node's named instances (berth instance start|run|list|stop, and
// instance://NAME joins): long-running containers the daemon starts,
// supervises and ends for their users.
//
// An instance is a holder (launch.h LaunchSpec::hold: an init that runs no
// payload, PID 1 of its own PID namespace) whose namespaces the registry
// keeps as descriptors, as the shared containers of daemon/shared/ do; its
// startscript (or runscript) is the first process to join it, and its end
// does not end the instance. Names are per user; one user holds at most
// max_instances_per_user of them.
//
// Supervision: one watcher thread follows every init's pidfd (no thread per
// instance). An init that dies, however, ends its instance at once: the
// entry and its state record go, and the name is free again; unless it has
// a restart policy (--restart), when the watcher launches it afresh under
// the same name right away and counts it.
//
// Stopping (Stop): the signal goes to every process in the instance's PID
// namespace but the init (whose only job is to hold it); once none is left,
// or after the timeout, the init is ended, and the kernel kills whatever
// remained in the namespace with it.
//
// Outliving the daemon (system mode): each instance has a root-owned record
// (instance_state.h); at shutdown the registry lets the inits run on, and
// the next daemon adopts the ones that prove to be the same live processes,
// with their cgroups (when the init is still in them) and their --restart
// policy and count (ResumeRestarts).
// A user-mode daemon's instances end with it: their namespaces belong to
// that daemon's user namespace, which no later daemon could enter.
//
// Privilege: the daemon's (signalling and reaping other users' processes,
// its state directory).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"
#include "daemon/cgroup/container_cgroup.h"
#include "daemon/instance/instance_state.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::instance {

struct Instance;
// Makes a fresh instance from what started `dead` (--restart), in its cgroup.
using Relaunch = std::function<absl::StatusOr<std::shared_ptr<Instance>>(const Instance& dead)>;

// A running instance. Its namespaces stay open as long as anyone holds it
// (a join in progress), even once it has ended.
struct Instance {
  InstanceRecord record;
  launch::LiveNamespaces ns;
  // The init: launched by this daemon (holder), or adopted from a previous
  // one (only its pidfd: the daemon is no longer its parent).
  std::optional<launch::Container> holder;
  UniqueFd adopted_pidfd;
  // The startscript (or runscript) while it runs.
  std::optional<launch::Container> script;
  std::shared_ptr<void> keep;  // the image's mount lease
  bool removed = false;        // out of the registry (guarded by its mutex)
  // --restart: how to bring it back when its init dies, and how many times
  // at most (-1: always). Unset: it does not come back. An adopted instance
  // gets it back from its record (ResumeRestarts).
  Relaunch relaunch;
  int max_restarts = -1;

  int init_pidfd() const { return holder ? holder->pidfd() : adopted_pidfd.get(); }

  // Its own cgroup (instance_cgroup.h), or null where it runs in the
  // daemon's. Removed once the last holder lets go (after its stop), kept
  // across a --restart, left in place for the next daemon at shutdown.
  std::shared_ptr<cgroup::ContainerCgroup> cgroup() const {
    absl::MutexLock lock(&cgroup_mu_);
    return cgroup_;
  }
  void set_cgroup(std::shared_ptr<cgroup::ContainerCgroup> cg) {
    absl::MutexLock lock(&cgroup_mu_);
    cgroup_ = std::move(cg);
  }
  std::shared_ptr<cgroup::ContainerCgroup> take_cgroup() {
    absl::MutexLock lock(&cgroup_mu_);
    return std::exchange(cgroup_, nullptr);
  }

 private:
  mutable absl::Mutex cgroup_mu_;
  std::shared_ptr<cgroup::ContainerCgroup> cgroup_ ABSL_GUARDED_BY(cgroup_mu_);
};

class InstanceRegistry {
 public:
  // `state_dir`: records go to <state_dir>/instances. `persist`: instances
  // outlive the daemon (system mode); else they end with it.
  InstanceRegistry(std::string state_dir, bool persist);
  ~InstanceRegistry();

  // Creates the records' directory and adopts the instances a previous
  // daemon left running; drops records of those that ended.
  absl::Status Init();

  // A name held for an instance being made; released unless committed.
  class Claim {
   public:
    ~Claim();
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;

   private:
    friend class InstanceRegistry;
    Claim(InstanceRegistry* r, uid_t uid, std::string name)
        : registry_(r), uid_(uid), name_(std::move(name)) {}
    InstanceRegistry* registry_;
    uid_t uid_;
    std::string name_;
    bool committed_ = false;
  };

  // Holds `name` for `uid`: refused when the user already has an instance
  // of that name, or `cap` of them.
  absl::StatusOr<std::unique_ptr<Claim>> Reserve(uid_t uid, const std::string& name, int cap);
  // Makes the claimed name `instance`; writes its record.
  absl::Status Commit(std::unique_ptr<Claim> claim, std::shared_ptr<Instance> instance);

  // `uid`'s live instance called `name`, or null.
  std::shared_ptr<Instance> Find(uid_t uid, const std::string& name);
  // The records of the live instances of `uid` (every user's when unset)
  // whose names match the glob `pattern`.
  std::vector<InstanceRecord> List(std::optional<uid_t> uid, const std::string& pattern);
  // Stops the matching instances (see the file comment): `sig`, then
  // SIGKILL after `timeout`; at once with `force`. Returns what it stopped.
  std::vector<InstanceRecord> Stop(std::optional<uid_t> uid, const std::string& pattern, int sig,
                                   absl::Duration timeout, bool force);

  size_t size() const;

  // --restart for instances adopted from a previous daemon: `make` builds
  // the relaunch of a record that carries its start request. Called once
  // the daemon can launch (after Init()).
  void ResumeRestarts(
      const std::function<Relaunch(const InstanceRecord&)>& make,
      const std::function<absl::StatusOr<std::optional<int>>(const std::string&)>& parse_policy);

  // Stops following the instances and lets them run on (persist) or ends
  // them; the destructor's work, callable earlier (before what a Relaunch
  // uses goes away). Idempotent.
  void Shutdown();

 private:
  using Key = std::pair<uid_t, std::string>;

  std::string RecordPath(uid_t uid, const std::string& name) const;
  absl::Status WriteRecord(const InstanceRecord& record);
  void RemoveRecord(const InstanceRecord& record);
  void Adopt(uid_t uid, const std::string& dir);
  // The init of `dead` (already out of the map, its name held by a null
  // entry) ended: launch it afresh, or free the name.
  void Restart(const std::shared_ptr<Instance>& dead);
  void Watch();
  void Wake();

  std::string dir_;
  bool persist_;
  mutable absl::Mutex mu_;
  // null: a name reserved while its instance is being made.
  std::map<Key, std::shared_ptr<Instance>> entries_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ = false;  // Shutdown() ran (the caller's thread only)
  UniqueFd wake_;
  std::thread watcher_;
};

}  // namespace berth::daemon::instance
