#include "client/rpc/daemon_locator.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

constexpr const char* kSystemSocket = "/run/berth/berthd.sock";
constexpr int kStartWaitMillis = 10000;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// Does a daemon accept connections on `path`? (The preamble is not needed to
// see that: the daemon drops such probes quietly.)
bool Answers(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

absl::StatusOr<std::string> UserDaemonDir() {
  std::string runtime = Env("XDG_RUNTIME_DIR");
  if (!runtime.empty() && runtime.front() == '/') return absl::StrCat(runtime, "/berth");
  std::string home = Env("HOME");
  if (!home.empty() && home.front() == '/') return absl::StrCat(home, "/.berth/run");
  return absl::FailedPreconditionError(
      "no system berthd and neither XDG_RUNTIME_DIR nor HOME is set for a private one");
}

// berthd beside this berth binary, else from PATH.
std::string BerthdPath() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    std::string candidate = absl::StrCat(dir, "/berthd");
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "berthd";
}

// Starts `berthd --user-mode` detached from this process (its own session,
// not our child once the intermediate exits), logging to `log`.
absl::Status SpawnUserDaemon(const std::string& socket, const std::string& log) {
  std::string berthd = BerthdPath();
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("starting berthd", errno);
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int devnull = ::open("/dev/null", O_RDWR);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(devnull, 0);
    ::dup2(out >= 0 ? out : devnull, 1);
    ::dup2(out >= 0 ? out : devnull, 2);
    ::execlp(berthd.c_str(), berthd.c_str(), "--user-mode", "--foreground", "--socket",
             socket.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status;
  ::waitpid(pid, &status, 0);
  return absl::OkStatus();
}

absl::StatusOr<std::string> UserDaemon() {
  ASSIGN_OR_RETURN(std::string dir, UserDaemonDir());
  std::string socket = absl::StrCat(dir, "/berthd.sock");
  if (Answers(socket)) return socket;
  // Private to the user (CVE-2019-19724): created 0700 if missing.
  std::string parent = dir.substr(0, dir.rfind('/'));
  ::mkdir(parent.c_str(), 0700);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating ", dir), errno);
  }
  std::string log = absl::StrCat(dir, "/berthd.log");
  RETURN_IF_ERROR(SpawnUserDaemon(socket, log));
  for (int waited = 0; waited < kStartWaitMillis; waited += 20) {
    if (Answers(socket)) return socket;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::UnavailableError(
      absl::StrCat("started a private berthd but it does not answer on ", socket, "; see ", log));
}

}  // namespace

absl::StatusOr<std::string> LocateDaemon(const std::string& socket_flag, bool user_daemon_flag) {
  if (!socket_flag.empty()) return socket_flag;
  if (std::string s = Env("BERTH_SOCKET"); !s.empty()) return s;
  std::string which = Env("BERTH_DAEMON");
  if (!which.empty() && which != "user" && which != "system") {
    return absl::InvalidArgumentError(
        absl::StrCat("BERTH_DAEMON='", which, "': use 'system' or 'user'"));
  }
  if (user_daemon_flag || which == "user") return UserDaemon();
  std::string system = Env("BERTH_SYSTEM_SOCKET");
  if (system.empty()) system = kSystemSocket;
  struct stat st;
  if (::stat(system.c_str(), &st) == 0) {
    if (Answers(system)) return system;
    return absl::UnavailableError(absl::StrCat(
        "the node's berthd at ", system,
        " does not answer (ask your admin; berth does not fall back to a private daemon "
        "while a system one is installed)"));
  }
  if (which == "system") {
    return absl::UnavailableError(
        absl::StrCat("no system berthd at ", system, " (BERTH_DAEMON=system)"));
  }
  return UserDaemon();
}

}  // namespace berth::client
