#include "daemon/instance/instance_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/instance/instance_cgroup.h"
#include "daemon/instance/instance_name.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::instance {
namespace {

constexpr absl::Duration kStopPoll = absl::Milliseconds(20);
constexpr int kAdoptedEndMillis = 2000;
// A record carries its start request when it has a restart policy.
constexpr size_t kMaxRecordBytes = 8 << 20;

bool Ended(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

// The processes of `ns_pid`'s PID namespace but `init`, found in /proc.
// Never the daemon's own PID namespace (that would be every process of the
// node): an instance always has one of its own, and anything else is a bug
// this refuses to turn into a signal to everyone.
std::vector<pid_t> MembersOf(int ns_pid_fd, pid_t init) {
  std::vector<pid_t> out;
  struct stat want, own;
  if (::fstat(ns_pid_fd, &want) != 0 || ::stat("/proc/self/ns/pid", &own) != 0) return out;
  if (want.st_ino == own.st_ino && want.st_dev == own.st_dev) {
    spdlog::error("refusing to signal the daemon's own PID namespace as an instance's");
    return out;
  }
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid == init) continue;
    struct stat st;
    std::string path = absl::StrCat("/proc/", pid, "/ns/pid");
    if (::stat(path.c_str(), &st) != 0) continue;
    if (st.st_ino == want.st_ino && st.st_dev == want.st_dev) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

// Signals `pid` only if, through its pidfd, it is still in the namespace
// (a pid recycled between the scan and the signal is left alone).
void SignalMember(pid_t pid, int sig, int ns_pid_fd) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return;
  struct stat want, st;
  std::string path = absl::StrCat("/proc/", pid, "/ns/pid");
  if (::fstat(ns_pid_fd, &want) != 0 || ::stat(path.c_str(), &st) != 0) return;
  if (st.st_ino != want.st_ino || st.st_dev != want.st_dev) return;
  ::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0);
}

// Ends the init (and with it its PID namespace) and waits for it.
void EndInit(Instance& inst) {
  if (inst.holder) {
    inst.holder.reset();  // kills and reaps
  } else if (inst.adopted_pidfd) {
    ::syscall(SYS_pidfd_send_signal, inst.adopted_pidfd.get(), SIGKILL, nullptr, 0);
    pollfd p{inst.adopted_pidfd.get(), POLLIN, 0};
    (void)::poll(&p, 1, kAdoptedEndMillis);
  }
  inst.script.reset();
}

// Ends the instance for good: its init, then its cgroup (whatever is left
// there is ended with it).
void EndInstance(Instance& inst) {
  EndInit(inst);
  if (auto cg = inst.take_cgroup(); cg != nullptr && cg.use_count() == 1) {
    absl::Status removed = cg->Remove();
    if (!removed.ok()) {
      spdlog::warn("uid {}: instance {}'s cgroup: {}", inst.record.uid, inst.record.name,
                   std::string(removed.message()));
    }
  }
}

}  // namespace

InstanceRegistry::InstanceRegistry(std::string state_dir, bool persist)
    : dir_(state_dir + "/instances"),
      persist_(persist),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  watcher_ = std::thread([this] { Watch(); });
}

InstanceRegistry::~InstanceRegistry() {
  Shutdown();
}

void InstanceRegistry::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  std::vector<std::shared_ptr<Instance>> all;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [key, inst] : entries_) {
      if (inst != nullptr) all.push_back(inst);
    }
    entries_.clear();
  }
  Wake();
  watcher_.join();
  for (const auto& inst : all) {
    if (persist_) {
      // The next daemon adopts them from their records.
      if (inst->holder) inst->holder->Detach();
      if (inst->script) inst->script->Detach();
      if (auto cg = inst->cgroup()) cg->Detach();
    } else {
      spdlog::info("uid {}: instance {} ends with the daemon", inst->record.uid, inst->record.name);
      EndInstance(*inst);
    }
  }
}

