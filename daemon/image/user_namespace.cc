#include "daemon/image/user_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::image {
namespace {

absl::Status WriteProcFile(const std::string& path, const std::string& content) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY));
  RETURN_IF_ERROR_CTX(WriteAll(fd.get(), std::span(reinterpret_cast<const uint8_t*>(content.data()),
                                                   content.size())),
                      path);
  return absl::OkStatus();
}

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    int n = 0;
    if (line.rfind("Threads:", 0) == 0 && absl::SimpleAtoi(line.substr(8), &n)) return n;
  }
  return -1;
}

}  // namespace

absl::Status EnterUserModeNamespaces() {
  if (int threads = ThreadCount(); threads != 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "entering the user-mode namespaces needs a single-threaded process (%d threads)", threads));
  }
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    return Annotate(ErrnoStatus("unshare(CLONE_NEWUSER|CLONE_NEWNS)", errno),
                    "user mode needs unprivileged user namespaces");
  }
  // Identity maps: files and processes keep their real owner.
  RETURN_IF_ERROR(WriteProcFile("/proc/self/uid_map", absl::StrFormat("%d %d 1\n", uid, uid)));
  // An unprivileged writer of gid_map must first give up setgroups(2).
  RETURN_IF_ERROR(WriteProcFile("/proc/self/setgroups", "deny\n"));
  RETURN_IF_ERROR(WriteProcFile("/proc/self/gid_map", absl::StrFormat("%d %d 1\n", gid, gid)));
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return ErrnoStatus("making / a slave mount", errno);
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon::image
