// `berth completion bash|zsh|fish` prints a completion script, and the hidden
// `berth man-pages DIR` writes the man pages (the build runs it). Both read
// the whole command tree when they run, so register them with the others:
// every verb added to `app`, before or after, is in what they generate.
#pragma once

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterCliDocCommands(CLI::App& app, std::shared_ptr<absl::Status> result);

}  // namespace berth::client
