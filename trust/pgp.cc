#include "trust/pgp.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace berth::trust {
namespace {

absl::Status GpgError(absl::string_view what, gpgme_error_t err) {
  return absl::InternalError(absl::StrCat(what, ": ", gpgme_strerror(err)));
}

// gpgme_data_t owner.
class Data {
 public:
  Data() { gpgme_data_new(&d_); }
  explicit Data(const std::string& bytes) {
    gpgme_data_new_from_mem(&d_, bytes.data(), bytes.size(), /*copy=*/1);
  }
  ~Data() {
    if (d_ != nullptr) gpgme_data_release(d_);
  }
  Data(const Data&) = delete;
  gpgme_data_t get() const { return d_; }
  std::string Take() {
    size_t len = 0;
    char* mem = gpgme_data_release_and_get_mem(d_, &len);
    d_ = nullptr;
    std::string out(mem != nullptr ? mem : "", len);
    gpgme_free(mem);
    return out;
  }

 private:
  gpgme_data_t d_ = nullptr;
};

class Key {
 public:
  ~Key() {
    if (k_ != nullptr) gpgme_key_unref(k_);
  }
  gpgme_key_t* out() { return &k_; }
  gpgme_key_t get() const { return k_; }

 private:
  gpgme_key_t k_ = nullptr;
};

void InitGpgme() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    gpgme_set_locale(nullptr, LC_CTYPE, "C");
  });
}

gpgme_error_t PassphraseCallback(void* hook, const char*, const char*, int prev_was_bad, int fd) {
  const auto* pass = static_cast<const std::string*>(hook);
  if (prev_was_bad != 0) return gpg_error(GPG_ERR_BAD_PASSPHRASE);  // never loop on a bad one
  std::string line = *pass + "\n";
  gpgme_io_writen(fd, line.data(), line.size());
  return 0;
}

// With a passphrase from the environment, gpg asks us (loopback pinentry)
// instead of the agent's pinentry; `pass` must outlive the operation.
void UsePassphrase(GpgContext& gpg, const std::optional<std::string>& pass) {
  if (!pass.has_value()) return;
  gpgme_set_pinentry_mode(gpg.get(), GPGME_PINENTRY_MODE_LOOPBACK);
  gpgme_set_passphrase_cb(gpg.get(), PassphraseCallback, const_cast<std::string*>(&*pass));
}

bool AllowedHash(gpgme_hash_algo_t algo) {
  return algo == GPGME_MD_SHA224 || algo == GPGME_MD_SHA256 || algo == GPGME_MD_SHA384 ||
         algo == GPGME_MD_SHA512;
}

PgpSigner SignerOf(gpgme_key_t key) {
  PgpSigner s;
  s.fingerprint = key->fpr != nullptr ? key->fpr : key->subkeys->fpr;
  if (key->uids != nullptr && key->uids->uid != nullptr) s.entity = key->uids->uid;
  return s;
}

std::string AlgorithmName(gpgme_subkey_t sub) {
  char* name = gpgme_pubkey_algo_string(sub);
  std::string out = name != nullptr ? name : "unknown";
  gpgme_free(name);
  return out;
}

}  // namespace

absl::StatusOr<GpgContext> GpgContext::Open(const std::string& home) {
  InitGpgme();
  gpgme_ctx_t ctx = nullptr;
  if (gpgme_error_t err = gpgme_new(&ctx); err != 0) return GpgError("starting gpgme", err);
  gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
  if (!home.empty()) {
    gpgme_error_t err =
        gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, nullptr, home.c_str());
    if (err != 0) {
      gpgme_release(ctx);
      return GpgError(absl::StrCat("using the GnuPG home ", home), err);
    }
  }
  return GpgContext(ctx, home);
}

GpgContext::~GpgContext() {
  if (ctx_ != nullptr) gpgme_release(ctx_);
}

GpgContext::GpgContext(GpgContext&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), home_(std::move(other.home_)) {}

GpgContext& GpgContext::operator=(GpgContext&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) gpgme_release(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    home_ = std::move(other.home_);
  }
  return *this;
}

