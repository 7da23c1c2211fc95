#include "client/action/parity_flags.h"

#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli_log.h"
#include "client/env_flags.h"

namespace berth::client {
namespace {

struct Refused {
  const char* names;  // CLI11's "-x,--long"
  bool value;         // takes a value
  const char* why;
};

constexpr const char* kCaps =
    "berth containers never hold capabilities outside a user namespace of their own; "
    "--fakeroot gives root with capabilities inside one";
constexpr const char* kCreds =
    "give registry credentials with `berth registry login` or --authfile";
constexpr const char* kFakerootMaps =
    "berthd decides how --fakeroot maps ids (/etc/subuid, docs/security.md)";

constexpr Refused kRefused[] = {
    {"--add-caps", true, kCaps},
    {"--keep-privs", false, kCaps},
    {"--allow-setuid", false,
     "berth mounts every image nosuid and starts containers with no_new_privs"},
    {"--fusemount", true,
     "berth runs no FUSE programs for a container; mount the FUSE filesystem on the host and "
     "bind it with -B"},
    {"--security", true,
     "berth applies no per-container seccomp, SELinux or AppArmor profile, and runs a container "
     "as its caller"},
    {"--network-args", true, "berth has no CNI networks; --network none takes no arguments"},
    {"--dmtcp-launch", true, "DMTCP checkpointing is not supported"},
    {"--dmtcp-restart", true, "DMTCP checkpointing is not supported"},
    {"--docker-host", true, "berth pulls from registries only, not from a Docker daemon"},
    {"--docker-login", false, kCreds},
    {"--docker-username", true, kCreds},
    {"--docker-password", true, kCreds},
    {"--passphrase", false, "encrypted SIF images are not supported"},
    {"--pem-path", true, "encrypted SIF images are not supported"},
    {"--ignore-subuid", false, kFakerootMaps},
    {"--ignore-userns", false, kFakerootMaps},
    {"--ignore-fakeroot-command", false, kFakerootMaps},
};

constexpr const char* kWithValue[] = {"--drop-caps", "--tmpdir", "--runscript-timeout",
                                      "--containlibs"};

std::string LongName(const char* names) {
  std::vector<std::string> parts = absl::StrSplit(names, ',');
  return parts.back();
}

}  // namespace

void AddParityFlags(CLI::App& cmd, ParityFlags& f) {
  // Hidden (an empty group), as Apptainer hides most of them: they exist so
  // that a script that passes them gets the answer below, not a usage error.
  cmd.add_flag("--no-privs", f.no_privs, "")->group("");
  cmd.add_option("--drop-caps", f.drop_caps, "")->delimiter(',')->group("");
  cmd.add_flag("--unsquash", f.unsquash, "")->group("");
  cmd.add_flag("--underlay", f.underlay, "")->group("");
  cmd.add_option("--tmpdir", f.tmpdir, "")->group("");
  cmd.add_option("--runscript-timeout", f.runscript_timeout, "")->group("");
  cmd.add_option("--containlibs", f.containlibs, "")->delimiter(',')->group("");
  for (const Refused& r : kRefused) {
    std::string name = LongName(r.names);
    if (r.value) {
      cmd.add_option(r.names, f.refused_values[name], "")->group("");
    } else {
      cmd.add_flag(r.names, f.refused_given[name], "")->group("");
    }
  }
}

absl::Status ApplyParityFlags(const CLI::App& cmd, ParityFlags& f,
                              std::vector<std::string>& binds) {
  for (const Refused& r : kRefused) {
    std::string name = LongName(r.names);
    if (cmd.count(name) == 0) continue;
    return absl::UnimplementedError(absl::StrCat(name, " is not supported: ", r.why));
  }
  StringFromEnv(cmd, "--runscript-timeout", "RUNSCRIPT_TIMEOUT", f.runscript_timeout);
  if (!f.runscript_timeout.empty()) {
    log::Warning(
        "--runscript-timeout is ignored: berth has no environment-evaluation step to time out "
        "(the container's own shell reads its environment); use `timeout` in the container");
  }
  if (cmd.count("--containlibs") == 0) {
    if (const char* v = EnvForm("CONTAINLIBS"); v != nullptr && *v != '\0') {
      f.containlibs = absl::StrSplit(v, ',', absl::SkipWhitespace());
    }
  }
  // Apptainer binds each library, by its file name, into the directory its
  // action script puts on LD_LIBRARY_PATH.
  for (const std::string& lib : f.containlibs) {
    std::vector<std::string> parts = absl::StrSplit(lib, '/', absl::SkipEmpty());
    if (parts.empty()) continue;
    binds.push_back(absl::StrCat(lib, ":/.singularity.d/libs/", parts.back(), ":ro"));
  }
  return absl::OkStatus();
}

bool ParityFlagTakesValue(absl::string_view arg) {
  for (const char* opt : kWithValue) {
    if (arg == opt) return true;
  }
  for (const Refused& r : kRefused) {
    if (r.value && arg == LongName(r.names)) return true;
  }
  return false;
}

}  // namespace berth::client
