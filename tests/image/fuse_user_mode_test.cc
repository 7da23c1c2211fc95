// User mode: the in-process FUSE server mounts an image for the unprivileged
// user berthtest inside the daemon's own user+mount namespace. Runs as root
// (to create the user and make /dev/fuse usable), then drives
// image_user_probe as berthtest.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/image/image_test_util.h"

namespace berth::testing {
namespace {

// This machine ships /dev/fuse as 0600 (distributions ship 0666): FUSE as a
// plain user needs it opened up. It is left 0666, as distributions have it:
// restoring 0600 would race with another test of this suite run in parallel.
void OpenFuseDeviceToUsers() {
  REQUIRE(chmod("/dev/fuse", 0666) == 0);
}

std::string RunProbe(const std::string& args, int& status) {
  const std::string out = "/tmp/berth-image-probe-" + std::to_string(getpid()) + ".out";
  status = Shell("runuser -u berthtest -- " + std::string(IMAGE_USER_PROBE) + " " + args + " >" +
                 out + " 2>&1");
  std::ifstream in(out);
  std::string text(std::istreambuf_iterator<char>(in), {});
  std::filesystem::remove(out);
  return text;
}

TEST_CASE("user mode: in-process FUSE mount works for an unprivileged user", "[image][root]") {
  REQUIRE(geteuid() == 0);
  TestUser user = EnsureTestUser();
  OpenFuseDeviceToUsers();
  TrustedScratch scratch;
  const std::string home = scratch.File("user");
  std::filesystem::create_directory(home);
  const std::string sif = home + "/img.sif";
  auto manifest = MakeImage(scratch.path(), sif, "usermode");
  std::ofstream list(home + "/manifest");
  for (const auto& [rel, sha] : manifest) list << sha << " " << rel << "\n";
  list.close();
  REQUIRE(Shell("chown -R " + std::to_string(user.uid) + ":" + std::to_string(user.gid) + " '" +
                home + "'") == 0);

  int status = 0;
  std::string output = RunProbe(sif + " " + home + "/state " + home + "/manifest", status);
  INFO(output);
  CHECK(status == 0);
  CHECK_THAT(output, Catch::Contains("OK " + sif));
  // The mounts lived in the probe's private mount namespace only.
  CHECK(MountsUnder(home).empty());
}

TEST_CASE("user mode: an image the user cannot read is refused", "[image][root]") {
  TestUser user = EnsureTestUser();
  OpenFuseDeviceToUsers();
  TrustedScratch scratch;
  const std::string home = scratch.File("user");
  std::filesystem::create_directory(home);
  REQUIRE(chown(home.c_str(), user.uid, user.gid) == 0);
  const std::string sif = scratch.File("root-only.sif");
  MakeImage(scratch.path(), sif, "rootonly");
  chmod(sif.c_str(), 0600);
  std::ofstream(home + "/manifest").close();
  int status = 0;
  std::string output = RunProbe(sif + " " + home + "/state " + home + "/manifest", status);
  INFO(output);
  CHECK(status != 0);
  CHECK_THAT(output, Catch::Contains("Permission denied"));
}

}  // namespace
}  // namespace berth::testing