void InstanceRegistry::Restart(const std::shared_ptr<Instance>& dead) {
  EndInit(*dead);
  const Key key{dead->record.uid, dead->record.name};
  absl::StatusOr<std::shared_ptr<Instance>> fresh = dead->relaunch(*dead);
  if (fresh.ok()) {
    (*fresh)->record.restarts = dead->record.restarts + 1;
    (*fresh)->relaunch = dead->relaunch;
    (*fresh)->max_restarts = dead->max_restarts;
    absl::Status recorded = WriteRecord((*fresh)->record);
    if (!recorded.ok()) fresh = recorded;
  }
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  bool held = it != entries_.end() && it->second == nullptr && !stopping_;
  if (!fresh.ok() || !held) {
    if (held) entries_.erase(it);
    if (!fresh.ok()) {
      EndInstance(*dead);
      spdlog::warn("uid {}: instance {} could not be restarted: {}", key.first, key.second,
                   std::string(fresh.status().message()));
      RemoveRecord(dead->record);
    }
    return;  // a fresh instance nobody holds ends with its last reference
  }
  spdlog::info("uid {}: instance {} restarted (pid {}, restart {})", key.first, key.second,
               (*fresh)->record.pid, (*fresh)->record.restarts);
  it->second = *std::move(fresh);
}

std::string InstanceRegistry::RecordPath(uid_t uid, const std::string& name) const {
  return absl::StrCat(dir_, "/", uid, "/", name, ".json");
}

absl::Status InstanceRegistry::Init() {
  if (!persist_) return absl::OkStatus();
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(dir_, errno);
  struct stat st;
  if (::lstat(dir_.c_str(), &st) != 0) return ErrnoStatus(dir_, errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, " must be a directory owned by the daemon's user, mode 0700"));
  }
  DIR* top = ::opendir(dir_.c_str());
  if (top == nullptr) return ErrnoStatus(dir_, errno);
  std::vector<std::pair<uid_t, std::string>> users;
  while (dirent* e = ::readdir(top)) {
    uid_t uid;
    if (absl::SimpleAtoi(e->d_name, &uid)) users.emplace_back(uid, absl::StrCat(dir_, "/", uid));
  }
  ::closedir(top);
  for (const auto& [uid, dir] : users) Adopt(uid, dir);
  Wake();
  return absl::OkStatus();
}

void InstanceRegistry::Adopt(uid_t uid, const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') files.emplace_back(e->d_name);
  }
  ::closedir(d);
  for (const std::string& file : files) {
    std::string path = absl::StrCat(dir, "/", file);
    absl::string_view name = file;
    absl::StatusOr<InstanceRecord> record = absl::InvalidArgumentError("not a record");
    if (absl::ConsumeSuffix(&name, ".json") && CheckName(name).ok()) {
      auto fd = OpenFile(path, O_RDONLY | O_NOFOLLOW);
      std::string text;
      if (fd.ok()) {
        char buf[8192];
        ssize_t n;
        while ((n = ::read(fd->get(), buf, sizeof buf)) > 0 && text.size() < kMaxRecordBytes) {
          text.append(buf, static_cast<size_t>(n));
        }
        record = RecordFromJson(text);
      }
      if (record.ok() && (record->uid != uid || record->name != name)) {
        record = absl::InvalidArgumentError("its name or uid is not its file's");
      }
    }
    absl::StatusOr<AdoptedProcess> process = absl::UnknownError("");
    if (record.ok()) process = VerifyInstanceProcess(*record);
    if (!record.ok() || !process.ok()) {
      spdlog::info("instance record {} dropped: {}", path,
                   std::string((record.ok() ? process.status() : record.status()).message()));
      ::unlink(path.c_str());
      continue;
    }
    auto inst = std::make_shared<Instance>();
    inst->record = *std::move(record);
    inst->adopted_pidfd = std::move(process->pidfd);
    inst->ns = std::move(process->ns);
    if (!inst->record.cgroup.empty()) {
      std::vector<cgroup::ContainerCgroup::Made> made;
      for (const InstanceRecord::CgroupDir& d : inst->record.cgroup) {
        made.push_back({d.parent, d.dir, d.v2});
      }
      if (InCgroups(inst->record.pid, made)) {
        inst->set_cgroup(
            std::make_shared<cgroup::ContainerCgroup>(cgroup::ContainerCgroup::Adopt(made)));
      } else {
        spdlog::warn("uid {}: instance {}'s init is not in its recorded cgroup; not adopting it",
                     uid, inst->record.name);
        inst->record.cgroup.clear();
        inst->record.limited = false;
      }
    }
    spdlog::info("uid {}: instance {} adopted (pid {})", uid, inst->record.name, inst->record.pid);
    absl::MutexLock lock(&mu_);
    entries_[Key{uid, inst->record.name}] = std::move(inst);
  }
}

