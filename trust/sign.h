// Signing a SIF image (formats.md §2.1-2.2): one Signature object per signed
// group holding the PGP clear-signed (or DSSE-enveloped) image metadata, with
// the hash type and the signer's fingerprint in its descriptor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sif/image.h"
#include "trust/dsse.h"
#include "trust/pgp.h"

namespace berth::trust {

struct SignSelection {
  std::vector<uint32_t> groups;   // --group-id (default: every group)
  std::vector<uint32_t> objects;  // --sif-id: list only this object, link to its group
};

struct SignedObject {
  uint32_t signature_id = 0;
  uint32_t group_id = 0;
};

// Signs with the PGP secret key `fingerprint` of `pgp` (empty: the default
// key), or, when `dsse_key` is set, with that PEM key in a DSSE envelope.
// `image` must be open read-write.
absl::StatusOr<std::vector<SignedObject>> SignImage(sif::Image& image, const SignSelection& sel,
                                                    GpgContext* pgp, const std::string& fingerprint,
                                                    const PemKey* dsse_key);

// The descriptor hash type for a clear-signed message's "Hash:" header.
absl::StatusOr<int32_t> HashTypeOfClearSigned(const std::string& message);

}  // namespace berth::trust
