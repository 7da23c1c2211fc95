#include "client/action/action_command.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/action/action_flags.h"
#include "client/action/mpi_command.h"
#include "client/action/run_session.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "client/registry/transfer_command.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

// Set by SplitContainerArguments, read by the verb that runs.
std::vector<std::string>& ContainerArguments() {
  static auto* args = new std::vector<std::string>();
  return *args;
}

bool IsVerb(absl::string_view arg) {
  return arg == "run" || arg == "exec" || arg == "shell" || arg == "test";
}

// Options whose value is the next argument (unless given as --opt=value or -Xvalue).
bool TakesValue(absl::string_view arg) {
  static const char* kWithValue[] = {
      "-B", "--bind", "--env", "--env-file", "-H", "--home", "--no-mount", "--cwd", "--pwd",
      "--tmpfs-size", "--hostname", "--keep-fd", "-s", "--shell", "--socket", "--device",
      "--cdi-dirs", "--app", "--pid-file", "--restart", "--mount", "-S", "--scratch", "-W",
      "--workdir", "-o", "--overlay",
      // cgroup limits (limit_flags.h)
      "--cpus", "--cpu-shares", "--cpuset-cpus", "--cpuset-mems", "--memory",
      "--memory-reservation", "--memory-swap", "--pids-limit", "--blkio-weight",
      "--blkio-weight-device", "--apply-cgroups",
      // network_flags.h
      "--network", "--dns", "--netns-path"};
  if (ParityFlagTakesValue(arg)) return true;
  for (const char* opt : kWithValue) {
    if (arg == opt) return true;
  }
  return false;
}

struct VerbState {
  ActionFlags flags;
  std::string image;
  std::vector<std::string> args;
  bool user_daemon = false;
  // docker:// and oras:// images: how the client pulls them.
  std::string authfile;
  bool no_https = false;
  bool disable_cache = false;
};

absl::Status RunVerb(const CLI::App& cmd, v1::Action action, VerbState& state,
                     const std::string& socket_flag, int& exit_code) {
  // Before any thread exists: see run_session.h.
  sigset_t signals = BlockForwardedSignals();
  RETURN_IF_ERROR(ApplyEnvironmentDefaults(cmd, state.flags));
  if (action == v1::ACTION_EXEC && state.args.empty()) {
    return absl::InvalidArgumentError("exec needs a command: berth exec IMAGE COMMAND [ARGS...]");
  }
  // Registry images are pulled through the node cache into a private temp
  // file first, removed when the container is done.
  std::string pulled;
  if (absl::StartsWith(state.image, "docker://") || absl::StartsWith(state.image, "oras://")) {
    PullOptions how;
    how.reference = state.image;
    how.authfile = state.authfile;
    how.no_https = state.no_https;
    how.disable_cache = state.disable_cache;
    RETURN_IF_ERROR(BoolFromEnv(cmd, "--disable-cache", "DISABLE_CACHE", how.disable_cache));
    RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-https", "NOHTTPS", how.no_https));
    RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-https", "NO_HTTPS", how.no_https));
    // AUTH_FILE as pull reads it; AUTHFILE beats it.
    if (how.authfile.empty()) StringFromEnv(cmd, "--authfile", "AUTH_FILE", how.authfile);
    StringFromEnv(cmd, "--authfile", "AUTHFILE", how.authfile);
    ASSIGN_OR_RETURN(pulled, PullForRun(socket_flag, how));
    log::Verbose(absl::StrCat("pulled ", state.image, " through the node cache"));
  }
  absl::Cleanup remove_pulled = [&] {
    if (!pulled.empty()) RemovePulledImage(pulled);
  };
  if (absl::StartsWith(state.image, "instance://") && state.flags.fakeroot) {
    // Apptainer's rule: a join takes the instance's user namespace as it is.
    log::Warning("--fakeroot is ignored when joining an instance");
    state.flags.fakeroot = false;
  }
  ASSIGN_OR_RETURN(
      v1::RunRequest request,
      BuildRunRequest(action, pulled.empty() ? state.image : pulled, state.args, state.flags));
  if (absl::StartsWith(state.image, "instance://") && request.has_resources()) {
    // Apptainer's rule: a join runs in its caller's cgroup, limits ignored.
    log::Warning("cgroup limits are ignored when joining an instance");
    request.clear_resources();
  }
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, state.user_daemon));
  log::Verbose(absl::StrCat("berthd at ", socket, ": ", cmd.get_name(), " ", state.image));
  ASSIGN_OR_RETURN(exit_code,
                   RunSession(socket, std::move(request), state.flags.keep_fds, signals));
  log::Verbose(absl::StrCat("the container exited with status ", exit_code));
  return absl::OkStatus();
}

