// OCI / Docker image documents: manifests, indexes, image configs, digests.
//
// Registries and on-disk layouts hand berth JSON documents that describe an
// image: an index (or Docker manifest list) that points at one manifest per
// platform, a manifest that names a config blob and layer blobs, and the config
// itself (Env, Entrypoint, Cmd, ...). Every byte is hostile, so parsing here is
// strict: size limits, duplicate JSON keys refused, digests checked against the
// algorithms we can verify, the document's mediaType checked against the
// content type it was served with and against its shape (CVE-2021-41190: an
// ambiguous document carrying both `manifests` and `layers` is refused).
// nlohmann-json exceptions never leave this file; errors are one-line
// absl::Status values. The structs carry only what berth uses.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace berth::oci {

// Media types berth understands.
inline constexpr std::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
// The Accept header a registry client should send for manifests.
inline constexpr std::string_view kManifestAcceptHeader =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// Limits on what a hostile document can make us hold. The distribution spec
// lets registries cap manifests at 4 MiB; configs of real images are < 100 KiB.
inline constexpr int64_t kMaxManifestBytes = 4 << 20;
inline constexpr int64_t kMaxConfigBytes = 8 << 20;
inline constexpr size_t kMaxLayers = 1024;
inline constexpr size_t kMaxIndexEntries = 4096;
inline constexpr int kMaxJsonDepth = 64;

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", "arm", ...
  std::string variant;       // "v8", "v7", or empty
  std::string os_version;
  std::vector<std::string> os_features;
};

// A content descriptor (OCI image-spec descriptor.md).
struct Descriptor {
  std::string media_type;
  std::string digest;  // validated: "sha256:<64 lc hex>" or "sha512:<128 lc hex>"
  int64_t size = 0;    // >= 0
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;  // index / manifest-list entries only
  std::vector<std::string> urls;     // foreign / non-distributable layers
  std::optional<std::string> data;   // embedded content, already base64-decoded
  std::string artifact_type;
};

// An OCI image manifest or a Docker schema 2 manifest.
struct ImageManifest {
  std::string media_type;  // the effective type (explicit or inferred)
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
  std::optional<Descriptor> subject;
  std::string artifact_type;
};

// An OCI image index or a Docker manifest list.
struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

using ManifestDocument = std::variant<ImageManifest, ImageIndex>;

// Parses a manifest or an index. `content_type` is the type the registry
// served (Content-Type, parameters ignored) or the descriptor's mediaType that
// pointed here; pass "" when unknown. When both it and the document's own
// mediaType are present they must agree. Documents larger than
// kMaxManifestBytes are refused.
absl::StatusOr<ManifestDocument> ParseManifestDocument(std::string_view bytes,
                                                       std::string_view content_type);
// Same, but the document must be an image manifest / an index.
absl::StatusOr<ImageManifest> ParseImageManifest(std::string_view bytes,
                                                 std::string_view content_type);
absl::StatusOr<ImageIndex> ParseImageIndex(std::string_view bytes, std::string_view content_type);

bool IsManifestMediaType(std::string_view media_type);  // OCI or Docker image manifest
bool IsIndexMediaType(std::string_view media_type);     // OCI index or Docker list

// --- Platform selection -------------------------------------------------

// What the caller wants from an index. Empty architecture = the host's.
struct PlatformSpec {
  std::string os = "linux";
  std::string architecture;
  std::string variant;
};

// The host's platform in GOARCH terms (linux/amd64, linux/arm64/v8, ...).
PlatformSpec HostPlatform();

// Parses "ARCH", "OS/ARCH" or "OS/ARCH/VARIANT" (as --arch/--platform take
// them). Common aliases are normalised: x86_64 -> amd64, aarch64 -> arm64,
// armhf -> arm/v7, i386/i686 -> 386.
absl::StatusOr<PlatformSpec> ParsePlatformSpec(std::string_view text);

// The index entry for `want` (architecture defaulting to the host's). Only
// image-manifest entries are candidates. The variant matches as containerd
// matches it (arm64 entries without a variant count as v8; a request without
// a variant takes the architecture's default, then any). NotFound names the
// platforms the index offers.
absl::StatusOr<Descriptor> SelectPlatform(const ImageIndex& index, const PlatformSpec& want);

// "linux/arm64/v8"
std::string PlatformString(const Platform& p);

// --- Image config --------------------------------------------------------

// The parts of an OCI / Docker image config berth uses. Docker's `null`
// Entrypoint/Cmd and an absent one both read as empty.
struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string created;
  std::string user;
  std::vector<std::string> env;  // "NAME=value"; NAME non-empty, no NUL anywhere
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, validated digests
};

absl::StatusOr<ImageConfig> ParseImageConfig(std::string_view bytes);

// --- Digests and layers --------------------------------------------------

// OK for "sha256:<64 lower-case hex>" / "sha512:<128 lower-case hex>"; any
// other algorithm or encoding is refused because we could not verify it.
absl::Status ValidateDigest(std::string_view digest);
// "sha256:<hex of bytes>".
std::string Sha256Digest(std::string_view bytes);
// OK when `bytes` hash to `digest` (sha256 or sha512), else InvalidArgument /
// DataLoss naming both digests.
absl::Status VerifyDigest(std::string_view bytes, std::string_view digest);

enum class LayerCompression { kNone, kGzip, kZstd };

// Compression of a layer blob by its media type (OCI tar / tar+gzip /
// tar+zstd, their non-distributable forms, Docker rootfs diff and foreign
// types). Encrypted layers and anything else are refused.
absl::StatusOr<LayerCompression> LayerCompressionOf(std::string_view media_type);

}  // namespace berth::oci
