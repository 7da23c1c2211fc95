// Verifying the signatures of a SIF image (formats.md §2.2-2.3): current
// PGP clear-signed JSON metadata, DSSE envelopes, and (opt-in) the legacy
// formats, one task per group or per selected object, with the reference's
// selection rules and AllSignedBy/AnySignedBy fingerprint queries.
//
// Failures say exactly what broke: which object's descriptor or data changed,
// which signer is unknown, which group has no signature, which object was
// added after signing.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sif/image.h"
#include "trust/dsse.h"
#include "trust/pgp.h"

namespace berth::trust {

struct VerifySelection {
  std::vector<uint32_t> groups;   // --group-id
  std::vector<uint32_t> objects;  // --sif-id
  bool all = false;               // --all (legacy: every grouped object)
  bool legacy = false;            // --legacy-insecure
};

struct KeyMaterial {
  GpgContext* pgp = nullptr;                  // OpenPGP keyring, or none
  GpgContext* pgp_global = nullptr;           // tried when `pgp` lacks the signer's key
  const std::vector<PemKey>* dsse = nullptr;  // --key, or none
  // ECL semantics: a signature that fails only cryptographically (bad or
  // unknown key) is recorded as unvalidated instead of failing the image.
  bool tolerate_invalid_signatures = false;
};

enum class SignatureKind { kPgp, kLegacy, kDsse };

struct SignatureCheck {
  uint32_t signature_id = 0;
  SignatureKind kind = SignatureKind::kPgp;
  std::vector<uint32_t> verified;  // object IDs whose integrity was checked
  std::string fingerprint;         // PGP signer (upper-case hex); empty for DSSE
  std::string entity;              // PGP user ID
  std::string key_path;            // DSSE key that verified
  bool global_key = false;         // the signer's key came from pgp_global
};

struct VerifyReport {
  std::vector<SignatureCheck> signatures;
  // Fingerprints (upper-case hex) whose signatures failed cryptographically
  // (only with tolerate_invalid_signatures).
  std::set<std::string> unvalidated;
};

// Runs every verification task; the first failure is the error.
absl::StatusOr<VerifyReport> VerifyImage(const sif::Image& image, const VerifySelection& selection,
                                         const KeyMaterial& keys);

// Descriptor fingerprints of the signatures of the selected tasks, without
// any cryptography: present in every task (all) or in at least one (any).
struct SignedBy {
  std::set<std::string> all;
  std::set<std::string> any;
};
absl::StatusOr<SignedBy> SignersOf(const sif::Image& image, const VerifySelection& selection);

// The build-time check (definition-file `Fingerprints:`): every group must
// verify against `pgp`, and every fingerprint in `required` must have signed
// every group. Fails with "image not signed by required entities" otherwise.
absl::Status VerifySignedByAll(const sif::Image& image, GpgContext& pgp,
                               const std::vector<std::string>& required);

}  // namespace berth::trust
