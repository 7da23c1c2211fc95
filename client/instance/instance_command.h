// `berth instance start|run|list|stop`: Apptainer's instance verbs, served
// by berthd (daemon/instance/). The client opens the instance's log files
// as the user, at Apptainer's paths, and hands them over; it formats list
// exactly as Apptainer does (table and JSON).
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace berth::client {

void RegisterInstanceCommands(CLI::App& app, const std::string& socket_flag,
                              std::shared_ptr<absl::Status> result);

}  // namespace berth::client
