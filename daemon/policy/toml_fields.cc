#include "daemon/policy/toml_fields.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace berth::daemon::policy {

absl::StatusOr<toml::table> ParseTomlFile(const std::string& text, const std::string& origin) {
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", origin, err.source().begin.line,
                                                      std::string(err.description())));
  }
  return std::move(parsed.table());
}

absl::Status Bad(const std::string& origin, const toml::node& node, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrFormat("%s:%d: %s", origin, node.source().begin.line, what));
}

absl::Status CheckKeys(const toml::table& table, const std::set<std::string>& known,
                       const std::string& section, const std::string& origin,
                       absl::string_view hint) {
  for (const auto& [key, node] : table) {
    if (known.count(std::string(key.str())) == 0) {
      return Bad(origin, node,
                 absl::StrCat("unknown setting '", section.empty() ? "" : section + ".",
                              std::string(key.str()), "'", hint));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadBool(const toml::table& t, const char* key, const std::string& origin, bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_boolean()) return Bad(origin, *n, absl::StrCat(key, " must be true or false"));
  out = n->as_boolean()->get();
  return absl::OkStatus();
}

absl::Status ReadString(const toml::table& t, const char* key, const std::string& origin,
                        std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_string()) return Bad(origin, *n, absl::StrCat(key, " must be a string"));
  out = n->as_string()->get();
  return absl::OkStatus();
}

}  // namespace berth::daemon::policy
