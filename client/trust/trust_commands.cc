#include "client/trust/trust_commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "client/trust/keyrings.h"
#include "client/trust/verify_output.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "sif/image.h"
#include "trust/keyring_file.h"
#include "trust/ocsp.h"
#include "trust/sign.h"
#include "trust/verify.h"
#include "trust/x509_chain.h"

namespace berth::client {
namespace {

void Info(const std::string& line) {
  log::Info(line);
}

// --- verify --------------------------------------------------------------

struct VerifyFlags {
  std::string image;
  std::vector<uint32_t> groups, objects;
  std::vector<std::string> key_paths;
  std::string certificate, intermediates, roots;  // --certificate*
  bool ocsp = false;                              // --ocsp-verify
  bool all = false, legacy = false, json = false, local = false;
};

// How long one OCSP responder may take to answer.
constexpr int kOcspTimeoutSeconds = 10;

// --certificate: the signing key is the certificate's, once the certificate
// chains to a trusted root, may sign code and (with --ocsp-verify) is not
// revoked, as Apptainer checks before it uses the key.
absl::StatusOr<trust::PemKey> KeyFromCertificate(const VerifyFlags& f) {
  Info(absl::StrCat("Verifying image with key material from certificate '", f.certificate, "'"));
  auto leaf = trust::LoadCertificate(f.certificate);
  if (!leaf.ok()) return Annotate(leaf.status(), "loading the certificate");
  std::vector<trust::X509Ptr> intermediates, roots;
  if (!f.intermediates.empty()) {
    auto bundle = trust::LoadCertificateBundle(f.intermediates);
    if (!bundle.ok()) return Annotate(bundle.status(), "loading intermediate certificates");
    intermediates = std::move(*bundle);
  }
  if (!f.roots.empty()) {
    auto bundle = trust::LoadCertificateBundle(f.roots);
    if (!bundle.ok()) return Annotate(bundle.status(), "loading root certificates");
    roots = std::move(*bundle);
  }
  const std::vector<trust::X509Ptr>* anchors = f.roots.empty() ? nullptr : &roots;
  ASSIGN_OR_RETURN(
      std::vector<trust::X509Ptr> chain,
      trust::VerifyCodeSigningChain(leaf->get(), f.certificate, intermediates, anchors));
  if (f.ocsp) {
    absl::Status st = trust::CheckRevocation(chain, anchors, kOcspTimeoutSeconds);
    if (!st.ok()) return Annotate(st, absl::StrCat("certificate ", f.certificate));
  }
  return trust::PemKey::FromCertificate(leaf->get(), f.certificate);
}

// What to do next, for the FATAL line's "; fix" part.
std::string VerifyHint(const absl::Status& st, const VerifyFlags& f) {
  const std::string msg(st.message());
  if (!f.certificate.empty() && msg.find("no DSSE signature verifies") != std::string::npos) {
    return absl::StrCat("; it was not signed with the key of certificate ", f.certificate);
  }
  if (msg.find("not in the keyring") != std::string::npos) {
    return "; import the signer's public key with `berth key import`";
  }
  if (msg.find("no signature found") != std::string::npos) {
    return "; sign it with `berth sign`, or check --group-id/--sif-id";
  }
  if (msg.find("no legacy signature") != std::string::npos) {
    return "; legacy images may need --all, --group-id or --sif-id";
  }
  return "";
}

absl::Status RunVerify(const VerifyFlags& f) {
  auto image = sif::Image::Open(f.image, sif::OpenMode::kReadOnly);
  if (!image.ok()) return image.status();
  std::vector<trust::PemKey> pem;
  std::optional<VerifyKeyring> user;
  trust::KeyMaterial keys;
  absl::StatusOr<std::optional<GlobalKeyring>> global = std::nullopt;
  if (!f.certificate.empty()) {
    auto k = KeyFromCertificate(f);
    if (!k.ok()) {
      // As Apptainer: with -j, a certificate that fails its checks still
      // gets the JSON answer (no signatures, the reason).
      if (f.json) std::cout << RenderVerifyJson(*image, trust::VerifyReport{}, k.status());
      return k.status();
    }
    pem.push_back(std::move(*k));
    keys.dsse = &pem;
  } else if (!f.key_paths.empty()) {
    for (const std::string& p : f.key_paths) {
      ASSIGN_OR_RETURN(trust::PemKey k, trust::PemKey::LoadPublic(p));
      pem.push_back(std::move(k));
    }
    keys.dsse = &pem;
    Info(absl::StrCat("Verifying image with key material from '",
                      absl::StrJoin(f.key_paths, "', '"), "'"));
  } else {
    ASSIGN_OR_RETURN(VerifyKeyring ctx, OpenUserVerifyKeyring());
    user.emplace(std::move(ctx));
    keys.pgp = &user->gpg;
    global = OpenGlobalKeyring();
    if (!global.ok()) return global.status();
    if (global->has_value()) keys.pgp_global = &(*global)->gpg;
    Info("Verifying image with PGP key material");
  }
  if (f.legacy) {
    log::Warning("legacy signatures protect only object data, not the header or descriptors");
  }
  trust::VerifySelection sel{f.groups, f.objects, f.all, f.legacy};
  auto report = trust::VerifyImage(*image, sel, keys);
  if (f.json) {
    std::cout << RenderVerifyJson(*image, report.ok() ? *report : trust::VerifyReport{},
                                  report.status());
  }
  if (!report.ok()) {
    return absl::Status(report.status().code(),
                        absl::StrCat("verifying ", f.image, ": ", report.status().message(),
                                     VerifyHint(report.status(), f)));
  }
  if (!f.json) std::cout << RenderVerifyText(*image, *report);
  std::cout.flush();
  Info(absl::StrCat("Verified signature(s) from image '", f.image, "'"));
  return absl::OkStatus();
}

void RegisterVerify(CLI::App& app, std::shared_ptr<absl::Status> result) {
  auto f = std::make_shared<VerifyFlags>();
  CLI::App* cmd = app.add_subcommand("verify", "Verify the signatures of a SIF image");
  cmd->add_option("image", f->image, "SIF image")->required();
  // --groupid and --id: Apptainer's deprecated names, still accepted.
  cmd->add_option("-g,--group-id,--groupid", f->groups, "Verify only this object group");
  cmd->add_option("-i,--sif-id,--id", f->objects, "Verify only this object");
  cmd->add_flag("-a,--all", f->all, "Verify every object (legacy signatures)");
  // Apptainer's -l: keys from the local keyrings only; berth never asks a
  // keyserver, so it changes nothing.
  cmd->add_flag("-l,--local", f->local, "Only verify with local keys (berth always does)");
  cmd->add_flag("--legacy-insecure", f->legacy,
                "Verify legacy signatures (they do not protect the header or descriptors)");
  cmd->add_flag("-j,--json", f->json, "Print the result as JSON");
  cmd->add_option("--key", f->key_paths, "PEM public key for DSSE signatures (repeatable)");
  cmd->add_option("--certificate", f->certificate,
                  "PEM x509 certificate whose key verifies DSSE signatures");
  cmd->add_option("--certificate-intermediates", f->intermediates,
                  "PEM bundle of intermediate certificates");
  cmd->add_option("--certificate-roots", f->roots,
                  "PEM bundle of root certificates (default: the system's roots)");
  cmd->add_flag("--ocsp-verify", f->ocsp, "Check the certificate chain for revocation over OCSP");
  cmd->callback([cmd, f, result] {
    if (cmd->count("--key") == 0) {
      if (const char* v = EnvForm("VERIFY_KEY"); v != nullptr && *v != '\0') f->key_paths = {v};
    }
    StringFromEnv(*cmd, "--certificate", "VERIFY_CERTIFICATE", f->certificate);
    StringFromEnv(*cmd, "--certificate-intermediates", "VERIFY_INTERMEDIATES", f->intermediates);
    StringFromEnv(*cmd, "--certificate-roots", "VERIFY_ROOTS", f->roots);
    *result = BoolFromEnv(*cmd, "--ocsp-verify", "VERIFY_OCSP", f->ocsp);
    if (!result->ok()) return;
    // Apptainer ignores these without --certificate; berth says so rather
    // than let a user believe a chain or revocation check happened.
    if (f->certificate.empty()) {
      for (const char* flag :
           {"--certificate-intermediates", "--certificate-roots", "--ocsp-verify"}) {
        if (cmd->count(flag) > 0) {
          *result = absl::InvalidArgumentError(
              absl::StrCat(flag, " applies to --certificate; give the signer's certificate"));
          return;
        }
      }
    }
    *result = RunVerify(*f);
  });
}

// --- sign ----------------------------------------------------------------

struct SignFlags {
  std::string image;
  std::vector<uint32_t> groups, objects;
  int keyidx = -1;
  std::string fingerprint;
  std::string key_path;
  bool all = false;  // deprecated no-op
};

// The secret keys sign can use: the GnuPG home's, then the Apptainer
// keyring's (as `key list --secret` numbers them for --keyidx).
struct SecretKeys {
  trust::GpgContext gnupg;
  std::optional<GlobalKeyring> apptainer;
  std::vector<trust::KeyInfo> gnupg_keys, apptainer_keys;
};

absl::StatusOr<SecretKeys> OpenSecretKeys() {
  ASSIGN_OR_RETURN(trust::GpgContext gnupg, trust::GpgContext::Open(""));
  SecretKeys k{std::move(gnupg), std::nullopt, {}, {}};
  ASSIGN_OR_RETURN(k.gnupg_keys, trust::ListKeys(k.gnupg, true));
  ASSIGN_OR_RETURN(k.apptainer, OpenApptainerKeyring(true));
  if (k.apptainer.has_value()) {
    ASSIGN_OR_RETURN(k.apptainer_keys, trust::ListKeys(k.apptainer->gpg, true));
  }
  return k;
}

// The keyring and key to sign with: --key-fingerprint, --keyidx, else the
// GnuPG home's default key, else the Apptainer keyring's first.
absl::StatusOr<std::pair<trust::GpgContext*, std::string>> ChooseSecretKey(SecretKeys& k,
                                                                           const SignFlags& f) {
  auto in = [](const std::vector<trust::KeyInfo>& keys, const std::string& fpr) {
    return std::any_of(keys.begin(), keys.end(), [&](auto& key) { return key.fingerprint == fpr; });
  };
  if (!f.fingerprint.empty()) {
    ASSIGN_OR_RETURN(std::string fpr, trust::NormalizeFingerprint(f.fingerprint));
    if (k.apptainer.has_value() && !in(k.gnupg_keys, fpr) && in(k.apptainer_keys, fpr)) {
      return std::pair{&k.apptainer->gpg, fpr};
    }
    return std::pair{&k.gnupg, fpr};
  }
  if (f.keyidx >= 0) {
    size_t i = static_cast<size_t>(f.keyidx);
    if (i < k.gnupg_keys.size()) return std::pair{&k.gnupg, k.gnupg_keys[i].fingerprint};
    i -= k.gnupg_keys.size();
    if (i < k.apptainer_keys.size()) {
      return std::pair{&k.apptainer->gpg, k.apptainer_keys[i].fingerprint};
    }
    return absl::InvalidArgumentError(absl::StrCat("--keyidx ", f.keyidx, ": your keyrings have ",
                                                   k.gnupg_keys.size() + k.apptainer_keys.size(),
                                                   " secret key(s)"));
  }
  if (k.gnupg_keys.empty() && !k.apptainer_keys.empty()) {
    return std::pair{&k.apptainer->gpg, k.apptainer_keys.front().fingerprint};
  }
  return std::pair{&k.gnupg, std::string()};
}

absl::Status RunSign(const SignFlags& f) {
  ASSIGN_OR_RETURN(sif::Image image, sif::Image::Open(f.image, sif::OpenMode::kReadWrite));
  trust::SignSelection sel{f.groups, f.objects};
  std::vector<trust::SignedObject> signed_objects;
  if (!f.key_path.empty()) {
    ASSIGN_OR_RETURN(trust::PemKey key, trust::PemKey::LoadPrivate(f.key_path));
    Info(absl::StrCat("Signing image with key material from '", f.key_path, "'"));
    ASSIGN_OR_RETURN(signed_objects, trust::SignImage(image, sel, nullptr, "", &key));
  } else {
    ASSIGN_OR_RETURN(SecretKeys keys, OpenSecretKeys());
    ASSIGN_OR_RETURN(auto chosen, ChooseSecretKey(keys, f));
    Info("Signing image with PGP key material");
    ASSIGN_OR_RETURN(signed_objects,
                     trust::SignImage(image, sel, chosen.first, chosen.second, nullptr));
  }
  Info(absl::StrCat("Signature created and applied to image '", f.image, "'"));
  return absl::OkStatus();
}

void RegisterSign(CLI::App& app, std::shared_ptr<absl::Status> result) {
  auto f = std::make_shared<SignFlags>();
  CLI::App* cmd = app.add_subcommand("sign", "Sign a SIF image with your PGP key (or a PEM key)");
  cmd->add_option("image", f->image, "SIF image")->required();
  cmd->add_option("-g,--group-id,--groupid", f->groups, "Sign only this object group");
  cmd->add_option("-i,--sif-id,--id", f->objects, "Sign only this object");
  // Apptainer's deprecated -a/--all: every object is signed by default.
  cmd->add_flag("-a,--all", f->all, "")->group("");
  cmd->add_option("-k,--keyidx", f->keyidx,
                  "Index of the secret key (see `berth key list --secret`)");
  cmd->add_option("--key-fingerprint", f->fingerprint, "Fingerprint of the secret key to use");
  cmd->add_option("--key", f->key_path, "PEM private key: sign with a DSSE envelope instead");
  cmd->callback([cmd, f, result] {
    StringFromEnv(*cmd, "--key", "SIGN_KEY", f->key_path);
    *result = RunSign(*f);
    if (!result->ok()) *result = Annotate(*result, absl::StrCat("signing ", f->image));
  });
}

// --- key -----------------------------------------------------------------

struct KeyFlags {
  bool global = false, secret = false, armor = false, no_passphrase = false;
  bool remove_public = false, remove_secret = false, remove_both = false;  // remove -p/-s/-b
  bool new_password = false;                                               // import --new-password
  int bit_length = 4096;                                                   // newpair -b
  std::string password;  // newpair -P: the secret key's passphrase
  bool push = false;     // newpair -U: refused (no keyserver)
  std::string file, fingerprint, name, email, comment;
};

absl::Status RequireRootForGlobal() {
  if (geteuid() != 0) {
    return absl::PermissionDeniedError(
        "changing the global keyring needs root; it is the node's trust anchor for the ECL");
  }
  return absl::OkStatus();
}

// The global keyring in a scratch home (empty if the node has none yet).
absl::StatusOr<GlobalKeyring> GlobalForEditing() {
  ASSIGN_OR_RETURN(std::optional<GlobalKeyring> existing, OpenGlobalKeyring());
  if (existing.has_value()) return std::move(*existing);
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home, trust::ScratchGnupgHome::Create("/tmp"));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  return GlobalKeyring{std::move(home), std::move(gpg)};
}

absl::Status SaveGlobal(GlobalKeyring& g) {
  auto bytes = trust::ExportKeys(g.gpg, "", false, false);
  std::string data = bytes.ok() ? *bytes : std::string();
  if (!bytes.ok() && !absl::IsNotFound(bytes.status())) return bytes.status();
  return trust::WriteKeyringFile(trust::GlobalKeyringPath(ConfigDir()), data);
}

void PrintKeys(const std::vector<trust::KeyInfo>& keys, const std::string& where,
               size_t first = 0) {
  std::cout << where << "\n\n";
  for (size_t i = 0; i < keys.size(); ++i) {
    const trust::KeyInfo& k = keys[i];
    std::cout << first + i
              << ") User:              " << (k.user_ids.empty() ? "" : k.user_ids.front()) << "\n"
              << "   Creation time:     "
              << absl::FormatTime("%Y-%m-%d %H:%M:%S %z", absl::FromTimeT(k.created),
                                  absl::UTCTimeZone())
              << "\n"
              << "   Fingerprint:       " << k.fingerprint << "\n"
              << "   Algorithm:         " << k.algorithm << "\n\n";
  }
}

absl::Status KeyList(const KeyFlags& f) {
  if (f.global) {
    ASSIGN_OR_RETURN(std::optional<GlobalKeyring> g, OpenGlobalKeyring());
    absl::StatusOr<std::vector<trust::KeyInfo>> keys = std::vector<trust::KeyInfo>();
    if (g.has_value()) keys = trust::ListKeys(g->gpg, false);
    if (!keys.ok()) return keys.status();
    PrintKeys(*keys,
              absl::StrCat("Public key listing (", trust::GlobalKeyringPath(ConfigDir()), "):"));
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
  ASSIGN_OR_RETURN(std::vector<trust::KeyInfo> keys, trust::ListKeys(gpg, f.secret));
  PrintKeys(keys, f.secret ? "Private key listing (your GnuPG home):"
                           : "Public key listing (your GnuPG home):");
  // Apptainer's own keyring, numbered on after the GnuPG home's (sign -k).
  ASSIGN_OR_RETURN(std::optional<GlobalKeyring> apptainer, OpenApptainerKeyring(f.secret));
  if (!apptainer.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<trust::KeyInfo> more, trust::ListKeys(apptainer->gpg, f.secret));
  PrintKeys(more,
            absl::StrCat(f.secret ? "Private" : "Public", " key listing (", ApptainerKeysDir(),
                         f.secret ? "/pgp-secret" : "/pgp-public", "):"),
            keys.size());
  return absl::OkStatus();
}

// --new-password: each secret key the file held gets a new passphrase; BERTH_NEW_PASSPHRASE gives
// it without a prompt (the current one from BERTH_SIGN_PASSPHRASE), else gpg-agent's pinentry asks,
// as for `key newpair` without -P.
absl::Status NewPasswords(trust::GpgContext& gpg, const std::vector<std::string>& fprs) {
  std::optional<std::string> new_pass;
  if (const char* v = std::getenv("BERTH_NEW_PASSPHRASE"); v != nullptr) new_pass = v;
  const std::optional<std::string> old_pass = trust::PassphraseFromEnvironment();
  if (fprs.empty())
    return absl::InvalidArgumentError("--new-password: the file holds no secret key");
  for (const std::string& fpr : fprs) {
    RETURN_IF_ERROR(trust::ChangePassphrase(gpg, fpr, old_pass, new_pass));
  }
  return absl::OkStatus();
}

absl::Status KeyImport(const KeyFlags& f) {
  if (f.global && f.new_password) {
    return absl::InvalidArgumentError(
        "--new-password sets a secret key's passphrase; the global keyring holds public keys only");
  }
  ASSIGN_OR_RETURN(std::string data, trust::ReadKeyringFile(f.file));
  if (data.empty()) return absl::InvalidArgumentError(absl::StrCat(f.file, " is empty or missing"));
  std::vector<std::string> fprs;
  if (f.global) {
    RETURN_IF_ERROR(RequireRootForGlobal());
    ASSIGN_OR_RETURN(GlobalKeyring g, GlobalForEditing());
    ASSIGN_OR_RETURN(fprs, trust::ImportKeys(g.gpg, data));
    RETURN_IF_ERROR(SaveGlobal(g));
  } else {
    ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
    std::vector<std::string> secret;
    ASSIGN_OR_RETURN(fprs, trust::ImportKeys(gpg, data, &secret));
    if (f.new_password) RETURN_IF_ERROR(NewPasswords(gpg, secret));
  }
  for (const std::string& fpr : fprs) {
    Info(absl::StrCat("Key with fingerprint ", fpr, " imported",
                      f.global ? " into the global keyring" : ""));
  }
  return absl::OkStatus();
}

absl::Status KeyRemove(const KeyFlags& f) {
  ASSIGN_OR_RETURN(std::string fpr, trust::NormalizeFingerprint(f.fingerprint));
  // Apptainer's choice: the public key alone unless -s; both with -b or -p -s.
  trust::KeyPart part = trust::KeyPart::kPublic;
  if (f.remove_both || (f.remove_public && f.remove_secret)) {
    part = trust::KeyPart::kBoth;
  } else if (f.remove_secret) {
    part = trust::KeyPart::kSecret;
  }
  if (f.global) {
    RETURN_IF_ERROR(RequireRootForGlobal());
    ASSIGN_OR_RETURN(GlobalKeyring g, GlobalForEditing());
    RETURN_IF_ERROR(trust::DeleteKey(g.gpg, fpr, part));
    RETURN_IF_ERROR(SaveGlobal(g));
  } else {
    ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
    RETURN_IF_ERROR(trust::DeleteKey(gpg, fpr, part));
  }
  const char* what = part == trust::KeyPart::kPublic   ? "Public key"
                     : part == trust::KeyPart::kSecret ? "Secret key"
                                                       : "Key";
  Info(absl::StrCat(what, " with fingerprint ", fpr, " removed",
                    f.global ? " from the global keyring" : ""));
  return absl::OkStatus();
}

absl::Status KeyExport(const KeyFlags& f) {
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
  absl::StatusOr<std::string> pattern = std::string();
  if (!f.fingerprint.empty()) pattern = trust::NormalizeFingerprint(f.fingerprint);
  if (!pattern.ok()) return pattern.status();
  ASSIGN_OR_RETURN(std::string bytes, trust::ExportKeys(gpg, *pattern, f.secret, f.armor));
  ASSIGN_OR_RETURN(UniqueFd out, OpenFile(f.file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                          f.secret ? 0600 : 0644));
  RETURN_IF_ERROR(PwriteFull(
      out.get(), std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0));
  Info(absl::StrCat(f.secret ? "Private" : "Public", " key(s) exported to ", f.file));
  return absl::OkStatus();
}

absl::Status KeyNewPair(const KeyFlags& f) {
  if (f.name.empty()) return absl::InvalidArgumentError("--name is required");
  std::string uid = f.name;
  if (!f.comment.empty()) absl::StrAppend(&uid, " (", f.comment, ")");
  if (!f.email.empty()) absl::StrAppend(&uid, " <", f.email, ">");
  if (f.push) {
    return absl::UnimplementedError(
        "-U/--push is not supported: berth talks to no keyserver; export the public key with "
        "`berth key export`");
  }
  if (f.bit_length < 1024 || f.bit_length > 4096) {
    return absl::InvalidArgumentError("-b/--bit-length: give 1024 to 4096 bits");
  }
  std::optional<std::string> pass = trust::PassphraseFromEnvironment();
  if (!f.password.empty()) pass = f.password;
  if (f.no_passphrase) pass = std::string();
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
  Info(absl::StrCat("Generating key pair (RSA ", f.bit_length, ")"));
  ASSIGN_OR_RETURN(std::string fpr, trust::CreateKeyPair(gpg, uid, pass, f.bit_length));
  Info(absl::StrCat("Key created: ", fpr, " ", uid));
  return absl::OkStatus();
}

void RegisterKey(CLI::App& app, std::shared_ptr<absl::Status> result) {
  CLI::App* key = app.add_subcommand("key", "Manage OpenPGP keys (your GnuPG home, or --global)");
  key->require_subcommand(1);
  auto f = std::make_shared<KeyFlags>();
  auto run = [result](absl::Status (*fn)(const KeyFlags&), std::shared_ptr<KeyFlags> flags,
                      const char* what) {
    return [=] {
      *result = fn(*flags);
      if (!result->ok()) *result = Annotate(*result, what);
    };
  };
  // Apptainer's -d/--keysdir: its keyring directory, as KEYSDIR names it
  // (keyrings.h); set while parsing, before any subcommand runs.
  key->add_option("-d,--keysdir", "Apptainer keyring directory (default ~/.apptainer/keys)")
      ->each([](const std::string& dir) { ::setenv("BERTH_KEYSDIR", dir.c_str(), 1); });
  CLI::App* list = key->add_subcommand("list", "List keys");
  list->add_flag("-s,--secret", f->secret, "List secret keys");
  list->add_flag("-g,--global", f->global, "List the node's global keyring");
  list->callback([list, f, result, list_keys = run(KeyList, f, "listing keys")] {
    *result = BoolFromEnv(*list, "--secret", "SECRET", f->secret);
    if (result->ok()) list_keys();
  });
  CLI::App* import = key->add_subcommand("import", "Import keys from a file (binary or armored)");
  import->add_option("file", f->file, "Key file")->required();
  import->add_flag("-g,--global", f->global, "Into the node's global keyring (root only)");
  import->add_flag("--new-password", f->new_password,
                   "Set a new passphrase on the imported secret key (BERTH_NEW_PASSPHRASE, "
                   "else gpg-agent's pinentry)");
  import->callback(run(KeyImport, f, "importing keys"));
  CLI::App* remove = key->add_subcommand("remove", "Remove a key by fingerprint");
  remove->add_option("fingerprint", f->fingerprint, "Key fingerprint")->required();
  remove->add_flag("-g,--global", f->global, "From the node's global keyring (root only)");
  remove->add_flag("-p,--public", f->remove_public, "Remove the public key only (the default)");
  remove->add_flag("-s,--secret", f->remove_secret, "Remove the secret key only");
  remove->add_flag("-b,--both", f->remove_both, "Remove both the public and the secret key");
  remove->callback(run(KeyRemove, f, "removing a key"));
  CLI::App* exp = key->add_subcommand("export", "Export keys to a new file");
  exp->add_option("file", f->file, "Output file (must not exist)")->required();
  exp->add_option("fingerprint", f->fingerprint, "Only this key");
  exp->add_flag("-s,--secret", f->secret, "Export secret keys");
  exp->add_flag("-a,--armor", f->armor, "ASCII-armored output");
  exp->callback(run(KeyExport, f, "exporting keys"));
  CLI::App* newpair = key->add_subcommand("newpair", "Create a new key pair");
  newpair->add_option("-N,--name", f->name, "Your name")->required();
  newpair->add_option("-E,--email", f->email, "Your e-mail address");
  newpair->add_option("-C,--comment", f->comment, "A comment");
  newpair->add_flag("--no-passphrase", f->no_passphrase, "Leave the secret key unprotected");
  newpair->add_option("-P,--password", f->password, "Passphrase of the secret key");
  newpair->add_option("-b,--bit-length", f->bit_length, "RSA key length in bits (default 4096)");
  newpair->add_flag("-U,--push", f->push, "")->group("");
  newpair->callback(run(KeyNewPair, f, "creating a key pair"));
}

}  // namespace

void RegisterTrustCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  RegisterSign(app, result);
  RegisterVerify(app, result);
  RegisterKey(app, result);
}

}  // namespace berth::client
