#include "daemon/image/immutable_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/sparse_copy.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

constexpr char kTempPrefix[] = ".tmp-";

std::string RandomSuffix() {
  uint8_t bytes[8] = {};
  if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) {
    // Uniqueness, not secrecy, is what matters here; O_EXCL catches a clash.
    uint64_t fallback =
        static_cast<uint64_t>(getpid()) << 32 | static_cast<uint64_t>(time(nullptr));
    std::memcpy(bytes, &fallback, sizeof(bytes));
  }
  std::string out;
  for (uint8_t b : bytes) absl::StrAppendFormat(&out, "%02x", b);
  return out;
}

// Deletes the temporary file unless the copy was published.
class TempFile {
 public:
  TempFile(int dir_fd, std::string name, UniqueFd fd)
      : dir_fd_(dir_fd), name_(std::move(name)), fd_(std::move(fd)) {}
  TempFile(TempFile&& other) noexcept
      : dir_fd_(other.dir_fd_), name_(std::exchange(other.name_, {})), fd_(std::move(other.fd_)) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (!name_.empty()) unlinkat(dir_fd_, name_.c_str(), 0);
  }
  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }
  void Published() { name_.clear(); }

 private:
  int dir_fd_;
  std::string name_;
  UniqueFd fd_;
};

absl::StatusOr<TempFile> CreateTemp(int dir_fd) {
  std::string name = absl::StrCat(kTempPrefix, RandomSuffix());
  int fd = openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus(absl::StrCat("creating ", name), errno);
  return TempFile(dir_fd, std::move(name), UniqueFd(fd));
}

// Shares the block-aligned head of the range with the destination where the
// filesystem supports reflinks (btrfs, XFS); returns how many bytes it shared.
int64_t TryReflink(int source_fd, int64_t offset, int64_t size, int dest_fd) {
  struct stat st;
  if (fstat(dest_fd, &st) != 0 || st.st_blksize <= 0) return 0;
  const int64_t block = st.st_blksize;
  const int64_t aligned = size - size % block;
  if (offset % block != 0 || aligned == 0) return 0;
  file_clone_range range{};
  range.src_fd = source_fd;
  range.src_offset = static_cast<uint64_t>(offset);
  range.src_length = static_cast<uint64_t>(aligned);
  range.dest_offset = 0;
  if (ioctl(dest_fd, FICLONERANGE, &range) != 0) return 0;  // EOPNOTSUPP, EXDEV, ...
  return aligned;
}

// Fills the temporary file and returns the digest of what it now holds.
absl::StatusOr<std::string> FillCopy(int source_fd, int64_t offset, int64_t size, int dest_fd,
                                     bool& reflinked) {
  posix_fadvise(source_fd, offset, size, POSIX_FADV_SEQUENTIAL);
  const int64_t shared = TryReflink(source_fd, offset, size, dest_fd);
  reflinked = shared > 0;
  if (!reflinked) {
    Hasher hasher(DigestAlgorithm::kSha256);
    RETURN_IF_ERROR(CopySparseRange(source_fd, offset, 0, size, dest_fd, &hasher));
    return hasher.FinishHex();
  }
  // Reflinked: hash the copy itself, which is what the kernel will read.
  RETURN_IF_ERROR(CopySparseRange(source_fd, offset, shared, size, dest_fd, nullptr));
  return DigestRange(dest_fd, 0, size, DigestAlgorithm::kSha256);
}

absl::Status Publish(int dir_fd, TempFile& temp, const std::string& digest, bool& reused) {
  if (fchmod(temp.fd(), 0400) != 0) return ErrnoStatus("chmod copy", errno);
  if (fsync(temp.fd()) != 0) return ErrnoStatus("fsync copy", errno);
  if (renameat2(dir_fd, temp.name().c_str(), dir_fd, digest.c_str(), RENAME_NOREPLACE) == 0) {
    temp.Published();
    reused = false;
    if (fsync(dir_fd) != 0) return ErrnoStatus("fsync image store", errno);
    return absl::OkStatus();
  }
  if (errno != EEXIST) return ErrnoStatus("publishing copy", errno);
  reused = true;  // someone stored the same bytes first; the temp file goes
  return absl::OkStatus();
}

