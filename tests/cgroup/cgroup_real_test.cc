// A container cgroup against the real kernel (root): made below this
// process's cgroups, a child moved in, its stats read, and everything
// removed, the child included.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/cgroup/cgroup_stats.h"
#include "daemon/cgroup/container_cgroup.h"
#include "daemon/launch/cgroups.h"

using namespace berth::daemon::cgroup;

TEST_CASE("a container cgroup is made below ours, measured and removed") {
  REQUIRE(::geteuid() == 0);  // CI runs as root; never skipped
  auto ours = berth::daemon::launch::CgroupHierarchiesOf(::getpid());
  REQUIRE(ours.ok());
  Resources r;
  r.pids_limit = 20;
  CreateOptions options;
  options.prefix = "berth-unit";
  options.for_stats = true;
  auto cg = ContainerCgroup::Create(*ours, r, options);
  REQUIRE(cg.ok());
  REQUIRE_FALSE(cg->made().empty());
  for (const ContainerCgroup::Made& m : cg->made()) {
    INFO(m.dir);
    CHECK(m.dir.rfind(m.parent + "/berth-unit-", 0) == 0);  // below the caller's
    struct stat st {};
    CHECK(::stat(m.dir.c_str(), &st) == 0);
  }
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  for (const std::string& dir : cg->dirs()) {
    if (::access(absl::StrCat(dir, "/cgroup.controllers").c_str(), F_OK) == 0 &&
        cg->made().size() > 1) {
      continue;  // v2 here has no accounting controller; v1 holds the child
    }
    std::ofstream(dir + "/cgroup.procs") << child;
  }
  // Touch memory in the child's cgroup so the counter is non-zero.
  auto stats = ReadCgroupStats(cg->dirs());
  REQUIRE(stats.ok());
  REQUIRE(stats->pids_current.has_value());
  CHECK(*stats->pids_current == 1);
  CHECK(stats->pids_limit == 20);
  CHECK(stats->memory_usage_bytes.has_value());
  CHECK(stats->cpu_usage_ns.has_value());
  std::vector<std::string> dirs = cg->dirs();
  REQUIRE(cg->Remove().ok());
  for (const std::string& dir : dirs) CHECK(::access(dir.c_str(), F_OK) != 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));  // the child left in it was ended
}
