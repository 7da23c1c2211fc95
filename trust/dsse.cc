#include "trust/dsse.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace berth::trust {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string Base64Encode(const std::string& in, bool pad) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  if (!pad) {
    while (!out.empty() && out.back() == '=') out.pop_back();
  }
  return out;
}

absl::StatusOr<std::string> Base64Decode(const std::string& in) {
  std::unique_ptr<EVP_ENCODE_CTX, decltype(&EVP_ENCODE_CTX_free)> ctx(EVP_ENCODE_CTX_new(),
                                                                      EVP_ENCODE_CTX_free);
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = 0, tail = 0;
  EVP_DecodeInit(ctx.get());
  if (EVP_DecodeUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) < 0 ||
      EVP_DecodeFinal(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &tail) != 1) {
    return absl::InvalidArgumentError("malformed base64");
  }
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

std::string Pae(const std::string& type, const std::string& body) {
  return absl::StrCat("DSSEv1 ", type.size(), " ", type, " ", body.size(), " ", body);
}

// Ed25519 signs the message itself; RSA (PKCS#1 v1.5) and ECDSA sign its SHA-256.
const EVP_MD* DigestFor(EVP_PKEY* key) {
  return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

absl::StatusOr<std::string> KeyIdOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return absl::InternalError("encoding the public key");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  return absl::StrCat("SHA256:",
                      Base64Encode(std::string(reinterpret_cast<char*>(md), md_len), false));
}

absl::Status CheckKeyType(const std::string& path, EVP_PKEY* key) {
  int id = EVP_PKEY_get_id(key);
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC && id != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": only RSA, ECDSA and Ed25519 keys are supported"));
  }
  return absl::OkStatus();
}

absl::Status Load(const std::string& path, bool is_private,
                  std::unique_ptr<EVP_PKEY, PkeyFree>& out) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return absl::NotFoundError(absl::StrCat("cannot read key file ", path));
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a PEM ", is_private ? "private" : "public", " key"));
  }
  out.reset(key);
  return CheckKeyType(path, key);
}

}  // namespace

void PkeyFree::operator()(EVP_PKEY* k) const {
  EVP_PKEY_free(k);
}

std::string PemKey::type_name() const {
  switch (EVP_PKEY_get_id(key_.get())) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_EC:
      return "ECDSA";
    default:
      return "Ed25519";
  }
}

absl::StatusOr<PemKey> PemKey::LoadPublic(const std::string& path) {
  PemKey k;
  k.path_ = path;
  RETURN_IF_ERROR(Load(path, false, k.key_));
  ASSIGN_OR_RETURN(k.key_id_, KeyIdOf(k.key_.get()));
  return k;
}

absl::StatusOr<PemKey> PemKey::LoadPrivate(const std::string& path) {
  PemKey k;
  k.path_ = path;
  RETURN_IF_ERROR(Load(path, true, k.key_));
  ASSIGN_OR_RETURN(k.key_id_, KeyIdOf(k.key_.get()));
  return k;
}

absl::StatusOr<PemKey> PemKey::FromCertificate(X509* cert, const std::string& path) {
  PemKey k;
  k.path_ = path;
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the certificate's key"));
  }
  EVP_PKEY_up_ref(key);
  k.key_.reset(key);
  RETURN_IF_ERROR(CheckKeyType(path, key));
  ASSIGN_OR_RETURN(k.key_id_, KeyIdOf(key));
  return k;
}

bool LooksLikeDsse(const std::string& bytes) {
  size_t i = bytes.find_first_not_of(" \t\r\n");
  return i != std::string::npos && bytes[i] == '{';
}

absl::StatusOr<DsseVerified> VerifyDsse(const std::string& envelope,
                                        const std::vector<PemKey>& keys) {
  nlohmann::json doc = nlohmann::json::parse(envelope, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("payloadType") ||
      !doc["payloadType"].is_string() || !doc.contains("payload") || !doc["payload"].is_string() ||
      !doc.contains("signatures") || !doc["signatures"].is_array()) {
    return absl::InvalidArgumentError("malformed DSSE envelope");
  }
  const std::string type = doc["payloadType"].get<std::string>();
  if (type != kSifMetadataPayloadType) {
    return absl::InvalidArgumentError(
        absl::StrCat("DSSE payload type '", type, "' is not SIF image metadata"));
  }
  ASSIGN_OR_RETURN(std::string payload, Base64Decode(doc["payload"].get<std::string>()));
  if (keys.empty()) {
    return absl::FailedPreconditionError("the image has a DSSE signature; verify it with --key");
  }
  const std::string pae = Pae(type, payload);
  for (const nlohmann::json& s : doc["signatures"]) {
    if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string()) continue;
    auto sig = Base64Decode(s["sig"].get<std::string>());
    if (!sig.ok()) continue;
    for (const PemKey& key : keys) {
      std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
      if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(key.get()), nullptr, key.get()) != 1)
        continue;
      if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                           sig->size(), reinterpret_cast<const unsigned char*>(pae.data()),
                           pae.size()) == 1) {
        return DsseVerified{std::move(payload), key.path()};
      }
    }
  }
  return absl::PermissionDeniedError("no DSSE signature verifies with the given key(s)");
}

absl::StatusOr<std::string> SignDsse(const std::string& payload, const PemKey& key) {
  const std::string pae = Pae(kSifMetadataPayloadType, payload);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(key.get()), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(pae.data()),
                     pae.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing with ", key.path()));
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(pae.data()), pae.size()) != 1) {
    return absl::InternalError(absl::StrCat("signing with ", key.path()));
  }
  sig.resize(len);
  nlohmann::ordered_json env;
  env["payloadType"] = kSifMetadataPayloadType;
  env["payload"] = Base64Encode(payload, true);
  env["signatures"] = nlohmann::ordered_json::array(
      {nlohmann::ordered_json{{"keyid", key.key_id()}, {"sig", Base64Encode(sig, true)}}});
  return env.dump();
}

}  // namespace berth::trust
