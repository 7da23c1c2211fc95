#include "daemon/gpu/cdi_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "daemon/gpu/cdi_internal.h"

namespace berth::daemon::gpu {
namespace {

constexpr size_t kMaxItems = 4096;
const std::set<std::string>& KnownVersions() {
  static const std::set<std::string> versions = {"0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0",
                                                 "0.7.0", "0.8.0", "1.0.0", "1.1.0"};
  return versions;
}
const std::set<std::string>& HookNames() {
  static const std::set<std::string> names = {"createRuntime", "createContainer", "startContainer",
                                              "poststart",     "poststop",        "prestart"};
  return names;
}

// Reads one spec, every error as "ORIGIN:LINE: field: why".
class SpecReader {
 public:
  explicit SpecReader(const std::string& origin) : origin_(origin) {}

  absl::Status Bad(const YAML::Node& at, const std::string& field, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ":", at.Mark().line + 1, ": ", field,
                                                   field.empty() ? "" : ": ", why));
  }

  // `n` is a map holding only `known` keys, each once; null reads as empty.
  absl::Status Map(const YAML::Node& n, const std::string& field,
                   const std::set<std::string>& known) const {
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    if (!n.IsMap()) return Bad(n, field, "must be a mapping");
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
      if (!known.count(key)) return Bad(kv.first, Join(field, key), "unknown key");
      if (!seen.insert(key).second) return Bad(kv.first, Join(field, key), "repeated key");
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& map, const char* key, const std::string& field,
                      bool required, std::string& out) const {
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) {
      return required ? Bad(map, Join(field, key), "is required") : absl::OkStatus();
    }
    if (!n.IsScalar()) return Bad(n, Join(field, key), "must be a string");
    out = n.Scalar();
    if (out.find('\0') != std::string::npos) return Bad(n, Join(field, key), "contains a NUL byte");
    if (required && out.empty()) return Bad(n, Join(field, key), "is empty");
    return absl::OkStatus();
  }

  absl::Status Absolute(const YAML::Node& map, const char* key, const std::string& field,
                        bool required, std::string& out) const {
    RETURN_IF_ERROR(String(map, key, field, required, out));
    if (!out.empty() && out.front() != '/') {
      return Bad(map[key], Join(field, key), absl::StrCat("'", out, "' is not an absolute path"));
    }
    return absl::OkStatus();
  }

  absl::Status Strings(const YAML::Node& map, const char* key, const std::string& field,
                       std::vector<std::string>& out) const {
    return Each(map, key, field, [&](const YAML::Node& item, const std::string& where) {
      if (!item.IsScalar()) return Bad(item, where, "must be a string");
      out.push_back(item.Scalar());
      return absl::OkStatus();
    });
  }

  template <typename Int>
  absl::Status Integer(const YAML::Node& map, const char* key, const std::string& field,
                       int64_t min, int64_t max, std::optional<Int>& out) const {
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    int64_t v;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v) || v < min || v > max) {
      return Bad(n, Join(field, key), absl::StrCat("must be an integer in ", min, "..", max));
    }
    out = static_cast<Int>(v);
    return absl::OkStatus();
  }

  // Calls `fn` for each item of the sequence `map[key]` (absent: none).
  absl::Status Each(
      const YAML::Node& map, const char* key, const std::string& field,
      const std::function<absl::Status(const YAML::Node&, const std::string&)>& fn) const {
    YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
    if (!n.IsSequence()) return Bad(n, Join(field, key), "must be a list");
    if (n.size() > kMaxItems) return Bad(n, Join(field, key), "more than 4096 items");
    for (size_t i = 0; i < n.size(); ++i) {
      RETURN_IF_ERROR(fn(n[i], absl::StrCat(Join(field, key), "[", i, "]")));
    }
    return absl::OkStatus();
  }

  static std::string Join(const std::string& field, absl::string_view key) {
    return field.empty() ? std::string(key) : absl::StrCat(field, ".", key);
  }

 private:
  const std::string& origin_;
};