absl::Status InstanceRegistry::WriteRecord(const InstanceRecord& r) {
  if (!persist_) return absl::OkStatus();
  std::string udir = absl::StrCat(dir_, "/", r.uid);
  if (::mkdir(udir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(udir, errno);
  std::string path = RecordPath(r.uid, r.name);
  std::string tmp = path + ".new";
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  std::string json = RecordToJson(r);
  RETURN_IF_ERROR(
      WriteAll(fd.get(), std::span(reinterpret_cast<const uint8_t*>(json.data()), json.size())));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(path, errno);
  return absl::OkStatus();
}

void InstanceRegistry::RemoveRecord(const InstanceRecord& r) {
  if (persist_) ::unlink(RecordPath(r.uid, r.name).c_str());
}

InstanceRegistry::Claim::~Claim() {
  if (committed_) return;
  absl::MutexLock lock(&registry_->mu_);
  auto it = registry_->entries_.find(Key{uid_, name_});
  if (it != registry_->entries_.end() && it->second == nullptr) registry_->entries_.erase(it);
}

absl::StatusOr<std::unique_ptr<InstanceRegistry::Claim>> InstanceRegistry::Reserve(
    uid_t uid, const std::string& name, int cap) {
  RETURN_IF_ERROR(CheckName(name));
  std::shared_ptr<Instance> dead;  // ended before the watcher saw it: its name is free
  absl::Cleanup end_dead = [&dead, this] {
    if (dead == nullptr) return;
    EndInstance(*dead);
    RemoveRecord(dead->record);
  };
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("berthd is shutting down");
  auto found = entries_.find(Key{uid, name});
  if (found != entries_.end() && found->second != nullptr && Ended(found->second->init_pidfd())) {
    dead = found->second;
    dead->removed = true;
    entries_.erase(found);
    found = entries_.end();
  }
  if (found != entries_.end()) {
    return absl::AlreadyExistsError(absl::StrCat("instance ", name, " already exists"));
  }
  int held = 0;
  for (auto it = entries_.lower_bound(Key{uid, ""}); it != entries_.end() && it->first.first == uid;
       ++it) {
    ++held;
  }
  if (held >= cap) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "user %d already has %d instances on this node (max_instances_per_user in berth.conf); "
        "stop one first",
        uid, held));
  }
  entries_[Key{uid, name}] = nullptr;
  return std::unique_ptr<Claim>(new Claim(this, uid, name));
}

absl::Status InstanceRegistry::Commit(std::unique_ptr<Claim> claim,
                                      std::shared_ptr<Instance> instance) {
  RETURN_IF_ERROR_CTX(WriteRecord(instance->record), "recording the instance");
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("berthd is shutting down");
    entries_[Key{claim->uid_, claim->name_}] = std::move(instance);
    claim->committed_ = true;
  }
  Wake();
  return absl::OkStatus();
}

std::shared_ptr<Instance> InstanceRegistry::Find(uid_t uid, const std::string& name) {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, inst] : entries_) {
    if (key.second != name || inst == nullptr) continue;
    // Only the owner joins: names are per user, and a join runs as its caller
    // inside the owner's namespaces.
    if (inst->record.uid != uid) continue;
    if (Ended(inst->init_pidfd())) return nullptr;
    return inst;
  }
  return nullptr;
}

std::vector<InstanceRecord> InstanceRegistry::List(std::optional<uid_t> uid,
                                                   const std::string& pattern) {
  std::vector<InstanceRecord> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, inst] : entries_) {
    if (inst == nullptr || (uid && key.first != *uid) || !NameMatches(pattern, key.second)) {
      continue;
    }
    if (Ended(inst->init_pidfd())) continue;  // the watcher drops it next
    out.push_back(inst->record);
  }
  return out;
}

