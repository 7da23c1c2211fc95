// Which image files the kernel may read in place (policy "trusted").
#include "daemon/image/image_trust.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/file_io.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using berth::testing::TrustedScratch;

TrustVerdict Judge(const std::string& path) {
  auto fd = OpenFile(path, O_RDONLY);
  REQUIRE(fd.ok());
  return JudgeImageFile(fd->get());
}

TEST_CASE("trust: root-owned, not group/other-writable, on a sound path", "[image][root]") {
  TrustedScratch scratch;
  const std::string file = scratch.File("img.sif");
  std::ofstream(file) << "x";
  chmod(file.c_str(), 0644);
  CHECK(Judge(file).trusted);

  chmod(file.c_str(), 0664);
  CHECK_THAT(Judge(file).reason, Catch::Contains("writable by group or other"));
  chmod(file.c_str(), 0644);

  REQUIRE(chown(file.c_str(), 1001, 1001) == 0);
  CHECK_THAT(Judge(file).reason, Catch::Contains("owned by uid 1001"));
  REQUIRE(chown(file.c_str(), 0, 0) == 0);

  chmod(scratch.path().c_str(), 0775);
  CHECK_THAT(Judge(file).reason, Catch::Contains("directory " + scratch.path()));
  chmod(scratch.path().c_str(), 0755);

  // /tmp is world-writable (sticky or not, users can swap entries there).
  char tmpl[] = "/tmp/berth-trust-XXXXXX";
  REQUIRE(mkstemp(tmpl) >= 0);
  CHECK_THAT(Judge(tmpl).reason, Catch::Contains("directory /tmp"));
  unlink(tmpl);
}

TEST_CASE("trust: a file renamed or unlinked after the open is not trusted", "[image][root]") {
  TrustedScratch scratch;
  const std::string file = scratch.File("img.sif");
  std::ofstream(file) << "x";
  auto fd = OpenFile(file, O_RDONLY);
  REQUIRE(fd.ok());
  std::ofstream(scratch.File("other")) << "y";
  std::filesystem::rename(scratch.File("other"), file);
  CHECK_THAT(JudgeImageFile(fd->get()).reason, Catch::Contains("no path"));  // "(deleted)"
}

}  // namespace
}  // namespace berth::daemon::image
