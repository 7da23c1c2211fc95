#include "daemon/pull/blob_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::pull {
namespace {

constexpr const char* kTypes[] = {"oras", "blob", "sif"};

bool ValidHex(const std::string& digest) {
  if (digest.size() != 71 || digest.rfind("sha256:", 0) != 0) return false;
  return std::all_of(digest.begin() + 7, digest.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

absl::Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating ", dir), errno);
  }
  return absl::OkStatus();
}

}  // namespace

bool IsCacheType(const std::string& type) {
  return std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes);
}

BlobCache::BlobCache(std::string root) : root_(std::move(root)) {}

absl::Status BlobCache::Init() {
  RETURN_IF_ERROR(MakeDir(root_));
  struct stat st {};
  if (::lstat(root_.c_str(), &st) != 0) return ErrnoStatus("stat " + root_, errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat(root_, " is not a directory owned by berthd's user"));
  }
  // Root-only: users get cache content only through the daemon's checks.
  if (::chmod(root_.c_str(), 0700) != 0) return ErrnoStatus("chmod " + root_, errno);
  RETURN_IF_ERROR(MakeDir(root_ + "/tmp"));
  for (const char* type : kTypes) {
    RETURN_IF_ERROR(MakeDir(absl::StrCat(root_, "/", type)));
    RETURN_IF_ERROR(MakeDir(absl::StrCat(root_, "/", type, "/sha256")));
  }
  return absl::OkStatus();
}

std::string BlobCache::PathOf(const std::string& type, const std::string& digest) const {
  return absl::StrCat(root_, "/", type, "/sha256/", digest.substr(7));
}

absl::StatusOr<UniqueFd> BlobCache::Open(const std::string& type, const std::string& digest) {
  if (!IsCacheType(type) || !ValidHex(digest)) {
    return absl::InvalidArgumentError("invalid cache type or digest");
  }
  std::string path = PathOf(type, digest);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  // Last use, for `cache clean --days`.
  ::futimens(fd.get(), nullptr);
  return fd;
}

absl::StatusOr<UniqueFd> BlobCache::GetOrFill(const std::string& type, const std::string& digest,
                                              const Filler& fill, const Observer& observe) {
  if (!IsCacheType(type) || !ValidHex(digest)) {
    return absl::InvalidArgumentError("invalid cache type or digest");
  }
  const std::string key = absl::StrCat(type, "/", digest);
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<UniqueFd> cached = Open(type, digest);
    if (cached.ok()) {
      if (observe) observe(-1, true);
      return cached;
    }
    if (!absl::IsNotFound(cached.status())) return cached.status();

    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      absl::MutexLock lock(&mu_);
      auto& slot = flights_[key];
      if (slot == nullptr) {
        slot = std::make_shared<Flight>();
        leader = true;
      }
      flight = slot;
    }
    if (leader) {
      absl::StatusOr<UniqueFd> filled = Fill(type, digest, fill, *flight);
      {
        absl::MutexLock lock(&mu_);
        flights_.erase(key);
      }
      {
        absl::MutexLock lock(&flight->mu);
        flight->done = true;
      }
      return filled;
    }
    // Follow the leader, reporting its progress, then look again.
    for (;;) {
      absl::MutexLock lock(&flight->mu);
      if (flight->mu.AwaitWithTimeout(absl::Condition(&flight->done), absl::Milliseconds(250))) {
        break;
      }
      if (observe) observe(flight->bytes.load(), false);
    }
  }
  return absl::UnavailableError(absl::StrCat("could not fill the cache entry for ", digest));
}

absl::StatusOr<UniqueFd> BlobCache::Fill(const std::string& type, const std::string& digest,
                                         const Filler& fill, Flight& flight) {
  fills_.fetch_add(1);
  std::string tmpdir = root_ + "/tmp";
  // Nameless until verified: nothing partial is ever visible.
  int raw = ::open(tmpdir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
  if (raw < 0) return ErrnoStatus("creating a temp file in the node cache", errno);
  UniqueFd fd(raw);
  RETURN_IF_ERROR(fill(fd.get(), [&](int64_t done) { flight.bytes.store(done); }));
  if (::fsync(fd.get()) != 0) return ErrnoStatus("writing to the node cache (fsync)", errno);
  std::string path = PathOf(type, digest);
  std::string proc = absl::StrCat("/proc/self/fd/", fd.get());
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
      errno != EEXIST) {
    return ErrnoStatus("adding the entry to the node cache", errno);
  }
  spdlog::info("node cache: added {} {}", type, digest);
  return OpenFile(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

absl::StatusOr<std::vector<CacheEntryInfo>> BlobCache::List() const {
  std::vector<CacheEntryInfo> out;
  for (const char* type : kTypes) {
    std::string dir = absl::StrCat(root_, "/", type, "/sha256");
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("listing " + dir, errno);
    }
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      std::string digest = "sha256:" + name;
      if (!ValidHex(digest)) continue;
      struct stat st {};
      if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        continue;
      }
      out.push_back({type, digest, st.st_size, st.st_mtim.tv_sec});
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end(), [](const CacheEntryInfo& a, const CacheEntryInfo& b) {
    return std::tie(a.type, a.digest) < std::tie(b.type, b.digest);
  });
  return out;
}

absl::StatusOr<std::vector<CacheEntryInfo>> BlobCache::Clean(int days,
                                                             const std::vector<std::string>& types,
                                                             bool dry_run) {
  for (const std::string& t : types) {
    if (!IsCacheType(t) && t != "all") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown cache type '", t.substr(0, 40), "' (oras, blob, sif, all)"));
    }
  }
  bool all = types.empty() || std::find(types.begin(), types.end(), "all") != types.end();
  int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - int64_t{days} * 86400;
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> entries, List());
  std::vector<CacheEntryInfo> removed;
  for (const CacheEntryInfo& e : entries) {
    if (!all && std::find(types.begin(), types.end(), e.type) == types.end()) continue;
    if (days > 0 && e.mtime_unix > cutoff) continue;
    // Removing a name is safe under readers: open descriptors keep the data.
    if (!dry_run && ::unlink(PathOf(e.type, e.digest).c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("removing a cache entry", errno);
    }
    removed.push_back(e);
  }
  return removed;
}

}  // namespace berth::daemon::pull
