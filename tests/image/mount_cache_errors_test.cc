// Hostile and broken images (CVE-2023-30549 class, security.md B3.4), per-uid
// limits (B3.11) and crash leftovers: clear one-line errors, and never a
// leaked loop device or mount. Runs as root.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/file_io.h"
#include "daemon/image/mount_cache.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using namespace berth::testing;
using Policy = ImagePolicy::KernelSquashfs;
namespace fs = std::filesystem;

struct Broken {
  explicit Broken(Policy policy = Policy::kTrusted, ImagePolicy limits = {}) {
    REQUIRE(geteuid() == 0);
    limits.kernel_squashfs = policy;
    cache = std::make_unique<MountCache>(scratch.File("state"), DaemonMode::kSystem, limits);
    REQUIRE(cache->Init().ok());
    squashfs = scratch.File("good.sqfs");
    fs::copy_file(GoodSquashfs(), squashfs);
  }
  // Built once per process: every section of the cases below starts from it.
  static const std::string& GoodSquashfs() {
    static TrustedScratch dir;
    static const std::string path = [] {
      MakeRootfs(dir.File("rootfs"), "broken");
      MakeSquashfs(dir.File("rootfs"), dir.File("good.sqfs"));
      return dir.File("good.sqfs");
    }();
    return path;
  }
  std::string Bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  // Acquires `path` expecting failure; checks the error and that nothing leaked.
  std::vector<std::string> Entries(const std::string& dir) {
    std::vector<std::string> names;
    if (!fs::exists(dir)) return names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  // Acquires `path` expecting failure; checks the error and that nothing leaked.
  std::string ExpectFailure(const std::string& path, uid_t uid = 0) {
    const auto loops_before = LoopDevicesBacking({scratch.path()});
    const auto mounts_before = MountsUnder(cache->mounts_dir());
    const auto dirs_before = Entries(cache->mounts_dir());
    const auto images_before = Entries(cache->images_dir());
    auto fd = OpenFile(path, O_RDONLY);
    REQUIRE(fd.ok());
    auto lease = cache->Acquire(std::move(fd).value(), path, uid);
    REQUIRE_FALSE(lease.ok());
    std::string message(lease.status().message());
    INFO(message);
    CHECK(message.rfind("mounting image " + path + ": ", 0) == 0);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(LoopDevicesBacking({scratch.path()}) == loops_before);
    CHECK(MountsUnder(cache->mounts_dir()) == mounts_before);
    CHECK(Entries(cache->mounts_dir()) == dirs_before);
    for (const std::string& name : Entries(cache->images_dir())) {
      CHECK(name.rfind(".tmp-", 0) != 0);
    }
    CHECK(Entries(cache->images_dir()) == images_before);  // no junk copies either
    return message;
  }

  TrustedScratch scratch;
  std::unique_ptr<MountCache> cache;
  std::string squashfs;
};

TEST_CASE("CVE-2023-30549 hostile images give clear errors and leak nothing", "[image][root]") {
  for (Policy policy : {Policy::kTrusted, Policy::kAlways}) {
    // kTrusted: root-owned files here are mounted in place; chowned ones copied.
    for (bool user_owned : {false, true}) {
      Broken b(policy);
      auto own = [&](const std::string& p) {
        if (user_owned) REQUIRE(chown(p.c_str(), 4242, 4242) == 0);
        return p;
      };
      DYNAMIC_SECTION("policy " << static_cast<int>(policy) << " user-owned " << user_owned) {
        SECTION("not a SIF") {
          std::string junk(64 << 10, 'j');
          b.Write(b.scratch.File("junk.sif"), junk);
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("junk.sif"))),
                     Catch::Contains("not a SIF image"));
        }
        SECTION("empty file") {
          b.Write(b.scratch.File("empty.sif"), "");
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("empty.sif"))),
                     Catch::Contains("not a SIF image"));
        }
        SECTION("no primary partition") {
          MakeSif(b.squashfs, b.scratch.File("data.sif"), {.fs_type = 1, .part_type = 3});
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("data.sif"))),
                     Catch::Contains("has no primary system partition"));
        }
        SECTION("partition not squashfs") {
          MakeSif(b.squashfs, b.scratch.File("ext3.sif"), {.fs_type = 2, .part_type = 2});
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("ext3.sif"))),
                     Catch::Contains("primary partition is Ext3, not squashfs"));
        }
        SECTION("squashfs magic wrong at the partition offset") {
          std::string bytes = b.Bytes(b.squashfs);
          bytes.replace(0, 4, "sqsh");
          b.Write(b.scratch.File("magic.sqfs"), bytes);
          MakeSif(b.scratch.File("magic.sqfs"), b.scratch.File("magic.sif"));
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("magic.sif"))),
                     Catch::Contains("magic is \"sqsh\", want \"hsqs\""));
        }
        SECTION("truncated image file") {
          MakeSif(b.squashfs, b.scratch.File("cut.sif"));
          fs::resize_file(b.scratch.File("cut.sif"), fs::file_size(b.scratch.File("cut.sif")) / 2);
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("cut.sif"))),
                     Catch::Contains("beyond the end of the file"));
        }
        SECTION("squashfs truncated inside its partition") {
          std::string bytes = b.Bytes(b.squashfs);
          b.Write(b.scratch.File("half.sqfs"), bytes.substr(0, bytes.size() / 2));
          MakeSif(b.scratch.File("half.sqfs"), b.scratch.File("half.sif"));
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("half.sif"))),
                     Catch::Contains("squashfs is truncated"));
        }
        SECTION("valid magic, garbage tables: the kernel refuses it") {
          std::string bytes = b.Bytes(b.squashfs);
          std::mt19937 rng(7);
          for (size_t i = 48; i < 96; ++i) bytes[i] = static_cast<char>(rng());
          b.Write(b.scratch.File("garbage.sqfs"), bytes);
          MakeSif(b.scratch.File("garbage.sqfs"), b.scratch.File("garbage.sif"));
          CHECK_THAT(b.ExpectFailure(own(b.scratch.File("garbage.sif"))),
                     Catch::Contains("squashfs mount"));
        }
        SECTION("not a regular file") {
          CHECK_THAT(b.ExpectFailure(b.scratch.path()), Catch::Contains("not a regular file"));
        }
      }
    }
  }
}

