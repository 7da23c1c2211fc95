#include "slurm/task_launch.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"

namespace berth::slurm {
namespace {

constexpr size_t kMaxErrorBytes = 64 * 1024;

// A NULL-terminated char* array over STRINGS (which must outlive it).
std::vector<char*> CArray(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// In the forked child: stdin and stdout /dev/null, stderr ERR, every id the
// effective user's, then berth. Only async-signal-safe calls.
[[noreturn]] void RunChild(char* const* argv, char* const* envp, int err, const char* dir) {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0) _exit(126);
  gid_t gid = getegid();
  uid_t uid = geteuid();
  if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(126);
  if (chdir(dir) != 0 && chdir("/") != 0) _exit(126);
  execve(argv[0], argv, envp);
  const char* why = strerror(errno);
  (void)!write(2, argv[0], strlen(argv[0]));
  (void)!write(2, ": ", 2);
  (void)!write(2, why, strlen(why));
  _exit(127);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < kMaxErrorBytes) out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

int WaitFor(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace

std::optional<std::string> CheckStep(const std::vector<std::string>& argv,
                                     const std::vector<std::string>& env, const std::string& dir) {
  std::vector<char*> c_argv = CArray(argv), c_env = CArray(env);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + strerror(errno);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + strerror(errno);
  if (pid == 0) RunChild(c_argv.data(), c_env.data(), write_end.get(), dir.c_str());
  write_end.Reset();
  std::string err = ReadAll(read_end.get());
  int status = WaitFor(pid);
  if (status == 0) return std::nullopt;
  std::string line = LastLine(err);
  if (!line.empty()) return line;
  return argv[0] + " " + argv[1] + " failed (wait status " + std::to_string(status) + ")";
}

std::string ExecTask(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> c_argv = CArray(argv), c_env = CArray(env);
  execve(c_argv[0], c_argv.data(), c_env.data());
  return "cannot run " + argv[0] + ": " + strerror(errno);
}

}  // namespace berth::slurm
