// What run, exec and shell mean inside a container: the environment the
// payload starts with and the argv that realises the action, by Apptainer's
// rules (apptainer-behaviour.md §2), so users' scripts behave the same.
//
// The host environment arrives in the request from an untrusted client, so
// everything here is also a validator: sizes, NUL bytes and malformed entries
// are refused with one-line errors before anything reaches a container.
//
// Image environment scripts (/.singularity.d/env/*.sh) can only be evaluated
// by a shell inside the container. The payload is therefore started through a
// short /bin/sh shim that sources them in lexical order, then applies the
// caller's overrides (APPTAINERENV_*, --env, --env-file), which must win over
// the image, then execs the real command. As in Apptainer, the caller's values
// are evaluated by that shell ($VAR, $(cmd) expand; quotes stay literal)
// unless --no-eval; what the daemon itself sets (GPU, CDI) never is. Images
// without /bin/sh (static, distroless) get the overrides applied here,
// literally, and the command exec'd directly.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::daemon::action {

enum class Action { kExec, kRun, kShell, kTest };

struct EnvLimits {
  size_t max_entries = 4096;
  size_t max_entry_bytes = 128 * 1024;
  size_t max_total_bytes = 2 * 1024 * 1024;
};

struct EnvRequest {
  std::vector<std::string> host_env;        // the client's environ, "K=V"
  bool clean_env = false;                   // --cleanenv / -e
  std::vector<std::string> env_flags;       // --env K=V (each may hold a,b lists)
  std::vector<std::string> env_file_lines;  // --env-file contents, in file order
  std::string container_home;               // $HOME inside
  std::string image_path;                   // for APPTAINER_CONTAINER / _NAME
  Action action = Action::kExec;
  std::string bind_list;  // for APPTAINER_BIND
  bool no_eval = false;   // --no-eval: the caller's values are taken literally
  std::string app;        // --app: APPTAINER_APPNAME (the image's env scripts do the rest)
  // Set by the daemon after every other rule (GPU selection, CDI env edits).
  std::vector<std::pair<std::string, std::string>> runtime_env;
  // Driver libraries are bound here: it joins LD_LIBRARY_PATH (appended,
  // once, after the image's env scripts, as Apptainer's 99-base.sh does).
  std::string library_dir;
};

struct Override {
  std::string name, value;
  bool evaluate = true;  // expanded by the container's shell, as Apptainer does
  bool operator==(const Override&) const = default;
};

struct ContainerEnv {
  // Environment the shim (or the payload, without a shell) starts with.
  std::vector<std::string> base;
  // Applied after the image's env scripts, in order: later entries win.
  std::vector<Override> overrides;
  std::string prepend_path, append_path;
  std::string library_dir;
};

inline constexpr char kDefaultPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Applies Apptainer's environment rules to a request; fails on hostile input.
absl::StatusOr<ContainerEnv> BuildEnvironment(const EnvRequest& request,
                                              const EnvLimits& limits = {});

struct CommandRequest {
  Action action = Action::kExec;
  std::vector<std::string> args;  // exec: command + args; run: runscript args; shell: ignored
  std::string shell;              // --shell; default /bin/bash --norc, else /bin/sh
  bool image_has_shell = true;    // /bin/sh exists in the image
  std::string app;                // --app: run and test use the app's scripts
};

struct LaunchCommand {
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

// The argv/env the launcher execs for `action`: the sourcing shim when the
// image has a shell, else the command with overrides folded into env.
absl::StatusOr<LaunchCommand> BuildCommand(const CommandRequest& request, const ContainerEnv& env);

}  // namespace berth::daemon::action