TEST_CASE("B3.11 per-uid limits: images and loop devices", "[image][root]") {
  SECTION("images per user") {
    Broken b(Policy::kTrusted, ImagePolicy{.max_images_per_uid = 2});
    std::vector<std::string> images;
    for (const char* flavour : {"l1", "l2", "l3"}) {
      images.push_back(b.scratch.File(std::string(flavour) + ".sif"));
      MakeImage(b.scratch.path(), images.back(), flavour);
    }
    auto acquire = [&](const std::string& p, uid_t uid) {
      return b.cache->Acquire(*OpenFile(p, O_RDONLY), p, uid);
    };
    auto l1 = acquire(images[0], 1001), l2 = acquire(images[1], 1001);
    REQUIRE(l1.ok());
    REQUIRE(l2.ok());
    CHECK(b.ExpectFailure(images[2], 1001) ==
          "mounting image " + images[2] +
              ": user 1001 already has 2 images mounted (limit max_images_per_user in "
              "berth.conf)");
    CHECK(acquire(images[0], 1001).ok());  // one it already holds is fine
    CHECK(acquire(images[2], 1002).ok());  // other users are not affected
    CHECK(acquire(images[2], 0).ok());     // nor root
    l1->reset();
    CHECK(acquire(images[2], 1001).ok());  // released: room again
  }
  SECTION("a daemon hold keeps an image mounted without charging the user") {
    Broken b(Policy::kTrusted, ImagePolicy{.max_images_per_uid = 1});
    const std::string a = b.scratch.File("a.sif"), c = b.scratch.File("c.sif");
    MakeImage(b.scratch.path(), a, "ha");
    MakeImage(b.scratch.path(), c, "hc");
    auto la = b.cache->Acquire(*OpenFile(a, O_RDONLY), a, 1001);
    REQUIRE(la.ok());
    std::shared_ptr<MountLease> warm = b.cache->HoldForDaemon(**la);
    const std::string root = (*la)->root();
    la->reset();
    CHECK(MountsUnder(b.cache->mounts_dir()).size() == 1);  // still mounted
    auto lc = b.cache->Acquire(*OpenFile(c, O_RDONLY), c, 1001);
    CHECK(lc.ok());  // the held image does not count for user 1001
    auto again = b.cache->Acquire(*OpenFile(a, O_RDONLY), a, 0);
    REQUIRE(again.ok());
    CHECK((*again)->root() == root);  // warm: the same mount
  }
  SECTION("loop devices per user") {
    Broken b(Policy::kTrusted, ImagePolicy{.max_loop_devices_per_uid = 1});
    const std::string a = b.scratch.File("a.sif"), c = b.scratch.File("c.sif");
    MakeImage(b.scratch.path(), a, "la");
    MakeImage(b.scratch.path(), c, "lc");
    auto la = b.cache->Acquire(*OpenFile(a, O_RDONLY), a, 1001);
    REQUIRE(la.ok());
    CHECK_THAT(b.ExpectFailure(c, 1001),
               Catch::EndsWith("user 1001 already holds 1 loop devices (limit "
                               "max_loop_devices_per_user = 1 in berth.conf)"));
    // Sharing an existing mount costs no loop device.
    CHECK(b.cache->Acquire(*OpenFile(a, O_RDONLY), a, 1001).ok());
  }
  SECTION("a loop device pinned after its mount ended counts until the kernel detaches it") {
    Broken b(Policy::kTrusted, ImagePolicy{.max_loop_devices_per_uid = 1});
    const std::string a = b.scratch.File("a.sif"), c = b.scratch.File("c.sif");
    MakeImage(b.scratch.path(), a, "pa");
    MakeImage(b.scratch.path(), c, "pc");
    auto la = b.cache->Acquire(*OpenFile(a, O_RDONLY), a, 1001);
    REQUIRE(la.ok());
    // What a descriptor on /proc/PID/root does: it holds the mount, and so
    // the superblock and the loop device, after the daemon's unmount.
    auto pin = OpenFile((*la)->root(), O_RDONLY | O_DIRECTORY);
    REQUIRE(pin.ok());
    la->reset();
    CHECK_THAT(b.ExpectFailure(c, 1001),
               Catch::EndsWith("user 1001 already holds 1 loop devices, 1 of them kept after "
                               "their mount ended (limit max_loop_devices_per_user = 1 in "
                               "berth.conf)"));
    CHECK(b.cache->Acquire(*OpenFile(c, O_RDONLY), c, 1002).ok());  // others are not affected
    pin->Reset();
    CHECK(b.cache->Acquire(*OpenFile(c, O_RDONLY), c, 1001).ok());
  }
}

