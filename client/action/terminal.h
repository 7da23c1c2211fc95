// Raw mode for the caller's terminal while a container owns it through a
// pty, restored on every way out of the session (return, error, forwarded
// fatal signal) by the guard's destructor.
#pragma once

#include <termios.h>

#include "berth/v1/berth.pb.h"

namespace berth::client {

class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

// The terminal's current size.
v1::WindowSize TerminalSize(int fd);

}  // namespace berth::client
