// Opening the keyrings the trust verbs use: the user's GnuPG home and,
// read-only, the node's global keyring (imported into a scratch home).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "trust/keyring_file.h"
#include "trust/pgp.h"

namespace berth::client {

// $BERTH_CONFIG_DIR, else /etc/berth.
std::string ConfigDir();

// The global keyring loaded into a scratch GnuPG home, or nullopt when the
// node has none (no file, or an empty one).
struct GlobalKeyring {
  trust::ScratchGnupgHome home;
  trust::GpgContext gpg;
};
absl::StatusOr<std::optional<GlobalKeyring>> OpenGlobalKeyring();

}  // namespace berth::client