absl::StatusOr<CdiDeviceNode> ReadDeviceNode(const SpecReader& r, const YAML::Node& n,
                                             const std::string& f) {
  RETURN_IF_ERROR(r.Map(
      n, f,
      {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"}));
  if (!n.IsMap()) return r.Bad(n, f, "must be a mapping");
  CdiDeviceNode d;
  RETURN_IF_ERROR(r.Absolute(n, "path", f, true, d.path));
  RETURN_IF_ERROR(r.Absolute(n, "hostPath", f, false, d.host_path));
  RETURN_IF_ERROR(r.String(n, "type", f, false, d.type));
  if (!d.type.empty() && d.type != "c" && d.type != "b" && d.type != "u") {
    return r.Bad(n["type"], SpecReader::Join(f, "type"), "must be c, b or u");
  }
  RETURN_IF_ERROR(r.Integer(n, "major", f, 0, 0xfffff, d.major));
  RETURN_IF_ERROR(r.Integer(n, "minor", f, 0, 0xfffff, d.minor));
  RETURN_IF_ERROR(r.Integer(n, "fileMode", f, 0, 07777, d.file_mode));
  RETURN_IF_ERROR(r.Integer(n, "uid", f, 0, 0xfffffffe, d.uid));
  RETURN_IF_ERROR(r.Integer(n, "gid", f, 0, 0xfffffffe, d.gid));
  RETURN_IF_ERROR(r.String(n, "permissions", f, false, d.permissions));
  if (d.permissions.find_first_not_of("rwm") != std::string::npos) {
    return r.Bad(n["permissions"], SpecReader::Join(f, "permissions"),
                 "must be made of r, w and m");
  }
  return d;
}

absl::StatusOr<CdiMount> ReadMount(const SpecReader& r, const YAML::Node& n, const std::string& f) {
  RETURN_IF_ERROR(r.Map(n, f, {"hostPath", "containerPath", "type", "options"}));
  if (!n.IsMap()) return r.Bad(n, f, "must be a mapping");
  CdiMount m;
  RETURN_IF_ERROR(r.Absolute(n, "hostPath", f, true, m.host_path));
  RETURN_IF_ERROR(r.Absolute(n, "containerPath", f, true, m.container_path));
  RETURN_IF_ERROR(r.String(n, "type", f, false, m.type));
  RETURN_IF_ERROR(r.Strings(n, "options", f, m.options));
  return m;
}

absl::StatusOr<CdiHook> ReadHook(const SpecReader& r, const YAML::Node& n, const std::string& f) {
  RETURN_IF_ERROR(r.Map(n, f, {"hookName", "path", "args", "env", "timeout"}));
  if (!n.IsMap()) return r.Bad(n, f, "must be a mapping");
  CdiHook h;
  RETURN_IF_ERROR(r.String(n, "hookName", f, true, h.hook_name));
  if (!HookNames().count(h.hook_name)) {
    return r.Bad(n["hookName"], SpecReader::Join(f, "hookName"),
                 absl::StrCat("'", h.hook_name,
                              "' is not an OCI hook (createRuntime, createContainer, "
                              "startContainer, poststart, poststop)"));
  }
  if (h.hook_name == "prestart") h.hook_name = "createRuntime";  // OCI's deprecated name
  RETURN_IF_ERROR(r.Absolute(n, "path", f, true, h.path));
  RETURN_IF_ERROR(r.Strings(n, "args", f, h.args));
  RETURN_IF_ERROR(r.Strings(n, "env", f, h.env));
  RETURN_IF_ERROR(r.Integer(n, "timeout", f, 1, 3600, h.timeout));
  return h;
}

absl::StatusOr<CdiEdits> ReadEdits(const SpecReader& r, const YAML::Node& n, const std::string& f) {
  RETURN_IF_ERROR(r.Map(
      n, f, {"env", "deviceNodes", "mounts", "hooks", "additionalGids", "intelRdt", "netDevices"}));
  CdiEdits e;
  if (!n.IsDefined() || n.IsNull()) return e;
  RETURN_IF_ERROR(r.Strings(n, "env", f, e.env));
  for (const std::string& kv : e.env) {
    std::string name = kv.substr(0, kv.find('='));
    bool identifier = !name.empty() && !absl::ascii_isdigit(name.front()) &&
                      std::all_of(name.begin(), name.end(),
                                  [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
    if (kv.find('=') == std::string::npos || !identifier) {
      return r.Bad(n["env"], SpecReader::Join(f, "env"),
                   absl::StrCat("'", kv, "' is not NAME=value with a shell variable name"));
    }
  }
  RETURN_IF_ERROR(r.Each(n, "deviceNodes", f, [&](const YAML::Node& item, const std::string& w) {
    ASSIGN_OR_RETURN(CdiDeviceNode d, ReadDeviceNode(r, item, w));
    e.device_nodes.push_back(std::move(d));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(r.Each(n, "mounts", f, [&](const YAML::Node& item, const std::string& w) {
    ASSIGN_OR_RETURN(CdiMount m, ReadMount(r, item, w));
    e.mounts.push_back(std::move(m));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(r.Each(n, "hooks", f, [&](const YAML::Node& item, const std::string& w) {
    ASSIGN_OR_RETURN(CdiHook h, ReadHook(r, item, w));
    e.hooks.push_back(std::move(h));
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(r.Each(n, "additionalGids", f, [&](const YAML::Node& item, const std::string& w) {
    int64_t gid;
    if (!item.IsScalar() || !absl::SimpleAtoi(item.Scalar(), &gid) || gid < 0 || gid > 0xfffffffe) {
      return r.Bad(item, w, "must be a group id");
    }
    e.additional_gids.push_back(static_cast<uint32_t>(gid));
    return absl::OkStatus();
  }));
  e.intel_rdt = n["intelRdt"].IsDefined() && !n["intelRdt"].IsNull();
  e.net_devices = n["netDevices"].IsDefined() && !n["netDevices"].IsNull();
  return e;
}

bool Empty(const CdiEdits& e) {
  return e.env.empty() && e.device_nodes.empty() && e.mounts.empty() && e.hooks.empty() &&
         e.additional_gids.empty() && !e.intel_rdt && !e.net_devices;
}

absl::Status ReadHeader(const SpecReader& r, const YAML::Node& root, CdiSpec& spec) {
  RETURN_IF_ERROR(
      r.Map(root, "", {"cdiVersion", "kind", "annotations", "devices", "containerEdits"}));
  if (!root.IsMap()) return r.Bad(root, "", "a CDI spec must be a mapping");
  RETURN_IF_ERROR(r.String(root, "cdiVersion", "", true, spec.version));
  if (!KnownVersions().count(spec.version)) {
    return r.Bad(
        root["cdiVersion"], "cdiVersion",
        absl::StrCat("'", spec.version, "' is not a CDI version berth knows (up to 1.1.0)"));
  }
  RETURN_IF_ERROR(r.String(root, "kind", "", true, spec.kind));
  if (absl::Status st = CheckCdiKind(spec.kind); !st.ok())
    return r.Bad(root["kind"], "kind", st.message());
  if (YAML::Node a = root["annotations"]; a.IsDefined() && !a.IsNull() && !a.IsMap()) {
    return r.Bad(a, "annotations", "must be a mapping");
  }
  return absl::OkStatus();
}

absl::Status ReadDevices(const SpecReader& r, const YAML::Node& root, CdiSpec& spec) {
  std::set<std::string> names;
  RETURN_IF_ERROR(r.Each(root, "devices", "", [&](const YAML::Node& n, const std::string& f) {
    RETURN_IF_ERROR(r.Map(n, f, {"name", "annotations", "containerEdits"}));
    if (!n.IsMap()) return r.Bad(n, f, "must be a mapping");
    CdiDevice d;
    RETURN_IF_ERROR(r.String(n, "name", f, true, d.name));
    if (absl::Status st = CheckCdiDeviceName(d.name); !st.ok())
      return r.Bad(n["name"], f, st.message());
    if (!names.insert(d.name).second)
      return r.Bad(n["name"], f, absl::StrCat("device '", d.name, "' is defined twice"));
    ASSIGN_OR_RETURN(d.edits,
                     ReadEdits(r, n["containerEdits"], SpecReader::Join(f, "containerEdits")));
    if (Empty(d.edits))
      return r.Bad(n, f, absl::StrCat("device '", d.name, "' has no containerEdits"));
    spec.devices.push_back(std::move(d));
    return absl::OkStatus();
  }));
  if (spec.devices.empty()) return r.Bad(root, "devices", "a spec must define at least one device");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CdiSpec> ParseCdiSpec(absl::string_view text, const std::string& origin) {
  SpecReader r(origin);
  // yaml-cpp reports everything by exception; they stop here.
  try {
    YAML::Node root = YAML::Load(std::string(text));
    CdiSpec spec;
    RETURN_IF_ERROR(ReadHeader(r, root, spec));
    RETURN_IF_ERROR(ReadDevices(r, root, spec));
    ASSIGN_OR_RETURN(spec.edits, ReadEdits(r, root["containerEdits"], "containerEdits"));
    return spec;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
}

}  // namespace berth::daemon::gpu