absl::StatusOr<PgpVerified> VerifyClearSigned(GpgContext& gpg, const std::string& message) {
  Data sig(message), plain;
  gpgme_error_t err = gpgme_op_verify(gpg.get(), sig.get(), nullptr, plain.get());
  if (err != 0) return GpgError("reading the OpenPGP signature", err);
  gpgme_verify_result_t result = gpgme_op_verify_result(gpg.get());
  if (result == nullptr || result->signatures == nullptr) {
    return absl::InvalidArgumentError("no OpenPGP signature found");
  }
  gpgme_signature_t s = result->signatures;
  if (s->next != nullptr) return absl::InvalidArgumentError("more than one OpenPGP signature");
  const std::string issuer = s->fpr != nullptr ? s->fpr : "unknown";
  if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY) {
    return absl::NotFoundError(
        absl::StrCat("signed by key ", issuer, ", which is not in the keyring"));
  }
  if (gpgme_err_code(s->status) != GPG_ERR_NO_ERROR) {
    return absl::PermissionDeniedError(absl::StrCat("OpenPGP signature by ", issuer,
                                                    " is not valid: ", gpgme_strerror(s->status)));
  }
  if (!AllowedHash(s->hash_algo)) {
    return absl::PermissionDeniedError(
        absl::StrCat("OpenPGP signature uses the weak hash ", gpgme_hash_algo_name(s->hash_algo)));
  }
  Key key;
  if (gpgme_error_t kerr = gpgme_get_key(gpg.get(), s->fpr, key.out(), 0); kerr != 0) {
    return GpgError(absl::StrCat("looking up signing key ", issuer), kerr);
  }
  PgpVerified out;
  out.signer = SignerOf(key.get());
  out.plaintext = plain.Take();
  return out;
}

absl::StatusOr<PgpSigner> FindSecretKey(GpgContext& gpg, const std::string& fingerprint) {
  Key key;
  if (!fingerprint.empty()) {
    if (gpgme_error_t err = gpgme_get_key(gpg.get(), fingerprint.c_str(), key.out(), 1); err != 0) {
      return absl::NotFoundError(absl::StrCat("no secret key ", fingerprint, " in ",
                                              gpg.home().empty() ? "your keyring" : gpg.home()));
    }
    return SignerOf(key.get());
  }
  gpgme_error_t err = gpgme_op_keylist_start(gpg.get(), nullptr, 1);
  if (err == 0) err = gpgme_op_keylist_next(gpg.get(), key.out());
  gpgme_op_keylist_end(gpg.get());
  if (err != 0) {
    return absl::NotFoundError(
        "no secret key in your keyring (create one with `berth key newpair`)");
  }
  return SignerOf(key.get());
}

absl::StatusOr<std::string> ClearSign(GpgContext& gpg, const std::string& text,
                                      const std::string& fingerprint) {
  ASSIGN_OR_RETURN(PgpSigner signer, FindSecretKey(gpg, fingerprint));
  Key key;
  if (gpgme_error_t err = gpgme_get_key(gpg.get(), signer.fingerprint.c_str(), key.out(), 1);
      err != 0) {
    return GpgError("loading the signing key", err);
  }
  gpgme_signers_clear(gpg.get());
  gpgme_signers_add(gpg.get(), key.get());
  gpgme_set_armor(gpg.get(), 1);
  const std::optional<std::string> pass = PassphraseFromEnvironment();
  UsePassphrase(gpg, pass);
  Data in(text), out;
  gpgme_error_t err = gpgme_op_sign(gpg.get(), in.get(), out.get(), GPGME_SIG_MODE_CLEAR);
  if (err != 0) return GpgError(absl::StrCat("signing with key ", signer.fingerprint), err);
  return out.Take();
}

