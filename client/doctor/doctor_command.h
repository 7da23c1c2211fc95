// `berth doctor [--json]`: what a site admin runs first. The client's own
// findings (host_checks.h) and the daemon's (the Doctor RPC: config files,
// squashfs per compressor, stores, the caller's fakeroot ids), each with the
// fix in one line. Exits 255 with a FATAL line when any finding is an error,
// so scripts can gate on it; warnings do not fail it.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterDoctorCommand(CLI::App& app, const std::string& socket_flag,
                           std::shared_ptr<absl::Status> result);

}  // namespace berth::client
