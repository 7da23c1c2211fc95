#include "slurm/container_options.h"

#include <algorithm>
#include <array>
#include <sstream>

namespace berth::slurm {
namespace {

constexpr std::array<OptionSpec, 9> kSpecs = {{
    {Option::kImage, "container-image", "CONTAINER_IMAGE", "image",
     "run each task in this image: a SIF path, docker://REF or oras://REF (berth)"},
    {Option::kMounts, "container-mounts", "CONTAINER_MOUNTS", "src[:dst[:ro|rw]][,...]",
     "bind host paths into the container (berth)"},
    {Option::kWorkdir, "container-workdir", "CONTAINER_WORKDIR", "dir",
     "working directory inside the container (berth)"},
    {Option::kName, "container-name", "CONTAINER_NAME", "name",
     "not supported by berth: refused (berth)"},
    {Option::kWritable, "container-writable", "CONTAINER_WRITABLE", nullptr,
     "a writable tmpfs over the image (berth)"},
    {Option::kEnv, "container-env", "CONTAINER_ENV", "name[,name...]",
     "these variables keep the job's values inside the container (berth)"},
    {Option::kMountHome, "container-mount-home", "CONTAINER_MOUNT_HOME", nullptr,
     "bind the user's home directory (not bound by default, as Pyxis) (berth)"},
    {Option::kRemapRoot, "container-remap-root", "CONTAINER_REMAP_ROOT", nullptr,
     "be root inside the container, in a user namespace (berth)"},
    {Option::kEntrypoint, "container-entrypoint", "CONTAINER_ENTRYPOINT", nullptr,
     "run the image's runscript/entrypoint with the task's command as its arguments (berth)"},
}};

const OptionSpec& SpecOf(Option id) {
  return kSpecs[static_cast<size_t>(id)];
}

std::optional<bool> ParseBool(const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no" || v.empty()) return false;
  return std::nullopt;
}

std::string* TextField(ContainerOptions& o, Option id) {
  switch (id) {
    case Option::kImage:
      return &o.image;
    case Option::kMounts:
      return &o.mounts;
    case Option::kWorkdir:
      return &o.workdir;
    case Option::kName:
      return &o.name;
    case Option::kEnv:
      return &o.env;
    default:
      return nullptr;
  }
}

bool* FlagField(ContainerOptions& o, Option id) {
  switch (id) {
    case Option::kWritable:
      return &o.writable;
    case Option::kMountHome:
      return &o.mount_home;
    case Option::kRemapRoot:
      return &o.remap_root;
    case Option::kEntrypoint:
      return &o.entrypoint;
    default:
      return nullptr;
  }
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// --env=NAME=VALUE for each name of --container-env the job's environment has.
void AddPassedEnv(const ContainerOptions& o, const EnvLookup& env, std::vector<std::string>& argv) {
  for (const std::string& name : SplitCommas(o.env)) {
    if (std::optional<std::string> value = env(name))
      argv.push_back("--env=" + name + "=" + *value);
  }
}

}  // namespace

std::span<const OptionSpec> OptionSpecs() {
  return kSpecs;
}

std::optional<std::string> SetOption(ContainerOptions& options, Option id, const char* value,
                                     bool from_env) {
  const std::string v = value == nullptr ? "" : value;
  if (std::string* text = TextField(options, id)) {
    if (v.empty()) return "--" + std::string(SpecOf(id).name) + " needs a value";
    *text = v;
  } else if (bool* flag = FlagField(options, id)) {
    std::optional<bool> on = from_env ? ParseBool(v) : std::optional<bool>(true);
    if (!on) {
      return std::string(SpecOf(id).env_name) + "='" + v + "' is not a flag value (1 or 0)";
    }
    *flag = *on;
  }
  if (!from_env) options.given.push_back(id);
  return std::nullopt;
}

std::optional<std::string> ApplyEnvironment(ContainerOptions& options, const EnvLookup& env) {
  for (const OptionSpec& spec : kSpecs) {
    if (std::ranges::find(options.given, spec.id) != options.given.end()) continue;
    for (const char* prefix : {"BERTH_", "PYXIS_"}) {
      const std::string name = std::string(prefix) + spec.env_name;
      if (std::optional<std::string> value = env(name); value && !value->empty()) {
        if (auto error = SetOption(options, spec.id, value->c_str(), /*from_env=*/true)) {
          return name + ": " + *error;
        }
        break;
      }
    }
  }
  return std::nullopt;
}

Invocation BerthCommand(const ContainerOptions& o, const std::string& berth,
                        const std::vector<std::string>& task_argv, const EnvLookup& env) {
  if (!o.name.empty()) {
    return {{},
            "--container-name is not supported by berth (it keeps no named container "
            "between steps; the tasks of one step share one container anyway): drop it"};
  }
  if (o.image.starts_with("-")) {
    return {{}, "--container-image='" + o.image + "' is not an image (it starts with '-')"};
  }
  std::vector<std::string> argv = {berth, o.entrypoint ? "run" : "exec"};
  if (!o.mounts.empty()) argv.push_back("--bind=" + o.mounts);
  if (!o.workdir.empty()) argv.push_back("--pwd=" + o.workdir);
  if (o.writable) argv.push_back("--writable-tmpfs");
  if (!o.mount_home) argv.push_back("--no-home");
  if (o.remap_root) argv.push_back("--fakeroot");
  AddPassedEnv(o, env, argv);
  argv.push_back(o.image);
  argv.insert(argv.end(), task_argv.begin(), task_argv.end());
  return {argv, std::nullopt};
}

}  // namespace berth::slurm
