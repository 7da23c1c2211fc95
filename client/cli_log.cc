#include "client/cli_log.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace berth::client::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* Prefix(Level level) {
  switch (level) {
    case Level::kFatal:
      return "FATAL:   ";
    case Level::kError:
      return "ERROR:   ";
    case Level::kWarning:
      return "WARNING: ";
    case Level::kInfo:
      return "INFO:    ";
    case Level::kVerbose:
      return "VERBOSE: ";
    case Level::kDebug:
      break;
  }
  return "DEBUG   ";
}

}  // namespace

Level CurrentLevel() {
  return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}

void SetLevel(Level level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

Level LevelFromFlags(bool debug, bool verbose, bool quiet, bool silent) {
  // Apptainer's order: the first one set wins.
  if (debug) return Level::kDebug;
  if (verbose) return Level::kVerbose;
  if (quiet) return Level::kWarning;
  if (silent) return Level::kError;
  return Level::kInfo;
}

void Write(Level level, absl::string_view message) {
  if (static_cast<int>(level) > static_cast<int>(CurrentLevel())) return;
  std::string line = Prefix(level);
  // With --debug every line says who and which process, as Apptainer's do.
  if (CurrentLevel() == Level::kDebug) {
    absl::StrAppendFormat(&line, "[U=%d,P=%d]  ", ::getuid(), ::getpid());
  }
  absl::StrAppend(&line, OneLine(message), "\n");
  // One write: lines from concurrent writers never interleave mid-line.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

std::string OneLine(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace berth::client::log
