#include "daemon/action/action.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::daemon::action {
namespace {

// Sources the image's env scripts, exports the caller's overrides (passed as
// "e:K=V" or "l:K=V" arguments up to "--"; an "e:" value with $, ` or \ in it
// is expanded as a here-document body is, which is Apptainer's double-quote
// evaluation with quotes kept literal; "l:" values are exported as they are),
// fixes PATH, then replaces itself with the command. A command named
// without a '/' that PATH does not find, or a path that does not exist, is
// Apptainer's FATAL, exit 255. Nothing here opens a /dev node: with
// `--no-mount dev` the image's own /dev (usually empty) is all there is, as
// in Apptainer, so lookups are silenced by command substitution.
constexpr char kShim[] =
    "for __berth_f in /.singularity.d/env/*.sh; do\n"
    "  if [ -f \"$__berth_f\" ]; then . \"$__berth_f\"; fi\n"
    "done\n"
    "unset __berth_f\n"
    "while [ \"$#\" -gt 0 ] && [ \"$1\" != -- ]; do\n"
    "  case $1 in\n"
    "  e:*)\n"
    "    __berth_n=${1#e:}; __berth_v=${__berth_n#*=}; __berth_n=${__berth_n%%=*}\n"
    "    case $__berth_v in *[\\$\\`\\\\]*)\n"
    "      if __berth_c=$(command -v cat 2>&1); then\n"
    "        eval \"__berth_v=\\$(cat <<__BERTH_EOF__\n${__berth_v}\n__BERTH_EOF__\n)\"\n"
    "      fi ;; esac\n"
    "    export \"$__berth_n=$__berth_v\" ;;\n"
    "  *) export \"${1#l:}\" ;;\n"
    "  esac\n"
    "  shift\n"
    "done\n"
    "unset __berth_n __berth_v __berth_c\n"
    "shift\n"
    "if [ -n \"${BERTH_PREPEND_PATH-}\" ]; then PATH=\"$BERTH_PREPEND_PATH:$PATH\"; fi\n"
    "if [ -n \"${BERTH_APPEND_PATH-}\" ]; then PATH=\"$PATH:$BERTH_APPEND_PATH\"; fi\n"
    "unset BERTH_PREPEND_PATH BERTH_APPEND_PATH\n"
    "export PATH\n"
    "if [ -n \"${BERTH_LIBRARY_DIR-}\" ]; then\n"
    "  case \":${LD_LIBRARY_PATH-}:\" in *\":$BERTH_LIBRARY_DIR:\"*) ;;\n"
    "    *) LD_LIBRARY_PATH=\"${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$BERTH_LIBRARY_DIR\" ;; esac\n"
    "  export LD_LIBRARY_PATH\n"
    "fi\n"
    "unset BERTH_LIBRARY_DIR\n"
    "case $1 in */*)\n"
    "  if [ ! -e \"$1\" ] && [ ! -L \"$1\" ]; then\n"
    "    printf 'FATAL:   stat %s: no such file or directory\\n' \"$1\" >&2; exit 255\n"
    "  fi ;; *)\n"
    "  if ! __berth_c=$(command -v -- \"$1\" 2>&1); then\n"
    "    printf 'FATAL:   \"%s\": executable file not found in $PATH\\n' \"$1\" >&2; exit 255\n"
    "  fi ;; esac\n"
    "unset __berth_c\n"
    "exec \"$@\"\n";

// Apptainer's shell action: bash without its rc files where the image has
// it, else sh; SHELL says which, and the arguments go to it.
constexpr char kBashOrSh[] =
    "if test -x /bin/bash; then SHELL=/bin/bash; export SHELL; exec /bin/bash --norc \"$@\"; fi\n"
    "SHELL=/bin/sh; export SHELL; exec /bin/sh \"$@\"\n";
// Apptainer's test action: the %test script, or an INFO and success.
constexpr char kTestOrInfo[] =
    "if test -x /.singularity.d/test; then exec /.singularity.d/test \"$@\"; fi\n"
    "echo 'INFO:    No test script found in container, exiting' >&2\n"
    "exit 0\n";
// With --app NAME ($1): the app's runscript or test, or Apptainer's ERROR.
constexpr char kAppRun[] =
    "app=$1; shift\n"
    "if test -x \"/scif/apps/$app/scif/runscript\"; then exec \"/scif/apps/$app/scif/runscript\" "
    "\"$@\"; fi\n"
    "echo \"ERROR:   no runscript for contained app: $app\" >&2\n"
    "exit 1\n";
constexpr char kAppTest[] =
    "app=$1; shift\n"
    "if test -x \"/scif/apps/$app/scif/test\"; then exec \"/scif/apps/$app/scif/test\" \"$@\"; fi\n"
    "echo \"ERROR:   No tests for contained app: $app\" >&2\n"
    "exit 1\n";

// Apptainer's run action: the runscript, or a shell when the image has
// none, with the same arguments.
constexpr char kRunOrShell[] =
    "if test -x /.singularity.d/runscript; then exec /.singularity.d/runscript \"$@\"; fi\n"
    "echo 'INFO:    No runscript found in container, executing /bin/sh' >&2\n"
    "exec /bin/sh \"$@\"\n";

bool ValidName(absl::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string NameOf(absl::string_view entry) {
  return std::string(entry.substr(0, entry.find('=')));
}

bool IsProxyVar(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  return absl::EndsWith(lower, "_proxy");
}

// The launcher's connection to this process (PMI-2's PMI_FD and rank, PMIx's
// server URI and namespace) and the Slurm task it is (Open MPI's direct
// launch is recognised from SLURM_*): kept under --cleanenv, or each rank of
// an MPI job starts as a singleton. Apptainer's --cleanenv drops them; berth
// hands PMI_FD over in every mode, so its variables go with it.
bool IsLauncherVar(absl::string_view name) {
  return absl::StartsWith(name, "PMI_") || absl::StartsWith(name, "PMIX_") ||
         absl::StartsWith(name, "SLURM_");
}

// Variables berth or Apptainer set or reset themselves; never taken from the host.
bool ResetByRuntime(absl::string_view name) {
  return name == "PATH" || name == "HOME" || name == "LD_LIBRARY_PATH" || name == "PS1" ||
         absl::StartsWith(name, "APPTAINER_") || absl::StartsWith(name, "SINGULARITY_") ||
         absl::StartsWith(name, "BERTH_") || absl::StartsWith(name, "APPTAINERENV_") ||
         absl::StartsWith(name, "SINGULARITYENV_") || absl::StartsWith(name, "BERTHENV_");
}

absl::Status CheckEntry(absl::string_view entry, absl::string_view origin,
                        const EnvLimits& limits) {
  if (entry.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": a variable contains a NUL byte"));
  }
  if (entry.size() > limits.max_entry_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: variable %s is %d bytes, over the %d-byte limit", origin,
                        NameOf(entry).substr(0, 64), entry.size(), limits.max_entry_bytes));
  }
  if (entry.find('=') == absl::string_view::npos || entry.front() == '=') {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": '", entry.substr(0, 64), "' is not NAME=value"));
  }
  return absl::OkStatus();
}

