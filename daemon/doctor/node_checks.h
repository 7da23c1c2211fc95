// The daemon's own findings for `berth doctor`, each a pure look (nothing
// changes): the policy files re-read exactly as a restart would read them,
// the state directory's stores against their budgets and the disk under them,
// and the caller's --fakeroot ids as a run would resolve them.
//
// Privilege: reads root's files (berth.conf, ecl.toml, /etc/subuid, the state
// directory); only what it concludes goes back to the caller.
#pragma once

#include <sys/types.h>

#include <vector>

#include "berth/v1/berth.pb.h"
#include "daemon/daemon_options.h"

namespace berth::daemon::doctor {

// berth.conf and ecl.toml; an error carries the parser's "file:line: ...".
std::vector<v1::DoctorCheck> PolicyFileChecks(const DaemonOptions& options);

// The node cache, the copy stores and the state directory's free space.
std::vector<v1::DoctorCheck> StoreChecks(const DaemonOptions& options);

// What --fakeroot gives the caller (subuid/subgid, Apptainer's rules).
v1::DoctorCheck FakerootCheck(const DaemonOptions& options, uid_t uid, gid_t gid);

// Whether the kernel idmaps the image's squashfs for --fakeroot and
// writable layers (daemon/launch/image_idmap.h): squashfs allows it from
// Linux 6.2; the launcher falls back to the host owners where it refuses.
v1::DoctorCheck IdmapCheck(const DaemonOptions& options);

}  // namespace berth::daemon::doctor
