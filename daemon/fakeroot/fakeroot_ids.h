// Which ids a caller's --fakeroot container (and, later, a fakeroot build)
// gets, decided by the daemon from /etc/subuid and /etc/subgid.
//
// Two modes, as in Apptainer:
//   kSubidRanges  the caller is listed: uid_map "0 UID 1" + "1 START COUNT",
//                 gid_map likewise from the subgid file (the range rules and
//                 messages are Apptainer's: subid/range_choice.h). A root
//                 daemon writes these maps itself: no setuid newuidmap.
//   kRootMapped   the caller is not listed: only "0 UID 1" / "0 GID 1", with
//                 Apptainer's INFO line "User not listed in /etc/subuid,
//                 trying root-mapped namespace". A builder then runs %post
//                 under the host's fakeroot(1) where installed (build.md §3).
// The root caller always gets the root-mapped map (root to itself) and no
// line. A disabled entry, one too small, a subuid entry without a subgid
// one, and a file or range a root daemon must not trust are errors.
//
// A user-mode daemon has no privilege to map other ids: its own namespace
// holds only the user's uid and gid, so every fakeroot there is root-mapped,
// with an INFO line that says so (docs/security.md: why berth does not run
// the setuid newuidmap for it).
//
// Privilege: reads the files (root-owned ones only, subid/subid_io.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/launch/launch.h"
#include "subid/range_choice.h"

namespace berth::daemon::fakeroot {

enum class Mode { kSubidRanges, kRootMapped };

// "subuid ranges" or "root-mapped", for logs.
const char* ModeName(Mode mode);

struct Ids {
  Mode mode = Mode::kRootMapped;
  // Ready for LaunchSpec::fakeroot_uid_map / fakeroot_gid_map.
  std::vector<launch::IdMapping> uid_map;
  std::vector<launch::IdMapping> gid_map;
  std::string notice;  // an INFO line for the caller, or ""
};

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;  // login name from the host's database; "" without one
};

struct Sources {
  std::string subuid_path = "/etc/subuid";
  std::string subgid_path = "/etc/subgid";
  bool user_mode = false;
};

absl::StatusOr<Ids> ResolveIds(const Sources& sources, const Caller& caller);

// The root-mapped maps for `caller`, with `notice`.
Ids RootMapped(const Caller& caller, std::string notice);

// The subid ranges mode's maps.
Ids WithRanges(const Caller& caller, subid::Range uids, subid::Range gids);

}  // namespace berth::daemon::fakeroot
