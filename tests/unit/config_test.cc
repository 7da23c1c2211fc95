// berth.conf parsing: defaults, every section, and one clear line per mistake.
#include "daemon/policy/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/unit/test_util.h"

namespace berth::daemon::policy {
namespace {

std::string ErrorOf(const std::string& text) {
  auto c = ParseConfig(text, "berth.conf");
  REQUIRE_FALSE(c.ok());
  std::string msg(c.status().message());
  CHECK(msg.find('\n') == std::string::npos);
  return msg;
}

TEST_CASE("an empty file means the documented defaults", "[config]") {
  auto c = ParseConfig("", "berth.conf");
  REQUIRE(c.ok());
  CHECK(c->user_bind_control);
  CHECK(c->kernel_squashfs == KernelSquashfs::kTrusted);
  CHECK(c->mount_dev == DevMode::kFull);
  CHECK(c->default_binds == std::vector<std::string>{"/etc/localtime", "/etc/hosts"});
  CHECK(c->writable_tmpfs_default_mib == 64);
}

TEST_CASE("every section is read", "[config]") {
  auto c = ParseConfig(R"(
[binds]
user_bind_control = false
default_binds = ["/etc/hosts"]
mount_dev = "minimal"
[images]
allowed_dirs = ["/scratch", "/opt/images"]
allowed_owners = [0, 1001]
kernel_squashfs = "never"
allow_container_dir = false
[namespaces]
allow_user = false
[limits]
max_containers_per_user = 8
writable_tmpfs_max_mib = 1024
)",
                       "berth.conf");
  REQUIRE(c.ok());
  CHECK_FALSE(c->user_bind_control);
  CHECK(c->mount_dev == DevMode::kMinimal);
  CHECK(c->allowed_image_dirs.size() == 2);
  CHECK(c->allowed_image_owners == std::vector<uint32_t>{0, 1001});
  CHECK(c->kernel_squashfs == KernelSquashfs::kNever);
  CHECK_FALSE(c->allow_container_dir);
  CHECK(c->allow_container_squashfs);  // the default
  CHECK_FALSE(c->allow_user_ns);
  CHECK(c->max_containers_per_user == 8);
  CHECK(c->writable_tmpfs_max_mib == 1024);
}

TEST_CASE("connection budgets: defaults follow the container limit, each can be set", "[config]") {
  auto d = ParseConfig("", "berth.conf");
  REQUIRE(d.ok());
  CHECK(d->max_sessions_per_user == 272);
  CHECK(d->max_connections_per_user == 512);
  CHECK(d->max_pending_connections_per_user == 16);
  CHECK(d->max_handed_fds_per_user == 1024);
  auto derived = ParseConfig("[limits]\nmax_containers_per_user = 1000\n", "berth.conf");
  REQUIRE(derived.ok());
  CHECK(derived->max_sessions_per_user == 1016);
  CHECK(derived->max_connections_per_user == 1080);
  auto set = ParseConfig(R"(
[limits]
max_sessions_per_user = 20
max_connections_per_user = 30
max_pending_connections_per_user = 2
max_handed_fds_per_user = 100
)",
                         "berth.conf");
  REQUIRE(set.ok());
  CHECK(set->max_sessions_per_user == 20);
  CHECK(set->max_connections_per_user == 30);
  CHECK(set->max_pending_connections_per_user == 2);
  CHECK(set->max_handed_fds_per_user == 100);
  CHECK(ErrorOf("[limits]\nmax_sessions_per_user = 600\nmax_connections_per_user = 500\n")
            .find("max_connections_per_user (500) is lower than max_sessions_per_user (600)") !=
        std::string::npos);
  CHECK(ErrorOf("[limits]\nmax_handed_fds_per_user = 3\n").find("out of range (64..") !=
        std::string::npos);
}

TEST_CASE("the stage cache is off unless [build] build_cache turns it on", "[config]") {
  auto off = ParseConfig("", "berth.conf");
  REQUIRE(off.ok());
  CHECK_FALSE(off->build.build_cache);
  auto on = ParseConfig("[build]\nbuild_cache = true\n", "berth.conf");
  REQUIRE(on.ok());
  CHECK(on->build.build_cache);
  CHECK(ErrorOf("[build]\nbuild_cache = \"on\"\n").find("berth.conf:2") == 0);
}

TEST_CASE("mistakes name the line and the fix", "[config][hostile]") {
  CHECK(ErrorOf("[binds]\nuser_bind_contrl = true\n") ==
        "berth.conf:2: unknown setting 'binds.user_bind_contrl' (see docs/config.md)");
  CHECK(ErrorOf("[images]\nkernel_squashfs = \"maybe\"\n").find("always, trusted, never") !=
        std::string::npos);
  CHECK(ErrorOf("[limits]\nmax_containers_per_user = 0\n").find("out of range") !=
        std::string::npos);
  CHECK(ErrorOf("[images]\nallowed_dirs = [\"relative\"]\n").find("absolute") != std::string::npos);
  CHECK(ErrorOf("[binds\n").find("berth.conf:1") == 0);
  CHECK(ErrorOf("bogus = 1\n").find("unknown setting 'bogus'") != std::string::npos);
}

TEST_CASE("allowed directories match whole path components", "[config][policy]") {
  CHECK(PathWithinDir("/scratch/a.sif", "/scratch"));
  CHECK(PathWithinDir("/scratch/x/a.sif", "/scratch/"));
  CHECK_FALSE(PathWithinDir("/scratch2/a.sif", "/scratch"));  // CVE-2026-48785
  CHECK_FALSE(PathWithinDir("/scratc", "/scratch"));
  CHECK(PathWithinDir("/anything", "/"));
}

TEST_CASE("config files must be root-owned and not writable by others", "[config]") {
  testing::ScratchDir dir;
  std::string path = testing::WriteFile(dir.File("berth.conf"), "[binds]\n");
  ::chmod(path.c_str(), 0666);
  auto c = LoadConfig(path.substr(0, path.rfind('/')), /*require_root_owned=*/true);
  REQUIRE_FALSE(c.ok());
  CHECK(std::string(c.status().message()).find("chmod go-w") != std::string::npos);
  ::chmod(path.c_str(), 0644);
  CHECK(LoadConfig(path.substr(0, path.rfind('/')), ::getuid() == 0).ok());
  CHECK(LoadConfig(dir.File("missing-dir"), true).ok());  // absent file: defaults
}

}  // namespace
}  // namespace berth::daemon::policy