std::vector<InstanceRecord> InstanceRegistry::Stop(std::optional<uid_t> uid,
                                                   const std::string& pattern, int sig,
                                                   absl::Duration timeout, bool force) {
  std::vector<std::shared_ptr<Instance>> doomed;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      const auto& [key, inst] = *it;
      if (inst == nullptr || (uid && key.first != *uid) || !NameMatches(pattern, key.second)) {
        ++it;
        continue;
      }
      inst->removed = true;
      doomed.push_back(inst);
      it = entries_.erase(it);
    }
  }
  Wake();
  std::vector<InstanceRecord> stopped;
  if (!force) {
    for (const auto& inst : doomed) {
      for (pid_t pid : MembersOf(inst->ns.pid.get(), inst->record.pid)) {
        SignalMember(pid, sig, inst->ns.pid.get());
      }
    }
    absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      bool left = false;
      for (const auto& inst : doomed) {
        left = left || (!Ended(inst->init_pidfd()) &&
                        !MembersOf(inst->ns.pid.get(), inst->record.pid).empty());
      }
      if (!left || absl::Now() >= deadline) break;
      absl::SleepFor(kStopPoll);
    }
  }
  for (const auto& inst : doomed) {
    spdlog::info("uid {}: instance {} stops (pid {})", inst->record.uid, inst->record.name,
                 inst->record.pid);
    EndInstance(*inst);
    RemoveRecord(inst->record);
    stopped.push_back(inst->record);
  }
  return stopped;
}

size_t InstanceRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void InstanceRegistry::ResumeRestarts(
    const std::function<Relaunch(const InstanceRecord&)>& make,
    const std::function<absl::StatusOr<std::optional<int>>(const std::string&)>& parse_policy) {
  absl::MutexLock lock(&mu_);
  for (auto& [key, inst] : entries_) {
    if (inst == nullptr || inst->relaunch != nullptr || inst->record.request.empty()) continue;
    absl::StatusOr<std::optional<int>> policy = parse_policy(inst->record.restart);
    if (!policy.ok() || !policy->has_value()) continue;
    inst->relaunch = make(inst->record);
    inst->max_restarts = **policy;
    spdlog::info("uid {}: instance {} keeps its restart policy '{}' ({} restarts so far)",
                 key.first, key.second, inst->record.restart, inst->record.restarts);
  }
}

void InstanceRegistry::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

// Follows every init (an instance ends with it) and every running
// startscript (reaped when it exits; the instance stays).
void InstanceRegistry::Watch() {
  for (;;) {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}};
    struct Watched {
      std::shared_ptr<Instance> inst;
      bool script;
    };
    std::vector<Watched> who;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (const auto& [key, inst] : entries_) {
        if (inst == nullptr) continue;
        fds.push_back({inst->init_pidfd(), POLLIN, 0});
        who.push_back({inst, false});
        if (inst->script) {
          fds.push_back({inst->script->pidfd(), POLLIN, 0});
          who.push_back({inst, true});
        }
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) {
      uint64_t count;
      (void)!::read(wake_.get(), &count, sizeof count);
    }
    std::vector<std::shared_ptr<Instance>> ended, restart;
    {
      absl::MutexLock lock(&mu_);
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        const std::shared_ptr<Instance>& inst = who[i - 1].inst;
        if (inst->removed) continue;  // Stop owns it now
        if (who[i - 1].script) {
          if (inst->script) {
            auto status = inst->script->Wait();
            if (status.ok()) {
              spdlog::info("uid {}: instance {}'s startscript exited ({})", inst->record.uid,
                           inst->record.name, status->ShellStatus());
            }
            inst->script.reset();
          }
          continue;
        }
        inst->removed = true;
        bool again = inst->relaunch != nullptr &&
                     (inst->max_restarts < 0 || inst->record.restarts < inst->max_restarts);
        spdlog::info("uid {}: instance {}'s init (pid {}) ended; {}", inst->record.uid,
                     inst->record.name, inst->record.pid,
                     again ? "restarting it" : "the instance is gone");
        if (again) {
          entries_[Key{inst->record.uid, inst->record.name}] = nullptr;  // the name stays held
          restart.push_back(inst);
        } else {
          entries_.erase(Key{inst->record.uid, inst->record.name});
          ended.push_back(inst);
        }
      }
    }
    for (const auto& inst : restart) Restart(inst);
    for (const auto& inst : ended) {
      EndInstance(*inst);
      RemoveRecord(inst->record);
    }
  }
}

}  // namespace berth::daemon::instance
