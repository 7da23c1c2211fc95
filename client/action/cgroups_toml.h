// --apply-cgroups FILE: Apptainer's cgroups TOML (the OCI LinuxResources
// fields in camelCase: [memory], [cpu], [pids], [blockIO],
// [[hugepageLimits]], [unified], ...) turned into the request's Resources.
// The client reads the file as the caller; the daemon only sees values.
//
// A key berth cannot apply ([network], [rdma], kernel memory, realtime cpu,
// device rules other than allow-all) is an error naming it, never ignored;
// unknown keys are errors too. Privilege: the caller's.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"

namespace berth::client {

// `origin` names the file in errors ("limits.toml:3: ...").
absl::StatusOr<v1::Resources> ParseCgroupsToml(const std::string& text, const std::string& origin);

}  // namespace berth::client
