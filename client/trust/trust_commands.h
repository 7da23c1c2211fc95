// `berth sign`, `berth verify` and `berth key`: image signatures and the
// keys behind them, run in the client with the user's own identity.
//
// Keyrings (docs/security.md "Signatures and the ECL"): the user's keys live
// in their own GnuPG home ($GNUPGHOME, else ~/.gnupg), so gpg-agent, pinentry
// and every other gpg tool share them. The node's global public keyring is
// the file `global-pgp-public` in the daemon's config directory
// ($BERTH_CONFIG_DIR, else /etc/berth); only root changes it (`--global`).
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterTrustCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
