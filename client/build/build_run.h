// `berth build IMAGE SPEC` for real: the client reads what is the user's as
// the user (the definition, --build-arg-file, the localimage source), creates
// the output's temp file next to IMAGE as the user, hands the descriptors to
// berthd with the request, shows the build's phases and section output as
// they stream back, and renames the temp file into place on success (removes
// it otherwise).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "client/build/build_flags.h"

namespace berth::client {

absl::Status RunDaemonBuild(const std::string& socket_flag, const BuildFlags& flags,
                            const SquashOptions& squash, const std::string& image,
                            const std::string& spec);

}  // namespace berth::client
