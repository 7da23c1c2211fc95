// MountCache::AcquireDirectory (sandbox directories), system mode, as root:
// only a directory opened for reading is bound, and the bind is exactly that
// directory, ro, nosuid, nodev. The end-to-end checks are in
// tests/integration/targets_test.sh.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/file_io.h"
#include "daemon/image/mount_cache.h"
#include "daemon/image/scoped_mount.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using namespace berth::testing;

struct SandboxFixture {
  SandboxFixture() {
    REQUIRE(geteuid() == 0);
    sandbox = scratch.File("sandbox");
    std::filesystem::create_directories(sandbox + "/etc");
    std::ofstream(sandbox + "/etc/marker") << "in-sandbox\n";
    cache = std::make_unique<MountCache>(scratch.File("state"), DaemonMode::kSystem, ImagePolicy{});
    REQUIRE(cache->Init().ok());
  }
  UniqueFd Open(int flags) {
    auto fd = OpenFile(sandbox, flags);
    REQUIRE(fd.ok());
    return std::move(fd).value();
  }
  TrustedScratch scratch;
  std::string sandbox;
  std::unique_ptr<MountCache> cache;
};

TEST_CASE("a sandbox handed as an O_PATH descriptor is refused and nothing is mounted",
          "[image][root]") {
  SandboxFixture f;
  auto lease = f.cache->AcquireDirectory(f.Open(O_PATH | O_DIRECTORY), f.sandbox, 0);
  REQUIRE_FALSE(lease.ok());
  CHECK(absl::IsPermissionDenied(lease.status()));
  CHECK_THAT(std::string(lease.status().message()),
             Catch::Contains("mounting sandbox " + f.sandbox) && Catch::Contains("O_PATH"));
  CHECK_FALSE(HasMountsUnder(f.cache->mounts_dir()));
}

TEST_CASE("a sandbox opened for reading is bound ro, and unbound with its last lease",
          "[image][root]") {
  SandboxFixture f;
  auto lease = f.cache->AcquireDirectory(f.Open(O_RDONLY | O_DIRECTORY), f.sandbox, 0);
  REQUIRE(lease.ok());
  CHECK((*lease)->backend() == MountBackend::kDirectory);
  std::ifstream marker((*lease)->root() + "/etc/marker");
  std::string line;
  std::getline(marker, line);
  CHECK(line == "in-sandbox");
  const int rc = ::access(((*lease)->root() + "/etc").c_str(), W_OK);
  const int err = errno;
  CHECK(rc != 0);
  CHECK(err == EROFS);
  lease->reset();
  CHECK_FALSE(HasMountsUnder(f.cache->mounts_dir()));
}

TEST_CASE("a file is not a sandbox", "[image][root]") {
  SandboxFixture f;
  auto fd = OpenFile(f.sandbox + "/etc/marker", O_RDONLY);
  REQUIRE(fd.ok());
  auto lease = f.cache->AcquireDirectory(std::move(fd).value(), f.sandbox, 0);
  REQUIRE_FALSE(lease.ok());
  CHECK_THAT(std::string(lease.status().message()), Catch::Contains("not a directory"));
}

}  // namespace
}  // namespace berth::daemon::image