TEST_CASE("mounts left by a crashed daemon are detached at start", "[image][root]") {
  TrustedScratch scratch;
  const std::string state = scratch.File("state");
  const std::string sif = scratch.File("img.sif");
  MakeImage(scratch.path(), sif, "crash");
  // A daemon that mounts and dies without cleaning up: the mounts stay in the
  // namespace (and keep their autoclear loop devices busy).
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    MountCache first(state, DaemonMode::kSystem, {});
    auto lease = first.Acquire(*OpenFile(sif, O_RDONLY), sif, 0);
    if (!lease.ok()) _exit(1);
    const std::string root = (*lease)->root();
    // Stack a bind and a tmpfs too, as a messier crash might leave.
    if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(2);
    fs::create_directory(state + "/mounts/leftover");
    if (mount("tmpfs", (state + "/mounts/leftover").c_str(), "tmpfs", 0, nullptr) != 0) _exit(3);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(MountsUnder(state + "/mounts").size() == 3);
  REQUIRE(LoopDevicesBacking({scratch.path()}).size() == 1);

  MountCache second(state, DaemonMode::kSystem, {});
  REQUIRE(second.Init().ok());
  CHECK(MountsUnder(state + "/mounts").empty());
  CHECK(fs::is_empty(state + "/mounts"));
  CHECK(LoopDevicesBacking({scratch.path()}).empty());
}

TEST_CASE("state directories a user could control are refused", "[image][root]") {
  TrustedScratch scratch;
  const std::string state = scratch.File("state");
  fs::create_directory(state);
  chmod(state.c_str(), 0777);
  MountCache cache(state, DaemonMode::kSystem, {});
  auto status = cache.Init();
  REQUIRE_FALSE(status.ok());
  CHECK_THAT(std::string(status.message()), Catch::Contains("not writable by group or other"));
  chmod(state.c_str(), 0700);
  REQUIRE(symlink("/", (state + "/images").c_str()) == 0);
  CHECK_FALSE(MountCache(state, DaemonMode::kSystem, {}).Init().ok());
}

}  // namespace
}  // namespace berth::daemon::image
