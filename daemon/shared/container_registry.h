// Live containers that later processes join: the daemon's registry of
// shared containers (the ranks of a Slurm job step on this node, processes
// under one --sharens parent, and the named instances to come).
//
// The first process of a key makes the container (a holder launched by
// launch::Launch with LaunchSpec::hold, whose namespaces the registry then
// keeps as descriptors); every later one joins it with launch::Join, as a
// separate process in its own caller's cgroup, with its own descriptors.
// Concurrent first arrivals wait for the one making it. A container with no
// member left lives on until its key's anchor process ends (the step's
// slurmstepd, the --sharens parent), so that ranks that start a little
// apart still meet; without an anchor it ends with its last member. A
// container whose holder died is dropped from the registry at once.
//
// What made a container (its image and the options that shape it) is kept:
// a process that asks for something else gets an error naming the
// difference while the container has members, and replaces it when it has
// none (a job step may run one container after another).
//
// EndJob (the Slurm epilog) ends every container of a job: holders and
// members are killed, whatever their state.
//
// Privilege: runs in the daemon; creating and ending containers needs its
// rights (the factory launches, destruction kills and reaps).
#pragma once

#include <sys/types.h>

#include <csignal>
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
#include "common/unique_fd.h"
#include "daemon/launch/launch.h"
#include "daemon/shared/share_key.h"

namespace berth::daemon::shared {

// A running shared container: its holder, the namespaces it made, and
// whatever must live as long as it does (the image's mount lease).
class LiveContainer {
 public:
  LiveContainer(launch::Container holder, launch::LiveNamespaces ns, std::shared_ptr<void> keep)
      : holder_(std::move(holder)), ns_(std::move(ns)), keep_(std::move(keep)) {}
  // Kills and reaps the holder (which ends a PID namespace's processes).
  ~LiveContainer() = default;

  const launch::LiveNamespaces& namespaces() const { return ns_; }
  const launch::Container& holder() const { return holder_; }
  void Kill() { (void)holder_.Signal(SIGKILL); }

 private:
  launch::Container holder_;
  launch::LiveNamespaces ns_;
  std::shared_ptr<void> keep_;
};

// What a container was made from: processes that join must ask for the same.
struct ContainerShape {
  std::string image_id;  // what is compared (the image's digest)
  std::string image;     // what messages show (the path asked for)
  // (option, value) pairs in a fixed order, e.g. ("--bind", "/a:/a").
  std::vector<std::pair<std::string, std::string>> options;
};

class ContainerRegistry {
 private:
  struct Entry;

 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<LiveContainer>>()>;

  // A member's hold on a container; leaving (destruction) may end it.
  class Membership {
   public:
    ~Membership();
    const launch::LiveNamespaces& namespaces() const;
    // The member's own process (its pidfd, duplicated), killed with the job.
    void Track(int pidfd);
    // True when this member made the container.
    bool created() const { return created_; }

   private:
    friend class ContainerRegistry;
    Membership(ContainerRegistry* registry, std::shared_ptr<Entry> entry,
               std::shared_ptr<LiveContainer> live, bool created)
        : registry_(registry),
          entry_(std::move(entry)),
          live_(std::move(live)),
          created_(created) {}
    ContainerRegistry* registry_;
    std::shared_ptr<Entry> entry_;
    std::shared_ptr<LiveContainer> live_;  // valid even after the job ended
    bool created_;
  };

  ContainerRegistry();
  ~ContainerRegistry();  // ends every container

  // Joins the container of `key`, made by `make` when there is none.
  absl::StatusOr<std::unique_ptr<Membership>> Enter(const ShareKey& key,
                                                    const ContainerShape& shape,
                                                    const Factory& make);

  // Ends every container of Slurm job `job` (only `uid`'s when given) and
  // kills their members. Returns how many containers it ended.
  int EndJob(const std::string& job, std::optional<uid_t> uid);

  size_t size() const;

 private:
  using MapKey = std::pair<uid_t, std::string>;

  void Leave(const Membership* member, const std::shared_ptr<Entry>& entry);
  // Drops `entry` from the map, kills its holder (and its members' own
  // processes with `kill_members`) and hands its container to `doomed`, to
  // be released outside the lock.
  void RemoveLocked(const std::shared_ptr<Entry>& entry,
                    std::vector<std::shared_ptr<LiveContainer>>& doomed, bool kill_members)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::unique_ptr<Membership>> Make(const ShareKey& key, const ContainerShape& shape,
                                                   const Factory& make)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Watch();
  void Wake();

  mutable absl::Mutex mu_;
  std::map<MapKey, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  UniqueFd wake_;  // eventfd: the set of watched descriptors changed
  std::thread watcher_;
};

}  // namespace berth::daemon::shared
