// Local image transports: `oci:DIR[:tag]`, `oci-archive:PATH[:tag]` and
// `docker-archive:PATH[:ref]`, resolved to an OciImage for WriteSifFromOci.
//
// These inputs are user files, as hostile as a registry reply. The daemon
// opens them as the caller and hands the descriptors over, so everything here
// works from descriptors: the layout directory is walked with openat and
// O_NOFOLLOW (no symlink can lead out of it, no path is resolved as root), and
// every blob is checked against its digest and size before it is used.
// Archives are read once with libarchive; the members needed are copied into
// unnamed files (O_TMPFILE) in a scratch directory the caller chooses, so
// nothing named is ever created from an archive path.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
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

// An OCI image layout directory (`dir_fd` opened O_DIRECTORY by the caller).
// `tag` picks the index entry whose org.opencontainers.image.ref.name equals
// it; empty means the only entry. Nested indexes are resolved for `platform`.
absl::StatusOr<OciImage> ReadOciLayout(int dir_fd, std::string_view tag,
                                       const PlatformSpec& platform);

// A tar of an OCI layout (oci-archive) or a `docker save` tarball
// (docker-archive), read from `archive_fd`. Needed members are copied into
// O_TMPFILE files under `scratch_dir_fd`, which the returned image owns.
absl::StatusOr<OciImage> ReadOciArchive(int archive_fd, std::string_view tag,
                                        const PlatformSpec& platform, int scratch_dir_fd);
absl::StatusOr<OciImage> ReadDockerArchive(int archive_fd, std::string_view ref,
                                           int scratch_dir_fd);

}  // namespace berth::oci
