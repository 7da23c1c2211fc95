#include "client/trust/keyrings.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "client/env_flags.h"
#include "common/status_macros.h"

namespace berth::client {

std::string ConfigDir() {
  const char* dir = std::getenv("BERTH_CONFIG_DIR");
  return dir != nullptr && *dir == '/' ? dir : "/etc/berth";
}

absl::StatusOr<std::optional<GlobalKeyring>> OpenGlobalKeyring() {
  const std::string path = trust::GlobalKeyringPath(ConfigDir());
  ASSIGN_OR_RETURN(std::string bytes, trust::ReadKeyringFile(path));
  if (bytes.empty()) return std::nullopt;
  const char* tmp = std::getenv("TMPDIR");
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home,
                   trust::ScratchGnupgHome::Create(tmp != nullptr && *tmp == '/' ? tmp : "/tmp"));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  auto imported = trust::ImportKeys(gpg, bytes);
  if (!imported.ok()) return Annotate(imported.status(), path);
  return std::optional<GlobalKeyring>(GlobalKeyring{std::move(home), std::move(gpg)});
}

namespace {

std::string TmpDir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp == '/' ? tmp : "/tmp";
}

}  // namespace

std::string ApptainerKeysDir() {
  if (const char* dir = EnvForm("KEYSDIR"); dir != nullptr && *dir != '\0') return dir;
  const char* home = std::getenv("HOME");
  std::string h = home != nullptr && *home == '/' ? home : "";
  if (h.empty()) {
    if (const struct passwd* pw = ::getpwuid(::getuid()); pw != nullptr) h = pw->pw_dir;
  }
  return absl::StrCat(h, "/.apptainer/keys");
}

absl::StatusOr<std::optional<GlobalKeyring>> OpenApptainerKeyring(bool secret) {
  const std::string dir = ApptainerKeysDir();
  ASSIGN_OR_RETURN(std::string pub, trust::ReadKeyringFile(dir + "/pgp-public"));
  std::string sec;
  if (secret) {
    ASSIGN_OR_RETURN(sec, trust::ReadKeyringFile(dir + "/pgp-secret"));
    // Signing needs only the secret keyring; their public halves are in it.
    pub.clear();
  }
  if (pub.empty() && sec.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home,
                   trust::ScratchGnupgHome::Create(TmpDir(), !sec.empty()));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  for (const auto& [bytes, name] : {std::pair{&pub, "pgp-public"}, std::pair{&sec, "pgp-secret"}}) {
    if (bytes->empty()) continue;
    auto imported = trust::ImportKeys(gpg, *bytes);
    if (!imported.ok()) return Annotate(imported.status(), absl::StrCat(dir, "/", name));
  }
  return std::optional<GlobalKeyring>(GlobalKeyring{std::move(home), std::move(gpg)});
}

absl::StatusOr<VerifyKeyring> OpenUserVerifyKeyring() {
  ASSIGN_OR_RETURN(trust::GpgContext user, trust::GpgContext::Open(""));
  const std::string path = ApptainerKeysDir() + "/pgp-public";
  ASSIGN_OR_RETURN(std::string apptainer, trust::ReadKeyringFile(path));
  if (apptainer.empty()) return VerifyKeyring{std::nullopt, std::move(user)};
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home, trust::ScratchGnupgHome::Create(TmpDir()));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  absl::StatusOr<std::string> own = trust::ExportKeys(user, "", false, false);
  if (!own.ok() && !absl::IsNotFound(own.status())) return own.status();
  if (own.ok() && !own->empty())
    RETURN_IF_ERROR_CTX(trust::ImportKeys(gpg, *own).status(), "your GnuPG home");
  auto imported = trust::ImportKeys(gpg, apptainer);
  if (!imported.ok()) return Annotate(imported.status(), path);
  return VerifyKeyring{std::move(home), std::move(gpg)};
}

}  // namespace berth::client
