#include "client/trust/keyrings.h"

#include <cstdlib>

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

}  // namespace berth::client
