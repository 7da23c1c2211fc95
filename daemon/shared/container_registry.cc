#include "daemon/shared/container_registry.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::shared {

struct ContainerRegistry::Entry {
  ShareKey key;
  ContainerShape shape;
  std::shared_ptr<LiveContainer> live;  // null while being made and once removed
  bool making = true;
  bool removed = false;  // no longer in the map: nobody new joins
  int members = 0;
  UniqueFd anchor;  // pidfd of the key's anchor; invalid: none
  bool anchor_gone = false;
  std::map<const Membership*, UniqueFd> tracked;  // members' own processes
};

namespace {

bool Ended(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

UniqueFd PidfdOf(pid_t pid) {
  if (pid <= 0) return UniqueFd();
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

// A member's pidfd names its init: asked to end, it ends the member's
// processes with it, which SIGKILL would leave to the host's init when
// the container has no PID namespace (the default).
void KillProcess(int pidfd) {
  launch::EndContainer(pidfd);
}

// Why `want` cannot join the container made as `have`, or nothing.
std::optional<std::string> Difference(const ContainerShape& have, const ContainerShape& want) {
  if (have.image_id != want.image_id) {
    return absl::StrCat("which runs ", have.image, "; this process asked for ", want.image);
  }
  size_t n = std::min(have.options.size(), want.options.size());
  for (size_t i = 0; i < n; ++i) {
    if (have.options[i] != want.options[i]) {
      const auto& [name, value] = have.options[i];
      return absl::StrCat("made with ", name, " '", value, "'; this process asked for ",
                          want.options[i].first, " '", want.options[i].second, "'");
    }
  }
  if (have.options.size() != want.options.size()) return "made with other options";
  return std::nullopt;
}

absl::Status Mismatch(const ShareKey& key, const std::string& why) {
  return absl::FailedPreconditionError(
      absl::StrCat("the processes of ", key.scope, " share one container on this node, ", why,
                   " (give them all the same image and options, or run with --no-sharens)"));
}

}  // namespace

ContainerRegistry::Membership::~Membership() {
  registry_->Leave(this, entry_);
}

const launch::LiveNamespaces& ContainerRegistry::Membership::namespaces() const {
  return live_->namespaces();
}

void ContainerRegistry::Membership::Track(int pidfd) {
  int dup = ::fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return;
  absl::MutexLock lock(&registry_->mu_);
  entry_->tracked[this] = UniqueFd(dup);
}

ContainerRegistry::ContainerRegistry() : wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  watcher_ = std::thread([this] { Watch(); });
}

ContainerRegistry::~ContainerRegistry() {
  std::vector<std::shared_ptr<LiveContainer>> doomed;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    while (!entries_.empty()) RemoveLocked(entries_.begin()->second, doomed, /*kill_members=*/true);
  }
  Wake();
  watcher_.join();
}

void ContainerRegistry::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

size_t ContainerRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void ContainerRegistry::RemoveLocked(const std::shared_ptr<Entry>& entry,
                                     std::vector<std::shared_ptr<LiveContainer>>& doomed,
                                     bool kill_members) {
  if (!entry->removed) {
    auto it = entries_.find(MapKey{entry->key.uid, entry->key.scope});
    if (it != entries_.end() && it->second == entry) entries_.erase(it);
    entry->removed = true;
  }
  if (kill_members) {
    for (const auto& [member, pidfd] : entry->tracked) KillProcess(pidfd.get());
  }
  if (entry->live != nullptr) {
    spdlog::info("uid {}: the shared container of {} ends (holder pid {})", entry->key.uid,
                 entry->key.scope, entry->live->holder().pid());
    entry->live->Kill();
    doomed.push_back(std::move(entry->live));
  }
}

absl::StatusOr<std::unique_ptr<ContainerRegistry::Membership>> ContainerRegistry::Enter(
    const ShareKey& key, const ContainerShape& shape, const Factory& make) {
  std::vector<std::shared_ptr<LiveContainer>> doomed;  // destroyed after the lock
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("berthd is shutting down");
  for (;;) {
    auto it = entries_.find(MapKey{key.uid, key.scope});
    if (it == entries_.end()) return Make(key, shape, make);
    std::shared_ptr<Entry> entry = it->second;
    if (entry->making) {
      mu_.Await(absl::Condition(
          +[](Entry* e) { return !e->making; }, entry.get()));
      continue;
    }
    if (Ended(entry->live->holder().pidfd())) {
      RemoveLocked(entry, doomed, /*kill_members=*/false);
      continue;
    }
    if (auto why = Difference(entry->shape, shape)) {
      if (entry->members > 0) return Mismatch(key, *why);
      RemoveLocked(entry, doomed, /*kill_members=*/false);
      continue;
    }
    ++entry->members;
    return std::unique_ptr<Membership>(new Membership(this, entry, entry->live, false));
  }
}

