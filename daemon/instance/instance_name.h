// Names of instances and the globs that select them (instance list|stop).
//
// A name is chosen by its user, travels to a root daemon and becomes part
// of a state file's name: it is checked here, before anything else sees it,
// against Apptainer's rule ^[a-zA-Z0-9._-]+$ (plus a length cap, and "."
// and ".." refused since they name directories).
//
// Privilege: none (pure functions).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::instance {

inline constexpr size_t kMaxNameBytes = 128;
inline constexpr size_t kMaxPatternBytes = 256;

// OK for a valid name; else one line naming the rule.
absl::Status CheckName(absl::string_view name);

// OK for a glob `instance list|stop` may use: the name characters plus
// * ? [ ] (fnmatch's), bounded.
absl::Status CheckPattern(absl::string_view pattern);

// Whether `name` matches the glob `pattern` ("" matches everything).
bool NameMatches(const std::string& pattern, const std::string& name);

}  // namespace berth::daemon::instance