// A directory stream with its own file offset (a dup() would share ours).
DIR* OpenDirStream(int dir_fd) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) close(fd);
  return dir;
}

// A stored copy, as the budget sees it.
struct StoredCopy {
  std::string digest;
  int64_t bytes = 0;  // allocated
  timespec last_used{};
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator<(const StoredCopy&) const = delete;
};

bool operator<(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

std::vector<StoredCopy> ListCopies(int dir_fd);

using InodeSet = absl::flat_hash_set<std::pair<dev_t, ino_t>>;

void RemoveTempFiles(int dir_fd) {
  DIR* dir = OpenDirStream(dir_fd);
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    if (absl::StartsWith(entry->d_name, kTempPrefix)) unlinkat(dir_fd, entry->d_name, 0);
  }
  closedir(dir);
}

std::vector<StoredCopy> ListCopies(int dir_fd) {
  std::vector<StoredCopy> out;
  DIR* dir = OpenDirStream(dir_fd);
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    struct stat st;
    if (!IsSha256Hex(entry->d_name) ||
        fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    out.push_back({entry->d_name, AllocatedBytes(st), st.st_mtim, st.st_dev, st.st_ino});
  }
  closedir(dir);
  return out;
}

}  // namespace

bool IsSha256Hex(const std::string& digest) {
  return digest.size() == 64 && std::all_of(digest.begin(), digest.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::StatusOr<UniqueFd> OpenPrivateDirectory(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("mkdir ", path), errno);
  }
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s must be owned by uid %d and not writable by group or other (it is uid %d, mode %o)",
        path, geteuid(), st.st_uid, st.st_mode & 07777));
  }
  return fd;
}

absl::StatusOr<ImageStore> ImageStore::Open(const std::string& dir, Options options) {
  ImageStore store;
  ASSIGN_OR_RETURN(store.dir_fd_, OpenPrivateDirectory(dir, 0700));
  store.dir_ = dir;
  store.options_ = std::move(options);
  RemoveTempFiles(store.dir_fd_.get());
  return store;
}

// Holds `size` bytes of the budget while a copy is written.
class ImageStore::Reservation {
 public:
  Reservation(Budget* budget, int64_t size) : budget_(budget), size_(size) {}
  Reservation(Reservation&& other) noexcept
      : budget_(std::exchange(other.budget_, nullptr)), size_(other.size_) {}
  Reservation& operator=(Reservation&&) = delete;
  ~Reservation() {
    if (budget_ == nullptr) return;
    absl::MutexLock lock(&budget_->mu);
    budget_->reserved -= size_;
  }

 private:
  Budget* budget_;
  int64_t size_;
};

namespace {

// The inodes loop devices read, and the bytes of those in `dir` whose name is
// already gone (they fill the disk all the same).
InodeSet HeldInodes(const std::vector<HeldFile>& held, const std::string& dir,
                    const std::vector<StoredCopy>& copies, int64_t& unlinked_bytes) {
  InodeSet inodes, listed;
  for (const StoredCopy& c : copies) listed.insert({c.dev, c.ino});
  unlinked_bytes = 0;
  for (const HeldFile& h : held) {
    if (!inodes.insert({h.dev, h.ino}).second) continue;
    if (!listed.contains({h.dev, h.ino}) && absl::StartsWith(h.path, dir + "/")) {
      unlinked_bytes += h.bytes;
    }
  }
  return inodes;
}

}  // namespace

// Deletes the least recently used copies no loop device reads until `bytes`
// more fit (none with `may_evict` false); `used` is updated. Returns the
// digests deleted. Called with the budget's lock held.
std::vector<std::string> ImageStore::EvictFor(int64_t bytes, int64_t& used, bool may_evict) {
  std::vector<StoredCopy> copies = ListCopies(dir_fd_.get());
  int64_t unlinked = 0;
  const InodeSet held =
      HeldInodes(options_.held ? options_.held() : std::vector<HeldFile>{}, dir_, copies, unlinked);
  used += unlinked;
  for (const auto& c : copies) used += c.bytes;
  std::sort(copies.begin(), copies.end(),
            [](const StoredCopy& x, const StoredCopy& y) { return x.last_used < y.last_used; });
  std::vector<std::string> deleted;
  for (const auto& c : copies) {
    if (used + bytes <= options_.max_bytes || !may_evict) break;
    if (held.contains({c.dev, c.ino})) continue;
    if (unlinkat(dir_fd_.get(), c.digest.c_str(), 0) == 0) {
      used -= c.bytes;
      deleted.push_back(c.digest);
      spdlog::info("{}: deleted the least recently used copy {} ({} MiB) to make room", dir_,
                   c.digest.substr(0, 16), c.bytes >> 20);
    }
  }
  return deleted;
}