absl::Status CheckTotals(const std::vector<std::string>& entries, const EnvLimits& limits) {
  size_t total = 0;
  for (const auto& e : entries) total += e.size() + 1;
  if (entries.size() > limits.max_entries || total > limits.max_total_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "environment has %d variables / %d bytes; the limit is %d / %d (unset what the "
        "container does not need, or use --cleanenv)",
        entries.size(), total, limits.max_entries, limits.max_total_bytes));
  }
  return absl::OkStatus();
}

// Adds one NAME=value override, applying Apptainer's special names.
absl::Status AddOverride(absl::string_view name, absl::string_view value, ContainerEnv& env,
                         bool evaluate = true) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid variable name '", name.substr(0, 64),
                                                   "' (use letters, digits and _)"));
  }
  if (name == "PREPEND_PATH") {
    env.prepend_path = std::string(value);
  } else if (name == "APPEND_PATH") {
    env.append_path = std::string(value);
  } else {
    env.overrides.push_back({std::string(name), std::string(value), evaluate});
  }
  return absl::OkStatus();
}

// KEY=value lines; blank lines and # comments skipped; optional quotes.
absl::Status AddEnvFileLines(const std::vector<std::string>& lines, ContainerEnv& env) {
  for (absl::string_view line : lines) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    absl::ConsumePrefix(&line, "export ");
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--env-file: '", line.substr(0, 64), "' is not NAME=value"));
    }
    absl::string_view value = line.substr(eq + 1);
    // As the shell that reads Apptainer's env files: single quotes keep the
    // value literal, double quotes (or none) let it expand.
    bool evaluate = true;
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      evaluate = value.front() == '"';
      value = value.substr(1, value.size() - 2);
    }
    if (absl::Status st = AddOverride(line.substr(0, eq), value, env, evaluate); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status AddEnvFlags(const std::vector<std::string>& flags, ContainerEnv& env) {
  for (const std::string& flag : flags) {
    for (absl::string_view item : absl::StrSplit(flag, ',', absl::SkipEmpty())) {
      size_t eq = item.find('=');
      if (eq == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("--env: '", item.substr(0, 64), "' is not NAME=value"));
      }
      if (absl::Status st = AddOverride(item.substr(0, eq), item.substr(eq + 1), env); !st.ok()) {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

// APPTAINERENV_X (and BERTHENV_X), or SINGULARITYENV_X when no APPTAINERENV_X.
absl::Status AddPrefixedOverrides(const std::vector<std::string>& host, ContainerEnv& env) {
  std::map<std::string, std::string> apptainer, singularity;
  for (absl::string_view entry : host) {
    size_t eq = entry.find('=');
    absl::string_view name = entry.substr(0, eq), value = entry.substr(eq + 1);
    if (absl::ConsumePrefix(&name, "APPTAINERENV_") || absl::ConsumePrefix(&name, "BERTHENV_")) {
      apptainer[std::string(name)] = std::string(value);
    } else if (absl::ConsumePrefix(&name, "SINGULARITYENV_")) {
      singularity[std::string(name)] = std::string(value);
    }
  }
  for (const auto& [name, value] : singularity) apptainer.emplace(name, value);
  for (const auto& [name, value] : apptainer) {
    if (absl::Status st = AddOverride(name, value, env); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("APPTAINERENV_", st.message()));
    }
  }
  return absl::OkStatus();
}

// The shim's LD_LIBRARY_PATH rule, for images without a shell.
void AppendLibraryDir(std::vector<std::string>& env, const std::string& dir) {
  for (std::string& e : env) {
    if (!absl::StartsWith(e, "LD_LIBRARY_PATH=")) continue;
    std::string value = e.substr(16);
    if (!absl::StrContains(absl::StrCat(":", value, ":"), absl::StrCat(":", dir, ":"))) {
      e = absl::StrCat("LD_LIBRARY_PATH=", value, value.empty() ? "" : ":", dir);
    }
    return;
  }
  env.push_back(absl::StrCat("LD_LIBRARY_PATH=", dir));
}

std::string ActionName(Action action) {
  switch (action) {
    case Action::kRun:
      return "run";
    case Action::kShell:
      return "shell";
    case Action::kTest:
      return "test";
    case Action::kExec:
      break;
  }
  return "exec";
}

}  // namespace

absl::StatusOr<ContainerEnv> BuildEnvironment(const EnvRequest& request, const EnvLimits& limits) {
  for (const auto& entry : request.host_env) {
    if (absl::Status st = CheckEntry(entry, "host environment", limits); !st.ok()) return st;
  }
  if (absl::Status st = CheckTotals(request.host_env, limits); !st.ok()) return st;

  ContainerEnv env;
  for (const auto& entry : request.host_env) {
    std::string name = NameOf(entry);
    if (ResetByRuntime(name)) continue;
    if (request.clean_env && name != "TERM" && !IsProxyVar(name) && !IsLauncherVar(name)) continue;
    env.base.push_back(entry);
  }
  if (request.clean_env) env.base.push_back("LANG=C");
  env.base.push_back(absl::StrCat("PATH=", kDefaultPath));
  env.base.push_back(absl::StrCat("HOME=", request.container_home));
  std::string name = request.image_path.substr(request.image_path.find_last_of('/') + 1);
  for (const char* prefix : {"APPTAINER_", "SINGULARITY_"}) {
    env.base.push_back(absl::StrCat(prefix, "CONTAINER=", request.image_path));
    env.base.push_back(absl::StrCat(prefix, "NAME=", name));
    env.base.push_back(absl::StrCat(prefix, "COMMAND=", ActionName(request.action)));
    env.base.push_back(absl::StrCat(prefix, "ENVIRONMENT=/.singularity.d/env/91-environment.sh"));
    if (!request.bind_list.empty()) {
      env.base.push_back(absl::StrCat(prefix, "BIND=", request.bind_list));
    }
    if (!request.app.empty()) env.base.push_back(absl::StrCat(prefix, "APPNAME=", request.app));
  }
  if (request.action == Action::kShell) env.base.push_back("PS1=Berth> ");

  // Lowest precedence first: APPTAINERENV_, then --env-file, then --env.
  if (absl::Status st = AddPrefixedOverrides(request.host_env, env); !st.ok()) return st;
  if (absl::Status st = AddEnvFileLines(request.env_file_lines, env); !st.ok()) return st;
  if (absl::Status st = AddEnvFlags(request.env_flags, env); !st.ok()) return st;
  if (request.no_eval) {
    for (Override& o : env.overrides) o.evaluate = false;
  }
  // The daemon's own values are facts about the node, never shell input.
  for (const auto& [name, value] : request.runtime_env) {
    env.overrides.push_back({name, value, false});
  }
  env.library_dir = request.library_dir;
  return env;
}

absl::StatusOr<LaunchCommand> BuildCommand(const CommandRequest& request, const ContainerEnv& env) {
  std::vector<std::string> command;
  switch (request.action) {
    case Action::kExec:
      if (request.args.empty()) {
        return absl::InvalidArgumentError("exec needs a command to run in the container");
      }
      command = request.args;
      break;
    case Action::kRun:
    case Action::kTest: {
      // Apptainer's run and test actions: the app's script (or its ERROR),
      // else the image's (run: or a shell; test: or an INFO).
      const bool run = request.action == Action::kRun;
      const std::string app_script =
          absl::StrCat("/scif/apps/", request.app, run ? "/scif/runscript" : "/scif/test");
      if (!request.image_has_shell) {
        command = {!request.app.empty() ? app_script
                   : run                ? "/.singularity.d/runscript"
                                        : "/.singularity.d/test"};
      } else if (!request.app.empty()) {
        command = {"/bin/sh", "-c", run ? kAppRun : kAppTest, "/bin/sh", request.app};
      } else {
        command = {"/bin/sh", "-c", run ? kRunOrShell : kTestOrInfo, "/bin/sh"};
      }
      command.insert(command.end(), request.args.begin(), request.args.end());
      break;
    }
    case Action::kShell:
      if (!request.shell.empty()) {
        command = {request.shell};
      } else if (request.image_has_shell) {
        command = {"/bin/sh", "-c", kBashOrSh, "/bin/sh"};
      } else {
        command = {"/bin/sh"};
      }
      command.insert(command.end(), request.args.begin(), request.args.end());
      break;
  }
  LaunchCommand out;
  out.env = env.base;
  if (!request.image_has_shell) {
    // No shell to source env scripts with: fold the overrides in here.
    for (const Override& o : env.overrides) {
      std::erase_if(out.env, [&](const std::string& e) { return NameOf(e) == o.name; });
      out.env.push_back(absl::StrCat(o.name, "=", o.value));
    }
    if (!env.library_dir.empty()) AppendLibraryDir(out.env, env.library_dir);
    for (std::string& e : out.env) {
      if (absl::StartsWith(e, "PATH=")) {
        std::string path = e.substr(5);
        if (!env.prepend_path.empty()) path = absl::StrCat(env.prepend_path, ":", path);
        if (!env.append_path.empty()) path = absl::StrCat(path, ":", env.append_path);
        e = absl::StrCat("PATH=", path);
      }
    }
    out.argv = std::move(command);
    return out;
  }
  out.argv = {"/bin/sh", "-c", kShim, "berth"};
  for (const Override& o : env.overrides) {
    out.argv.push_back(absl::StrCat(o.evaluate ? "e:" : "l:", o.name, "=", o.value));
  }
  if (!env.prepend_path.empty()) out.argv.push_back("l:BERTH_PREPEND_PATH=" + env.prepend_path);
  if (!env.append_path.empty()) out.argv.push_back("l:BERTH_APPEND_PATH=" + env.append_path);
  if (!env.library_dir.empty()) out.argv.push_back("l:BERTH_LIBRARY_DIR=" + env.library_dir);
  out.argv.push_back("--");
  out.argv.insert(out.argv.end(), command.begin(), command.end());
  return out;
}

}  // namespace berth::daemon::action
