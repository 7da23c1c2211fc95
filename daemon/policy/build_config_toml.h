// Parsing berth.conf's [build] table (build_config.h), for config.cc.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "daemon/policy/build_config.h"
#include "daemon/policy/toml_fields.h"

namespace berth::daemon::policy {

absl::Status ParseBuildTable(const toml::table& table, const std::string& origin,
                             BuildConfig& config);

}  // namespace berth::daemon::policy
