// The daemon's side of fakeroot: trusting only root-owned subid files,
// choosing the mode (subuid ranges or root-mapped) with Apptainer's lines,
// the launcher's own check of the maps it writes, and the atomic, locked
// replacement `berth config fakeroot` uses. Needs root (CI runs as root): the
// files must be root's to be trusted; fails, never skips, without it.
#define CATCH_CONFIG_MAIN
#include "daemon/fakeroot/fakeroot_ids.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "daemon/launch/id_maps.h"
#include "subid/subid_io.h"
#include "tests/unit/test_util.h"

namespace fakeroot = berth::daemon::fakeroot;
namespace launch = berth::daemon::launch;
namespace subid = berth::subid;
using berth::testing::ReadFile;
using berth::testing::ScratchDir;
using berth::testing::WriteFile;

namespace {

const fakeroot::Caller kAlice{1000, 1000, "alice"};

struct Files {
  ScratchDir dir;
  fakeroot::Sources sources;
  Files(const std::string& subuid, const std::string& subgid) {
    REQUIRE(::geteuid() == 0);
    sources.subuid_path = WriteFile(dir.File("subuid"), subuid);
    sources.subgid_path = WriteFile(dir.File("subgid"), subgid);
    ::chmod(sources.subuid_path.c_str(), 0644);
    ::chmod(sources.subgid_path.c_str(), 0644);
  }
};

std::string MapText(const std::vector<launch::IdMapping>& m, uint32_t own = 1000) {
  auto text = launch::IdMapText(m, 0, own, "uid");
  return text.ok() ? *text : std::string("error: ") + std::string(text.status().message());
}

}  // namespace

TEST_CASE("a listed user gets the ranges: 0 is the caller, 1.. the range") {
  Files f("alice:100000:65536\n", "alice:300000:65536\n");
  auto ids = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE(ids.ok());
  CHECK(ids->mode == fakeroot::Mode::kSubidRanges);
  CHECK(ids->notice.empty());
  CHECK(MapText(ids->uid_map) == "0 1000 1\n1 100000 65536\n");
  CHECK(launch::IdMapText(ids->gid_map, 0, 1000, "gid").value() == "0 1000 1\n1 300000 65536\n");
}

TEST_CASE("a user not listed gets the root-mapped namespace and Apptainer's line") {
  Files f("bob:100000:65536\n", "bob:100000:65536\n");
  auto ids = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE(ids.ok());
  CHECK(ids->mode == fakeroot::Mode::kRootMapped);
  CHECK(ids->notice ==
        "User not listed in " + f.sources.subuid_path + ", trying root-mapped namespace");
  CHECK(MapText(ids->uid_map) == "0 1000 1\n");
}

TEST_CASE("missing files list nobody") {
  ScratchDir dir;
  fakeroot::Sources s{dir.File("none-uid"), dir.File("none-gid"), false};
  auto ids = fakeroot::ResolveIds(s, kAlice);
  REQUIRE(ids.ok());
  CHECK(ids->mode == fakeroot::Mode::kRootMapped);
}

TEST_CASE("a subuid entry without a subgid one is an error naming the subgid file") {
  Files f("alice:100000:65536\n", "");
  auto ids = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE_FALSE(ids.ok());
  CHECK_THAT(
      std::string(ids.status().message()),
      Catch::StartsWith("no mapping entry found in " + f.sources.subgid_path + " for alice"));
}

TEST_CASE("the gid range may not hold the caller's primary gid") {
  Files f("alice:100000:65536\n", "alice:1:65536\n");
  auto ids = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE_FALSE(ids.ok());
  CHECK_THAT(std::string(ids.status().message()), Catch::Contains("the user's own gid 1000"));
}

TEST_CASE("root's fakeroot is root-mapped, silently; user mode says why it is") {
  Files f("root:100000:65536\n", "root:100000:65536\n");
  auto root = fakeroot::ResolveIds(f.sources, fakeroot::Caller{0, 0, "root"});
  REQUIRE(root.ok());
  CHECK(root->mode == fakeroot::Mode::kRootMapped);
  CHECK(root->notice.empty());
  f.sources.user_mode = true;
  auto user = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE(user.ok());
  CHECK(user->mode == fakeroot::Mode::kRootMapped);
  CHECK_THAT(user->notice, Catch::Contains("user mode") && Catch::Contains("root-mapped"));
}

