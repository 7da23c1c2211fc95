#include "client/action/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace berth::client {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (::tcgetattr(fd_, &saved_) != 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
}

RawTerminal::~RawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
}

v1::WindowSize TerminalSize(int fd) {
  winsize ws{};
  v1::WindowSize size;
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0) {
    size.set_rows(ws.ws_row);
    size.set_cols(ws.ws_col);
  }
  return size;
}

}  // namespace berth::client
