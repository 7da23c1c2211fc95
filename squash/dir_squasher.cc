#include "squash/dir_squasher.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::squash {
namespace {

constexpr size_t kReadChunk = 1 << 20;
constexpr int64_t kProgressEvery = 4 << 20;
constexpr size_t kMaxXattrList = 64 * 1024;

struct PendingFile {
  std::string rel;
  std::shared_ptr<FileData> data;
  int64_t size;
};

std::string Join(const std::string& dir, const char* name) {
  return dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
}

// Apptainer's mksquashfs keeps user., trusted. and security. xattrs.
void ReadXattrs(int dir_fd, const char* name, Meta& meta) {
  std::string path = absl::StrCat("/proc/self/fd/", dir_fd, "/", name);
  char list[kMaxXattrList];
  ssize_t n = ::llistxattr(path.c_str(), list, sizeof(list));
  for (ssize_t i = 0; n > 0 && i < n;) {
    std::string key(list + i);
    i += static_cast<ssize_t>(key.size()) + 1;
    if (!key.starts_with("user.") && !key.starts_with("security.") &&
        !key.starts_with("trusted.")) {
      continue;
    }
    std::string value(64 * 1024, '\0');
    ssize_t v = ::lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
    if (v < 0) continue;  // trusted.* needs privilege we do not have: not ours to keep
    value.resize(static_cast<size_t>(v));
    meta.xattrs.emplace_back(std::move(key), std::move(value));
  }
}

Meta MetaOf(const struct stat& st) {
  return Meta{st.st_mode & 07777, st.st_uid, st.st_gid, st.st_mtim.tv_sec, {}};
}

class Walker {
 public:
  Walker(const DirLimits& limits, dev_t dev) : limits_(limits), dev_(dev) {}

  absl::Status Walk(int dir_fd, const std::string& rel, Node& dir) {
    int fd = ::dup(dir_fd);
    if (fd < 0) return ErrnoStatus("dup", errno);
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return ErrnoStatus(absl::StrCat("reading /", rel), errno);
    }
    // The copy shares the caller's file offset: a directory walked before
    // (by an earlier squash of the same root) would otherwise look empty.
    ::rewinddir(d);
    absl::Status status = WalkEntries(d, rel, dir);
    ::closedir(d);
    return status;
  }

  std::vector<PendingFile>& files() { return files_; }
  int64_t total() const { return total_; }

 private:
  absl::Status WalkEntries(DIR* d, const std::string& rel, Node& dir) {
    int dfd = ::dirfd(d);
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      if (std::string_view(e->d_name) == "." || std::string_view(e->d_name) == "..") continue;
      if (++entries_ > limits_.max_entries) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", limits_.max_entries, " entries"));
      }
      RETURN_IF_ERROR(AddEntry(dfd, rel, e->d_name, dir));
      errno = 0;
    }
    if (errno != 0) return ErrnoStatus(absl::StrCat("reading /", rel), errno);
    return absl::OkStatus();
  }

  absl::Status AddEntry(int dfd, const std::string& rel, const char* name, Node& dir) {
    std::string path = Join(rel, name);
    struct stat st;
    if (::fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(absl::StrCat("/", path), errno);
    }
    auto node = std::make_unique<Node>();
    node->meta = MetaOf(st);
    node->explicit_meta = true;
    ReadXattrs(dfd, name, node->meta);
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: {
        node->kind = Kind::kDir;
        if (st.st_dev != dev_) break;  // a mount point: its own (empty) directory only
        UniqueFd sub(::openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) return ErrnoStatus(absl::StrCat("/", path), errno);
        RETURN_IF_ERROR(Walk(sub.get(), path, *node));
        break;
      }
      case S_IFREG:
        node->kind = Kind::kFile;
        AddFile(st, path, *node);
        break;
      case S_IFLNK: {
        node->kind = Kind::kSymlink;
        ASSIGN_OR_RETURN(node->target, ReadLink(dfd, name, path));
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
        node->kind = S_ISCHR(st.st_mode) ? Kind::kCharDev : Kind::kBlockDev;
        node->rdev_major = major(st.st_rdev);
        node->rdev_minor = minor(st.st_rdev);
        break;
      case S_IFIFO:
        node->kind = Kind::kFifo;
        break;
      default:
        node->kind = Kind::kSocket;
        break;
    }
    dir.children[name] = std::move(node);
    return absl::OkStatus();
  }

  void AddFile(const struct stat& st, const std::string& path, Node& node) {
    if (st.st_nlink > 1) {
      auto [it, fresh] = links_.try_emplace({st.st_dev, st.st_ino});
      if (!fresh) {
        node.data = it->second;
        return;
      }
      it->second = std::make_shared<FileData>();
      node.data = it->second;
    } else {
      node.data = std::make_shared<FileData>();
    }
    files_.push_back({path, node.data, st.st_size});
    total_ += st.st_size;
  }

  static absl::StatusOr<std::string> ReadLink(int dfd, const char* name, const std::string& path) {
    std::string target(PATH_MAX, '\0');
    ssize_t n = ::readlinkat(dfd, name, target.data(), target.size());
    if (n < 0) return ErrnoStatus(absl::StrCat("/", path), errno);
    if (n == 0 || static_cast<size_t>(n) >= target.size()) {
      return absl::InvalidArgumentError(absl::StrCat("/", path, ": unusable symlink target"));
    }
    target.resize(static_cast<size_t>(n));
    return target;
  }

  const DirLimits& limits_;
  dev_t dev_;
  int64_t entries_ = 0;
  int64_t total_ = 0;
  std::vector<PendingFile> files_;
  std::map<std::pair<dev_t, ino_t>, std::shared_ptr<FileData>> links_;
};

