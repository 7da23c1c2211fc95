// The client's messages on stderr, with Apptainer's levels and prefixes
// (sylog): FATAL, ERROR, WARNING, INFO, VERBOSE, DEBUG. The global flags
// choose how much is shown, as Apptainer's do:
//   -d/--debug    everything, each line tagged with the caller's uid and pid
//   -v/--verbose  up to VERBOSE
//   (default)     up to INFO
//   -q/--quiet    warnings and errors only
//   -s/--silent   errors only
// berth never colours its output, so --nocolor changes nothing.
//
// Messages are single lines: a control character from an image, a file name
// or a daemon reply is escaped, so one message never becomes two.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace berth::client::log {

enum class Level : int {
  kFatal = -4,
  kError = -3,
  kWarning = -2,
  kInfo = 1,
  kVerbose = 4,
  kDebug = 5,
};

// The level in force (kInfo until SetLevel is called).
Level CurrentLevel();
void SetLevel(Level level);

// The level the global flags and their environment forms ask for.
Level LevelFromFlags(bool debug, bool verbose, bool quiet, bool silent);

// Writes "PREFIX message" on stderr when `level` is shown.
void Write(Level level, absl::string_view message);

inline void Fatal(absl::string_view m) {
  Write(Level::kFatal, m);
}
inline void Error(absl::string_view m) {
  Write(Level::kError, m);
}
inline void Warning(absl::string_view m) {
  Write(Level::kWarning, m);
}
inline void Info(absl::string_view m) {
  Write(Level::kInfo, m);
}
inline void Verbose(absl::string_view m) {
  Write(Level::kVerbose, m);
}
inline void Debug(absl::string_view m) {
  Write(Level::kDebug, m);
}

// `text` with control characters written as \xNN: one line, whatever it held.
std::string OneLine(absl::string_view text);

}  // namespace berth::client::log