absl::StatusOr<std::vector<KeyInfo>> ListKeys(GpgContext& gpg, bool secret) {
  std::vector<KeyInfo> keys;
  gpgme_error_t err = gpgme_op_keylist_start(gpg.get(), nullptr, secret ? 1 : 0);
  while (err == 0) {
    Key key;
    err = gpgme_op_keylist_next(gpg.get(), key.out());
    if (err != 0) break;
    KeyInfo info;
    info.fingerprint = SignerOf(key.get()).fingerprint;
    for (gpgme_user_id_t uid = key.get()->uids; uid != nullptr; uid = uid->next) {
      if (uid->uid != nullptr) info.user_ids.push_back(uid->uid);
    }
    info.algorithm = AlgorithmName(key.get()->subkeys);
    info.created = key.get()->subkeys->timestamp;
    info.secret = key.get()->secret != 0;
    keys.push_back(std::move(info));
  }
  gpgme_op_keylist_end(gpg.get());
  if (gpgme_err_code(err) != GPG_ERR_EOF) return GpgError("listing keys", err);
  return keys;
}

absl::StatusOr<std::vector<std::string>> ImportKeys(GpgContext& gpg, const std::string& data,
                                                    std::vector<std::string>* secret) {
  Data in(data);
  const std::optional<std::string> pass = PassphraseFromEnvironment();
  UsePassphrase(gpg, pass);
  if (gpgme_error_t err = gpgme_op_import(gpg.get(), in.get()); err != 0) {
    return GpgError("importing keys", err);
  }
  gpgme_import_result_t r = gpgme_op_import_result(gpg.get());
  if (r == nullptr || r->considered == 0) {
    return absl::InvalidArgumentError("no OpenPGP key found in the input");
  }
  std::vector<std::string> fprs;
  for (gpgme_import_status_t s = r->imports; s != nullptr; s = s->next) {
    if (s->result != 0) {
      return GpgError(absl::StrCat("importing key ", s->fpr ? s->fpr : "?"), s->result);
    }
    if (s->fpr != nullptr && std::find(fprs.begin(), fprs.end(), s->fpr) == fprs.end()) {
      fprs.push_back(s->fpr);
    }
    if (secret != nullptr && s->fpr != nullptr && (s->status & GPGME_IMPORT_SECRET) != 0 &&
        std::find(secret->begin(), secret->end(), s->fpr) == secret->end()) {
      secret->push_back(s->fpr);
    }
  }
  if (fprs.empty()) return absl::InvalidArgumentError("no OpenPGP key could be imported");
  return fprs;
}

absl::StatusOr<std::string> ExportKeys(GpgContext& gpg, const std::string& pattern, bool secret,
                                       bool armor) {
  gpgme_set_armor(gpg.get(), armor ? 1 : 0);
  const std::optional<std::string> pass = PassphraseFromEnvironment();
  UsePassphrase(gpg, pass);
  Data out;
  gpgme_error_t err = gpgme_op_export(gpg.get(), pattern.empty() ? nullptr : pattern.c_str(),
                                      secret ? GPGME_EXPORT_MODE_SECRET : 0, out.get());
  if (err != 0) return GpgError("exporting keys", err);
  std::string bytes = out.Take();
  if (bytes.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no ", secret ? "secret " : "", "key matches '", pattern, "'"));
  }
  return bytes;
}

