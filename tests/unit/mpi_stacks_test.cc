// daemon/policy/mpi_stacks: what a site stack file may say, entry by entry,
// and mpi/image_view: an image's library directories read below its root.
#include "daemon/policy/mpi_stacks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/file_io.h"
#include "mpi/image_view.h"

namespace {

using berth::daemon::policy::ParseMpiStack;
using berth::mpi::IsValidStackName;

}  // namespace

TEST_CASE("MPI stack files: a good one, every field", "[mpi]") {
  auto s = ParseMpiStack(R"(libraries = ["libmpich.so.12", "libfabric.so.*"]
dependencies = ["libucp.so.0", "libm.so.6"]
binds = ["/usr/lib/x86_64-linux-gnu/ucx", "/etc/libibverbs.d"]
devices = ["/dev/infiniband/*", "/dev/cxi0"]
env_pass = ["FOO_*", "BAR"]
abi = "full"
[env]
UCX_TLS = "self,sm"
)",
                         "mpich", "mpich.toml");
  REQUIRE(s.ok());
  CHECK(s->name == "mpich");
  CHECK(s->libraries.size() == 2);
  CHECK(s->binds.size() == 2);
  CHECK(s->devices.size() == 2);
  CHECK(s->abi == berth::mpi::AbiRule::kFull);
  REQUIRE(s->env_set.size() == 1);
  CHECK(s->env_set[0].second == "self,sm");
}

TEST_CASE("MPI stack files: hostile entries are one-line errors naming the rule", "[mpi]") {
  struct Case {
    const char* body;
    const char* want;
  } cases[] = {
      {R"(libraries = ["/etc/shadow"])", "is not a soname"},
      {R"(libraries = ["../lib/libx.so.1"])", "is not a soname"},
      {R"(libraries = ["libx.so.1*x"])", "is not a soname"},
      {R"(libraries = ["lib*.so"])", "is not a soname"},
      {R"(libraries = ["libx.so.1"]
dependencies = ["..so"])",
       "is not a soname"},
      {R"(libraries = ["libx.so.1"]
binds = ["/usr/lib/../../root"])",
       "must be an absolute, normal path"},
      {R"(libraries = ["libx.so.1"]
binds = ["relative/dir"])",
       "must be an absolute, normal path"},
      {R"(libraries = ["libx.so.1"]
binds = ["/"])",
       "must be an absolute, normal path"},
      {R"(libraries = ["libx.so.1"]
binds = ["/etc"])",
       "not a whole top directory"},
      {R"(libraries = ["libx.so.1"]
binds = ["/proc/1/root"])",
       "outside /proc, /sys and /dev"},
      {R"(libraries = ["libx.so.1"]
binds = ["/opt/x/*"])",
       "must be an absolute, normal path"},
      {R"(libraries = ["libx.so.1"]
devices = ["/dev/../etc/*"])",
       "must be a normal path below /dev/"},
      {R"(libraries = ["libx.so.1"]
devices = ["/dev/*/x"])",
       "must be a normal path below /dev/"},
      {R"(libraries = ["libx.so.1"]
devices = ["/etc/shadow"])",
       "must be a normal path below /dev/"},
      {R"(libraries = ["libx.so.1"]
env_pass = ["A=B"])",
       "must be a variable name"},
      {R"(libraries = ["libx.so.1"]
abi = "loose")",
       "unknown ABI rule 'loose'"},
      {R"(libraries = ["libx.so.1"]
librarys = ["liby.so.1"])",
       "librarys"},
      {R"(libraries = [])", "libraries is empty"},
      {R"(libraries = ["libx.so.1"]
[env]
"A B" = "x")",
       "must be a variable name"},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    auto s = ParseMpiStack(c.body, "t", "t.toml");
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(std::string(s.status().message()), Catch::Contains(c.want));
    CHECK(std::string(s.status().message()).find('\n') == std::string::npos);
  }
}

TEST_CASE("MPI stack names", "[mpi]") {
  CHECK(IsValidStackName("mpich"));
  CHECK(IsValidStackName("ompi-4_1"));
  CHECK_FALSE(IsValidStackName(""));
  CHECK_FALSE(IsValidStackName("../x"));
  CHECK_FALSE(IsValidStackName("a.b"));
  CHECK_FALSE(IsValidStackName(std::string(65, 'a')));
}

TEST_CASE("image view: libraries below the image's root, links resolved inside it", "[mpi]") {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/berth-imgview-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  fs::path root = tmpl;
  fs::create_directories(root / "lib/x86_64-linux-gnu");
  fs::create_directories(root / "etc");
  fs::copy_file("/lib/x86_64-linux-gnu/libc.so.6", root / "lib/x86_64-linux-gnu/libc.so.6");
  std::ofstream(root / "lib/x86_64-linux-gnu/libmpich.so.12.1.0") << "x";
  fs::create_symlink("libmpich.so.12.1.0", root / "lib/x86_64-linux-gnu/libmpich.so.12");
  // An absolute link means the image's own /etc, never the host's.
  fs::create_symlink("/etc/shadow.so.1", root / "lib/x86_64-linux-gnu/libshadow.so.1");
  std::ofstream(root / "etc/shadow.so.1") << "image's";
  auto fd = berth::OpenFile(root.string(), O_PATH | O_DIRECTORY);
  REQUIRE(fd.ok());
  auto view = berth::mpi::ReadImageView(fd->get());
  REQUIRE(view.ok());
  CHECK(view->libc_dir == "/lib/x86_64-linux-gnu");
  CHECK(view->glibc.major == 2);
  REQUIRE(view->by_soname.count("libmpich.so.12") == 1);
  CHECK(view->by_soname.at("libmpich.so.12").path == "/lib/x86_64-linux-gnu/libmpich.so.12.1.0");
  CHECK(view->by_linker.at("libmpich.so").name.VersionString() == "12.1.0");
  REQUIRE(view->by_soname.count("libshadow.so.1") == 1);
  CHECK(view->by_soname.at("libshadow.so.1").path == "/etc/shadow.so.1");
  fs::remove_all(root);
}
