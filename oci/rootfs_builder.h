// Merges OCI layer tar streams into one squashfs image, top layer first.
//
// Internal to oci/ (sif_from_oci.cc drives it). The builder keeps the merged
// directory tree in memory (names and metadata only) while file data goes
// straight from libarchive into libsquashfs's block processor. Layers are fed
// from the top down: a path already provided by a higher layer, whited out by
// one (.wh.NAME) or below a higher opaque directory (.wh..wh..opq) is skipped,
// so only the data that survives is compressed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oci/sif_from_oci.h"
#include "oci/singularity_layout.h"

namespace berth::oci {

// Where the squashfs goes: `fd` from byte `offset` on (pwrite only).
struct SquashfsTarget {
  int fd = -1;
  int64_t offset = 0;
};

class RootfsBuilder {
 public:
  static absl::StatusOr<std::unique_ptr<RootfsBuilder>> Create(const SquashfsTarget& target,
                                                               const SifBuildOptions& options);
  ~RootfsBuilder();

  // Generated files that override the layers; call before any layer.
  absl::Status AddGeneratedFiles(const SingularityLayout& layout, int64_t mtime);
  // Layers from the top (last in the manifest) to the bottom.
  absl::Status AddLayer(const OciLayer& layer, int index);
  // Directories and symlinks created only where the layers left nothing.
  absl::Status AddMissing(const SingularityLayout& layout, int64_t mtime);
  // Resolves deferred hardlinks, writes the tables and the super block.
  // Returns the squashfs size (padded to 4 KiB).
  absl::StatusOr<int64_t> Finish(ConversionStats& stats);

 private:
  struct State;
  explicit RootfsBuilder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace berth::oci
