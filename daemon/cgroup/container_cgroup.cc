#include "daemon/cgroup/container_cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/cgroup/cgroup_files.h"
#include "daemon/cgroup/limit_files.h"

namespace berth::daemon::cgroup {
namespace {

std::atomic<uint64_t> next_id{0};

// Which limits go to which controller family; `v2_name` differs for blkio.
enum class Family { kCpu, kCpuset, kMemory, kPids, kIo, kHugetlb };
struct FamilyInfo {
  Family family;
  const char* v1_name;
  const char* v2_name;
};
constexpr FamilyInfo kFamilies[] = {
    {Family::kCpu, "cpu", "cpu"},          {Family::kCpuset, "cpuset", "cpuset"},
    {Family::kMemory, "memory", "memory"}, {Family::kPids, "pids", "pids"},
    {Family::kIo, "blkio", "io"},          {Family::kHugetlb, "hugetlb", "hugetlb"},
};

bool Uses(const Resources& r, Family f) {
  switch (f) {
    case Family::kCpu:
      return r.cpu_shares || r.cpu_quota || r.cpu_period;
    case Family::kCpuset:
      return !r.cpuset_cpus.empty() || !r.cpuset_mems.empty();
    case Family::kMemory:
      return r.memory_limit || r.memory_reservation || r.memory_swap || r.disable_oom_killer ||
             r.memory_swappiness;
    case Family::kPids:
      return r.pids_limit.has_value();
    case Family::kIo:
      return r.blkio_weight || !r.blkio_weight_device.empty() || !r.throttle_read_bps.empty() ||
             !r.throttle_write_bps.empty() || !r.throttle_read_iops.empty() ||
             !r.throttle_write_iops.empty();
    case Family::kHugetlb:
      return !r.hugepage_limits.empty();
  }
  return false;
}

// `from`'s limits of family `f`, moved into `to`.
void MoveFamily(Resources& from, Resources& to, Family f) {
  switch (f) {
    case Family::kCpu:
      to.cpu_shares = std::exchange(from.cpu_shares, std::nullopt);
      to.cpu_quota = std::exchange(from.cpu_quota, std::nullopt);
      to.cpu_period = std::exchange(from.cpu_period, std::nullopt);
      break;
    case Family::kCpuset:
      to.cpuset_cpus = std::exchange(from.cpuset_cpus, "");
      to.cpuset_mems = std::exchange(from.cpuset_mems, "");
      break;
    case Family::kMemory:
      to.memory_limit = std::exchange(from.memory_limit, std::nullopt);
      to.memory_reservation = std::exchange(from.memory_reservation, std::nullopt);
      to.memory_swap = std::exchange(from.memory_swap, std::nullopt);
      to.disable_oom_killer = std::exchange(from.disable_oom_killer, false);
      to.memory_swappiness = std::exchange(from.memory_swappiness, std::nullopt);
      break;
    case Family::kPids:
      to.pids_limit = std::exchange(from.pids_limit, std::nullopt);
      break;
    case Family::kIo:
      to.blkio_weight = std::exchange(from.blkio_weight, std::nullopt);
      to.blkio_weight_device = std::exchange(from.blkio_weight_device, {});
      to.throttle_read_bps = std::exchange(from.throttle_read_bps, {});
      to.throttle_write_bps = std::exchange(from.throttle_write_bps, {});
      to.throttle_read_iops = std::exchange(from.throttle_read_iops, {});
      to.throttle_write_iops = std::exchange(from.throttle_write_iops, {});
      break;
    case Family::kHugetlb:
      to.hugepage_limits = std::exchange(from.hugepage_limits, {});
      break;
  }
}

bool Has(const std::vector<std::string>& list, absl::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string Base(const std::string& dir) {
  return dir.substr(dir.rfind('/') + 1);
}
std::string Parent(const std::string& dir) {
  return dir.substr(0, dir.rfind('/'));
}

absl::Status NotDelegated(absl::string_view controller, const std::string& dir, int err) {
  return absl::PermissionDeniedError(absl::StrCat(
      "the ", controller, " controller: cannot make a cgroup in ", dir, ": ", std::strerror(err),
      " (it is not delegated to this daemon; a user-mode berthd can only use cgroups delegated "
      "to the user)"));
}

// mkdir `parent`/<prefix>-<pid>-<n>, skipping names a crashed daemon left.
absl::StatusOr<std::string> MakeChild(const std::string& parent, const std::string& prefix,
                                      absl::string_view controller) {
  for (int tries = 0; tries < 100; ++tries) {
    std::string dir = absl::StrCat(parent, "/", prefix, "-", ::getpid(), "-", next_id++);
    if (::mkdir(dir.c_str(), 0755) == 0) return dir;
    if (errno == EEXIST) continue;
    if (errno == EACCES || errno == EPERM || errno == EROFS) {
      return NotDelegated(controller, parent, errno);
    }
    return ErrnoStatus(absl::StrCat("the ", controller, " controller: making a cgroup in ", parent),
                       errno);
  }
  return absl::AlreadyExistsError(absl::StrCat("no free cgroup name in ", parent));
}

absl::Status ApplyWrites(const std::string& dir, const std::vector<LimitWrite>& writes,
                         absl::string_view controller) {
  for (const LimitWrite& w : writes) {
    if (w.controller != controller) continue;
    std::string path = absl::StrCat(dir, "/", w.file);
    absl::Status s = WriteCgroupFile(path, w.value);
    if (s.ok()) continue;
    if (absl::IsNotFound(s)) {
      return absl::FailedPreconditionError(
          absl::StrCat(w.what, ": the ", w.controller, " controller offers no ", w.file, " in ",
                       dir, " (not enabled there, or not supported by this kernel)"));
    }
    return Annotate(
        s, absl::StrCat(w.what, ": the ", w.controller, " controller refused '", w.value, "'"));
  }
  return absl::OkStatus();
}

// cgroup v2's no-internal-process rule: `parent` may give its children
// `needed` only while it holds no process (the root excepted). Processes
// found there are moved into the leaf kCallerLeaf first.
absl::Status EnableControllers(const std::string& parent, const std::vector<std::string>& needed) {
  ASSIGN_OR_RETURN(std::string current,
                   ReadCgroupFile(absl::StrCat(parent, "/cgroup.subtree_control")));
  std::vector<std::string> enabled =
      absl::StrSplit(current, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  std::vector<std::string> missing;
  for (const std::string& c : needed) {
    if (!Has(enabled, c)) missing.push_back(absl::StrCat("+", c));
  }
  if (missing.empty()) return absl::OkStatus();
  std::string line = absl::StrJoin(missing, " ");
  std::string control = absl::StrCat(parent, "/cgroup.subtree_control");
  absl::Status s = WriteCgroupFile(control, line);
  if (s.ok()) return absl::OkStatus();
  if (!absl::IsFailedPrecondition(s)) {  // EBUSY maps to FailedPrecondition
    return Annotate(s, absl::StrCat("enabling ", line, " for the children of ", parent));
  }
  std::string leaf = absl::StrCat(parent, "/", kCallerLeaf);
  if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
    if (errno == EACCES || errno == EPERM) return NotDelegated(needed.front(), parent, errno);
    return ErrnoStatus(absl::StrCat("making ", leaf), errno);
  }
  // Processes fork while they are moved: a few rounds until none is left.
  for (int round = 0; round < 20; ++round) {
    ASSIGN_OR_RETURN(std::string procs, ReadCgroupFile(absl::StrCat(parent, "/cgroup.procs")));
    std::vector<absl::string_view> pids = absl::StrSplit(procs, '\n', absl::SkipEmpty());
    if (pids.empty()) break;
    for (absl::string_view pid : pids) {
      absl::Status moved = WriteCgroupFile(absl::StrCat(leaf, "/cgroup.procs"), pid);
      if (!moved.ok() && !absl::IsNotFound(moved)) {  // ESRCH: it exited
        return Annotate(moved, absl::StrCat("moving the processes of ", parent, " into ", leaf,
                                            " (cgroup v2 lets only an empty cgroup share "
                                            "controllers)"));
      }
    }
  }
  s = WriteCgroupFile(control, line);
  if (!s.ok()) return Annotate(s, absl::StrCat("enabling ", line, " for the children of ", parent));
  return absl::OkStatus();
}

absl::Status InheritCpuset(const std::string& parent, const std::string& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    ASSIGN_OR_RETURN(std::string value, ReadCgroupFile(absl::StrCat(parent, "/", file)));
    value = std::string(absl::StripAsciiWhitespace(value));
    if (value.empty()) continue;
    RETURN_IF_ERROR(WriteCgroupFile(absl::StrCat(dir, "/", file), value));
  }
  return absl::OkStatus();
}

// Ends every process of `dir` (a container leaves nothing behind, PID
// namespace or not) and removes it.
absl::Status KillAndRemove(const std::string& dir, bool v2) {
  for (int attempt = 0; attempt < 400; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY) return ErrnoStatus(absl::StrCat("removing cgroup ", dir), errno);
    if (v2 && WriteCgroupFile(absl::StrCat(dir, "/cgroup.kill"), "1").ok()) {
      // cgroup.kill (Linux 5.14) ends them all at once, forks included.
    } else if (auto procs = ReadCgroupFile(absl::StrCat(dir, "/cgroup.procs")); procs.ok()) {
      for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
        pid_t pid = 0;
        if (absl::SimpleAtoi(line, &pid) && pid > 1) ::kill(pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::DeadlineExceededError(absl::StrCat("cgroup ", dir, " still busy after 2 s"));
}

}  // namespace

absl::StatusOr<ContainerCgroup> ContainerCgroup::Create(
    const std::vector<launch::CgroupHierarchy>& caller, const Resources& r,
    const CreateOptions& options) {
  RETURN_IF_ERROR(Validate(r));
  const launch::CgroupHierarchy* v2 = nullptr;
  for (const launch::CgroupHierarchy& h : caller) {
    if (h.v2) v2 = &h;
  }
  auto v1_with = [&caller](absl::string_view controller) -> const launch::CgroupHierarchy* {
    for (const launch::CgroupHierarchy& h : caller) {
      if (!h.v2 && Has(h.controllers, controller)) return &h;
    }
    return nullptr;
  };
  // Each family goes where the host mounts its controller: a v1 hierarchy
  // if one has it (hybrid hosts), else the v2 tree.
  Resources on_v1, on_v2 = r;
  std::vector<std::string> v1_controllers;
  // Those with limits first: an error then names the controller a limit
  // needed, not one made for the stats only.
  std::vector<FamilyInfo> families(std::begin(kFamilies), std::end(kFamilies));
  std::stable_partition(families.begin(), families.end(),
                        [&r](const FamilyInfo& f) { return Uses(r, f.family); });
  for (const FamilyInfo& f : families) {
    bool used = Uses(r, f.family);
    // Stats need the accounting controllers only; cpuset and hugetlb count nothing.
    bool counts = f.family == Family::kCpu || f.family == Family::kMemory ||
                  f.family == Family::kPids || f.family == Family::kIo;
    if (!used && !(options.for_stats && counts)) continue;
    if (v1_with(f.v1_name) != nullptr) {
      MoveFamily(on_v2, on_v1, f.family);
      v1_controllers.push_back(f.v1_name);
    } else if (used && v2 == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("the ", f.v1_name,
                       " controller is not mounted on this host (no cgroup v1 hierarchy "
                       "has it and there is no cgroup v2): its limits cannot be applied"));
    }
  }
  // cpu usage is counted by cpuacct, a hierarchy of its own on some v1 hosts.
  if (Has(v1_controllers, "cpu") || options.for_stats) {
    if (v1_with("cpuacct") != nullptr && !Has(v1_controllers, "cpuacct")) {
      v1_controllers.push_back("cpuacct");
    }
  }
  ASSIGN_OR_RETURN(std::vector<LimitWrite> v1_writes, V1Writes(on_v1));
  ASSIGN_OR_RETURN(std::vector<LimitWrite> v2_writes, V2Writes(on_v2));
  if (!on_v2.unified.empty() && v2 == nullptr) {
    return absl::FailedPreconditionError("[unified]: this host has no cgroup v2");
  }

  ContainerCgroup cg;
  // v1: a child in each hierarchy, which has no rule against processes in
  // inner cgroups.
  for (const std::string& controller : v1_controllers) {
    const launch::CgroupHierarchy* h = v1_with(controller);
    bool done = std::any_of(cg.made_.begin(), cg.made_.end(),
                            [h](const Made& m) { return m.parent == h->dir; });
    if (done) continue;  // co-mounted controllers (cpu,cpuacct) share one
    ASSIGN_OR_RETURN(std::string dir, MakeChild(h->dir, options.prefix, controller));
    cg.made_.push_back({h->dir, dir, false});
    if (Has(h->controllers, "cpuset")) {
      // A new v1 cpuset has no cpus nor mems: a task could not join it.
      RETURN_IF_ERROR(Annotate(InheritCpuset(h->dir, dir), "the cpuset controller"));
    }
    for (const std::string& c : h->controllers) RETURN_IF_ERROR(ApplyWrites(dir, v1_writes, c));
  }
  std::vector<std::string> v2_controllers = ControllersOf(v2_writes);
  if (options.for_stats && v2 != nullptr) {
    for (const char* c : {"cpu", "memory", "pids", "io"}) {
      if (!Has(v2_controllers, c) && v1_with(c == std::string("io") ? "blkio" : c) == nullptr) {
        v2_controllers.push_back(c);
      }
    }
  }
  if (v2 != nullptr && (!v2_controllers.empty() || options.for_stats)) {
    std::string parent = v2->dir;
    // Called from the leaf an earlier container's cgroup made: the
    // container goes beside it, into the caller's real cgroup.
    struct stat st {};
    if (Base(parent) == kCallerLeaf && ::stat(parent.c_str(), &st) == 0 &&
        st.st_uid == ::geteuid()) {
      parent = Parent(parent);
    }
    ASSIGN_OR_RETURN(std::string available,
                     ReadCgroupFile(absl::StrCat(parent, "/cgroup.controllers")));
    std::vector<std::string> offered =
        absl::StrSplit(available, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    std::vector<std::string> usable;
    for (const std::string& c : v2_controllers) {
      if (Has(offered, c)) {
        usable.push_back(c);
      } else if (Has(ControllersOf(v2_writes), c)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the ", c, " controller is not available to cgroup ", parent,
            " (cgroup v2 offers it only where every parent enabled it, and a controller bound to "
            "a v1 hierarchy is not in v2): its limits cannot be applied"));
      }
    }
    if (!usable.empty()) RETURN_IF_ERROR(EnableControllers(parent, usable));
    ASSIGN_OR_RETURN(std::string dir,
                     MakeChild(parent, options.prefix, usable.empty() ? "v2" : usable.front()));
    cg.made_.push_back({parent, dir, true});
    for (const std::string& c : usable) RETURN_IF_ERROR(ApplyWrites(dir, v2_writes, c));
  }
  return cg;
}

ContainerCgroup ContainerCgroup::Adopt(std::vector<Made> made) {
  ContainerCgroup cg;
  cg.made_ = std::move(made);
  return cg;
}

ContainerCgroup::ContainerCgroup(ContainerCgroup&& other) noexcept
    : made_(std::exchange(other.made_, {})) {}

ContainerCgroup& ContainerCgroup::operator=(ContainerCgroup&& other) noexcept {
  if (this != &other) {
    (void)Remove();
    made_ = std::exchange(other.made_, {});
  }
  return *this;
}

ContainerCgroup::~ContainerCgroup() {
  (void)Remove();
}

std::vector<std::string> ContainerCgroup::dirs() const {
  std::vector<std::string> out;
  for (const Made& m : made_) out.push_back(m.dir);
  return out;
}

void ContainerCgroup::ReplaceIn(std::vector<std::string>& join) const {
  for (const Made& m : made_) {
    std::erase_if(join, [&m](const std::string& dir) {
      return dir == m.parent || dir == absl::StrCat(m.parent, "/", kCallerLeaf);
    });
    join.push_back(m.dir);
  }
}

uint64_t ContainerCgroup::OomKills() const {
  uint64_t total = 0;
  for (const Made& m : made_) {
    // v2: memory.events; v1: memory.oom_control (Linux 4.13+).
    auto text =
        ReadCgroupFile(absl::StrCat(m.dir, m.v2 ? "/memory.events" : "/memory.oom_control"));
    if (!text.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      uint64_t n = 0;
      if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &n)) total += n;
    }
  }
  return total;
}

absl::Status ContainerCgroup::Remove() {
  absl::Status first;
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    absl::Status s = KillAndRemove(it->dir, it->v2);
    if (!s.ok() && first.ok()) first = s;
  }
  made_.clear();
  return first;
}

}  // namespace berth::daemon::cgroup
