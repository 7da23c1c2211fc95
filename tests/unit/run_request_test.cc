// RunRequest checks (hostile fields) and the caller-state parsers.
#include <catch2/catch.hpp>

#include "daemon/launch/cgroups.h"
#include "daemon/service/run_request_check.h"

namespace berth::daemon {
namespace {

v1::RunRequest Valid() {
  v1::RunRequest r;
  r.set_action(v1::ACTION_EXEC);
  r.set_image("/images/a.sif");
  r.add_args("/bin/true");
  r.set_cwd("/home/u");
  auto* fd = r.add_fds();
  fd->set_handoff_index(0);
  fd->set_container_fd(1);
  return r;
}

std::string Refusal(const v1::RunRequest& r, const policy::Config& c = {}) {
  absl::Status st = CheckRunRequest(r, 1, c);
  REQUIRE_FALSE(st.ok());
  std::string msg(st.message());
  CHECK(msg.find('\n') == std::string::npos);
  return msg;
}

TEST_CASE("a plain request passes", "[run][check]") {
  CHECK(CheckRunRequest(Valid(), 1, {}).ok());
}

TEST_CASE("hostile request fields are refused, naming the field", "[run][check][hostile]") {
  auto r = Valid();
  r.set_image("images/a.sif");
  CHECK(Refusal(r).find("image: 'images/a.sif' is not an absolute path") == 0);
  r = Valid();
  r.set_image("/images/../root/a.sif");
  CHECK(Refusal(r).find("contains '..'") != std::string::npos);
  r = Valid();
  r.set_image(std::string("/a\0b", 4));
  CHECK(Refusal(r).find("NUL") != std::string::npos);
  r = Valid();
  r.set_image("/" + std::string(5000, 'a'));
  CHECK(Refusal(r).find("limit") != std::string::npos);
  r = Valid();
  r.set_pwd("/proc/self/fd/7");
  CHECK(Refusal(r).find("--cwd") == 0);  // CVE-2024-21626
  r = Valid();
  r.set_pwd("/proc/1/cwd");
  CHECK(Refusal(r).find("--cwd") == 0);
  r = Valid();
  r.mutable_fds(0)->set_handoff_index(3);
  CHECK(Refusal(r).find("never passed") != std::string::npos);
  r = Valid();
  r.mutable_fds(0)->set_container_fd(5000);
  CHECK(Refusal(r).find("out of range") != std::string::npos);
  r = Valid();
  for (int i = 0; i < 5000; ++i) r.add_args("x");
  CHECK(Refusal(r).find("args") == 0);
  r = Valid();
  r.set_hostname("bad host");
  CHECK(Refusal(r).find("--hostname") == 0);
  r = Valid();
  r.set_action(v1::ACTION_EXEC);
  r.clear_args();
  CHECK(Refusal(r).find("exec") == 0);
}

TEST_CASE("site policy shapes what a request may ask", "[run][check][policy]") {
  policy::Config c;
  c.user_bind_control = false;
  auto r = Valid();
  auto* b = r.add_binds();
  b->set_source("/data");
  b->set_destination("/data");
  CHECK(Refusal(r, c).find("user_bind_control") != std::string::npos);
  c = {};
  c.allow_user_ns = false;
  r = Valid();
  r.set_fakeroot(true);
  CHECK(Refusal(r, c).find("allow_user") != std::string::npos);
  c = {};
  c.writable_tmpfs_max_mib = 10;
  r = Valid();
  r.set_tmpfs_size_mib(11);
  CHECK(Refusal(r, c).find("10 MiB") != std::string::npos);
}

TEST_CASE("cgroup directories from /proc/PID/cgroup on a hybrid host", "[run][cgroup]") {
  std::string mountinfo =
      "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n"
      "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "33 25 0:29 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n";
  std::string proc =
      "12:memory:/slurm/uid_0/job_7/step_0\n"
      "4:cpu,cpuacct:/slurm/uid_0/job_7\n"
      "0::/user.slice\n"
      "3:blkio:/../escape\n";
  auto dirs = launch::CgroupDirsFrom(proc, mountinfo);
  REQUIRE(dirs.ok());
  CHECK(*dirs == std::vector<std::string>{"/sys/fs/cgroup/memory/slurm/uid_0/job_7/step_0",
                                          "/sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_7",
                                          "/sys/fs/cgroup/unified/user.slice"});
}

}  // namespace
}  // namespace berth::daemon
