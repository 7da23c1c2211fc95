#include "daemon/build/staging.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/remove_tree.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::build {
namespace {

constexpr const char* kPrefix = "berth-build-";
constexpr size_t kMaxRecord = 64 * 1024;

std::string RandomName() {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char raw[10];
  if (::getrandom(raw, sizeof(raw), 0) != sizeof(raw))
    raw[0] = static_cast<unsigned char>(::getpid());
  std::string out = kPrefix;
  for (unsigned char c : raw) out += kChars[c % (sizeof(kChars) - 1)];
  return out;
}

std::string ReadSmall(int dir_fd, const std::string& name, size_t max) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return "";
  std::string out(max, '\0');
  ssize_t n = ::read(fd.get(), out.data(), out.size());
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

void KillIfSame(pid_t pid, uint64_t start) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return;
  UniqueFd owned(pidfd);
  // Checked after the pidfd pins the process: a reused pid has another start time.
  if (ProcessStartTime(pid) != start) return;
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
}

// One record: "dir PATH DEV INO" then "pid PID START" lines.
void SweepRecord(const std::string& text) {
  std::string path;
  uint64_t dev = 0, ino = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    uint64_t a = 0, b = 0;
    if (f.size() == 3 && f[0] == "pid" && absl::SimpleAtoi(f[1], &a) &&
        absl::SimpleAtoi(f[2], &b)) {
      KillIfSame(static_cast<pid_t>(a), b);
    } else if (f.size() == 4 && f[0] == "dir" && absl::SimpleAtoi(f[2], &dev) &&
               absl::SimpleAtoi(f[3], &ino)) {
      path = f[1];
    }
  }
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || !absl::StartsWith(path.substr(slash + 1), kPrefix)) return;
  UniqueFd parent(
      ::open(slash == 0 ? "/" : path.substr(0, slash).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent) return;
  std::string name = path.substr(slash + 1);
  struct stat st;
  if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev ||
      st.st_ino != ino) {
    return;  // gone, or not the tree we made
  }
  absl::Status removed = RemoveTreeAt(parent.get(), name);
  if (!removed.ok())
    spdlog::warn("removing stale build staging {}: {}", path, std::string(removed.message()));
}

}  // namespace

