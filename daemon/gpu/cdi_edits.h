// A CDI device's containerEdits (and its spec's top-level ones) turned into
// the GPU bind set: each host path the spec names is opened here, by the
// daemon, and checked (a deviceNode must be the character or block device
// its type/major/minor say; a hook binary must be root-owned and writable by
// nobody else), so the launcher only ever binds descriptors.
//
// berth honours every field SPEC.md 1.1.0 defines for a container but
// intelRdt and netDevices, which are refused by name. Mounts are always
// nosuid and nodev ("suid" and "dev" options are refused), their
// propagation is always "slave" (mount events never flow back to the host).
//
// Privilege: the daemon's (root in system mode): the spec is the site's
// configuration, root-owned by CdiRegistry's rule.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "daemon/gpu/cdi_spec.h"
#include "daemon/gpu/gpu_grant.h"

namespace berth::daemon::gpu {

struct EditContext {
  bool system_mode = true;
  // The caller's groups: all a user-mode daemon can give (additionalGids).
  gid_t caller_gid = 0;
  std::vector<gid_t> caller_groups;
};

// `who` names the device and its spec in every error.
absl::Status ApplyCdiEdits(const CdiEdits& edits, const std::string& who, const EditContext& ctx,
                           GpuGrant& grant);

}  // namespace berth::daemon::gpu
