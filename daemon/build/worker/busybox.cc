#include "daemon/build/worker/busybox.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/worker/in_root.h"

namespace berth::build_worker {
namespace {

constexpr size_t kMaxListing = 64 * 1024;  // of `busybox --list`

absl::Status CopyBinary(int from, int bin_dir) {
  UniqueFd out(
      ::openat(bin_dir, "busybox", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0755));
  if (!out) return ErrnoStatus("/bin/busybox", errno);
  for (off_t offset = 0;;) {
    ssize_t n = ::sendfile(out.get(), from, &offset, 1 << 30);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("writing /bin/busybox", errno);
    if (n == 0) break;
  }
  if (::fchmod(out.get(), 0755) != 0) return ErrnoStatus("/bin/busybox", errno);
  return absl::OkStatus();
}

// `busybox --list` in the root's /bin, by a child that holds no descriptor
// but its stdio: the applet names, one per line.
absl::StatusOr<std::string> ListApplets(int bin_dir) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    // The worker may run without stdio, so any descriptor here can be 0-2:
    // the directory is entered before stdio is made.
    if (::fchdir(bin_dir) != 0) ::_exit(126);
    // The listing is stdout alone; stdin and stderr are /dev/null.
    ::dup2(pipefd[1], 1);
    ::fcntl(1, F_SETFD, 0);
    int null = ::open("/dev/null", O_RDWR);
    for (int target : {0, 2}) {
      if (null != target) ::dup2(null, target);
      ::fcntl(target, F_SETFD, 0);
    }
    ::syscall(SYS_close_range, 3, ~0U, 0);
    ::execl("./busybox", "busybox", "--list", static_cast<char*>(nullptr));
    const std::string why = absl::StrCat("cannot run it: ", ::strerror(errno), "\n");
    (void)!::write(1, why.data(), why.size());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (out.size() < kMaxListing) out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && out.size() < kMaxListing) return out;
  std::string why(absl::StripAsciiWhitespace(out.substr(0, out.find('\n'))));
  if (why.empty() || out.size() >= kMaxListing) {
    why = WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                            : absl::StrCat("killed by signal ", WTERMSIG(status));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("while performing busybox install: ", why,
                   " (is MirrorURL a busybox binary for this machine?)"));
}

// An applet name is a file name in /bin: "[" and "[[" included, nothing
// that leaves the directory.
bool AppletName(absl::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("[]._-").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// What `busybox --install /bin` does, done here: a hard link to
// /bin/busybox per applet, an existing entry left alone. (busybox would
// link from the path of its own /proc/self/exe, which may not be reachable
// from where the root is; the links made here never leave the root.)
absl::Status LinkApplets(int bin_dir, const std::string& listing) {
  int linked = 0;
  for (absl::string_view name : absl::StrSplit(listing, '\n', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    if (!AppletName(name)) {
      return absl::FailedPreconditionError(
          absl::StrCat("while performing busybox install: '", name.substr(0, 64),
                       "' is not an applet name (is MirrorURL a busybox binary?)"));
    }
    const std::string n(name);
    if (n == "busybox") continue;  // listed by some builds: the binary itself
    if (::linkat(bin_dir, "busybox", bin_dir, n.c_str(), 0) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("linking /bin/", n), errno);
    }
    ++linked;
  }
  if (linked == 0) {
    return absl::FailedPreconditionError(
        "while performing busybox install: it lists no applet (is MirrorURL a busybox binary?)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InstallBusybox(int root_fd, const v1::InstallBusybox& job) {
  ASSIGN_OR_RETURN(UniqueFd bin, MakeDirsInRoot(root_fd, "/bin"));
  RETURN_IF_ERROR(CopyBinary(job.fd(), bin.get()));
  ASSIGN_OR_RETURN(std::string listing, ListApplets(bin.get()));
  return LinkApplets(bin.get(), listing);
}

}  // namespace berth::build_worker
