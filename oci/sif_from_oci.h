// OCI image -> SIF conversion: the layers become one squashfs, written
// straight from the tar streams, plus Apptainer's /.singularity.d layout.
//
// `berth pull docker://…` and the local transports hand this module an image
// whose blobs are already on disk and digest-verified. It applies the layers
// with OCI whiteouts and opaque directories, keeps ownership, modes, mtimes,
// xattrs, hardlinks, symlinks and device nodes, and builds the squashfs with
// libsquashfs in memory-bounded streaming fashion: nothing is extracted onto
// the host, so a user-mode daemon (which cannot mknod or chown) converts the
// same images root does, and hostile tar paths never touch a real directory.
// Layers are read top-down, so a file that a higher layer replaces, whites out
// or hides under an opaque directory is skipped and each surviving file's data
// is compressed exactly once.
//
// The SIF matches what `apptainer pull docker://…` writes: group 1 holds the
// OCI config as JSON.Generic `oci-config.json` and the primary squashfs
// partition; the header carries Apptainer's launch script.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::oci {

// One layer blob on disk (compressed or plain tar), already digest-verified
// by whoever fetched it. The converter only preads it, from offset 0, and may
// read it more than once.
struct OciLayer {
  UniqueFd fd;
  std::string media_type;  // decides nothing by itself: gzip/zstd/plain are detected
  std::string digest;      // for error messages
};

struct OciImage {
  std::string config_json;       // the raw image config blob (verified)
  std::vector<OciLayer> layers;  // bottom first, as in the manifest
};

enum class SquashfsCompression { kGzip, kZstd };

struct SifBuildOptions {
  SquashfsCompression compression = SquashfsCompression::kGzip;  // Apptainer's default
  int level = 0;  // the compressor's level; 0 = its default
  // Timestamps for the files berth generates (/.singularity.d, SIF header);
  // -1 = now. Set it (e.g. from SOURCE_DATE_EPOCH) for reproducible output.
  int64_t timestamp = -1;
  // Worker threads compressing squashfs blocks; 0 = one per CPU.
  unsigned threads = 0;
  // Refuse images whose layers expand beyond this (decompression bombs).
  int64_t max_uncompressed_bytes = int64_t{256} << 30;
  int64_t max_entries = 10'000'000;
};

// What the conversion did, for the caller's INFO lines.
struct ConversionStats {
  int64_t files = 0;  // non-directory entries in the final tree
  int64_t directories = 0;
  int64_t skipped_entries = 0;  // layer entries hidden by higher layers or whiteouts
  int64_t squashfs_bytes = 0;
  // xattrs squashfs cannot hold (only user., trusted., security. exist there),
  // and config Env names that are no shell identifier (left out of
  // 10-docker2singularity.sh). The caller should warn when non-zero.
  int64_t dropped_xattrs = 0;
  std::vector<std::string> dropped_env;
};

// Writes the SIF for `image` to `out_fd`, which must be an empty, writable
// regular file (the caller's temp file: the caller renames it into place on
// success). Contract on failure: the error is one line naming the layer and
// entry; `out_fd` is truncated to zero bytes (best effort) and, whatever
// happened, never holds a SIF header, because the header is written last.
// Hostile layers (paths with "..", absolute paths, entries under a symlink,
// bad whiteouts, hardlinks to missing targets, corrupt or truncated
// compression, decompression bombs) fail the whole conversion.
absl::StatusOr<ConversionStats> WriteSifFromOci(const OciImage& image, int out_fd,
                                                const SifBuildOptions& options);

}  // namespace berth::oci