// The file at `rel` beneath the root: no symlink, no "..", no other mount.
absl::StatusOr<UniqueFd> OpenBeneath(int root_fd, const std::string& rel) {
  open_how how{};
  how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how)));
  if (fd < 0) return ErrnoStatus(absl::StrCat("/", rel), errno);
  return UniqueFd(fd);
}

class DataStreamer {
 public:
  DataStreamer(Writer& writer, const Progress& progress, int64_t total)
      : writer_(writer), progress_(progress), total_(total), buf_(kReadChunk) {}

  absl::Status Stream(int root_fd, const PendingFile& f) {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(root_fd, f.rel));
    (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    RETURN_IF_ERROR(writer_.BeginFile(*f.data));
    for (;;) {
      ssize_t n = ::read(fd.get(), buf_.data(), buf_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(absl::StrCat("reading /", f.rel), errno);
      if (n == 0) break;
      RETURN_IF_ERROR_CTX(writer_.Append(buf_.data(), static_cast<size_t>(n)),
                          absl::StrCat("/", f.rel));
      Advance(n);
    }
    return writer_.EndFile();
  }

  void Done() {
    if (progress_) progress_(done_, total_);
  }

 private:
  void Advance(int64_t n) {
    done_ += n;
    if (progress_ && done_ - reported_ >= kProgressEvery) {
      reported_ = done_;
      progress_(done_, total_);
    }
  }

  Writer& writer_;
  const Progress& progress_;
  int64_t total_;
  int64_t done_ = 0, reported_ = 0;
  std::vector<char> buf_;
};

}  // namespace

absl::StatusOr<Stats> SquashDirectory(int root_fd, const Target& target, const Options& options,
                                      const Progress& progress, const DirLimits& limits) {
  struct stat st;
  if (::fstat(root_fd, &st) != 0) return ErrnoStatus("the root directory", errno);
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError("the root is not a directory");
  Node root;
  root.kind = Kind::kDir;
  root.meta = MetaOf(st);
  root.explicit_meta = true;
  Walker walker(limits, st.st_dev);
  RETURN_IF_ERROR(walker.Walk(root_fd, "", root));
  ASSIGN_OR_RETURN(std::unique_ptr<Writer> writer, Writer::Create(target, options));
  DataStreamer streamer(*writer, progress, walker.total());
  for (const PendingFile& f : walker.files()) RETURN_IF_ERROR(streamer.Stream(root_fd, f));
  streamer.Done();
  Stats stats;
  RETURN_IF_ERROR(writer->Finish(root, stats).status());
  return stats;
}

}  // namespace berth::squash
