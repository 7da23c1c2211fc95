#include "daemon/service/run_workdir.h"

#include <fcntl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace berth::daemon {
namespace {

// DIR/<first>/<second>/...: each one made (when missing) and opened as the
// caller beneath the previous one.
absl::StatusOr<UniqueFd> MakePath(const image::CallerCreds& caller, int base,
                                  const std::vector<std::string>& parts, mode_t mode) {
  UniqueFd dir;
  for (const std::string& part : parts) {
    ASSIGN_OR_RETURN(dir, image::MakeDirAtAsCaller(caller, dir ? dir.get() : base, part, mode));
  }
  return dir;
}

absl::StatusOr<launch::BindSpec> WorkdirBind(const image::CallerCreds& caller, int base,
                                             const std::string& workdir,
                                             const std::vector<std::string>& parts, mode_t mode,
                                             const std::string& destination) {
  std::string source = absl::StrCat(workdir, "/", absl::StrJoin(parts, "/"));
  auto fd = MakePath(caller, base, parts, mode);
  if (!fd.ok()) return Annotate(fd.status(), absl::StrCat("--workdir ", source));
  return launch::BindSpec{*std::move(fd), source, destination, false};
}

}  // namespace

absl::Status AddScratchAndWorkdir(const v1::RunRequest& r, const image::CallerCreds& caller,
                                  bool tmp, launch::LaunchSpec& spec) {
  if (r.workdir().empty()) {
    spec.scratch_tmpfs.assign(r.scratch().begin(), r.scratch().end());
    return absl::OkStatus();
  }
  auto opened = image::OpenAsCaller(caller, r.workdir(), O_PATH | O_DIRECTORY);
  if (!opened.ok()) return Annotate(opened.status(), "--workdir");
  UniqueFd base = *std::move(opened);
  if (r.contain() && tmp) {
    ASSIGN_OR_RETURN(spec.workdir_tmp,
                     WorkdirBind(caller, base.get(), r.workdir(), {"tmp"}, 01777, "/tmp"));
    ASSIGN_OR_RETURN(spec.workdir_var_tmp,
                     WorkdirBind(caller, base.get(), r.workdir(), {"var_tmp"}, 01777, "/var/tmp"));
  }
  // A contained home without -H: DIR/home instead of a tmpfs.
  if (r.contain() && spec.home && !spec.home->source.valid()) {
    ASSIGN_OR_RETURN(launch::BindSpec home, WorkdirBind(caller, base.get(), r.workdir(), {"home"},
                                                        0700, spec.home->destination));
    spec.home = std::move(home);
  }
  for (const std::string& dest : r.scratch()) {
    std::vector<std::string> parts = {"scratch"};
    for (absl::string_view p : absl::StrSplit(dest, '/', absl::SkipEmpty())) {
      if (p != ".") parts.emplace_back(p);
    }
    ASSIGN_OR_RETURN(launch::BindSpec bind,
                     WorkdirBind(caller, base.get(), r.workdir(), parts, 0700, dest));
    spec.binds.push_back(std::move(bind));
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon
