#include "client/action/bind_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace berth::client {
namespace {

absl::Status Invalid(absl::string_view entry, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--bind '", entry, "': ", why));
}

}  // namespace

absl::StatusOr<std::vector<BindEntry>> ParseBinds(const std::string& value,
                                                  const std::string& cwd) {
  std::vector<BindEntry> out;
  for (absl::string_view entry : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() > 3 || parts[0].empty()) return Invalid(entry, "use src[:dst[:ro|rw]]");
    BindEntry bind;
    bind.source = parts[0].front() == '/' ? parts[0] : absl::StrCat(cwd, "/", parts[0]);
    bind.destination = parts.size() > 1 && !parts[1].empty() ? parts[1] : bind.source;
    if (bind.destination.front() != '/') {
      return Invalid(entry, "the destination must be an absolute path");
    }
    if (parts.size() == 3) {
      if (parts[2] == "ro") {
        bind.read_only = true;
      } else if (parts[2] != "rw") {
        return Invalid(entry, absl::StrCat("unknown option '", parts[2], "' (use ro or rw)"));
      }
    }
    out.push_back(std::move(bind));
  }
  return out;
}

}  // namespace berth::client
