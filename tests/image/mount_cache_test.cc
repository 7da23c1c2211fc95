// MountCache in system mode: real loop devices, real kernel squashfs mounts.
// Runs as root (CI does).
#include "daemon/image/mount_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/file_io.h"
#include "daemon/image/open_as_caller.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using namespace berth::testing;
using Policy = ImagePolicy::KernelSquashfs;

struct CacheFixture {
  explicit CacheFixture(Policy policy = Policy::kTrusted) {
    REQUIRE(geteuid() == 0);
    user = EnsureTestUser();
    state_dir = scratch.File("state");
    cache = std::make_unique<MountCache>(state_dir, DaemonMode::kSystem,
                                         ImagePolicy{.kernel_squashfs = policy});
    REQUIRE(cache->Init().ok());
  }
  UniqueFd Open(const std::string& path) {
    auto fd = OpenFile(path, O_RDONLY);
    REQUIRE(fd.ok());
    return std::move(fd).value();
  }
  absl::StatusOr<std::shared_ptr<MountLease>> Acquire(const std::string& path, uid_t uid = 0) {
    return cache->Acquire(Open(path), path, uid);
  }
  std::set<std::string> Loops() { return LoopDevicesBacking({scratch.path()}); }

  TestUser user{};
  TrustedScratch scratch;
  std::string state_dir;
  std::unique_ptr<MountCache> cache;
};

// The loop device's view of what it reads: file, offset, size limit.
struct LoopView {
  std::string backing, offset, sizelimit;
};
LoopView ViewOfLoopFor(const std::string& backing) {
  std::string dev = LoopDeviceFor(backing);
  if (dev.empty()) return {};
  const std::string base = "/sys/block/" + dev + "/loop/";
  return {ReadSysfs(base + "backing_file"), ReadSysfs(base + "offset"),
          ReadSysfs(base + "sizelimit")};
}

TEST_CASE("64 concurrent Acquire calls of one image mount it exactly once", "[image][root]") {
  CacheFixture f;
  const std::string sif = f.scratch.File("img.sif");
  auto manifest = MakeImage(f.scratch.path(), sif, "once");
  std::vector<absl::StatusOr<std::shared_ptr<MountLease>>> leases(64, absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&, i] { leases[i] = f.Acquire(sif, i % 2 ? f.user.uid : 0); });
  }
  for (auto& t : threads) t.join();
  for (auto& lease : leases) REQUIRE(lease.ok());
  for (auto& lease : leases) CHECK((*lease)->root() == (*leases[0])->root());
  CHECK(f.cache->stats().mounts == 1);
  CHECK(f.cache->stats().hashes == 1);
  CHECK(MountsUnder(f.cache->mounts_dir()).size() == 1);
  CHECK(f.Loops().size() == 1);
  CHECK(VerifyTree((*leases[0])->root(), manifest) == "");
  CHECK((*leases[0])->digest().size() == 64);
}

TEST_CASE("a repeat run of an unchanged image is a cache hit, and after release it remounts",
          "[image][root]") {
  CacheFixture f;
  const std::string sif = f.scratch.File("img.sif");
  auto manifest = MakeImage(f.scratch.path(), sif, "repeat");
  auto first = f.Acquire(sif);
  REQUIRE(first.ok());
  auto second = f.Acquire(sif);
  REQUIRE(second.ok());
  CHECK(f.cache->stats().identity_hits == 1);
  CHECK(f.cache->stats().hashes == 1);
  const std::string old_root = (*first)->root();
  first->reset();
  CHECK(MountsUnder(f.cache->mounts_dir()).size() == 1);  // still leased
  second->reset();
  CHECK(MountsUnder(f.cache->mounts_dir()).empty());
  CHECK(f.Loops().empty());  // autoclear freed the device
  CHECK_FALSE(std::filesystem::exists(old_root));

  auto again = f.Acquire(sif);
  REQUIRE(again.ok());
  CHECK(f.cache->stats().mounts == 2);
  CHECK(f.cache->stats().hashes == 1);  // known file: not hashed again
  CHECK(VerifyTree((*again)->root(), manifest) == "");
}

TEST_CASE("a root-owned image in a root-owned directory is loop-mounted in place",
          "[image][root]") {
  CacheFixture f;
  const std::string sif = f.scratch.File("img.sif");
  MakeImage(f.scratch.path(), sif, "direct");
  auto lease = f.Acquire(sif, f.user.uid);
  REQUIRE(lease.ok());
  CHECK((*lease)->backend() == MountBackend::kKernelDirect);
  LoopView loop = ViewOfLoopFor(sif);
  CHECK(loop.backing == sif);
  CHECK(loop.offset != "0");
  CHECK(std::stoll(loop.offset) % 4096 == 0);
  CHECK(std::stoll(loop.sizelimit) > 0);
  CHECK(f.cache->stats().copies == 0);
  // Read-only, nosuid, nodev, whatever the image says.
  std::ifstream mountinfo("/proc/self/mountinfo");
  bool found = false;
  for (std::string line; std::getline(mountinfo, line);) {
    if (line.find(" " + (*lease)->root() + " ") == std::string::npos) continue;
    found = true;
    CHECK_THAT(line, Catch::Contains("ro,nosuid,nodev"));
    CHECK_THAT(line, Catch::Contains("squashfs"));
  }
  CHECK(found);
}

