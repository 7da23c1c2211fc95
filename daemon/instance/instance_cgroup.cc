#include "daemon/instance/instance_cgroup.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/launch/cgroups.h"

namespace berth::daemon::instance {

absl::StatusOr<std::vector<launch::CgroupHierarchy>> DaemonCgroups() {
  auto own = launch::CgroupHierarchiesOf(::getpid());
  if (!own.ok()) return Annotate(own.status(), "reading berthd's own cgroups");
  return own;
}

absl::StatusOr<cgroup::ContainerCgroup> MakeInstanceCgroup(
    const std::vector<launch::CgroupHierarchy>& daemon, uid_t uid, const std::string& name,
    const cgroup::Resources& limits) {
  cgroup::CreateOptions options;
  options.prefix = absl::StrCat("berth-instance-", uid, "-", name);
  options.for_stats = true;
  return cgroup::ContainerCgroup::Create(daemon, limits, options);
}

bool InCgroups(pid_t pid, const std::vector<cgroup::ContainerCgroup::Made>& made) {
  auto dirs = launch::CgroupDirsOf(pid);
  if (!dirs.ok()) return false;
  return std::all_of(made.begin(), made.end(), [&dirs](const cgroup::ContainerCgroup::Made& m) {
    return std::find(dirs->begin(), dirs->end(), m.dir) != dirs->end();
  });
}

}  // namespace berth::daemon::instance
