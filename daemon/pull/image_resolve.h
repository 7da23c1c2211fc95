// From a reference to one image manifest: fetch what the tag names with the
// caller's client; if it is an index (or Docker manifest list), pick the
// platform's entry (oci/manifest.h: linux/<arch>, the node's arch by
// default) and fetch that manifest by digest. Both documents are parsed by
// oci/manifest.h (strict, size-capped, digest-checked).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "oci/manifest.h"
#include "oras/reference.h"
#include "oras/registry_client.h"

namespace berth::daemon::pull {

struct ResolvedImage {
  std::string digest;  // of the image manifest (not of the index)
  std::string bytes;   // the manifest as served
  oci::ImageManifest manifest;
};

absl::StatusOr<ResolvedImage> ResolveImage(oras::RegistryClient& client, const oras::Reference& ref,
                                           const std::string& arch);

}  // namespace berth::daemon::pull
