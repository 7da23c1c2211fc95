#include "daemon/fakeroot/fakeroot_ids.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "subid/subid_file.h"
#include "subid/subid_io.h"

namespace berth::daemon::fakeroot {
namespace {

constexpr const char* kUserModeNotice =
    "berthd runs in user mode, where only your own uid can be mapped: trying root-mapped "
    "namespace (the system berthd maps your /etc/subuid range)";

// The caller's safe range from one file: nullopt when not listed.
absl::StatusOr<std::optional<subid::Range>> RangeFrom(const std::string& path, const Caller& caller,
                                                      uint32_t own_id, const char* kind) {
  ASSIGN_OR_RETURN(std::string text, subid::ReadTrustedSubidFile(path));
  subid::File file = subid::Parse(text);
  subid::User user{caller.uid, caller.name};
  ASSIGN_OR_RETURN(std::optional<subid::Range> range, subid::ChooseRange(file, user, path));
  if (range) RETURN_IF_ERROR(subid::CheckRangeIsSafe(file, user, *range, own_id, path, kind));
  return range;
}

}  // namespace

const char* ModeName(Mode mode) {
  return mode == Mode::kSubidRanges ? "subuid ranges" : "root-mapped";
}

Ids RootMapped(const Caller& caller, std::string notice) {
  Ids ids;
  ids.mode = Mode::kRootMapped;
  ids.uid_map = {{0, caller.uid, 1}};
  ids.gid_map = {{0, caller.gid, 1}};
  ids.notice = std::move(notice);
  return ids;
}

Ids WithRanges(const Caller& caller, subid::Range uids, subid::Range gids) {
  Ids ids = RootMapped(caller, "");
  ids.mode = Mode::kSubidRanges;
  ids.uid_map.push_back({1, uids.start, uids.count});
  ids.gid_map.push_back({1, gids.start, gids.count});
  return ids;
}

absl::StatusOr<Ids> ResolveIds(const Sources& sources, const Caller& caller) {
  if (caller.uid == 0) return RootMapped(caller, "");
  if (sources.user_mode) return RootMapped(caller, kUserModeNotice);
  ASSIGN_OR_RETURN(std::optional<subid::Range> uids,
                   RangeFrom(sources.subuid_path, caller, caller.uid, "uid"));
  if (!uids) {
    return RootMapped(caller, absl::StrCat("User not listed in ", sources.subuid_path,
                                           ", trying root-mapped namespace"));
  }
  ASSIGN_OR_RETURN(std::optional<subid::Range> gids,
                   RangeFrom(sources.subgid_path, caller, caller.gid, "gid"));
  if (!gids) {
    std::string name = subid::DisplayName({caller.uid, caller.name});
    return absl::FailedPreconditionError(absl::StrCat(
        "no mapping entry found in ", sources.subgid_path, " for ", name, " (listed in ",
        sources.subuid_path, " only; berth config fakeroot --add ", name, " gives both)"));
  }
  return WithRanges(caller, *uids, *gids);
}

}  // namespace berth::daemon::fakeroot
