#include "daemon/pull/image_resolve.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace berth::daemon::pull {
namespace {

const std::vector<std::string>& AcceptAll() {
  static const std::vector<std::string> types = {oras::kOciManifest, oras::kOciIndex,
                                                 oras::kDockerManifest, oras::kDockerList};
  return types;
}

}  // namespace

absl::StatusOr<ResolvedImage> ResolveImage(oras::RegistryClient& client, const oras::Reference& ref,
                                           const std::string& arch) {
  ASSIGN_OR_RETURN(oras::FetchedManifest top, client.GetManifest(ref.ManifestRef(), AcceptAll()));
  absl::StatusOr<oci::ManifestDocument> parsed =
      oci::ParseManifestDocument(top.bytes, top.media_type);
  if (!parsed.ok()) return Annotate(parsed.status(), "the registry's manifest");
  oci::ManifestDocument doc = *std::move(parsed);
  if (auto* manifest = std::get_if<oci::ImageManifest>(&doc)) {
    return ResolvedImage{top.digest, std::move(top.bytes), std::move(*manifest)};
  }
  const auto& index = std::get<oci::ImageIndex>(doc);
  oci::PlatformSpec want = oci::HostPlatform();
  if (!arch.empty()) {
    ASSIGN_OR_RETURN(want, oci::ParsePlatformSpec(arch));
  }
  ASSIGN_OR_RETURN(oci::Descriptor entry, oci::SelectPlatform(index, want));
  if (!oras::IsValidDigest(entry.digest)) {
    return absl::InvalidArgumentError("the index names a manifest digest berth cannot verify");
  }
  ASSIGN_OR_RETURN(oras::FetchedManifest m, client.GetManifest(entry.digest, AcceptAll()));
  ASSIGN_OR_RETURN(oci::ImageManifest manifest, oci::ParseImageManifest(m.bytes, m.media_type));
  return ResolvedImage{m.digest, std::move(m.bytes), std::move(manifest)};
}

}  // namespace berth::daemon::pull
