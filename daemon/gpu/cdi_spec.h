// CDI (Container Device Interface, cncf-tags/container-device-interface
// SPEC.md up to 1.1.0) spec files, parsed into berth's own structs.
//
// A spec names a kind ("vendor.com/class"), its devices ("=name"), and the
// edits each device (and the spec as a whole, for any of its devices) makes
// to a container: environment, device nodes, mounts, OCI hooks and extra
// groups. JSON and YAML files are both read with yaml-cpp (JSON is YAML, as
// the reference Go library reads both with one YAML decoder).
//
// Strict, because a spec is policy: an unknown key (a typo must not mean
// "default"), a repeated key, a relative path, a hook name outside the OCI
// list, a cdiVersion newer than 1.1.0 or a malformed name is refused with
// "FILE:LINE: field: why". Fields berth cannot honour (intelRdt,
// netDevices) are parsed and remembered, so a request for a device that
// needs them is refused by name instead of half-applied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::daemon::gpu {

struct CdiDeviceNode {
  std::string path;       // in the container (absolute)
  std::string host_path;  // on the host; empty: same as path
  std::string type;       // "c", "b" or empty
  std::optional<int64_t> major, minor;
  std::optional<uint32_t> file_mode, uid, gid;
  std::string permissions;  // cgroup access, subset of "rwm"; empty: "rwm"
};

struct CdiMount {
  std::string host_path, container_path, type;
  std::vector<std::string> options;
};

struct CdiHook {
  std::string hook_name;  // createRuntime, createContainer, startContainer, poststart, poststop
  std::string path;       // absolute
  std::vector<std::string> args, env;
  std::optional<int> timeout;  // seconds, > 0
};

struct CdiEdits {
  std::vector<std::string> env;  // "K=V"
  std::vector<CdiDeviceNode> device_nodes;
  std::vector<CdiMount> mounts;
  std::vector<CdiHook> hooks;
  std::vector<uint32_t> additional_gids;
  bool intel_rdt = false;    // present in the spec; berth cannot apply it
  bool net_devices = false;  // likewise
};

struct CdiDevice {
  std::string name;
  CdiEdits edits;
};

struct CdiSpec {
  std::string version;
  std::string kind;  // "vendor.com/class"
  std::vector<CdiDevice> devices;
  CdiEdits edits;  // applied when any device of the spec is requested
};

// Parses a spec's text; `origin` names the file in messages.
absl::StatusOr<CdiSpec> ParseCdiSpec(absl::string_view text, const std::string& origin);

// "vendor.com/class=name" → kind and name, each checked against the spec's
// character rules.
struct CdiName {
  std::string kind;
  std::string name;
  std::string Qualified() const { return kind + "=" + name; }
};
absl::StatusOr<CdiName> ParseCdiName(absl::string_view qualified);

}  // namespace berth::daemon::gpu
