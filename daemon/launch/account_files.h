// The container's /etc/passwd and /etc/group: the image's files plus entries
// for the caller, so that `id`, `whoami`, `ls -l` and shells that look up
// $HOME work inside, as in Apptainer.
//
// Pure text functions; the launcher writes their output into its staging
// layer, where it shadows the image's files (image_paths.h) without changing
// the image.
//
// Privilege: none; ReadImageFile reads the image (mounted by the daemon)
// with the daemon's credentials, resolving inside the image only.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch {

struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
};

// The image's passwd with `entry` in place of any line with its name or uid.
std::string MergePasswd(absl::string_view image_passwd, const PasswdEntry& entry);

// The image's group file with `user` added as a member of each of `groups`
// it has; groups it lacks are appended under the given names (a gid with no
// name, or whose name the image already uses for another gid, is skipped).
std::string MergeGroup(absl::string_view image_group, absl::string_view user,
                       const std::vector<std::pair<gid_t, std::string>>& groups);

struct AccountFiles {
  std::string passwd;
  std::string group;
};

// Both files for a launch as `identity`. With fakeroot the caller is root
// inside, so only a missing root entry is added. Refuses names containing
// ':' or a newline, which would forge extra entries.
absl::StatusOr<AccountFiles> MakeAccountFiles(absl::string_view image_passwd,
                                              absl::string_view image_group,
                                              const Identity& identity, bool fakeroot);

// The contents of a regular file of the image ("" when absent), resolved
// inside the image, at most `limit` bytes.
absl::StatusOr<std::string> ReadImageFile(int image_fd, absl::string_view clean, size_t limit);

}  // namespace berth::daemon::launch