void AddVerb(CLI::App& app, const char* name, const char* help, v1::Action action,
             const std::string& socket_flag, std::shared_ptr<absl::Status> result,
             std::shared_ptr<int> exit_code) {
  auto state = std::make_shared<VerbState>();
  CLI::App* cmd = app.add_subcommand(name, help);
  cmd->fallthrough();
  AddActionFlags(*cmd, state->flags);
  cmd->add_flag("--user-daemon", state->user_daemon,
                "use (and start if needed) a private berthd, even where a system one runs");
  cmd->add_flag("--no-https,--nohttps", state->no_https,
                "pull a docker:// or oras:// image over plain HTTP");
  cmd->add_option("--authfile", state->authfile,
                  "credentials for a docker:// or oras:// image (docker config format)");
  cmd->add_flag("--disable-cache", state->disable_cache,
                "pull a docker:// or oras:// image without the node cache");
  if (action == v1::ACTION_SHELL) {
    cmd->add_option("-s,--shell", state->flags.shell,
                    "shell to run (default /bin/bash --norc, else /bin/sh)");
  }
  cmd->add_option("image", state->image, "SIF image; what follows is the container's command")
      ->required();
  cmd->callback([cmd, action, state, &socket_flag, result, exit_code] {
    state->args = ContainerArguments();
    *result = RunVerb(*cmd, action, *state, socket_flag, *exit_code);
  });
}

}  // namespace

const std::vector<std::string>& SplitArguments() {
  return ContainerArguments();
}

void SplitContainerArguments(int& argc, char** argv) {
  // Before the verb only the global options: of those, --socket takes a
  // value (-s there is --silent, not the shell verb's --shell).
  int i = 1;
  bool instance = false;
  for (; i < argc; i += absl::string_view(argv[i]) == "--socket" ? 2 : 1) {
    if (IsVerb(argv[i])) break;
    // instance start|run IMAGE NAME [ARGS]: one positional more.
    if (absl::string_view(argv[i]) == "instance" && i + 1 < argc &&
        (absl::string_view(argv[i + 1]) == "start" || absl::string_view(argv[i + 1]) == "run")) {
      instance = true;
      ++i;
      break;
    }
    if (absl::string_view(argv[i]) == "instance") return;
  }
  for (++i; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      // `berth exec -- img cmd`: the image is next.
      ++i;
      break;
    }
    if (arg.empty() || arg.front() != '-') break;
    if (TakesValue(arg)) ++i;
  }
  if (instance) ++i;  // the image, then the name
  if (i >= argc) return;
  // argv[i] is the image (the name, for an instance); the rest is the
  // container's.
  ContainerArguments().assign(argv + i + 1, argv + argc);
  argc = i + 1;
}

void RegisterActionCommands(CLI::App& app, const std::string& socket_flag,
                            std::shared_ptr<absl::Status> result, std::shared_ptr<int> exit_code) {
  AddVerb(app, "exec", "Run a command in a container", v1::ACTION_EXEC, socket_flag, result,
          exit_code);
  AddVerb(app, "run", "Run a container's runscript", v1::ACTION_RUN, socket_flag, result,
          exit_code);
  AddVerb(app, "shell", "Start a shell in a container", v1::ACTION_SHELL, socket_flag, result,
          exit_code);
  AddVerb(app, "test", "Run a container's test script (%test)", v1::ACTION_TEST, socket_flag,
          result, exit_code);
  RegisterMpiCommand(app, socket_flag, result, exit_code);
}

}  // namespace berth::client
