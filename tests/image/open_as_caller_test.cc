// OpenAsCaller: the confused-deputy cases (security.md B3.2). Runs as root.
#include "daemon/image/open_as_caller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <thread>

#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using berth::testing::EnsureTestUser;
using berth::testing::TrustedScratch;

// "Uid:" / "Gid:" lines of /proc/thread-self/status: real, effective, saved, fs.
std::string StatusLine(const char* key) {
  std::ifstream in("/proc/thread-self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return line;
  }
  return "";
}
std::string Fsuid() {
  std::string line = StatusLine("Uid:");
  return line.substr(line.find_last_of('\t') + 1);
}

struct Fixture {
  Fixture() {
    user = EnsureTestUser();
    caller = {user.uid, user.gid, {user.gid}};
    // /root is 0700 root; the secret itself 0600.
    secret = "/root/berth-image-test-secret";
    std::ofstream(secret) << "secret\n";
    chmod(secret.c_str(), 0600);
    link = scratch.File("link-to-secret");
    symlink(secret.c_str(), link.c_str());
    readable = scratch.File("public");
    std::ofstream(readable) << "public\n";
    chmod(readable.c_str(), 0644);
  }
  ~Fixture() { unlink(secret.c_str()); }

  berth::testing::TestUser user{};
  CallerCreds caller;
  TrustedScratch scratch;
  std::string secret, link, readable;
};

TEST_CASE("B3.2 confused deputy: a root-only file cannot be opened as a user", "[image][root]") {
  REQUIRE(geteuid() == 0);
  Fixture f;
  auto fd = OpenAsCaller(f.caller, f.secret, O_RDONLY);
  REQUIRE_FALSE(fd.ok());
  CHECK(fd.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(fd.status().message()), Catch::Contains("Permission denied"));
  CHECK(Fsuid() == "0");
}

TEST_CASE("B3.2 confused deputy: a symlink to a root-only file is refused too", "[image][root]") {
  Fixture f;
  auto fd = OpenAsCaller(f.caller, f.link, O_RDONLY);
  REQUIRE_FALSE(fd.ok());
  CHECK_THAT(std::string(fd.status().message()), Catch::Contains("Permission denied"));
  // Root itself can (the switch is what makes the difference).
  CHECK(OpenAsCaller({0, 0, {0}}, f.link, O_RDONLY).ok());
}

TEST_CASE("opening as a user works for what the user may read", "[image][root]") {
  Fixture f;
  auto fd = OpenAsCaller(f.caller, f.readable, O_RDONLY);
  REQUIRE(fd.ok());
  char buf[6];
  CHECK(read(fd->get(), buf, 6) == 6);
  CHECK(std::string(buf, 6) == "public");
}

TEST_CASE("the thread's fs identity and groups are restored after every open", "[image][root]") {
  Fixture f;
  const std::string uid_before = StatusLine("Uid:"), gid_before = StatusLine("Gid:");
  const std::string groups_before = StatusLine("Groups:");
  for (int i = 0; i < 50; ++i) {
    (void)OpenAsCaller(f.caller, i % 2 ? f.secret : f.readable, O_RDONLY);
  }
  CHECK(StatusLine("Uid:") == uid_before);
  CHECK(StatusLine("Gid:") == gid_before);
  CHECK(StatusLine("Groups:") == groups_before);
  CHECK(Fsuid() == "0");
  // A second setfsuid returning 0 proves the current fsuid is root.
  syscall(SYS_setfsuid, 0);
  CHECK(syscall(SYS_setfsuid, 0) == 0);
}

// The kernel grants group access from the thread's supplementary groups: they
// must be the caller's. Here the daemon's thread holds group G (not H), like
// a daemon started with a supplementary group.
TEST_CASE("supplementary groups are the caller's, never the daemon thread's", "[image][root]") {
  Fixture f;
  constexpr gid_t kG = 54321, kH = 54322;
  auto group_file = [&](const char* name, gid_t gid) {
    const std::string path = f.scratch.File(name);
    std::ofstream(path) << "group\n";
    REQUIRE(chown(path.c_str(), 0, gid) == 0);
    REQUIRE(chmod(path.c_str(), 0640) == 0);
    return path;
  };
  const std::string in_g = group_file("root-g", kG), in_h = group_file("root-h", kH);
  const CallerCreds outsider{f.user.uid, f.user.gid, {f.user.gid}};
  const CallerCreds member{f.user.uid, f.user.gid, {f.user.gid, kG, kH}};
  std::thread daemon_thread([&] {
    const gid_t daemon_groups[] = {kG};
    REQUIRE(syscall(SYS_setgroups, 1, daemon_groups) == 0);  // this thread only
    CHECK_FALSE(OpenAsCaller(outsider, in_g, O_RDONLY).ok());
    CHECK_FALSE(OpenAsCaller(outsider, in_h, O_RDONLY).ok());
    CHECK_FALSE(OpenPathAsCaller(outsider, in_g).ok());
    CHECK(OpenAsCaller(member, in_g, O_RDONLY).ok());
    CHECK(OpenAsCaller(member, in_h, O_RDONLY).ok());
    CHECK(OpenPathAsCaller(member, in_h).ok());
    CHECK(StatusLine("Groups:").find("54321") != std::string::npos);  // restored
  });
  daemon_thread.join();
}

