// -S/--scratch and -W/--workdir (Apptainer's): where a container's scratch
// directories, and under --contain its /tmp, /var/tmp and home, come from.
// Without -W: fresh tmpfs mounts (the launcher makes them). With -W DIR:
// directories of DIR on the host, DIR/tmp, DIR/var_tmp, DIR/home and
// DIR/scratch/<path>, which persist after the container.
//
// Privilege: runs in the root daemon on a user's directory, so DIR is
// opened, and every directory below it made and opened, with the caller's
// filesystem identity (image::MakeDirAtAsCaller): the kernel judges each
// step by the caller's rights, new directories are the caller's, and a
// symlink planted at one of those names is refused, never followed.
#pragma once

#include "absl/status/status.h"
#include "berth/v1/berth.pb.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/launch/launch.h"

namespace berth::daemon {

// Fills spec.workdir_tmp/var_tmp, the home source (contained, -H not given)
// and the scratch directories from the request. Call after the home was
// decided (AddHome) and before the binds are planned; `tmp` says whether
// /tmp and /var/tmp are mounted at all (--no-mount tmp, mount_tmp).
absl::Status AddScratchAndWorkdir(const v1::RunRequest& request, const image::CallerCreds& caller,
                                  bool tmp, launch::LaunchSpec& spec);

}  // namespace berth::daemon
