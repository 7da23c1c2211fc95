// The daemon's log sink: every message is escaped (common/log_escape.h)
// before it reaches stderr or syslog, so that nothing a caller sends can
// start a line of its own in the daemon's log or hide what a line says.
//
// Escaping the message where it leaves the daemon, rather than at each log
// call, covers every call that quotes request data (image paths,
// references, bind paths, error messages that embed them), including the
// ones written later.
#pragma once

#include <memory>

#include "spdlog/sinks/sink.h"

namespace berth::daemon {

// Wraps `inner`: the same messages, escaped, at `inner`'s level.
std::shared_ptr<spdlog::sinks::sink> EscapingSink(std::shared_ptr<spdlog::sinks::sink> inner);

}  // namespace berth::daemon
