#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/policy/build_config_toml.h"

namespace berth::daemon::policy {

absl::Status ParseBuildTable(const toml::table& t, const std::string& o, BuildConfig& c) {
  RETURN_IF_ERROR(CheckKeys(
      t, {"build_dir", "allow_user_tmpdir", "compression", "compression_level", "build_cache"},
      "build", o, " (see docs/config.md)"));
  RETURN_IF_ERROR(ReadString(t, "build_dir", o, c.build_dir));
  if (const toml::node* n = t.get("build_dir");
      n != nullptr && (c.build_dir.empty() || c.build_dir.front() != '/')) {
    return Bad(o, *n, "build_dir must be an absolute path");
  }
  RETURN_IF_ERROR(ReadBool(t, "allow_user_tmpdir", o, c.allow_user_tmpdir));
  RETURN_IF_ERROR(ReadString(t, "compression", o, c.compression));
  if (const toml::node* n = t.get("compression")) {
    static const std::set<std::string> kKnown = {"gzip", "zstd", "lz4", "xz"};
    if (!kKnown.count(c.compression)) {
      return Bad(o, *n, "compression must be one of: gzip, zstd, lz4, xz");
    }
  }
  if (const toml::node* n = t.get("compression_level")) {
    if (!n->is_integer() || n->as_integer()->get() < 0 || n->as_integer()->get() > 22) {
      return Bad(o, *n, "compression_level must be an integer from 0 to 22");
    }
    c.compression_level = static_cast<int>(n->as_integer()->get());
  }
  RETURN_IF_ERROR(ReadBool(t, "build_cache", o, c.build_cache));
  return absl::OkStatus();
}

}  // namespace berth::daemon::policy
