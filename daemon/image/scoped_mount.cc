#include "daemon/image/scoped_mount.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(absl::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 <= field.size()) {
      const char* d = field.data() + i + 1;
      if (d[0] >= '0' && d[0] <= '3' && d[1] >= '0' && d[1] <= '7' && d[2] >= '0' && d[2] <= '7') {
        out.push_back(static_cast<char>((d[0] - '0') * 64 + (d[1] - '0') * 8 + (d[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

// Mount points strictly below `dir`, compared by path component.
std::vector<std::string> MountPointsBelow(const std::string& dir) {
  std::vector<std::string> found;
  std::ifstream mountinfo("/proc/self/mountinfo");
  const std::string prefix = dir.back() == '/' ? dir : dir + "/";
  for (std::string line; std::getline(mountinfo, line);) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) continue;
    std::string point = UnescapeMountField(fields[4]);
    if (point.compare(0, prefix.size(), prefix) == 0) found.push_back(std::move(point));
  }
  return found;
}

void RemoveEmptySubdirectories(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name == "." || name == ".." || entry->d_type != DT_DIR) continue;
    std::string path = absl::StrCat(dir, "/", name);
    if (rmdir(path.c_str()) != 0) spdlog::warn("cannot remove {}: {}", path, strerror(errno));
  }
  closedir(d);
}

}  // namespace

ScopedMount& ScopedMount::operator=(ScopedMount&& other) noexcept {
  if (this != &other) {
    Reset();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void ScopedMount::Reset() {
  if (path_.empty()) return;
  if (umount2(path_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
    spdlog::error("unmounting {}: {}", path_, strerror(errno));
  } else if (rmdir(path_.c_str()) != 0) {
    spdlog::warn("removing mount point {}: {}", path_, strerror(errno));
  }
  path_.clear();
}

absl::Status MakeMountPoint(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0) return ErrnoStatus(absl::StrCat("mkdir ", path), errno);
  return absl::OkStatus();
}

absl::Status CleanStaleMounts(const std::string& dir) {
  // Stacked mounts show up once per layer; each pass peels the top ones.
  for (int pass = 0; pass < 16; ++pass) {
    std::vector<std::string> points = MountPointsBelow(dir);
    if (points.empty()) break;
    std::sort(points.begin(), points.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& point : points) {
      spdlog::info("detaching stale image mount {}", point);
      if (umount2(point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
          errno != ENOENT) {
        return ErrnoStatus(absl::StrCat("unmounting stale mount ", point), errno);
      }
    }
  }
  if (HasMountsUnder(dir)) {
    return absl::InternalError(absl::StrCat("stale mounts under ", dir, " would not go away"));
  }
  RemoveEmptySubdirectories(dir);
  return absl::OkStatus();
}

bool HasMountsUnder(const std::string& dir) {
  return !MountPointsBelow(dir).empty();
}

}  // namespace berth::daemon::image
