// WWW-Authenticate challenges (RFC 7235) as registries send them:
// `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace berth::oras {

struct Challenge {
  std::string scheme;                         // lower-case: "basic", "bearer"
  std::map<std::string, std::string> params;  // lower-case names, unquoted values
  std::string Param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? "" : it->second;
  }
};

// Parses one challenge header value (the first challenge when several).
absl::StatusOr<Challenge> ParseChallenge(const std::string& header);

}  // namespace berth::oras