TEST_CASE("a subid file anyone but root can change is refused, naming it and the fix") {
  Files f("alice:100000:65536\n", "alice:100000:65536\n");
  ::chmod(f.sources.subuid_path.c_str(), 0666);
  auto ids = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE_FALSE(ids.ok());
  CHECK(ids.status().message() ==
        f.sources.subuid_path +
            " is writable by group or other (mode 0666): berthd will not map "
            "user namespace ids from it; fix: chown root:root " +
            f.sources.subuid_path + " && chmod 644 " + f.sources.subuid_path +
            " (and its directories: root-owned, not group/other-writable)");
  ::chmod(f.sources.subuid_path.c_str(), 0644);
  ::chown(f.sources.subuid_path.c_str(), 4321, 0);
  auto owned = fakeroot::ResolveIds(f.sources, kAlice);
  REQUIRE_FALSE(owned.ok());
  CHECK_THAT(std::string(owned.status().message()), Catch::Contains("is owned by uid 4321"));
}

TEST_CASE("a subid file below a directory others can write, or a symlink, is refused") {
  ScratchDir dir;
  std::string sub = dir.File("open");
  REQUIRE(::mkdir(sub.c_str(), 0777) == 0);
  ::chmod(sub.c_str(), 0777);
  std::string file = WriteFile(sub + "/subuid", "alice:100000:65536\n");
  auto r = subid::ReadTrustedSubidFile(file);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(std::string(r.status().message()),
             Catch::Contains("(its directory " + sub + " is writable by group or other"));
  ::chmod(sub.c_str(), 01777);  // sticky, like /tmp: others cannot rename root's file
  CHECK(subid::ReadTrustedSubidFile(file).ok());
  std::string link = dir.File("link");
  REQUIRE(::symlink(file.c_str(), link.c_str()) == 0);
  auto l = subid::ReadTrustedSubidFile(link);
  REQUIRE_FALSE(l.ok());
  CHECK_THAT(std::string(l.status().message()), Catch::Contains("is a symlink"));
  auto big = subid::ReadTrustedSubidFile(file, 4);
  REQUIRE_FALSE(big.ok());
  CHECK_THAT(std::string(big.status().message()), Catch::Contains("is larger than"));
}

TEST_CASE("the launcher maps only what fakeroot may: never host id 0, never the caller twice") {
  CHECK(MapText({}) == "0 1000 1\n");
  CHECK(MapText({{0, 1000, 1}, {1, 100000, 65536}}) == "0 1000 1\n1 100000 65536\n");
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 0, 500}}), Catch::Contains("would map host uid 0 (root)"));
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 999, 2}}),
             Catch::Contains("would map the caller's own uid 1000 a second time"));
  CHECK_THAT(MapText({{0, 0, 1}, {1, 0, 5}}, 0), Catch::Contains("would map host uid 0 (root)"));
  CHECK_THAT(MapText({{0, 1001, 1}}), Catch::Contains("must start with \"0 1000 1\""));
  CHECK_THAT(MapText({{0, 1000, 1}, {0, 100000, 10}}), Catch::Contains("overlap"));
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 100000, 10}, {5, 200000, 10}}), Catch::Contains("overlap"));
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 100000, 10}, {20, 100005, 10}}),
             Catch::Contains("overlap"));
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 4294967290u, 10}}), Catch::Contains("past the last id"));
  CHECK_THAT(MapText({{0, 1000, 1}, {1, 100000, 0}}), Catch::Contains("past the last id"));
}

TEST_CASE("replacing a subid file keeps its mode and owner and leaves no temporary file") {
  ScratchDir dir;
  std::string path = WriteFile(dir.File("subuid"), "old\n");
  REQUIRE(::chown(path.c_str(), 5, 6) == 0);
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  {
    auto lock = subid::SubidLock::Acquire(path);
    REQUIRE(lock.ok());
    CHECK(std::filesystem::exists(path + ".lock"));
    REQUIRE(subid::ReplaceSubidFile(path, "new\n").ok());
  }
  CHECK_FALSE(std::filesystem::exists(path + ".lock"));
  CHECK(ReadFile(path) == "new\n");
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(st.st_uid == 5);
  CHECK(st.st_gid == 6);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.File("")),
                      std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("a lock held by a live process is respected; a dead one's is taken over") {
  ScratchDir dir;
  std::string path = dir.File("subuid");
  WriteFile(path + ".lock", "1\n");  // init: alive
  auto held = subid::SubidLock::Acquire(path);
  REQUIRE_FALSE(held.ok());
  CHECK_THAT(std::string(held.status().message()), Catch::Contains("is editing " + path));
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // a pid that no longer exists
  WriteFile(path + ".lock", std::to_string(child) + "\n");
  CHECK(subid::SubidLock::Acquire(path).ok());
}