uint64_t ProcessStartTime(pid_t pid) {
  UniqueFd proc(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string stat = ReadSmall(proc.get(), absl::StrCat(pid, "/stat"), 4096);
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<absl::string_view> f = absl::StrSplit(stat.substr(paren + 2), ' ');
  uint64_t start = 0;
  // Field 22 overall; fields here start at 3 (state).
  if (f.size() > 19 && absl::SimpleAtoi(f[19], &start)) return start;
  return 0;
}

StagingRecords::StagingRecords(std::string state_dir)
    : dir_(absl::StrCat(state_dir, "/build-staging")) {}

absl::Status StagingRecords::Init() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus(dir_, errno);
  struct stat st;
  if (::lstat(dir_.c_str(), &st) != 0) return ErrnoStatus(dir_, errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir_, " must be a directory of the daemon's, mode 0700"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> StagingRecords::SweepStaleBuilds() {
  int removed = 0;
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return ErrnoStatus(dir_, errno);
  std::vector<std::string> names;
  if (DIR* d = ::fdopendir(::dup(dir.get()))) {
    while (dirent* e = ::readdir(d)) {
      if (absl::StartsWith(e->d_name, kPrefix)) names.emplace_back(e->d_name);
    }
    ::closedir(d);
  }
  for (const std::string& n : names) {
    SweepRecord(ReadSmall(dir.get(), n, kMaxRecord));
    ::unlinkat(dir.get(), n.c_str(), 0);
    ++removed;
  }
  return removed;
}

absl::StatusOr<std::unique_ptr<BuildStaging>> BuildStaging::Create(StagingRecords& records,
                                                                   int base_fd,
                                                                   const std::string& base,
                                                                   uid_t uid, gid_t gid) {
  std::unique_ptr<BuildStaging> s(new BuildStaging());
  s->records_ = &records;
  int dup_fd = ::fcntl(base_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus("dup", errno);
  s->base_.Reset(dup_fd);
  for (int attempt = 0;; ++attempt) {
    s->name_ = RandomName();
    if (::mkdirat(base_fd, s->name_.c_str(), 0700) == 0) break;
    if (errno != EEXIST || attempt > 8) {
      return ErrnoStatus(absl::StrCat("creating the build directory in ", base), errno);
    }
  }
  s->path_ = absl::StrCat(base, base.ends_with('/') ? "" : "/", s->name_);
  s->dir_.Reset(
      ::openat(base_fd, s->name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!s->dir_) {
    absl::Status err = ErrnoStatus(s->path_, errno);
    ::unlinkat(base_fd, s->name_.c_str(), AT_REMOVEDIR);
    return err;
  }
  struct stat st;
  if (::fstat(s->dir_.get(), &st) != 0) return ErrnoStatus(s->path_, errno);
  s->dev_ = st.st_dev;
  s->ino_ = st.st_ino;
  s->uid_ = uid;
  s->gid_ = gid;
  // The caller's (the fakeroot user writes beneath it); 0700 keeps others out.
  if (::fchown(s->dir_.get(), uid, gid) != 0) return ErrnoStatus(s->path_, errno);
  RETURN_IF_ERROR(s->WriteRecord());
  return s;
}

BuildStaging::~BuildStaging() {
  if (base_) {
    absl::Status st = RemoveTreeAt(base_.get(), name_);
    if (!st.ok()) spdlog::warn("removing build staging {}: {}", path_, std::string(st.message()));
  }
  if (records_ != nullptr) {
    ::unlink(absl::StrCat(records_->dir(), "/", name_).c_str());
  }
}

absl::StatusOr<UniqueFd> BuildStaging::MakeDir(const std::string& name, mode_t mode) {
  if (::mkdirat(dir_.get(), name.c_str(), mode) != 0) {
    return ErrnoStatus(absl::StrCat(path_, "/", name), errno);
  }
  UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus(absl::StrCat(path_, "/", name), errno);
  if (::fchown(fd.get(), uid_, gid_) != 0 || ::fchmod(fd.get(), mode) != 0) {
    return ErrnoStatus(absl::StrCat(path_, "/", name), errno);
  }
  return fd;
}

void BuildStaging::RecordProcess(pid_t pid) {
  absl::MutexLock lock(&mu_);
  absl::StrAppend(&pids_, "pid ", pid, " ", ProcessStartTime(pid), "\n");
  absl::Status st = WriteRecord();
  if (!st.ok()) spdlog::warn("recording build process {}: {}", pid, std::string(st.message()));
}

absl::Status BuildStaging::WriteRecord() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  std::string text = absl::StrCat("dir ", path_, " ", dev_, " ", ino_, "\n", pids_);
  std::string file = absl::StrCat(records_->dir(), "/", name_);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  return WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

absl::Status CheckNotNoexec(int dir_fd, const std::string& path) {
  struct statvfs vfs;
  if (::fstatvfs(dir_fd, &vfs) != 0) return ErrnoStatus(path, errno);
  if (vfs.f_flag & ST_NOEXEC) {
    return absl::FailedPreconditionError(
        absl::StrCat("'noexec' mount option set on ", path,
                     ", temporary root filesystem won't be usable at this location"));
  }
  return absl::OkStatus();
}

absl::Status CheckFreeSpace(int dir_fd, const std::string& path, int64_t needed,
                            absl::string_view what) {
  struct statvfs vfs;
  if (::fstatvfs(dir_fd, &vfs) != 0) return ErrnoStatus(path, errno);
  int64_t free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  if (free_bytes >= needed) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "not enough space in ", path, " to build: about ", (needed + (1 << 20) - 1) >> 20,
      " MiB needed for ", what, ", ", free_bytes >> 20,
      " MiB free (free some, or build elsewhere with --tmpdir or berth.conf's build_dir)"));
}

}  // namespace berth::daemon::build
