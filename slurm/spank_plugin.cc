// berth_spank.so: the SPANK entry points. In srun/sbatch (local and
// allocator contexts) it registers Pyxis's --container-* options and refuses
// a combination berth cannot run before the job is queued. In slurmstepd
// (remote context), once per step and node (user_init), it checks the step
// by running `true` in its container; then each task (task_init) is replaced
// by `berth exec [flags] IMAGE <task argv>`. A task whose check failed, or
// whose berth cannot run, ends with one line on stderr: it never runs bare.
//
// plugstack.conf arguments: berth=PATH (the client; default the one
// installed with the plugin, <prefix>/bin/berth beside its
// <prefix>/lib/berth/slurm/berth_spank.so), socket=PATH (berthd's socket,
// passed as BERTH_SOCKET; default the client's own).
#include <dlfcn.h>
#include <unistd.h>

// spank.h declares the entry points without C linkage of their own.
extern "C" {
#include <slurm/slurm.h>
#include <slurm/spank.h>
}

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "slurm/container_options.h"
#include "slurm/task_launch.h"

// Declared extern first: a const definition alone has internal linkage in C++.
extern "C" {
extern const char plugin_name[], plugin_type[];
extern const unsigned int plugin_version, spank_plugin_version;
SPANK_PLUGIN(berth, 1);
}

namespace berth::slurm {
namespace {

// <prefix>/bin/berth for this plugin's <prefix>/lib/berth/slurm/: the
// prefix is the package's, known only when it is installed.
std::string InstalledClient() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&InstalledClient), &info) == 0 || info.dli_fname == nullptr) {
    return "/usr/bin/berth";
  }
  std::filesystem::path prefix = std::filesystem::path(info.dli_fname).parent_path();
  for (int i = 0; i < 3; ++i) prefix = prefix.parent_path();
  return (prefix / "bin" / "berth").string();
}

struct PluginState {
  std::string berth = InstalledClient();
  std::string socket;
  ContainerOptions options;
  std::optional<std::string> error;  // the step's: reported by its tasks
  bool resolved = false;
};
PluginState& State() {
  static PluginState state;
  return state;
}

// Privileged: in slurmstepd this runs as root, before the step drops its
// ids; it only stores the user's string.
int OnOption(int val, const char* optarg, int remote) {
  auto error = SetOption(State().options, static_cast<Option>(val), optarg, /*from_env=*/false);
  if (!error) return 0;
  if (!remote) return (slurm_error("berth: %s", error->c_str()), -1);
  State().error = *error;
  return 0;
}

void ParseArguments(int ac, char** av) {
  for (int i = 0; i < ac; ++i) {
    std::string arg = av[i];
    if (arg.starts_with("berth=")) State().berth = arg.substr(6);
    if (arg.starts_with("socket=")) State().socket = arg.substr(7);
  }
}

int RegisterOptions(spank_t sp) {
  static std::vector<spank_option> table;
  for (const OptionSpec& spec : OptionSpecs()) {
    table.push_back({const_cast<char*>(spec.name), const_cast<char*>(spec.arginfo),
                     const_cast<char*>(spec.usage), spec.arginfo != nullptr ? 1 : 0,
                     static_cast<int>(spec.id), OnOption});
  }
  for (spank_option& opt : table) {
    if (spank_option_register(sp, &opt) != ESPANK_SUCCESS) return -1;
  }
  return 0;
}

// The job's environment (task_init: the task's, with Slurm's and the MPI
// plugin's variables), BERTH_SOCKET set from plugstack.conf.
std::vector<std::string> JobEnv(spank_t sp) {
  char** env = nullptr;
  std::vector<std::string> out;
  if (spank_get_item(sp, S_JOB_ENV, &env) == ESPANK_SUCCESS && env != nullptr) {
    for (char** e = env; *e != nullptr; ++e) {
      if (State().socket.empty() || !std::string_view(*e).starts_with("BERTH_SOCKET=")) {
        out.emplace_back(*e);
      }
    }
  }
  if (!State().socket.empty()) out.push_back("BERTH_SOCKET=" + State().socket);
  return out;
}

// srun's or sbatch's own environment.
std::vector<std::string> ProcessEnv() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

EnvLookup LookupIn(const std::vector<std::string>& env) {
  return [env](const std::string& name) -> std::optional<std::string> {
    for (const std::string& e : env) {
      if (e.size() > name.size() && e[name.size()] == '=' && e.starts_with(name)) {
        return e.substr(name.size() + 1);
      }
    }
    return std::nullopt;
  };
}

