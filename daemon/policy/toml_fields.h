// Reading settings out of a parsed TOML policy file (berth.conf, ecl.toml)
// with errors that name the file and line, as one-line absl::Status.
//
// toml++ is used header-only and exception-free: Debian's libtomlplusplus.so
// is built with exceptions, and errors here are absl::Status like everywhere
// else. Every policy file includes toml++ through this header so all
// translation units see the same configuration.
#pragma once

#include <set>
#include <string>

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::policy {

// Parses a whole policy file; a syntax error is "ORIGIN:LINE: what".
absl::StatusOr<toml::table> ParseTomlFile(const std::string& text, const std::string& origin);

// "ORIGIN:LINE: what", an InvalidArgument error.
absl::Status Bad(const std::string& origin, const toml::node& node, absl::string_view what);

// Refuses keys the schema does not know: a typo must not silently mean
// "default". `section` prefixes the key in the message ("binds.x"), `hint`
// is appended after it (" (see docs/config.md)"); both may be empty.
absl::Status CheckKeys(const toml::table& table, const std::set<std::string>& known,
                       const std::string& section, const std::string& origin,
                       absl::string_view hint);

// `out` is left alone when `key` is absent.
absl::Status ReadBool(const toml::table& t, const char* key, const std::string& origin, bool& out);
absl::Status ReadString(const toml::table& t, const char* key, const std::string& origin,
                        std::string& out);

}  // namespace berth::daemon::policy
