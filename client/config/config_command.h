// `berth config fakeroot --add|--remove|--enable|--disable USER`: root edits
// /etc/subuid and /etc/subgid as `apptainer config fakeroot` does
// (subid/subid_edit.h for what each operation changes). The client edits the
// files itself: only root may run it, and root needs no daemon to write /etc.
// Both files are locked (shadow's FILE.lock), edited in memory and replaced
// atomically, subuid first.
//
// Hidden flags --subuid-file/--subgid-file name other files, for tests that
// must never touch the real ones.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterConfigCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
