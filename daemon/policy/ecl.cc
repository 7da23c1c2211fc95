#include "daemon/policy/ecl.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/policy/config_file.h"
#include "daemon/policy/toml_fields.h"

namespace berth::daemon::policy {
namespace {

// A dirpath must already be what the kernel reports for images in it:
// absolute, clean and symlink-free (Apptainer compares it verbatim).
absl::Status CheckDirpath(const toml::node& node, const std::string& dir,
                          const std::string& origin) {
  if (dir.empty()) return absl::OkStatus();
  char real[PATH_MAX];
  if (dir.front() != '/' || ::realpath(dir.c_str(), real) == nullptr || dir != real) {
    return Bad(origin, node,
               absl::StrCat("dirpath '", dir,
                            "' must be an existing absolute path with no symlinks, '.', '..' or "
                            "trailing '/'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExecGroup> ParseGroup(const toml::table& t, const std::string& origin) {
  RETURN_IF_ERROR(CheckKeys(t, {"tagname", "mode", "dirpath", "keyfp"}, "", origin, ""));
  ExecGroup g;
  RETURN_IF_ERROR(ReadString(t, "tagname", origin, g.tagname));
  std::string mode;
  RETURN_IF_ERROR(ReadString(t, "mode", origin, mode));
  if (mode == "whitelist") {
    g.mode = EclMode::kWhitelist;
  } else if (mode == "whitestrict") {
    g.mode = EclMode::kWhitestrict;
  } else if (mode == "blacklist") {
    g.mode = EclMode::kBlacklist;
  } else {
    const toml::node* n = t.get("mode");
    return Bad(origin, n != nullptr ? *n : static_cast<const toml::node&>(t),
               absl::StrCat("mode '", mode, "' must be whitelist, whitestrict or blacklist"));
  }
  RETURN_IF_ERROR(ReadString(t, "dirpath", origin, g.dirpath));
  if (const toml::node* n = t.get("dirpath")) RETURN_IF_ERROR(CheckDirpath(*n, g.dirpath, origin));
  if (const toml::node* n = t.get("keyfp")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return Bad(origin, *n, "keyfp must be a list of fingerprints");
    for (const toml::node& item : *arr) {
      std::string fp = item.is_string() ? std::string(item.as_string()->get()) : "";
      bool hex = fp.size() == 40 && std::all_of(fp.begin(), fp.end(), [](char c) {
                   return std::isxdigit(static_cast<unsigned char>(c));
                 });
      if (!hex) return Bad(origin, item, "keyfp entries must be 40 hex digits (20 bytes)");
      g.keyfp.push_back(absl::AsciiStrToUpper(fp));
    }
  }
  return g;
}

std::string List(const std::set<std::string>& s) {
  return s.empty() ? "none" : absl::StrJoin(s, ", ");
}

}  // namespace

const char* EclModeName(EclMode mode) {
  switch (mode) {
    case EclMode::kWhitelist:
      return "whitelist";
    case EclMode::kWhitestrict:
      return "whitestrict";
    default:
      return "blacklist";
  }
}

absl::StatusOr<Ecl> ParseEcl(const std::string& text, const std::string& origin) {
  ASSIGN_OR_RETURN(const toml::table root, ParseTomlFile(text, origin));
  RETURN_IF_ERROR(CheckKeys(root, {"activated", "legacyinsecure", "execgroup"}, "", origin, ""));
  Ecl ecl;
  RETURN_IF_ERROR(ReadBool(root, "activated", origin, ecl.activated));
  RETURN_IF_ERROR(ReadBool(root, "legacyinsecure", origin, ecl.legacy_insecure));
  if (const toml::node* n = root.get("execgroup")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr)
      return Bad(origin, *n, "execgroup must be an array of tables [[execgroup]]");
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (t == nullptr) return Bad(origin, item, "execgroup entries must be tables");
      ASSIGN_OR_RETURN(ExecGroup g, ParseGroup(*t, origin));
      for (const ExecGroup& other : ecl.groups) {
        if (other.dirpath == g.dirpath) {
          return Bad(origin, item,
                     absl::StrCat("dirpath '", g.dirpath, "' is used by execgroup '", other.tagname,
                                  "' already"));
        }
      }
      ecl.groups.push_back(std::move(g));
    }
  }
  return ecl;
}

absl::StatusOr<Ecl> LoadEcl(const std::string& config_dir, bool require_root_owned) {
  const std::string path = absl::StrCat(config_dir, "/ecl.toml");
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadPolicyFile(path, require_root_owned));
  if (!text) return Ecl{};
  return ParseEcl(*text, path);
}

const ExecGroup* SelectExecGroup(const Ecl& ecl, const std::string& image_dir) {
  for (const ExecGroup& g : ecl.groups) {
    if (!g.dirpath.empty() && g.dirpath == image_dir) return &g;
  }
  for (const ExecGroup& g : ecl.groups) {
    if (g.dirpath.empty()) return &g;
  }
  return nullptr;
}

std::string EclDenial(const ExecGroup& g, const EclSigners& s) {
  auto valid_signer = [&](const std::string& fp) {
    return s.all_signed_by.count(fp) != 0 && s.unvalidated.count(fp) == 0;
  };
  bool allowed = false;
  std::string required;
  switch (g.mode) {
    case EclMode::kWhitelist:
      allowed = std::any_of(g.keyfp.begin(), g.keyfp.end(), valid_signer);
      required = "a valid signature by one of " + absl::StrJoin(g.keyfp, ", ");
      break;
    case EclMode::kWhitestrict:
      allowed = !g.keyfp.empty() && std::all_of(g.keyfp.begin(), g.keyfp.end(), valid_signer);
      required = "valid signatures by all of " + absl::StrJoin(g.keyfp, ", ");
      break;
    case EclMode::kBlacklist:
      allowed = std::none_of(g.keyfp.begin(), g.keyfp.end(),
                             [&](const std::string& fp) { return s.any_signed_by.count(fp) != 0; });
      required = "no signature by " + absl::StrJoin(g.keyfp, ", ");
      break;
  }
  if (allowed) return "";
  return absl::StrCat(
      "execgroup '", g.tagname, "' (", EclModeName(g.mode), ") requires ", required, "; signed by ",
      List(s.any_signed_by),
      s.unvalidated.empty() ? "" : absl::StrCat(" (not valid: ", List(s.unvalidated), ")"));
}

}  // namespace berth::daemon::policy