absl::Status DeleteKey(GpgContext& gpg, const std::string& fingerprint, KeyPart part) {
  Key key, secret;
  if (gpgme_get_key(gpg.get(), fingerprint.c_str(), key.out(), 0) != 0 || key.get() == nullptr) {
    return absl::NotFoundError(absl::StrCat("no key ", fingerprint, " in the keyring"));
  }
  if (SignerOf(key.get()).fingerprint != fingerprint) {
    return absl::InvalidArgumentError(
        absl::StrCat(fingerprint, " is not a primary key fingerprint"));
  }
  const bool has_secret = gpgme_get_key(gpg.get(), fingerprint.c_str(), secret.out(), 1) == 0 &&
                          secret.get() != nullptr;
  if (part == KeyPart::kPublic && has_secret) {
    return absl::FailedPreconditionError(absl::StrCat(
        "unable to remove public key ", fingerprint,
        ": its secret key is in the keyring and GnuPG keeps no secret key without its public "
        "key; remove the secret key first with -s/--secret, or both with -b/--both"));
  }
  if (part == KeyPart::kSecret && !has_secret) {
    return absl::NotFoundError(absl::StrCat("unable to remove private key: no secret key ",
                                            fingerprint, " in the keyring"));
  }
  // gpg deletes a secret key only with its public key: keep the public key's
  // bytes to put it back.
  std::string public_bytes;
  if (part == KeyPart::kSecret) {
    ASSIGN_OR_RETURN(public_bytes, ExportKeys(gpg, fingerprint, false, false));
  }
  unsigned int flags = GPGME_DELETE_FORCE | (has_secret ? GPGME_DELETE_ALLOW_SECRET : 0);
  gpgme_error_t err = gpgme_op_delete_ext(gpg.get(), key.get(), flags);
  if (err != 0) return GpgError(absl::StrCat("deleting key ", fingerprint), err);
  if (part == KeyPart::kSecret) {
    gpgme_set_pinentry_mode(gpg.get(), GPGME_PINENTRY_MODE_DEFAULT);
    Data in(public_bytes);
    if (err = gpgme_op_import(gpg.get(), in.get()); err != 0) {
      return GpgError(absl::StrCat("putting back the public key ", fingerprint,
                                   " after removing its secret key"),
                      err);
    }
  }
  return absl::OkStatus();
}

namespace {

// Answers gpg's passphrase questions during a passphrase change: the current
// one first when gpg-agent will ask for it, then the new one.
struct PasswdAnswers {
  std::optional<std::string> old_pass;
  std::string new_pass;
  bool old_pending = false;
};

gpgme_error_t PasswdCallback(void* hook, const char*, const char*, int prev_was_bad, int fd) {
  auto* a = static_cast<PasswdAnswers*>(hook);
  if (prev_was_bad != 0) return gpg_error(GPG_ERR_BAD_PASSPHRASE);
  std::string line = (a->old_pending ? *a->old_pass : a->new_pass) + "\n";
  a->old_pending = false;
  gpgme_io_writen(fd, line.data(), line.size());
  return 0;
}

struct KeyInfoState {
  bool seen = false, protected_key = false, cached = false;
};

gpgme_error_t KeyInfoStatus(void* hook, const char* status, const char* args) {
  auto* s = static_cast<KeyInfoState*>(hook);
  if (status == nullptr || std::strcmp(status, "KEYINFO") != 0 || args == nullptr) return 0;
  // KEYINFO <keygrip> <type> <serialno> <idstr> <cached> <protection> ...
  std::vector<std::string> f = absl::StrSplit(args, ' ', absl::SkipEmpty());
  if (f.size() < 6) return 0;
  s->seen = true;
  s->cached = f[4] == "1";
  s->protected_key = f[5] == "P";
  return 0;
}

// Whether gpg-agent will ask for the current passphrase of the key with
// `keygrip`: a protected key whose passphrase it has not cached. The agent
// is the user's (the GnuPG home of $GNUPGHOME or ~/.gnupg), already started
// by the gpg run that imported the key.
absl::StatusOr<bool> AgentAsksOldPassphrase(const std::string& keygrip) {
  const char* socket = gpgme_get_dirinfo("agent-socket");
  if (socket == nullptr) return absl::InternalError("gpgconf names no gpg-agent socket");
  gpgme_ctx_t raw = nullptr;
  if (gpgme_error_t err = gpgme_new(&raw); err != 0) return GpgError("starting gpgme", err);
  std::unique_ptr<gpgme_context, void (*)(gpgme_ctx_t)> ctx(raw, gpgme_release);
  gpgme_set_protocol(ctx.get(), GPGME_PROTOCOL_ASSUAN);
  if (gpgme_error_t err =
          gpgme_ctx_set_engine_info(ctx.get(), GPGME_PROTOCOL_ASSUAN, socket, nullptr);
      err != 0) {
    return GpgError("reaching gpg-agent", err);
  }
  KeyInfoState state;
  gpgme_error_t op_err = 0;
  gpgme_error_t err =
      gpgme_op_assuan_transact_ext(ctx.get(), absl::StrCat("KEYINFO ", keygrip).c_str(), nullptr,
                                   nullptr, nullptr, nullptr, KeyInfoStatus, &state, &op_err);
  if (err == 0) err = op_err;
  if (err != 0) return GpgError(absl::StrCat("asking gpg-agent about key ", keygrip), err);
  if (!state.seen) return absl::InternalError("gpg-agent gave no KEYINFO");
  return state.protected_key && !state.cached;
}

}  // namespace

