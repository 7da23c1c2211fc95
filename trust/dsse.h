// DSSE envelopes (Apptainer's `sign --key`): the SIF image metadata signed
// with a plain RSA, ECDSA or Ed25519 key over the DSSE pre-authentication
// encoding, verified with OpenSSL.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace berth::trust {

inline constexpr char kSifMetadataPayloadType[] = "application/vnd.sylabs.sif-metadata+json";

struct PkeyFree {
  void operator()(EVP_PKEY* k) const;
};

class PemKey {
 public:
  // Loads a PEM public key (verification) or private key (signing).
  static absl::StatusOr<PemKey> LoadPublic(const std::string& path);
  static absl::StatusOr<PemKey> LoadPrivate(const std::string& path);
  // The public key of a certificate (verify --certificate); `path` names it in messages.
  static absl::StatusOr<PemKey> FromCertificate(X509* cert, const std::string& path);

  EVP_PKEY* get() const { return key_.get(); }
  const std::string& path() const { return path_; }
  // "SHA256:<unpadded base64 of the SHA-256 of the DER public key>", as Apptainer writes.
  const std::string& key_id() const { return key_id_; }
  std::string type_name() const;  // "RSA", "ECDSA", "Ed25519"

 private:
  std::unique_ptr<EVP_PKEY, PkeyFree> key_;
  std::string path_;
  std::string key_id_;
};

// True when `bytes` looks like a DSSE envelope (a JSON object), not OpenPGP.
bool LooksLikeDsse(const std::string& bytes);

struct DsseVerified {
  std::string payload;
  std::string key_path;  // the key that verified a signature
};

// Verifies `envelope` (payload type must be the SIF metadata type): at least
// one of its signatures must verify with one of `keys`.
absl::StatusOr<DsseVerified> VerifyDsse(const std::string& envelope,
                                        const std::vector<PemKey>& keys);

// Signs `payload` (SIF metadata JSON) into an envelope with `key`.
absl::StatusOr<std::string> SignDsse(const std::string& payload, const PemKey& key);

}  // namespace berth::trust