absl::StatusOr<std::unique_ptr<ContainerRegistry::Membership>> ContainerRegistry::Make(
    const ShareKey& key, const ContainerShape& shape, const Factory& make) {
  auto entry = std::make_shared<Entry>();
  entry->key = key;
  entry->shape = shape;
  entry->members = 1;
  entry->anchor = PidfdOf(key.anchor);
  entries_[MapKey{key.uid, key.scope}] = entry;
  mu_.Unlock();
  absl::StatusOr<std::unique_ptr<LiveContainer>> live = make();
  mu_.Lock();
  entry->making = false;
  if (!live.ok() || entry->removed) {
    std::vector<std::shared_ptr<LiveContainer>> doomed;
    RemoveLocked(entry, doomed, /*kill_members=*/false);
    if (!live.ok()) {
      return Annotate(live.status(), absl::StrCat("starting the shared container of ", key.scope));
    }
    (*live)->Kill();
    return absl::AbortedError(absl::StrCat("the job of ", key.scope, " ended"));
  }
  entry->live = std::move(*live);
  spdlog::info("uid {}: the shared container of {} starts (holder pid {}, anchor {})", key.uid,
               key.scope, entry->live->holder().pid(), key.anchor);
  Wake();
  return std::unique_ptr<Membership>(new Membership(this, entry, entry->live, true));
}

void ContainerRegistry::Leave(const Membership* member, const std::shared_ptr<Entry>& entry) {
  std::vector<std::shared_ptr<LiveContainer>> doomed;
  absl::MutexLock lock(&mu_);
  entry->tracked.erase(member);
  --entry->members;
  bool anchored = entry->anchor.valid() && !entry->anchor_gone;
  if (entry->members == 0 && (!anchored || entry->removed)) {
    RemoveLocked(entry, doomed, /*kill_members=*/false);
    Wake();
  }
}

int ContainerRegistry::EndJob(const std::string& job, std::optional<uid_t> uid) {
  std::vector<std::shared_ptr<LiveContainer>> doomed;
  int ended = 0;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Entry>> matching;
    for (const auto& [k, entry] : entries_) {
      if (!job.empty() && entry->key.job == job && (!uid || entry->key.uid == *uid)) {
        matching.push_back(entry);
      }
    }
    for (const auto& entry : matching) {
      RemoveLocked(entry, doomed, /*kill_members=*/true);
      ++ended;
    }
  }
  Wake();
  return ended;
}

// Follows the anchors and holders of the containers in the map: an anchor's
// end lets an idle container go; a holder's end drops its container.
void ContainerRegistry::Watch() {
  for (;;) {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}};
    struct Watched {
      std::shared_ptr<Entry> entry;
      std::shared_ptr<LiveContainer> live;  // keeps the holder's pidfd open
      bool anchor;
    };
    std::vector<Watched> who;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (const auto& [k, entry] : entries_) {
        if (entry->making || entry->live == nullptr) continue;
        fds.push_back({entry->live->holder().pidfd(), POLLIN, 0});
        who.push_back({entry, entry->live, false});
        if (entry->anchor.valid() && !entry->anchor_gone) {
          fds.push_back({entry->anchor.get(), POLLIN, 0});
          who.push_back({entry, entry->live, true});
        }
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) {
      uint64_t count;
      (void)!::read(wake_.get(), &count, sizeof count);
    }
    std::vector<std::shared_ptr<LiveContainer>> doomed;
    absl::MutexLock lock(&mu_);
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const std::shared_ptr<Entry>& entry = who[i - 1].entry;
      if (who[i - 1].anchor) {
        entry->anchor_gone = true;
        if (entry->members == 0) RemoveLocked(entry, doomed, /*kill_members=*/false);
      } else if (!entry->removed) {
        spdlog::info("uid {}: the holder of {}'s shared container ended", entry->key.uid,
                     entry->key.scope);
        RemoveLocked(entry, doomed, /*kill_members=*/false);
      }
    }
  }
}

}  // namespace berth::daemon::shared
