#include "client/env_flags.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace berth::client {

namespace {

// The first of BERTH_X, APPTAINER_X, SINGULARITY_X that is set, and its value.
const char* FindEnvForm(absl::string_view name, std::string& variable) {
  for (const char* prefix : {"BERTH_", "APPTAINER_", "SINGULARITY_"}) {
    variable = absl::StrCat(prefix, name);
    if (const char* v = std::getenv(variable.c_str()); v != nullptr) return v;
  }
  return nullptr;
}

}  // namespace

const char* EnvForm(absl::string_view name) {
  std::string variable;
  return FindEnvForm(name, variable);
}

const char* EnvForm(absl::string_view name, std::string& variable) {
  return FindEnvForm(name, variable);
}

absl::StatusOr<bool> ParseEnvBool(absl::string_view variable, absl::string_view value) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (value == t) return true;
  }
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False", ""}) {
    if (value == f) return false;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(variable, "='", value, "' is not a boolean (use 1/0, true/false)"));
}

absl::Status BoolFromEnv(const CLI::App& cmd, const char* flag, absl::string_view env_name,
                         bool& target) {
  if (cmd.count(flag) > 0) return absl::OkStatus();
  std::string variable;
  const char* v = FindEnvForm(env_name, variable);
  if (v == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(target, ParseEnvBool(variable, v));
  return absl::OkStatus();
}

void StringFromEnv(const CLI::App& cmd, const char* flag, absl::string_view env_name,
                   std::string& target) {
  if (cmd.count(flag) > 0) return;
  if (const char* v = EnvForm(env_name); v != nullptr) target = v;
}

}  // namespace berth::client
