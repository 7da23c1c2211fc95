// Environment forms of command-line flags, as Apptainer reads them: for a
// flag with environment key X, the first of BERTH_X, APPTAINER_X and
// SINGULARITY_X that is set. A flag given on the command line beats all.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::client {

// The value of the first of BERTH_X, APPTAINER_X, SINGULARITY_X that is set.
const char* EnvForm(absl::string_view name);
// The same, also naming the variable that was found (for messages).
const char* EnvForm(absl::string_view name, std::string& variable);

// Go's strconv.ParseBool, which Apptainer uses for its environment flags;
// `variable` (e.g. "APPTAINER_FORCE") names the culprit in the error.
absl::StatusOr<bool> ParseEnvBool(absl::string_view variable, absl::string_view value);

// Sets `target` from the environment form `env_name` unless `flag` was given.
absl::Status BoolFromEnv(const CLI::App& cmd, const char* flag, absl::string_view env_name,
                         bool& target);
void StringFromEnv(const CLI::App& cmd, const char* flag, absl::string_view env_name,
                   std::string& target);

}  // namespace berth::client