absl::Status ChangePassphrase(GpgContext& gpg, const std::string& fingerprint,
                              const std::optional<std::string>& old_pass,
                              const std::optional<std::string>& new_pass) {
  Key key;
  if (gpgme_get_key(gpg.get(), fingerprint.c_str(), key.out(), 1) != 0 || key.get() == nullptr) {
    return absl::NotFoundError(absl::StrCat("no secret key ", fingerprint, " in the keyring"));
  }
  PasswdAnswers answers;
  if (new_pass.has_value()) {
    if (new_pass->empty()) return absl::InvalidArgumentError("the new passphrase is empty");
    const char* grip = key.get()->subkeys != nullptr ? key.get()->subkeys->keygrip : nullptr;
    if (grip == nullptr) return absl::InternalError("gpg gave no keygrip for the secret key");
    ASSIGN_OR_RETURN(answers.old_pending, AgentAsksOldPassphrase(grip));
    if (answers.old_pending && !old_pass.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the secret key ", fingerprint,
                       " is protected: give its current passphrase in BERTH_SIGN_PASSPHRASE"));
    }
    answers.old_pass = old_pass;
    answers.new_pass = *new_pass;
    gpgme_set_pinentry_mode(gpg.get(), GPGME_PINENTRY_MODE_LOOPBACK);
    gpgme_set_passphrase_cb(gpg.get(), PasswdCallback, &answers);
  } else {
    gpgme_set_pinentry_mode(gpg.get(), GPGME_PINENTRY_MODE_DEFAULT);
    gpgme_set_passphrase_cb(gpg.get(), nullptr, nullptr);
  }
  gpgme_error_t err = gpgme_op_passwd(gpg.get(), key.get(), 0);
  gpgme_set_passphrase_cb(gpg.get(), nullptr, nullptr);
  if (err != 0) return GpgError(absl::StrCat("setting a new passphrase on ", fingerprint), err);
  return absl::OkStatus();
}

absl::StatusOr<std::string> CreateKeyPair(GpgContext& gpg, const std::string& user_id,
                                          const std::optional<std::string>& passphrase,
                                          int rsa_bits) {
  unsigned int flags = GPGME_CREATE_SIGN | GPGME_CREATE_NOEXPIRE | GPGME_CREATE_FORCE;
  if (passphrase.has_value() && passphrase->empty()) flags |= GPGME_CREATE_NOPASSWD;
  if (passphrase.has_value() && !passphrase->empty()) UsePassphrase(gpg, passphrase);
  gpgme_error_t err = gpgme_op_createkey(
      gpg.get(), user_id.c_str(), absl::StrCat("rsa", rsa_bits).c_str(), 0, 0, nullptr, flags);
  if (err != 0) return GpgError(absl::StrCat("creating a key for ", user_id), err);
  gpgme_genkey_result_t r = gpgme_op_genkey_result(gpg.get());
  if (r == nullptr || r->fpr == nullptr) return absl::InternalError("gpg returned no new key");
  return std::string(r->fpr);
}

std::optional<std::string> PassphraseFromEnvironment() {
  for (const char* name : {"BERTH_SIGN_PASSPHRASE", "APPTAINER_SIGN_PASSPHRASE"}) {
    if (const char* v = std::getenv(name); v != nullptr) return std::string(v);
  }
  return std::nullopt;
}

absl::StatusOr<std::string> NormalizeFingerprint(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a key fingerprint"));
    }
    out.push_back(absl::ascii_toupper(c));
  }
  if (out.size() != 40) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a key fingerprint (40 hex digits)"));
  }
  return out;
}

}  // namespace berth::trust
