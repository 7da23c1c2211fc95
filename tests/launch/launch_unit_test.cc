// Unit tests for the launcher's pure logic: container path cleaning,
// resolution inside an image (symlinks stay inside), mount-point staging,
// the generated /etc/passwd and /etc/group, and cgroup directory mapping.
// No privilege needed.
#define CATCH_CONFIG_MAIN
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "daemon/launch/account_files.h"
#include "daemon/launch/cgroups.h"
#include "daemon/launch/image_idmap.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/launch.h"

namespace launch = berth::daemon::launch;

namespace {

// A scratch directory tree, removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/launch-unit-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& rel) const { return path + "/" + rel; }
  int Open() const { return open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); }
};

bool IsDir(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsFile(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

TEST_CASE("container paths are cleaned and refused when unsafe") {
  CHECK(*launch::CleanContainerPath("/home//alice/./x/") == "home/alice/x");
  CHECK(*launch::CleanContainerPath("/", true) == "");
  CHECK_FALSE(launch::CleanContainerPath("/").ok());
  CHECK_FALSE(launch::CleanContainerPath("relative/path").ok());
  CHECK_FALSE(launch::CleanContainerPath("/a/../etc").ok());
  CHECK_FALSE(launch::CleanContainerPath(std::string("/a\0b", 4)).ok());
  CHECK(launch::IsUnderProc("proc"));
  CHECK(launch::IsUnderProc("proc/self/fd/3"));
  CHECK_FALSE(launch::IsUnderProc("procfs"));
}

TEST_CASE("resolution inside the image keeps symlinks inside it") {
  TempDir img;
  mkdir((img / "etc").c_str(), 0755);
  mkdir((img / "usr").c_str(), 0755);
  mkdir((img / "usr/lib").c_str(), 0755);
  REQUIRE(symlink("/etc", (img / "hostetc").c_str()) == 0);
  REQUIRE(symlink("../../../../../etc", (img / "escape").c_str()) == 0);
  REQUIRE(symlink("usr/lib", (img / "lib").c_str()) == 0);
  REQUIRE(symlink("/nowhere/x", (img / "dangling").c_str()) == 0);
  REQUIRE(symlink("loop", (img / "loop").c_str()) == 0);
  close(open((img / "etc/passwd").c_str(), O_CREAT | O_WRONLY, 0644));
  int fd = img.Open();

  auto p = launch::ResolveInImage(fd, "hostetc/x");
  REQUIRE(p.ok());
  CHECK(p->existing == std::vector<std::string>{"etc"});
  CHECK(p->missing == std::vector<std::string>{"x"});
  p = launch::ResolveInImage(fd, "escape/y");
  REQUIRE(p.ok());
  CHECK(p->existing == std::vector<std::string>{"etc"});
  p = launch::ResolveInImage(fd, "lib/z");
  REQUIRE(p.ok());
  CHECK(p->existing == std::vector<std::string>{"usr", "lib"});
  p = launch::ResolveInImage(fd, "dangling");
  REQUIRE(p.ok());
  CHECK(p->missing == std::vector<std::string>{"nowhere", "x"});
  CHECK_FALSE(launch::ResolveInImage(fd, "etc/passwd/sub").ok());
  CHECK_FALSE(launch::ResolveInImage(fd, "loop").ok());
  close(fd);
}

TEST_CASE("mount points are staged where the image resolves them, never in the image") {
  TempDir img, staging;
  mkdir((img / "etc").c_str(), 0711);
  REQUIRE(symlink("/etc", (img / "data").c_str()) == 0);
  close(open((img / "etc/hosts").c_str(), O_CREAT | O_WRONLY, 0644));
  int fd = img.Open();
  int st = open(staging.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  REQUIRE(launch::StageMountPoint(fd, st, "data/sub/dir", true).ok());
  CHECK(IsDir(staging / "etc/sub/dir"));
  CHECK_FALSE(IsDir(staging / "data"));
  CHECK_FALSE(IsDir(img / "etc/sub"));
  struct stat s;
  REQUIRE(stat((staging / "etc").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0711);  // mirrors the image's directory

  REQUIRE(launch::StageMountPoint(fd, st, "home/alice", true).ok());
  CHECK(IsDir(staging / "home/alice"));
  REQUIRE(launch::StageMountPoint(fd, st, "etc/resolv.conf", false).ok());
  CHECK(IsFile(staging / "etc/resolv.conf"));
  REQUIRE(launch::StageMountPoint(fd, st, "etc/hosts", false).ok());  // exists: nothing to do
  CHECK_FALSE(IsFile(staging / "etc/hosts"));
  CHECK_FALSE(launch::StageMountPoint(fd, st, "etc/hosts", true).ok());  // file vs directory
  REQUIRE(launch::StageShadowFile(fd, st, "etc/hosts", "127.0.0.1 x\n").ok());
  CHECK(IsFile(staging / "etc/hosts"));
  close(st);
  close(fd);
}

TEST_CASE("passwd and group gain the caller") {
  launch::PasswdEntry e{"alice", 1000, 1000, "Alice", "/home/alice", "/bin/sh"};
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\nold:x:1000:1000::/x:/bin/false";
  CHECK(launch::MergePasswd(passwd, e) ==
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n");
  std::string group = "root:x:0:\nvideo:x:44:bob\nstaff:x:50:\n";
  CHECK(launch::MergeGroup(group, "alice", {{44, "video"}, {1000, "alice"}, {51, "staff"}}) ==
        "root:x:0:\nvideo:x:44:bob,alice\nstaff:x:50:\nalice:x:1000:alice\n");

  launch::Identity id;
  id.uid = 1000;
  id.gid = 1000;
  id.user_name = "ali:ce";
  CHECK_FALSE(launch::MakeAccountFiles("", "", id, false).ok());
  id.user_name = "alice";
  id.home = "/home/alice\nroot::0:0::/:/bin/sh";
  CHECK_FALSE(launch::MakeAccountFiles("", "", id, false).ok());
  auto files = launch::MakeAccountFiles("", "", launch::Identity{}, true);
  REQUIRE(files.ok());
  CHECK(files->passwd == "root:x:0:0:root:/root:/bin/sh\n");
}

TEST_CASE("cgroup directories of a process on a hybrid host") {
  std::string cgroup =
      "9:name=systemd:/user/1\n4:memory:/job_7\n1:cpu,cpuacct:/job_7/step_0\n0::/slurm/job_7\n";
  std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "41 31 0:38 /slurm /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n";
  auto dirs = launch::CgroupDirsFrom(cgroup, mountinfo);
  REQUIRE(dirs.ok());
  CHECK(*dirs == std::vector<std::string>{
                     "/sys/fs/cgroup/systemd/user/1", "/sys/fs/cgroup/memory/job_7",
                     "/sys/fs/cgroup/cpu,cpuacct/job_7/step_0", "/sys/fs/cgroup/unified/job_7"});
}

TEST_CASE("cgroups to join: only hierarchies that differ, mountinfo read only for them") {
  std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n";
  int reads = 0;
  auto read = [&]() -> absl::StatusOr<std::string> {
    ++reads;
    return mountinfo;
  };
  std::string ours = "9:name=systemd:/user/1\n4:memory:/\n0::/user.slice/u1\n";
  // The caller where the daemon is: nothing to join, nothing to map.
  auto same = launch::CgroupDirsToJoinFrom(ours, ours, read);
  REQUIRE(same.ok());
  CHECK(same->empty());
  CHECK(reads == 0);
  // A batch job: its own memory and v2 cgroups, the systemd one shared.
  std::string theirs = "9:name=systemd:/user/1\n4:memory:/job_7\n0::/slurm/job_7\n";
  auto job = launch::CgroupDirsToJoinFrom(theirs, ours, read);
  REQUIRE(job.ok());
  CHECK(*job == std::vector<std::string>{"/sys/fs/cgroup/memory/job_7",
                                         "/sys/fs/cgroup/unified/slurm/job_7"});
  CHECK(reads == 1);
  // The same answer as mapping every line and dropping the daemon's own.
  auto all = launch::CgroupDirsFrom(theirs, mountinfo);
  auto own = launch::CgroupDirsFrom(ours, mountinfo);
  REQUIRE(all.ok());
  REQUIRE(own.ok());
  std::erase_if(*all, [&](const std::string& d) {
    return std::find(own->begin(), own->end(), d) != own->end();
  });
  CHECK(*all == *job);
  // A mountinfo that cannot be read is an error only when it is needed.
  auto broken = [] { return absl::StatusOr<std::string>(absl::InternalError("unreadable")); };
  CHECK(launch::CgroupDirsToJoinFrom(ours, ours, broken).ok());
  CHECK_FALSE(launch::CgroupDirsToJoinFrom(theirs, ours, broken).ok());
  // This thread and its own process: the same cgroups, nothing to join.
  auto self = launch::CgroupDirsToJoin(getpid());
  REQUIRE(self.ok());
  CHECK(self->empty());
}

TEST_CASE("a fakeroot join needs the container's own user namespace") {
  using berth::daemon::launch::Join;
  using berth::daemon::launch::LaunchSpec;
  using berth::daemon::launch::LiveNamespaces;
  LaunchSpec spec;
  spec.fakeroot = true;
  spec.argv = {"/bin/true"};
  LiveNamespaces ns;
  ns.mnt = berth::UniqueFd(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  REQUIRE(ns.mnt.valid());
  auto joined = Join(std::move(spec), ns);
  REQUIRE_FALSE(joined.ok());
  CHECK(joined.status().message() ==
        "--fakeroot: the container to join has no user namespace of its own");
}

TEST_CASE("a plain user's image map: 0 is the caller, no other id reaches host 0 or the caller") {
  CHECK(launch::PlainUserImageMap(1001) == "0 1001 1\n1 1 1000\n1002 1002 4294966293\n");
  CHECK(launch::PlainUserImageMap(1) == "0 1 1\n2 2 4294967293\n");
  CHECK(launch::PlainUserImageMap(4294967294u) == "0 4294967294 1\n1 1 4294967293\n");
}

TEST_CASE("idmap namespaces made from many threads at once never wait on each other") {
  // Each is made by a short-lived process; one that kept a copy of another
  // thread's descriptors would hold that thread's namespace open, and two
  // such processes would wait for each other forever. The threads run in a
  // process group of their own, so that stuck ones and their processes can
  // all be killed.
  pid_t worker = fork();
  REQUIRE(worker >= 0);
  if (worker == 0) {
    setpgid(0, 0);
    bool root = geteuid() == 0;
    std::string uid_map = launch::PlainUserImageMap(root ? 1001 : geteuid());
    std::string gid_map = launch::PlainUserImageMap(root ? 1001 : getegid());
    constexpr int kThreads = 8, kEach = 300;
    std::atomic<int> made{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          if (launch::MakeMappedUserNamespace(uid_map, gid_map).ok()) ++made;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    // Unprivileged, the maps are refused: only the processes are checked.
    _exit(!root || made.load() == kThreads * kEach ? 0 : 2);
  }
  setpgid(worker, worker);
  int status = 0;
  bool ended = false;
  for (int waited = 0; waited < 600 && !ended; ++waited) {
    ended = waitpid(worker, &status, WNOHANG) == worker;
    if (!ended) usleep(100'000);
  }
  if (!ended) {
    kill(-worker, SIGKILL);
    waitpid(worker, &status, 0);
  }
  CHECK(ended);
  CHECK((ended && WIFEXITED(status) && WEXITSTATUS(status) == 0));
}
