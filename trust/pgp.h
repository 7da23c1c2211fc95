// OpenPGP through gpgme: clear-signing and verifying signature payloads, and
// the keyring operations behind `berth key`.
//
// Every operation runs against one GnuPG home directory: the user's own (so
// gpg-agent and pinentry work as for any gpg use) or a private one the daemon
// builds from the node's global keyring. Real gpg does the cryptography;
// nothing here parses OpenPGP packets.
#pragma once

#include <gpgme.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::trust {

class GpgContext {
 public:
  // `home` empty: the user's GnuPG home ($GNUPGHOME, else ~/.gnupg).
  static absl::StatusOr<GpgContext> Open(const std::string& home);
  ~GpgContext();
  GpgContext(GpgContext&& other) noexcept;
  GpgContext& operator=(GpgContext&& other) noexcept;
  GpgContext(const GpgContext&) = delete;

  gpgme_ctx_t get() const { return ctx_; }
  const std::string& home() const { return home_; }

 private:
  GpgContext(gpgme_ctx_t ctx, std::string home) : ctx_(ctx), home_(std::move(home)) {}
  gpgme_ctx_t ctx_ = nullptr;
  std::string home_;
};

struct PgpSigner {
  std::string fingerprint;  // primary key, 40 upper-case hex digits
  std::string entity;       // first user ID, "Name (comment) <email>"
};

struct PgpVerified {
  std::string plaintext;  // the signed text, exactly as gpg returns it
  PgpSigner signer;
};

// Verifies an OpenPGP cleartext-signed message against the context's
// keyring. Exactly one signature must be present and good, made with an
// allowed hash (SHA-224/256/384/512: CVE-2022-39237), by a key in the keyring.
absl::StatusOr<PgpVerified> VerifyClearSigned(GpgContext& gpg, const std::string& message);

// Clear-signs `text` with the secret key `fingerprint` (empty: gpg's default
// key) using SHA-256. The passphrase comes from $BERTH_SIGN_PASSPHRASE or
// $APPTAINER_SIGN_PASSPHRASE (loopback pinentry), else from gpg-agent.
absl::StatusOr<std::string> ClearSign(GpgContext& gpg, const std::string& text,
                                      const std::string& fingerprint);

// The signer of a secret key selection: `fingerprint`, or the default key.
absl::StatusOr<PgpSigner> FindSecretKey(GpgContext& gpg, const std::string& fingerprint);

struct KeyInfo {
  std::string fingerprint;
  std::vector<std::string> user_ids;
  std::string algorithm;  // "rsa3072", "ed25519", ...
  long created = 0;
  bool secret = false;
};

absl::StatusOr<std::vector<KeyInfo>> ListKeys(GpgContext& gpg, bool secret);
// Imports OpenPGP key data (binary or armored); returns the fingerprints
// imported. `secret`, if given, gets those whose secret key was in the data.
absl::StatusOr<std::vector<std::string>> ImportKeys(GpgContext& gpg, const std::string& data,
                                                    std::vector<std::string>* secret = nullptr);
// Exports public (or secret) keys matching `pattern` (empty: all).
absl::StatusOr<std::string> ExportKeys(GpgContext& gpg, const std::string& pattern, bool secret,
                                       bool armor);
// The halves of a key pair `DeleteKey` removes: Apptainer's `key remove`
// default and -p, its -s, its -b (or -p -s).
enum class KeyPart { kPublic, kSecret, kBoth };
// Deletes `part` of the key with primary `fingerprint`. GnuPG keeps no secret
// key without its public key, so kPublic is refused while the secret key is
// there (remove it with kSecret first, or use kBoth); kSecret keeps the
// public key (it is exported and imported back around the deletion).
absl::Status DeleteKey(GpgContext& gpg, const std::string& fingerprint, KeyPart part);
// Sets a new passphrase on the secret key `fingerprint` (Apptainer's
// `key import --new-password`). With `new_pass` (non-empty), gpg asks us
// (loopback pinentry): `old_pass` answers gpg-agent's question for the
// current passphrase, which it asks only for a protected key whose passphrase
// it has not cached (KEYINFO says which). Without `new_pass`, gpg-agent's
// pinentry asks for both, as gpg --passwd does.
absl::Status ChangePassphrase(GpgContext& gpg, const std::string& fingerprint,
                              const std::optional<std::string>& old_pass,
                              const std::optional<std::string>& new_pass);
// Creates a new RSA signing key pair of `rsa_bits` (1024..4096) for
// `user_id`; returns its fingerprint.
absl::StatusOr<std::string> CreateKeyPair(GpgContext& gpg, const std::string& user_id,
                                          const std::optional<std::string>& passphrase,
                                          int rsa_bits = 4096);

// The sign passphrase from the environment, if set.
std::optional<std::string> PassphraseFromEnvironment();

// Normalises a user-supplied fingerprint (spaces allowed, any case) to 40
// upper-case hex digits; refuses anything else.
absl::StatusOr<std::string> NormalizeFingerprint(const std::string& text);

}  // namespace berth::trust
