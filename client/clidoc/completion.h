// `berth completion bash|zsh|fish`: shell completion scripts generated from
// the command tree (cli_model.h), as Apptainer's `completion` verb offers.
//
// Each script carries the tree as tables (subcommands, flags, flags taking a
// value, per command path) and one small function that walks the words typed
// so far through them: a subcommand descends, a flag that takes a value skips
// its value. It then offers the flags (when the word starts with '-'), the
// subcommands, or files (a leaf command's arguments, a flag's value).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "client/clidoc/cli_model.h"

namespace berth::client::clidoc {

// The script for `shell` ("bash", "zsh" or "fish"); an error names the
// shells there are.
absl::StatusOr<std::string> CompletionScript(const CommandDoc& root, const std::string& shell);

}  // namespace berth::client::clidoc
