#include "daemon/service/pty.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon {

absl::StatusOr<Pty> OpenPty(uid_t uid, gid_t gid, unsigned rows, unsigned cols) {
  Pty pty;
  pty.master.Reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master) return ErrnoStatus("allocating a pty", errno);
  if (::unlockpt(pty.master.get()) != 0) return ErrnoStatus("unlocking the pty", errno);
  // TIOCGPTPEER opens the slave from the master itself: no path lookup that a
  // swapped /dev/pts entry could redirect (CVE-2025-52565).
  int slave = ::ioctl(pty.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) return ErrnoStatus("opening the pty slave", errno);
  pty.slave.Reset(slave);
  if (::fchown(pty.slave.get(), uid, gid) != 0 && errno != EPERM) {
    return ErrnoStatus("giving the pty to the caller", errno);
  }
  RETURN_IF_ERROR(ResizePty(pty.master.get(), rows, cols));
  return pty;
}

absl::Status ResizePty(int master, unsigned rows, unsigned cols) {
  if (rows == 0 || cols == 0) return absl::OkStatus();
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(std::min(rows, 10000u));
  ws.ws_col = static_cast<unsigned short>(std::min(cols, 10000u));
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0) return ErrnoStatus("resizing the pty", errno);
  return absl::OkStatus();
}

}  // namespace berth::daemon
