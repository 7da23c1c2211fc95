// slurm/: berth's SPANK plugin (berth_spank.so), so that Slurm users run
// their tasks in a container with Pyxis's option names (`srun
// --container-image=img.sif ...`). The plugin only asks: each task is
// re-executed as `berth exec [flags] IMAGE <task argv>`, and berthd does
// every privileged step (docs/mpi.md says why this design).
//
// This file is the plugin's pure half: the options, their environment forms
// (BERTH_CONTAINER_*, then PYXIS_CONTAINER_*), and the berth command line
// they make. It is loaded into slurmstepd and srun, so it depends on the C++
// standard library only (no abseil): an error is its one-line text.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace berth::slurm {

// Each option, by its Pyxis name without "container-".
enum class Option {
  kImage,
  kMounts,
  kWorkdir,
  kName,
  kWritable,
  kEnv,
  kMountHome,
  kRemapRoot,
  kEntrypoint
};

struct OptionSpec {
  Option id;
  const char* name;      // the long option, e.g. "container-image"
  const char* env_name;  // the suffix of its BERTH_/PYXIS_ forms, e.g. "CONTAINER_IMAGE"
  const char* arginfo;   // nullptr for a flag
  const char* usage;
};
std::span<const OptionSpec> OptionSpecs();

struct ContainerOptions {
  std::string image, mounts, workdir, name, env;
  bool writable = false, mount_home = false, remap_root = false, entrypoint = false;
  std::vector<Option> given;  // set from a command line (their env forms then do not apply)
};

// Looks a variable up in the job's environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Sets one option from a command line (from_env false) or an environment
// form (a flag's value must then be 1|0|true|false|yes|no). Returns the error.
std::optional<std::string> SetOption(ContainerOptions& options, Option id, const char* value,
                                     bool from_env);

// Applies the environment forms of the options no command line gave.
std::optional<std::string> ApplyEnvironment(ContainerOptions& options, const EnvLookup& env);

// The command line that runs TASK_ARGV in the container, or the error.
struct Invocation {
  std::vector<std::string> argv;
  std::optional<std::string> error;
};
Invocation BerthCommand(const ContainerOptions& options, const std::string& berth,
                        const std::vector<std::string>& task_argv, const EnvLookup& env);

}  // namespace berth::slurm
