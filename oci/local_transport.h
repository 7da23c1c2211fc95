// Local image transports: `oci:DIR[:tag]`, `oci-archive:PATH[:tag]` and
// `docker-archive:PATH[:ref]`, resolved to an OciImage for WriteSifFromOci.
//
// These inputs are user files, as hostile as a registry reply. The daemon
// opens them as the caller and hands the descriptors over, so everything here
// works from descriptors: the layout directory is walked with openat and
// O_NOFOLLOW (no symlink can lead out of it) through an opener the daemon
// makes open as the caller (no file below it is opened as root), and
// every blob is checked against its digest and size before it is used.
// Archives are read once with libarchive; the members needed are copied into
// unnamed files (O_TMPFILE) in a scratch directory the caller chooses, so
// nothing named is ever created from an archive path.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "oci/manifest.h"
#include "oci/sif_from_oci.h"

namespace berth::oci {

enum class LocalTransport { kOciDir, kOciArchive, kDockerArchive };

struct LocalReference {
  LocalTransport transport = LocalTransport::kOciDir;
  std::string path;
  std::string tag;  // oci: ref.name annotation; docker-archive: RepoTags entry; may be empty
};

// Parses "oci:DIR[:TAG]", "oci-archive:PATH[:TAG]", "docker-archive:PATH[:REF]".
// The tag is what follows the last ':' after the path's last '/'; for
// docker-archive the REF may itself hold a ':' (repo:tag), so there the path
// ends at the first ':' instead.
absl::StatusOr<LocalReference> ParseLocalReference(std::string_view text);

// How the files below a layout directory are opened: openat(dir_fd, name,
// flags) for one path component `name`. Whose rights it uses is the
// caller's choice: the daemon passes one that opens with its caller's
// filesystem identity (daemon/image/open_as_caller.h), so a directory handed
// to it never lends the daemon's rights below it.
using OpenAtFn =
    std::function<absl::StatusOr<UniqueFd>(int dir_fd, const std::string& name, int flags)>;

// An OpenAtFn with the process's own rights, for tools that run as the user.
absl::StatusOr<UniqueFd> OpenAtWithOwnRights(int dir_fd, const std::string& name, int flags);

// An OCI image layout directory (`dir_fd` opened O_DIRECTORY by the caller),
// every file below it opened with `open_at`. `tag` picks the index entry
// whose org.opencontainers.image.ref.name equals it; empty means the only
// entry. Nested indexes are resolved for `platform`.
absl::StatusOr<OciImage> ReadOciLayout(int dir_fd, std::string_view tag,
                                       const PlatformSpec& platform, const OpenAtFn& open_at);

// A tar of an OCI layout (oci-archive) or a `docker save` tarball
// (docker-archive), read from `archive_fd`. Needed members are copied into
// O_TMPFILE files under `scratch_dir_fd`, which the returned image owns.
absl::StatusOr<OciImage> ReadOciArchive(int archive_fd, std::string_view tag,
                                        const PlatformSpec& platform, int scratch_dir_fd);
absl::StatusOr<OciImage> ReadDockerArchive(int archive_fd, std::string_view ref,
                                           int scratch_dir_fd);

}  // namespace berth::oci
