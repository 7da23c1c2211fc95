#include "daemon/launch/cgroups.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::launch {
namespace {

struct CgroupMount {
  bool v2 = false;
  std::vector<std::string> options;  // super options: controllers, name=...
  std::string root;                  // the cgroup shown at the mount point
  std::string mount_point;
};

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size() &&
                 std::all_of(s.begin() + i + 1, s.begin() + i + 4,
                             [](char c) { return c >= '0' && c <= '7'; });
    if (octal) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "36 25 0:31 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu,cpuacct"
std::optional<CgroupMount> ParseMountLine(absl::string_view line) {
  std::vector<absl::string_view> halves = absl::StrSplit(line, " - ");
  if (halves.size() != 2) return std::nullopt;
  std::vector<absl::string_view> left = absl::StrSplit(halves[0], ' ');
  std::vector<absl::string_view> right = absl::StrSplit(halves[1], ' ');
  if (left.size() < 5 || right.size() < 3) return std::nullopt;
  CgroupMount m;
  if (right[0] == "cgroup2") {
    m.v2 = true;
  } else if (right[0] != "cgroup") {
    return std::nullopt;
  }
  m.root = Unescape(left[3]);
  m.mount_point = Unescape(left[4]);
  for (absl::string_view opt : absl::StrSplit(right[2], ',')) m.options.emplace_back(opt);
  return m;
}

bool Serves(const CgroupMount& m, absl::string_view controllers) {
  if (controllers.empty()) return m.v2;
  if (m.v2) return false;
  for (absl::string_view c : absl::StrSplit(controllers, ',')) {
    if (std::find(m.options.begin(), m.options.end(), c) == m.options.end()) return false;
  }
  return true;
}

// The directory for `path` in a mount showing cgroup `m.root`, if inside it.
std::optional<std::string> DirIn(const CgroupMount& m, absl::string_view path) {
  // A path that climbs out (a cgroup namespace shows "/.." for outside) names
  // no directory under this mount.
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return std::nullopt;
  }
  if (m.root == "/") return absl::StrCat(m.mount_point, path == "/" ? "" : path);
  if (path == m.root) return m.mount_point;
  if (absl::StartsWith(path, m.root) && path.size() > m.root.size() && path[m.root.size()] == '/') {
    return absl::StrCat(m.mount_point, path.substr(m.root.size()));
  }
  return std::nullopt;
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(path, errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

absl::StatusOr<std::vector<CgroupHierarchy>> CgroupHierarchiesFrom(absl::string_view proc_cgroup,
                                                                   absl::string_view mountinfo) {
  std::vector<CgroupMount> mounts;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    if (auto m = ParseMountLine(line)) mounts.push_back(std::move(*m));
  }
  std::vector<CgroupHierarchy> dirs;
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) return absl::InvalidArgumentError(absl::StrCat("cgroup line: ", line));
    // Later mounts of the same hierarchy hide earlier ones: take the last.
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
      if (!Serves(*it, f[1])) continue;
      if (auto dir = DirIn(*it, f[2])) {
        CgroupHierarchy h{std::move(*dir), it->v2, {}};
        if (!it->v2) {
          for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
            if (!absl::StartsWith(c, "name=")) h.controllers.emplace_back(c);
          }
        }
        dirs.push_back(std::move(h));
        break;
      }
    }
  }
  return dirs;
}

absl::StatusOr<std::vector<std::string>> CgroupDirsFrom(absl::string_view proc_cgroup,
                                                        absl::string_view mountinfo) {
  ASSIGN_OR_RETURN(std::vector<CgroupHierarchy> all, CgroupHierarchiesFrom(proc_cgroup, mountinfo));
  std::vector<std::string> dirs;
  for (CgroupHierarchy& h : all) dirs.push_back(std::move(h.dir));
  return dirs;
}

absl::StatusOr<std::vector<CgroupHierarchy>> CgroupHierarchiesOf(pid_t pid) {
  ASSIGN_OR_RETURN(std::string cgroup, ReadText(absl::StrCat("/proc/", pid, "/cgroup")));
  ASSIGN_OR_RETURN(std::string mountinfo, ReadText("/proc/self/mountinfo"));
  return CgroupHierarchiesFrom(cgroup, mountinfo);
}

absl::StatusOr<std::vector<std::string>> CgroupDirsOf(pid_t pid) {
  ASSIGN_OR_RETURN(std::string cgroup, ReadText(absl::StrCat("/proc/", pid, "/cgroup")));
  ASSIGN_OR_RETURN(std::string mountinfo, ReadText("/proc/self/mountinfo"));
  return CgroupDirsFrom(cgroup, mountinfo);
}

absl::StatusOr<std::vector<std::string>> CgroupDirsToJoinFrom(
    absl::string_view theirs, absl::string_view ours,
    const std::function<absl::StatusOr<std::string>()>& read_mountinfo) {
  // A hierarchy where the caller is where the calling thread is needs no
  // mapping: the child starts there. Only the other lines are mapped, and
  // with none left (the usual case outside batch jobs, and always for a
  // user-mode daemon started by the caller) mountinfo is not read at all:
  // it is the costliest /proc read of a request (a line per mount).
  std::vector<absl::string_view> our_lines = absl::StrSplit(ours, '\n', absl::SkipEmpty());
  std::string differing;
  for (absl::string_view line : absl::StrSplit(theirs, '\n', absl::SkipEmpty())) {
    if (std::find(our_lines.begin(), our_lines.end(), line) == our_lines.end()) {
      absl::StrAppend(&differing, line, "\n");
    }
  }
  if (differing.empty()) return std::vector<std::string>{};
  ASSIGN_OR_RETURN(std::string mountinfo, read_mountinfo());
  ASSIGN_OR_RETURN(std::vector<std::string> dirs, CgroupDirsFrom(differing, mountinfo));
  ASSIGN_OR_RETURN(std::vector<std::string> already, CgroupDirsFrom(ours, mountinfo));
  std::erase_if(dirs, [&](const std::string& dir) {
    return std::find(already.begin(), already.end(), dir) != already.end();
  });
  return dirs;
}

absl::StatusOr<std::vector<std::string>> CgroupDirsToJoin(pid_t pid) {
  ASSIGN_OR_RETURN(std::string theirs, ReadText(absl::StrCat("/proc/", pid, "/cgroup")));
  ASSIGN_OR_RETURN(std::string ours, ReadText("/proc/thread-self/cgroup"));
  return CgroupDirsToJoinFrom(theirs, ours, [] { return ReadText("/proc/self/mountinfo"); });
}

}  // namespace berth::daemon::launch