absl::StatusOr<ImageStore::Reservation> ImageStore::MakeRoom(int64_t apparent, int64_t bytes,
                                                             bool may_evict) {
  const int64_t max = options_.max_bytes;
  auto mib = [](int64_t n) { return (n + (1 << 20) - 1) >> 20; };
  if (max > 0 && apparent > max) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "a %d MiB partition is larger than the whole %d MiB budget of the image store %s "
        "(copy_store_max_mib in berth.conf)",
        mib(apparent), max >> 20, dir_));
  }
  std::vector<std::string> deleted;
  absl::Status refused;
  {
    absl::MutexLock lock(&budget_->mu);
    int64_t used = budget_->reserved;
    if (max > 0) deleted = EvictFor(bytes, used, may_evict);
    if (max > 0 && used + bytes > max) {
      refused = absl::ResourceExhaustedError(absl::StrFormat(
          "the image store %s has no room for a %d MiB copy: %d MiB of its %d MiB budget are "
          "%s (copy_store_max_mib in berth.conf)",
          dir_, mib(bytes), mib(used), max >> 20,
          may_evict ? "copies loop devices read or copies being written" : "taken"));
    } else {
      budget_->reserved += bytes;
    }
  }
  if (options_.on_delete) {
    for (const std::string& digest : deleted) options_.on_delete(digest);
  }
  if (!refused.ok()) return refused;
  return Reservation(budget_.get(), bytes);
}

absl::StatusOr<ImageStore::Copy> ImageStore::CopyPartition(int source_fd, int64_t offset,
                                                           int64_t size, bool may_evict) {
  ASSIGN_OR_RETURN(Reservation room,
                   MakeRoom(size, DataBytesOfRange(source_fd, offset, size), may_evict));
  ASSIGN_OR_RETURN(TempFile temp, CreateTemp(dir_fd_.get()));
  Copy copy;
  ASSIGN_OR_RETURN(copy.digest, FillCopy(source_fd, offset, size, temp.fd(), copy.reflinked));
  RETURN_IF_ERROR(Publish(dir_fd_.get(), temp, copy.digest, copy.reused));
  ASSIGN_OR_RETURN(copy.fd, OpenCopy(copy.digest));
  return copy;
}

absl::StatusOr<UniqueFd> ImageStore::OpenCopy(const std::string& digest) const {
  if (!IsSha256Hex(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("not a sha256 digest: ", digest));
  }
  int fd = openat(dir_fd_.get(), digest.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat(dir_, "/", digest), errno);
  // The copy's mtime is its last use (its bytes never change): the budget
  // deletes the least recently used first.
  futimens(fd, nullptr);
  return UniqueFd(fd);
}

void ImageStore::Remove(const std::string& digest) {
  if (IsSha256Hex(digest)) unlinkat(dir_fd_.get(), digest.c_str(), 0);
}

int ImageStore::Prune() {
  std::vector<StoredCopy> copies = ListCopies(dir_fd_.get());
  int64_t unlinked = 0;
  const InodeSet held =
      HeldInodes(options_.held ? options_.held() : std::vector<HeldFile>{}, dir_, copies, unlinked);
  std::vector<std::string> deleted;
  for (const StoredCopy& c : copies) {
    if (held.contains({c.dev, c.ino})) continue;
    if (unlinkat(dir_fd_.get(), c.digest.c_str(), 0) == 0) deleted.push_back(c.digest);
  }
  if (options_.on_delete) {
    for (const std::string& digest : deleted) options_.on_delete(digest);
  }
  return static_cast<int>(deleted.size());
}

}  // namespace berth::daemon::image
