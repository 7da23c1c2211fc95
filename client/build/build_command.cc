#include "client/build/build_command.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "client/build/build_flags.h"
#include "client/build/build_run.h"
#include "client/build/dry_run.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

struct BuildState {
  BuildFlags flags;
  std::vector<std::string> positional;  // [IMAGE] SPEC
};

// --tmpdir as the daemon will need it: an existing directory, by absolute path.
absl::Status ResolveTmpdir(std::string& tmpdir) {
  if (tmpdir.empty()) return absl::OkStatus();
  char resolved[PATH_MAX];
  if (::realpath(tmpdir.c_str(), resolved) == nullptr) {
    return ErrnoStatus(absl::StrCat("--tmpdir ", absl::CEscape(tmpdir)), errno);
  }
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tmpdir ", absl::CEscape(tmpdir), ": not a directory"));
  }
  tmpdir = resolved;
  return absl::OkStatus();
}

absl::Status RunBuild(const CLI::App& cmd, BuildState& state, const std::string& socket_flag) {
  RETURN_IF_ERROR(ApplyBuildEnvironment(cmd, state.flags));
  ASSIGN_OR_RETURN(SquashOptions squash, CheckBuildFlags(state.flags));
  RETURN_IF_ERROR(ResolveBuildArch(state.flags));
  RETURN_IF_ERROR(ResolveTmpdir(state.flags.tmpdir));
  const std::vector<std::string>& args = state.positional;
  if (state.flags.dry_run) {
    if (args.empty() || args.size() > 2) {
      return absl::InvalidArgumentError("usage: berth build --dry-run [IMAGE] SPEC");
    }
    return RunDryRun(state.flags, squash, args.size() == 2 ? args[0] : "", args.back());
  }
  if (args.size() != 2) {
    return absl::InvalidArgumentError("usage: berth build [options] IMAGE SPEC");
  }
  return RunDaemonBuild(socket_flag, state.flags, squash, args[0], args[1]);
}

}  // namespace

void RegisterBuildCommand(CLI::App& app, const std::string& socket_flag,
                          std::shared_ptr<absl::Status> result) {
  auto state = std::make_shared<BuildState>();
  CLI::App* cmd = app.add_subcommand("build", "Build an image from a definition file");
  AddBuildFlags(*cmd, state->flags);
  cmd->add_option("args", state->positional,
                  "IMAGE (the SIF or sandbox to write) and SPEC (a definition file, a URI "
                  "such as docker://alpine, or an image)");
  cmd->callback(
      [cmd, state, result, &socket_flag] { *result = RunBuild(*cmd, *state, socket_flag); });
}

}  // namespace berth::client
