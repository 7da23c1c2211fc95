#include "daemon/policy/mpi_stacks.h"

#include <dirent.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "daemon/policy/config_file.h"
#include "daemon/policy/toml_fields.h"

namespace berth::daemon::policy {
namespace {

constexpr const char* kHint = " (see docs/mpi.md)";

bool AllOf(absl::string_view s, absl::string_view allowed_extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           allowed_extra.find(c) != absl::string_view::npos;
  });
}

// "libmpich.so.12", "libfabric.so.*": a file name with ".so", no '/', and a
// '*' only at the end.
bool IsSonamePattern(absl::string_view s) {
  absl::string_view body = absl::ConsumeSuffix(&s, "*") ? s : s;
  return !body.empty() && body.front() != '.' && AllOf(body, "._+-") &&
         absl::StrContains(body, ".so") && !absl::StrContains(body, "..");
}

// An absolute path with no empty, "." or ".." component and no trailing '/'.
bool IsNormalAbsolute(absl::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/') return false;
  for (absl::string_view part : absl::StrSplit(p.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

bool Below(absl::string_view p, absl::string_view dir) {
  return p == dir || absl::StartsWith(p, absl::StrCat(dir, "/"));
}

bool IsBindPath(absl::string_view p) {
  if (!IsNormalAbsolute(p) || absl::StrContains(p, "*")) return false;
  for (absl::string_view no : {"/proc", "/sys", "/dev"}) {
    if (Below(p, no)) return false;
  }
  for (absl::string_view top : {"/etc", "/home", "/root", "/tmp", "/var", "/usr", "/run", "/lib",
                                "/usr/lib", "/lib64", "/usr/lib64", "/opt", "/srv", "/mnt"}) {
    if (p == top) return false;
  }
  return true;
}

// Below /dev; a wildcard only in the last component ("/dev/infiniband/*").
bool IsDevicePattern(absl::string_view p) {
  if (!IsNormalAbsolute(p) || !absl::StartsWith(p, "/dev/")) return false;
  size_t slash = p.rfind('/');
  return !absl::StrContains(p.substr(0, slash), "*") && !absl::StrContains(p, "?") &&
         !absl::StrContains(p, "[");
}

bool IsEnvPattern(absl::string_view s) {
  absl::string_view body = absl::ConsumeSuffix(&s, "*") ? s : s;
  return !body.empty() && !absl::ascii_isdigit(static_cast<unsigned char>(body.front())) &&
         AllOf(body, "_");
}

// A list of strings under `key`, each accepted by `valid`, else `rule`.
absl::Status ReadList(const toml::table& t, const char* key, bool (*valid)(absl::string_view),
                      absl::string_view rule, const std::string& origin,
                      std::vector<std::string>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  const toml::array* arr = n->as_array();
  if (arr == nullptr) return Bad(origin, *n, absl::StrCat(key, " must be a list of strings"));
  for (const toml::node& item : *arr) {
    if (!item.is_string()) return Bad(origin, item, absl::StrCat(key, " entries must be strings"));
    const std::string& v = item.as_string()->get();
    if (!valid(v)) {
      return Bad(origin, item,
                 absl::StrCat(key, " entry '", absl::CHexEscape(v), "' ", rule, kHint));
    }
    out.push_back(v);
  }
  return absl::OkStatus();
}

absl::Status ReadEnvSet(const toml::table& t, const std::string& origin, mpi::Stack& stack) {
  const toml::node* n = t.get("env");
  if (n == nullptr) return absl::OkStatus();
  const toml::table* env = n->as_table();
  if (env == nullptr) return Bad(origin, *n, "env must be a table of NAME = \"value\"");
  for (const auto& [k, v] : *env) {
    std::string name(k.str());
    if (!IsEnvPattern(name) || absl::EndsWith(name, "*") || !v.is_string() ||
        absl::StrContains(v.as_string()->get(), '\0')) {
      return Bad(
          origin, v,
          absl::StrCat("env.", absl::CHexEscape(name), " must be a variable name set to a string"));
    }
    stack.env_set.emplace_back(name, v.as_string()->get());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<mpi::Stack> ParseMpiStack(const std::string& text, const std::string& name,
                                         const std::string& origin) {
  ASSIGN_OR_RETURN(toml::table t, ParseTomlFile(text, origin));
  RETURN_IF_ERROR(
      CheckKeys(t, {"libraries", "dependencies", "binds", "devices", "env_pass", "env", "abi"}, "",
                origin, kHint));
  mpi::Stack stack;
  stack.name = name;
  constexpr absl::string_view kSoname =
      "is not a soname (libNAME.so.N, '*' only at the end): host libraries are found through "
      "the host's loader cache, never by path";
  RETURN_IF_ERROR(ReadList(t, "libraries", IsSonamePattern, kSoname, origin, stack.libraries));
  RETURN_IF_ERROR(
      ReadList(t, "dependencies", IsSonamePattern, kSoname, origin, stack.dependencies));
  RETURN_IF_ERROR(ReadList(t, "binds", IsBindPath,
                           "must be an absolute, normal path (no '.', '..', '//' or '*') outside "
                           "/proc, /sys and /dev, and not a whole top directory",
                           origin, stack.binds));
  RETURN_IF_ERROR(ReadList(t, "devices", IsDevicePattern,
                           "must be a normal path below /dev/, '*' only in its last component",
                           origin, stack.devices));
  RETURN_IF_ERROR(ReadList(t, "env_pass", IsEnvPattern,
                           "must be a variable name or a prefix ending in '*'", origin,
                           stack.env_pass));
  RETURN_IF_ERROR(ReadEnvSet(t, origin, stack));
  std::string abi = "major";
  RETURN_IF_ERROR(ReadString(t, "abi", origin, abi));
  auto rule = mpi::ParseAbiRule(abi);
  if (!rule.ok()) return Bad(origin, *t.get("abi"), rule.status().message());
  stack.abi = *rule;
  if (stack.libraries.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": libraries is empty: a stack names at least its MPI library"));
  }
  return stack;
}

absl::StatusOr<mpi::Stack> LoadMpiStack(const std::string& config_dir, const std::string& name,
                                        bool require_root_owned) {
  if (!mpi::IsValidStackName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("MPI stack name '", absl::CHexEscape(name),
                                                   "' is invalid (letters, digits, '_', '-')"));
  }
  std::string path = absl::StrCat(config_dir, "/mpi.d/", name, ".toml");
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadPolicyFile(path, require_root_owned));
  if (!text) {
    std::vector<std::string> known = ListMpiStacks(config_dir);
    return absl::NotFoundError(
        absl::StrCat("no MPI stack '", name, "' on this node (", path, " does not exist; ",
                     known.empty() ? std::string("there is none")
                                   : absl::StrCat("there is ", absl::StrJoin(known, ", ")),
                     ")"));
  }
  return ParseMpiStack(*text, name, path);
}

std::vector<std::string> ListMpiStacks(const std::string& config_dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(absl::StrCat(config_dir, "/mpi.d").c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    absl::string_view n = e->d_name;
    if (!absl::ConsumeSuffix(&n, ".toml")) continue;
    if (mpi::IsValidStackName(std::string(n))) names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace berth::daemon::policy
