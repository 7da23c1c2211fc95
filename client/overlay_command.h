// `berth overlay create` (Apptainer's): an ext3 image file holding upper/
// and work/ directories, the persistent overlay Apptainer mounts with
// --overlay IMG. Made by the user's own mkfs.ext3 -d from a directory it
// fills; nothing reaches the daemon. berth itself mounts directory and
// squashfs overlays only (docs/compat.md): a user-written ext3 filesystem
// is not fed to the kernel's driver as root.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

// Adds `overlay create` to `app`; the outcome goes to `*result`.
void RegisterOverlayCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
