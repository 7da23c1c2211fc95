#include "deffile/bootstrap.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "deffile/go_text.h"

namespace berth::deffile {
namespace {

struct AgentInfo {
  absl::string_view name;
  Agent agent;
  absl::string_view required[2];  // header keys that must have a value
};

constexpr AgentInfo kAgents[] = {
    {"scratch", Agent::kScratch, {}},
    {"localimage", Agent::kLocalImage, {"From"}},
    {"docker", Agent::kDocker, {"From"}},
    {"docker-archive", Agent::kDocker, {"From"}},
    {"oci", Agent::kDocker, {"From"}},
    {"oci-archive", Agent::kDocker, {"From"}},
    {"oras", Agent::kOras, {"From"}},
    {"debootstrap", Agent::kDebootstrap, {"MirrorURL", "OSVersion"}},
    {"busybox", Agent::kBusybox, {"MirrorURL"}},
    {"yum", Agent::kYum, {"MirrorURL"}},
    {"dnf", Agent::kYum, {"MirrorURL"}},
    {"zypper", Agent::kZypper, {"MirrorURL"}},
};

// Apptainer agents berth does not build from, with what to use instead.
constexpr std::pair<absl::string_view, absl::string_view> kUnsupported[] = {
    {"library", "use oras:// or docker://"},
    {"shub", "use oras:// or docker://"},
    {"docker-daemon", "export the image (docker save) and use Bootstrap: docker-archive"},
    {"arch", "use Bootstrap: docker with an Arch Linux image"},
    {"buildkit", "build the image with a Dockerfile builder and use Bootstrap: docker-archive"},
    {"dockerfile", "build the image with a Dockerfile builder and use Bootstrap: docker-archive"},
};

const AgentInfo* FindAgent(absl::string_view name) {
  for (const AgentInfo& a : kAgents) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

absl::Status ErrorAt(absl::string_view file, int line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", message));
}

absl::Status CheckFingerprints(const Definition& stage, absl::string_view file) {
  const HeaderEntry* entry = stage.header.Find("fingerprints");
  if (entry == nullptr) return absl::OkStatus();
  for (const std::string& fp : stage.Fingerprints()) {
    if (fp.size() != 40 || !std::all_of(fp.begin(), fp.end(), absl::ascii_isxdigit)) {
      return ErrorAt(file, entry->line,
                     absl::StrCat("Fingerprints: ", internal::GoQuote(fp),
                                  " is not a fingerprint (40 hexadecimal digits)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Agent AgentOf(const Definition& stage) {
  const AgentInfo* info = FindAgent(stage.Bootstrap());
  return info == nullptr ? Agent::kScratch : info->agent;
}

bool BuiltByHostTool(Agent agent) {
  return agent == Agent::kDebootstrap || agent == Agent::kYum || agent == Agent::kZypper;
}

absl::Status CheckBootstrap(const Definition& stage, absl::string_view file) {
  const HeaderEntry* bootstrap = stage.header.Find("bootstrap");
  if (bootstrap == nullptr || bootstrap->value.empty()) {
    return ErrorAt(file, bootstrap ? bootstrap->line : stage.first_line,
                   "no bootstrap specification found");
  }
  const AgentInfo* info = FindAgent(bootstrap->value);
  if (info == nullptr) {
    for (const auto& [name, instead] : kUnsupported) {
      if (name == bootstrap->value) {
        return ErrorAt(file, bootstrap->line,
                       absl::StrCat("Bootstrap: ", name, " is not supported by berth: ", instead));
      }
    }
    return ErrorAt(file, bootstrap->line,
                   absl::StrCat("invalid build source ", internal::Printable(bootstrap->value)));
  }
  for (absl::string_view key : info->required) {
    if (!key.empty() && stage.header.Get(internal::AsciiLower(key)).empty()) {
      return ErrorAt(file, bootstrap->line,
                     absl::StrCat("Bootstrap: ", info->name, " needs a value for ", key, ":"));
    }
  }
  return CheckFingerprints(stage, file);
}

absl::Status CheckBuilderSupports(const std::vector<Definition>& stages, absl::string_view file) {
  if (stages.empty()) return absl::InvalidArgumentError("the definition has no stage");
  // Known agents with their keys first: AgentOf is only defined after it.
  for (const Definition& stage : stages) {
    if (absl::Status st = CheckBootstrap(stage, file); !st.ok()) return st;
  }
  // Every stage is built (only the last is kept), so each must be buildable.
  for (const Definition& stage : stages) {
    switch (AgentOf(stage)) {
      case Agent::kScratch:
      case Agent::kLocalImage:
      case Agent::kDocker:
      case Agent::kOras:
      case Agent::kBusybox:
      case Agent::kDebootstrap:
      case Agent::kYum:
      case Agent::kZypper:
        break;
      default:
        return absl::UnimplementedError(
            absl::StrCat("Bootstrap: ", internal::Printable(stage.Bootstrap()),
                         " is not supported by berth build yet"));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::deffile
