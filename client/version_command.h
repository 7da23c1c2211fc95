// `berth version`: the client's version and, when a daemon answers, the
// daemon's, with its mode and who it believes you are. That last part is the
// quickest check that berthd is up and reads peer credentials right.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

// Adds the `version` verb to `app`. `socket_flag` is the global --socket value;
// it is read when the verb runs, so it must outlive app.parse(). The verb's
// outcome is stored in `*result` for main() to report.
void RegisterVersionCommand(CLI::App& app, const std::string& socket_flag,
                            std::shared_ptr<absl::Status> result);

}  // namespace berth::client