TEST_CASE("other threads never see the identity switch", "[image][root]") {
  Fixture f;
  std::atomic<bool> stop{false};
  std::atomic<int> checks{0}, bad{0};
  const std::string groups_before = StatusLine("Groups:");
  std::thread watcher([&] {
    while (!stop.load()) {
      if (Fsuid() != "0" || StatusLine("Groups:") != groups_before) ++bad;
      ++checks;
    }
  });
  for (int i = 0; i < 3000; ++i) (void)OpenAsCaller(f.caller, f.readable, O_RDONLY);
  stop = true;
  watcher.join();
  CHECK(checks.load() > 100);
  CHECK(bad.load() == 0);
}

TEST_CASE("hostile paths get a clear one-line error", "[image][root]") {
  Fixture f;
  auto message = [&](const std::string& path) {
    auto fd = OpenAsCaller(f.caller, path, O_RDONLY);
    REQUIRE_FALSE(fd.ok());
    CHECK(fd.status().code() == absl::StatusCode::kInvalidArgument);
    std::string m(fd.status().message());
    CHECK(m.find('\n') == std::string::npos);
    return m;
  };
  CHECK_THAT(message("relative/image.sif"), Catch::Contains("is not absolute"));
  CHECK_THAT(message(""), Catch::Contains("is empty"));
  CHECK_THAT(message(std::string("/tmp/a\0b", 8)), Catch::Contains("contains a NUL byte"));
  CHECK_THAT(message("/" + std::string(5000, 'a')), Catch::Contains("limit 4095"));
  CHECK_THAT(message(f.scratch.path() + "/../../root/x"), Catch::Contains("\"..\" component"));
  CHECK_THAT(message(f.scratch.path() + "/.."), Catch::Contains("\"..\" component"));
  // Creating files is not what this is for.
  CHECK_FALSE(OpenAsCaller(f.caller, f.readable, O_RDONLY | O_CREAT).ok());
}

TEST_CASE("magic links resolve to the daemon, so they are not followed", "[image][root]") {
  Fixture f;
  auto own = OpenAsCaller({0, 0, {0}}, f.readable, O_RDONLY);
  REQUIRE(own.ok());
  auto fd = OpenAsCaller(f.caller, "/proc/self/fd/" + std::to_string(own->get()), O_RDONLY);
  CHECK_FALSE(fd.ok());
}

TEST_CASE("a FIFO does not park the daemon thread", "[image][root]") {
  Fixture f;
  const std::string fifo = f.scratch.File("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0666) == 0);
  auto fd = OpenAsCaller(f.caller, fifo, O_RDONLY);  // would block forever without O_NONBLOCK
  CHECK(fd.ok());
}

TEST_CASE("bind sources: O_PATH as the caller, and only what the caller may read",
          "[image][root]") {
  Fixture f;
  auto denied = OpenPathAsCaller(f.caller, f.secret);
  REQUIRE_FALSE(denied.ok());
  CHECK_THAT(std::string(denied.status().message()), Catch::Contains("Permission denied"));
  CHECK_FALSE(OpenPathAsCaller(f.caller, f.link).ok());
  // Reachable but unreadable (0600 root in a public dir): O_PATH alone would succeed.
  const std::string hidden = f.scratch.File("hidden");
  std::ofstream(hidden) << "x";
  chmod(hidden.c_str(), 0600);
  CHECK_FALSE(OpenPathAsCaller(f.caller, hidden).ok());
  auto ok = OpenPathAsCaller(f.caller, f.readable);
  REQUIRE(ok.ok());
  CHECK((fcntl(ok->get(), F_GETFL) & O_PATH) == O_PATH);
  CHECK(Fsuid() == "0");
}

TEST_CASE("OpenAtAsCaller: a directory descriptor lends nothing the caller could not open",
          "[image][root]") {
  Fixture f;
  // A 0700 root directory, opened by root, with a world-readable file in it:
  // beneath it the caller lacks search permission, whoever opened it.
  const std::string dir = f.scratch.File("private");
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  std::ofstream(dir + "/f") << "inside\n";
  chmod((dir + "/f").c_str(), 0644);
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir_fd.valid());
  auto denied = OpenAtAsCaller(f.caller, dir_fd.get(), "f", O_RDONLY);
  REQUIRE_FALSE(denied.ok());
  CHECK_THAT(std::string(denied.status().message()), Catch::Contains("Permission denied"));
  CHECK(OpenAtAsCaller({0, 0, {0}}, dir_fd.get(), "f", O_RDONLY).ok());
  // A searchable directory, but a file only its owner may read.
  UniqueFd scratch_fd(open(f.scratch.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::string hidden = f.scratch.File("hidden");
  std::ofstream(hidden) << "x";
  chmod(hidden.c_str(), 0600);
  CHECK_FALSE(OpenAtAsCaller(f.caller, scratch_fd.get(), "hidden", O_RDONLY).ok());
  CHECK(OpenAtAsCaller(f.caller, scratch_fd.get(), "public", O_RDONLY).ok());
  CHECK(Fsuid() == "0");
}

TEST_CASE("OpenAtAsCaller: only one path component, never a way out", "[image][root]") {
  Fixture f;
  UniqueFd scratch_fd(open(f.scratch.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (const char* name : {"", ".", "..", "a/b", "/etc/passwd"}) {
    auto fd = OpenAtAsCaller(f.caller, scratch_fd.get(), name, O_RDONLY);
    REQUIRE_FALSE(fd.ok());
    CHECK(fd.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(OpenAtAsCaller(f.caller, scratch_fd.get(), "new", O_RDWR | O_CREAT).ok());
  // A symlink beneath the directory is not followed out of it (RESOLVE_BENEATH).
  symlink("/etc/passwd", f.scratch.File("out").c_str());
  CHECK_FALSE(OpenAtAsCaller(f.caller, scratch_fd.get(), "out", O_RDONLY).ok());
}

}  // namespace
}  // namespace berth::daemon::image
