// Opening a user's path with that user's permissions, inside the root daemon.
//
// berthd serves every user of a node, so a path in a request (an image, a
// --bind source, a working directory) must be opened the way the caller would
// open it, never by root on the caller's behalf (security.md B3.2, the
// confused-deputy class). The daemon is multi-threaded (gRPC), so the switch
// is made to the *calling thread's* filesystem identity only: raw
// setgroups/setfsgid/setfsuid system calls (glibc's wrappers broadcast some of
// these to every thread), the open, and an unconditional, verified restore.
// What the caller gets is a descriptor; everything after works on it, never on
// the path again, so symlink swaps after the open gain nothing.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon::image {

// Who we open as: the uid/gid/groups the kernel reported for the socket peer
// (PeerIdentity), never anything a request says.
struct CallerCreds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

// Checks that `path` is one a request may name: absolute, no NUL byte, shorter
// than PATH_MAX and without `..` components. `what` names it in the error
// ("image path", "bind source").
absl::Status ValidateCallerPath(const std::string& path, const char* what = "path");

// Opens `path` with open(2) `flags` (O_CLOEXEC added; O_CREAT/O_TMPFILE are
// refused) using the caller's filesystem identity. Magic links
// (/proc/self/fd/N, which would name the daemon's own files) are not followed.
// Privilege: when the daemon runs as root, temporarily takes the caller's
// fsuid/fsgid/groups on the calling thread only, and restores root before
// returning (a failed restore aborts the process: a thread stuck with a user's
// identity must not serve the next request). In user mode (the daemon is not
// root) it is a plain open, and refuses a uid other than the daemon's own.
absl::StatusOr<UniqueFd> OpenAsCaller(const CallerCreds& creds, const std::string& path, int flags);

// An O_PATH descriptor for a --bind source, resolved as the caller, after
// checking (as the caller, with faccessat2 AT_EACCESS) that the caller has
// `access_mode` (R_OK by default) on it: O_PATH alone would prove only that
// the caller can reach the path, not that it may read what a bind exposes.
// Privilege: as OpenAsCaller.
absl::StatusOr<UniqueFd> OpenPathAsCaller(const CallerCreds& creds, const std::string& path,
                                          int access_mode = 4 /* R_OK */);

// Opens `name`, one path component (no '/', not "." or ".."), beneath the
// directory `dir_fd` with open(2) `flags` and the caller's filesystem
// identity: the kernel checks the caller's search permission on `dir_fd` and
// their access to the file, so a directory the caller handed over (or one
// opened for them) lends nothing below it that they could not open
// themselves. Same privilege and user-mode rules as OpenAsCaller.
absl::StatusOr<UniqueFd> OpenAtAsCaller(const CallerCreds& creds, int dir_fd,
                                        const std::string& name, int flags);

// Reads the regular file at `path` (relative) in the tree whose root is
// `root_fd`, with the caller's filesystem identity, resolved inside that
// tree (RESOLVE_IN_ROOT | RESOLVE_NO_XDEV: a symlink to "/etc/shadow" or
// "../../.." names a file of the tree, never of the host). nullopt when
// nothing, or no regular file, is there; the caller's EACCES is an error.
// For files of a user's sandbox the daemon itself needs (its /etc/passwd).
// Privilege: as OpenAsCaller.
absl::StatusOr<std::optional<std::string>> ReadInRootAsCaller(const CallerCreds& creds, int root_fd,
                                                              const std::string& path,
                                                              int64_t max_size);

// A tree's /etc/passwd and /etc/group ("" where missing), read with
// ReadInRootAsCaller (4 MiB each at most): the files the launcher merges
// into the container's generated ones, from a tree the caller controls (a
// sandbox, a build's staged root), so never read as root.
struct AccountTexts {
  std::string passwd, group;
};
absl::StatusOr<AccountTexts> ReadAccountFilesAsCaller(const CallerCreds& creds, int root_fd);

// Makes the directory `name` (one path component) beneath `dir_fd` with the
// caller's filesystem identity when it is missing (theirs then, with `mode`
// exactly, whatever the umask), and opens it (O_RDONLY | O_DIRECTORY) as
// the caller. A symlink there is refused, never followed: a name the caller
// planted cannot point the daemon at another directory (-W's tmp, home,
// scratch). Same privilege and user-mode rules as OpenAsCaller.
absl::StatusOr<UniqueFd> MakeDirAtAsCaller(const CallerCreds& creds, int dir_fd,
                                           const std::string& name, mode_t mode);

}  // namespace berth::daemon::image
