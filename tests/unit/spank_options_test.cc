// slurm/container_options: Pyxis's options, their environment forms, and
// the berth command line they make for a task.
#include <catch2/catch.hpp>
#include <map>

#include "slurm/container_options.h"

namespace berth::slurm {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

std::vector<std::string> Command(const ContainerOptions& o, const EnvLookup& env = Env({})) {
  Invocation call = BerthCommand(o, "/usr/bin/berth", {"/bin/hostname", "-f"}, env);
  REQUIRE_FALSE(call.error);
  return call.argv;
}

TEST_CASE("spank options: an image alone is berth exec --no-home IMAGE ARGV") {
  ContainerOptions o;
  REQUIRE_FALSE(SetOption(o, Option::kImage, "/s/a.sif", false));
  CHECK(Command(o) == std::vector<std::string>{"/usr/bin/berth", "exec", "--no-home", "/s/a.sif",
                                               "/bin/hostname", "-f"});
}

TEST_CASE("spank options: every option maps to its berth flag") {
  ContainerOptions o;
  REQUIRE_FALSE(SetOption(o, Option::kImage, "docker://alpine", false));
  REQUIRE_FALSE(SetOption(o, Option::kMounts, "/a:/b:ro,/c", false));
  REQUIRE_FALSE(SetOption(o, Option::kWorkdir, "/b", false));
  for (Option flag :
       {Option::kWritable, Option::kMountHome, Option::kRemapRoot, Option::kEntrypoint}) {
    REQUIRE_FALSE(SetOption(o, flag, nullptr, false));
  }
  REQUIRE_FALSE(SetOption(o, Option::kEnv, "A,MISSING,B", false));
  CHECK(Command(o, Env({{"A", "1"}, {"B", "x=y"}})) ==
        std::vector<std::string>{"/usr/bin/berth", "run", "--bind=/a:/b:ro,/c", "--pwd=/b",
                                 "--writable-tmpfs", "--fakeroot", "--env=A=1", "--env=B=x=y",
                                 "docker://alpine", "/bin/hostname", "-f"});
}

TEST_CASE("spank options: environment forms, BERTH_ before PYXIS_, the command line first") {
  ContainerOptions o;
  REQUIRE_FALSE(SetOption(o, Option::kWorkdir, "/cli", false));
  REQUIRE_FALSE(ApplyEnvironment(o, Env({{"PYXIS_CONTAINER_IMAGE", "/p.sif"},
                                         {"BERTH_CONTAINER_IMAGE", "/b.sif"},
                                         {"PYXIS_CONTAINER_WORKDIR", "/env"},
                                         {"PYXIS_CONTAINER_MOUNT_HOME", "yes"},
                                         {"PYXIS_CONTAINER_WRITABLE", "0"}})));
  CHECK(o.image == "/b.sif");
  CHECK(o.workdir == "/cli");
  CHECK(o.mount_home);
  CHECK_FALSE(o.writable);
}

TEST_CASE("spank options: refusals are one line naming the option") {
  ContainerOptions o;
  auto bad_flag = ApplyEnvironment(o, Env({{"PYXIS_CONTAINER_REMAP_ROOT", "maybe"}}));
  REQUIRE(bad_flag);
  CHECK(*bad_flag ==
        "PYXIS_CONTAINER_REMAP_ROOT: CONTAINER_REMAP_ROOT='maybe' is not a flag value (1 or 0)");
  CHECK(SetOption(o, Option::kImage, "", false).value_or("") == "--container-image needs a value");

  ContainerOptions named;
  named.image = "/a.sif";
  named.name = "keep";
  auto refused = BerthCommand(named, "berth", {"true"}, Env({}));
  REQUIRE(refused.error);
  CHECK(refused.error->starts_with("--container-name is not supported by berth"));

  ContainerOptions dash;
  dash.image = "--help";
  CHECK(BerthCommand(dash, "berth", {"true"}, Env({})).error.value_or("").find("not an image") !=
        std::string::npos);
}

}  // namespace
}  // namespace berth::slurm