uint32_t StepId(spank_t sp) {
  uint32_t step = 0;
  spank_get_item(sp, S_JOB_STEPID, &step);
  return step;
}

// The options with their environment forms; false when no image was asked for.
bool Resolve(const std::vector<std::string>& env) {
  PluginState& s = State();
  if (!s.resolved && !s.error) s.error = ApplyEnvironment(s.options, LookupIn(env));
  s.resolved = true;
  return !s.options.image.empty() || s.error.has_value();
}

// Runs `true` in the step's container (which its tasks then join), so that
// a bad image, an ECL refusal or an MPI mismatch is found once per node.
void CheckStepOnce(spank_t sp, std::vector<std::string> env) {
  uint32_t job = 0;
  spank_get_item(sp, S_JOB_ID, &job);
  env.push_back("SLURM_JOB_ID=" + std::to_string(job));
  env.push_back("SLURM_STEP_ID=" + std::to_string(StepId(sp)));
  ContainerOptions check = State().options;
  check.entrypoint = false;
  Invocation call = BerthCommand(check, State().berth, {"true"}, LookupIn(env));
  if (call.error) {
    State().error = call.error;
    return;
  }
  std::string dir = LookupIn(env)("PWD").value_or("/");
  State().error = CheckStep(call.argv, env, dir);
}

[[noreturn]] void FailTask(spank_t sp, const std::string& why) {
  int local_id = 0;
  spank_get_item(sp, S_TASK_ID, &local_id);
  // One line for the node, from its first task; the others end silently.
  if (local_id == 0)
    dprintf(2, "%s%s\n", why.starts_with("FATAL:") ? "" : "FATAL:   ", why.c_str());
  _exit(1);
}

std::vector<std::string> TaskArgv(spank_t sp) {
  int argc = 0;
  char** argv = nullptr;
  std::vector<std::string> out;
  if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS) return out;
  for (int i = 0; i < argc; ++i) out.emplace_back(argv[i]);
  return out;
}

}  // namespace
}  // namespace berth::slurm

using namespace berth::slurm;

// Privileged in slurmstepd (root): reads plugstack.conf's arguments and
// registers the options, nothing of the user's.
extern "C" int slurm_spank_init(spank_t sp, int ac, char** av) {
  ParseArguments(ac, av);
  return RegisterOptions(sp);
}

// srun/sbatch/salloc: a combination berth refuses fails here, before the
// job queues; the image goes to the prolog (SPANK_BERTH_CONTAINER_IMAGE),
// which stages it on each node of the allocation.
extern "C" int slurm_spank_init_post_opt(spank_t sp, int ac, char** av) {
  if (spank_remote(sp)) return 0;
  std::optional<std::string> error = ApplyEnvironment(State().options, LookupIn(ProcessEnv()));
  if (!error && State().options.image.empty()) return 0;
  if (!error) error = BerthCommand(State().options, State().berth, {}, LookupIn({})).error;
  if (error) return (slurm_error("berth: %s", error->c_str()), -1);
  spank_job_control_setenv(sp, "BERTH_CONTAINER_IMAGE", State().options.image.c_str(), 1);
  return 0;
}

// In slurmstepd with the user's effective ids (its real ids are root's:
// CheckStep drops them in its child).
extern "C" int slurm_spank_user_init(spank_t sp, int ac, char** av) {
  if (!spank_remote(sp) || StepId(sp) == SLURM_EXTERN_CONT) return 0;
  std::vector<std::string> env = JobEnv(sp);
  if (!Resolve(env) || State().error || StepId(sp) == SLURM_BATCH_SCRIPT) return 0;
  CheckStepOnce(sp, env);
  return 0;
}

// In the task's process, as the user (every id), just before Slurm's execve.
extern "C" int slurm_spank_task_init(spank_t sp, int ac, char** av) {
  if (!spank_remote(sp) || StepId(sp) == SLURM_EXTERN_CONT) return 0;
  std::vector<std::string> env = JobEnv(sp);
  if (!Resolve(env)) return 0;
  if (State().error) FailTask(sp, *State().error);
  std::vector<std::string> argv = TaskArgv(sp);
  ContainerOptions options = State().options;
  // The batch script lives in slurmd's spool, which the container lacks.
  if (StepId(sp) == SLURM_BATCH_SCRIPT && !argv.empty()) {
    options.mounts += (options.mounts.empty() ? "" : ",") + argv[0] + ":" + argv[0] + ":ro";
  }
  Invocation call = BerthCommand(options, State().berth, argv, LookupIn(env));
  if (call.error) FailTask(sp, *call.error);
  FailTask(sp, "--container-image: " + ExecTask(call.argv, env));
}
