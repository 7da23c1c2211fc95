// Opening the keyrings the trust verbs use: the user's GnuPG home, the
// user's Apptainer keyring (~/.apptainer/keys/pgp-public and pgp-secret,
// binary OpenPGP packets as Apptainer writes them) and, read-only, the
// node's global keyring. The file keyrings are imported into scratch homes.
// Runs as the user: it reads only files the user can.
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

// Apptainer's keyring directory: $BERTH_KEYSDIR / $APPTAINER_KEYSDIR /
// $SINGULARITY_KEYSDIR, else $HOME/.apptainer/keys.
std::string ApptainerKeysDir();

// The Apptainer keyring's public keys (with `secret`, its secret keys too)
// in a scratch home, or nullopt when it has none.
absl::StatusOr<std::optional<GlobalKeyring>> OpenApptainerKeyring(bool secret);

// For verify: the user's GnuPG home when there is no Apptainer public
// keyring; otherwise a scratch home holding both's public keys.
struct VerifyKeyring {
  std::optional<trust::ScratchGnupgHome> home;
  trust::GpgContext gpg;
};
absl::StatusOr<VerifyKeyring> OpenUserVerifyKeyring();

}  // namespace berth::client
