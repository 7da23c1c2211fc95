// Making untrusted text safe to put in one log line.
//
// berthd logs what callers send it (image paths, references, bind paths,
// error messages that quote them). A newline there would start a second,
// forged line in the daemon's log, and terminal escapes or bidirectional
// overrides would make a line read differently from what it holds. The
// daemon's log sink (daemon/server/log_sink.h) passes every message through
// EscapeForLog, so no log call has to remember to.
#pragma once

#include <string>
#include <string_view>

namespace berth {

// `text` with every byte or character a reader could mistake escaped:
// ASCII control characters as \n, \r, \t, \e or \xNN; DEL and bytes that
// are not valid UTF-8 as \xNN per byte; C1 controls, the Unicode line and
// paragraph separators and the bidirectional controls as \u{NNNN}; and the
// backslash itself as \\, so that an escape cannot be forged either.
// Printable ASCII and other valid UTF-8 pass unchanged.
std::string EscapeForLog(std::string_view text);

}  // namespace berth
