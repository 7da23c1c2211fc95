// The ORAS artifact Apptainer pushes for a SIF (formats.md §3.1), built
// byte for byte as Apptainer (go-containerregistry) writes it, and checked
// on pull.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace berth::oras {

inline constexpr const char* kSifConfigType = "application/vnd.sylabs.sif.config.v1+json";
inline constexpr const char* kSifLayerType = "application/vnd.sylabs.sif.layer.v1.sif";
// What Singularity < 3.7 pushed (sic).
inline constexpr const char* kLegacySifLayerType = "appliciation/vnd.sylabs.sif.layer.tar";
// The config blob: the two bytes "{}".
inline constexpr const char* kSifConfigBytes = "{}";
inline constexpr const char* kSifConfigDigest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

struct SifLayer {
  std::string digest;  // sha256 of the whole file
  int64_t size = 0;
  std::string title;  // the file's basename
};

// The manifest JSON: compact, Go's field order and string escaping,
// annotations sorted and omitted when empty.
std::string BuildSifManifest(const SifLayer& layer,
                             const std::map<std::string, std::string>& annotations = {});

// The single SIF layer of a pulled manifest, after checking its shape:
// exactly one layer of the SIF type (or the legacy one), a valid digest and
// a size within `max_size`.
absl::StatusOr<SifLayer> SifLayerOf(const std::string& manifest_json, int64_t max_size);

}  // namespace berth::oras