TEST_CASE("B3.3 image TOCTOU: a user-owned image is copied and the copy is what is mounted",
          "[image][root]") {
  CacheFixture f;
  const std::string sif = f.scratch.File("user.sif");
  auto manifest = MakeImage(f.scratch.path(), sif, "toctou");
  REQUIRE(chown(sif.c_str(), f.user.uid, f.user.gid) == 0);
  auto lease = f.Acquire(sif, f.user.uid);
  REQUIRE(lease.ok());
  CHECK((*lease)->backend() == MountBackend::kKernelCopy);
  const std::string copy = f.cache->images_dir() + "/" + (*lease)->digest();
  struct stat st;
  REQUIRE(stat(copy.c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  CHECK((st.st_mode & 07777) == 0400);
  REQUIRE(stat(f.cache->images_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(ViewOfLoopFor(copy).offset == "0");
  CHECK(LoopDeviceFor(sif).empty());  // the user's file is not what the kernel reads

  // The user rewrites the whole partition area with another image's bytes.
  const std::string other = f.scratch.File("other.sif");
  MakeImage(f.scratch.path(), other, "attacker");
  std::filesystem::copy_file(other, sif, std::filesystem::copy_options::overwrite_existing);
  DropCaches();
  CHECK(VerifyTree((*lease)->root(), manifest) == "");
  std::ifstream osrel((*lease)->root() + "/etc/os-release");
  std::string line;
  std::getline(osrel, line);
  CHECK(line == "NAME=berth-test-toctou");
}

TEST_CASE("a root-owned image in a user-writable directory is copied", "[image][root]") {
  CacheFixture f;
  const std::string dir = f.scratch.File("shared");
  std::filesystem::create_directory(dir);
  chmod(dir.c_str(), 01777);
  const std::string sif = dir + "/img.sif";
  MakeImage(f.scratch.path(), sif, "tmpdir");
  auto lease = f.Acquire(sif);
  REQUIRE(lease.ok());
  CHECK((*lease)->backend() == MountBackend::kKernelCopy);
}

TEST_CASE("identical images of two users share one copy and one mount", "[image][root]") {
  CacheFixture f;
  const std::string a = f.scratch.File("a.sif"), b = f.scratch.File("b.sif");
  MakeImage(f.scratch.path(), a, "shared");
  std::filesystem::copy_file(a, b);
  REQUIRE(chown(a.c_str(), f.user.uid, f.user.gid) == 0);
  REQUIRE(chown(b.c_str(), 4242, 4242) == 0);
  auto la = f.Acquire(a, f.user.uid);
  auto lb = f.Acquire(b, 4242);
  REQUIRE(la.ok());
  REQUIRE(lb.ok());
  CHECK((*la)->root() == (*lb)->root());
  CHECK(f.cache->stats().mounts == 1);
  CHECK(f.cache->stats().copies == 2);
  CHECK(f.cache->stats().reused_copies == 1);
  int stored = 0;
  for (auto& e : std::filesystem::directory_iterator(f.cache->images_dir()))
    stored += !!e.is_regular_file();
  CHECK(stored == 1);
  // Copies outlive mounts (node cache) until pruned.
  la->reset();
  lb->reset();
  auto pruned = f.cache->PruneCopies();
  REQUIRE(pruned.ok());
  CHECK(*pruned == 1);
}

TEST_CASE("B3.11 one user cannot fill the image store: least recently used copies make room",
          "[image][root]") {
  CacheFixture f;
  // Three distinct user-owned images, each copied; a budget for about two.
  std::vector<std::string> sifs;
  for (int i = 0; i < 3; ++i) {
    sifs.push_back(f.scratch.File("user" + std::to_string(i) + ".sif"));
    MakeImage(f.scratch.path(), sifs.back(), "budget" + std::to_string(i));
    REQUIRE(chown(sifs.back().c_str(), f.user.uid, f.user.gid) == 0);
  }
  auto stored = [&] {
    int64_t n = 0, bytes = 0;
    for (auto& e : std::filesystem::directory_iterator(f.cache->images_dir())) {
      if (!e.is_regular_file()) continue;
      ++n;
      bytes += static_cast<int64_t>(e.file_size());
    }
    return std::make_pair(n, bytes);
  };
  int64_t one_copy = 0;
  {
    CacheFixture probe;
    auto lease = probe.Acquire(sifs[0], f.user.uid);
    REQUIRE(lease.ok());
    for (auto& e : std::filesystem::directory_iterator(probe.cache->images_dir()))
      one_copy = std::max<int64_t>(one_copy, static_cast<int64_t>(e.file_size()));
  }
  REQUIRE(one_copy > 0);
  f.cache = std::make_unique<MountCache>(
      f.state_dir, DaemonMode::kSystem,
      ImagePolicy{.copy_store_max_bytes = one_copy * 2 + one_copy / 2});
  REQUIRE(f.cache->Init().ok());
  SECTION("released copies are deleted oldest first") {
    for (const auto& sif : sifs) {
      auto lease = f.Acquire(sif, f.user.uid);
      REQUIRE(lease.ok());
    }
    auto [n, bytes] = stored();
    CHECK(n == 2);
    CHECK(bytes <= one_copy * 2 + one_copy / 2);
    // The first image's copy was the one deleted: running it copies again.
    auto again = f.Acquire(sifs[0], f.user.uid);
    REQUIRE(again.ok());
    CHECK(f.cache->stats().copies == 4);
  }
  SECTION("copies in use are kept, and the run that does not fit is refused by name") {
    // Two users (one user's share is half the store) and root, unlimited.
    auto a = f.Acquire(sifs[0], f.user.uid);
    auto b = f.Acquire(sifs[1], f.user.uid + 1);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto c = f.Acquire(sifs[2], 0);
    REQUIRE_FALSE(c.ok());
    CHECK(absl::IsResourceExhausted(c.status()));
    CHECK(std::string(c.status().message()).find("copy_store_max_mib") != std::string::npos);
    CHECK(stored().first == 2);
    // Still serving what fits.
    a->reset();
    CHECK(f.Acquire(sifs[2], 0).ok());
  }
  SECTION("one user's copies in use stop at their share, half the store") {
    auto a = f.Acquire(sifs[0], f.user.uid);
    REQUIRE(a.ok());
    auto b = f.Acquire(sifs[1], f.user.uid);
    REQUIRE_FALSE(b.ok());
    CHECK(std::string(b.status().message()).find("max_store_mib_per_user") != std::string::npos);
    CHECK(f.Acquire(sifs[1], f.user.uid + 1).ok());  // another user is not affected
  }
}

TEST_CASE("a sparse image is copied sparse and counted by the blocks it allocates",
          "[image][root]") {
  CacheFixture f;
  // Two images, each 512 MiB more of partition that is a hole: 513 MiB
  // long, ~3 MiB on disk. Both held in a 1 GiB budget: by length they would
  // not fit, by allocated blocks they do.
  std::vector<std::string> sifs;
  for (const char* name : {"sparse1", "sparse2"}) {
    sifs.push_back(f.scratch.File(std::string(name) + ".sif"));
    MakeImage(f.scratch.path(), sifs.back(), name);
    REQUIRE(Shell("python3 " BERTH_SOURCE_DIR "/tests/stores/grow_partition.py " + sifs.back() +
                  " 512") == 0);
    REQUIRE(chown(sifs.back().c_str(), f.user.uid, f.user.gid) == 0);
  }
  f.cache = std::make_unique<MountCache>(f.state_dir, DaemonMode::kSystem,
                                         ImagePolicy{.copy_store_max_bytes = int64_t{1} << 30});
  REQUIRE(f.cache->Init().ok());
  std::vector<std::shared_ptr<MountLease>> held;
  for (const std::string& sif : sifs) {
    auto lease = f.Acquire(sif, f.user.uid);
    INFO(lease.status().ToString());
    REQUIRE(lease.ok());
    held.push_back(*lease);
  }
  std::set<std::string> digests;
  for (auto& e : std::filesystem::directory_iterator(f.cache->images_dir())) {
    struct stat st;
    REQUIRE(stat(e.path().c_str(), &st) == 0);
    CHECK(st.st_size > (int64_t{512} << 20));
    CHECK(st.st_blocks * 512 < (int64_t{16} << 20));
    digests.insert(Sha256OfFile(e.path()));  // the holes are in the digest
  }
  CHECK(digests == std::set<std::string>{held[0]->digest(), held[1]->digest()});
}

TEST_CASE("policy always mounts user files in place, policy never uses FUSE", "[image][root]") {
  SECTION("always") {
    CacheFixture f(Policy::kAlways);
    const std::string sif = f.scratch.File("user.sif");
    MakeImage(f.scratch.path(), sif, "always");
    REQUIRE(chown(sif.c_str(), f.user.uid, f.user.gid) == 0);
    auto lease = f.Acquire(sif, f.user.uid);
    REQUIRE(lease.ok());
    CHECK((*lease)->backend() == MountBackend::kKernelDirect);
    CHECK(ViewOfLoopFor(sif).backing == sif);
  }
  SECTION("never") {
    CacheFixture f(Policy::kNever);
    const std::string sif = f.scratch.File("img.sif");
    auto manifest = MakeImage(f.scratch.path(), sif, "never");
    auto lease = f.Acquire(sif);
    REQUIRE(lease.ok());
    CHECK((*lease)->backend() == MountBackend::kFuse);
    CHECK(f.Loops().empty());
    CHECK(VerifyTree((*lease)->root(), manifest) == "");
    lease->reset();
    CHECK(MountsUnder(f.cache->mounts_dir()).empty());
  }
}

}  // namespace
}  // namespace berth::daemon::image
