#include "daemon/pull/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::pull {
namespace {

constexpr const char* kTypes[] = {"oras", "blob", "sif", "sif-build", "build-stage"};

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

std::string KeyOf(const std::string& type, const std::string& digest) {
  return absl::StrCat(type, "/", digest);
}

}  // namespace

bool IsCacheType(const std::string& type) {
  return std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes);
}

BlobCache::BlobCache(std::string root, CacheBudget budget)
    : root_(std::move(root)), budget_(budget), refs_(root_ + "/refs") {}

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
  return refs_.Load([this](const std::string& key) {
    const size_t slash = key.find('/');
    struct stat entry {};
    return slash != std::string::npos &&
           ::lstat(PathOf(key.substr(0, slash), key.substr(slash + 1)).c_str(), &entry) == 0;
  });
}

std::string BlobCache::PathOf(const std::string& type, const std::string& digest) const {
  return absl::StrCat(root_, "/", type, "/sha256/", digest.substr(7));
}

absl::StatusOr<UniqueFd> BlobCache::Open(const std::string& type, const std::string& digest) {
  std::string path = PathOf(type, digest);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  // Last use, for `cache clean --days` and the budget's eviction.
  ::futimens(fd.get(), nullptr);
  return fd;
}

void BlobCache::Pin(const std::string& key, int delta) {
  absl::MutexLock lock(&mu_);
  if ((pins_[key] += delta) <= 0) pins_.erase(key);
}

bool BlobCache::Pinned(const std::string& key, int more_than) {
  absl::MutexLock lock(&mu_);
  auto it = pins_.find(key);
  return it != pins_.end() && it->second > more_than;
}

std::unique_ptr<BlobCache::Transfer> BlobCache::Begin(CacheCaller caller, bool bypass) {
  return std::unique_ptr<Transfer>(new Transfer(*this, caller, bypass));
}

BlobCache::Transfer::~Transfer() {
  absl::MutexLock lock(&mu_);
  for (const std::string& key : pinned_) cache_.Pin(key, -1);
}

absl::StatusOr<UniqueFd> BlobCache::Transfer::GetOrFill(const std::string& type,
                                                        const std::string& digest, int64_t size,
                                                        const Filler& fill,
                                                        const Observer& observe) {
  if (!IsCacheType(type) || !ValidHex(digest)) {
    return absl::InvalidArgumentError("invalid cache type or digest");
  }
  if (bypass_) {
    Flight own;
    ASSIGN_OR_RETURN(Filled filled,
                     cache_.Fill(type, digest, size, caller_, fill, own, /*keep=*/false));
    return std::move(filled.fd);
  }
  const std::string key = KeyOf(type, digest);
  cache_.Pin(key, 1);  // from now on no budget decision deletes it
  {
    absl::MutexLock lock(&mu_);
    pinned_.push_back(key);
  }
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<UniqueFd> cached = cache_.Open(type, digest);
    if (cached.ok()) {
      RETURN_IF_ERROR_CTX(cache_.refs_.Add(key, caller_.uid), "node cache");
      if (observe) observe(-1, true);
      return cached;
    }
    if (!absl::IsNotFound(cached.status())) return cached.status();

    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      absl::MutexLock lock(&cache_.mu_);
      auto& slot = cache_.flights_[key];
      if (slot == nullptr) {
        slot = std::make_shared<Flight>();
        leader = true;
      }
      flight = slot;
    }
    if (leader) {
      absl::StatusOr<Filled> filled = cache_.Fill(type, digest, size, caller_, fill, *flight);
      {
        absl::MutexLock lock(&cache_.mu_);
        cache_.flights_.erase(key);
      }
      {
        absl::MutexLock lock(&flight->mu);
        flight->done = true;
      }
      if (!filled.ok()) return filled.status();
      if (filled->kept) {
        absl::MutexLock lock(&mu_);
        filled_.push_back(key);
      }
      return std::move(filled->fd);
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

absl::StatusOr<UniqueFd> BlobCache::Transfer::Get(const std::string& type,
                                                  const std::string& digest) {
  if (!IsCacheType(type) || !ValidHex(digest)) {
    return absl::InvalidArgumentError("invalid cache type or digest");
  }
  if (bypass_) return absl::NotFoundError("the cache is bypassed");
  const std::string key = KeyOf(type, digest);
  cache_.Pin(key, 1);
  {
    absl::MutexLock lock(&mu_);
    pinned_.push_back(key);
  }
  ASSIGN_OR_RETURN(UniqueFd fd, cache_.Open(type, digest));
  RETURN_IF_ERROR_CTX(cache_.refs_.Add(key, caller_.uid), "node cache");
  return fd;
}

void BlobCache::Transfer::DropFilled() {
  absl::MutexLock lock(&mu_);
  for (const std::string& key : filled_) {
    if (cache_.Pinned(key, 1)) continue;  // another pull is using it
    const std::set<uid_t> users = cache_.refs_.Users(key);
    if (std::any_of(users.begin(), users.end(), [&](uid_t u) { return u != caller_.uid; })) {
      continue;
    }
    const size_t slash = key.find('/');
    spdlog::info("node cache: dropping {} of a failed pull", key);
    cache_.Delete(key.substr(0, slash), key.substr(slash + 1));
  }
  filled_.clear();
}

absl::StatusOr<BlobCache::Filled> BlobCache::Fill(const std::string& type,
                                                  const std::string& digest, int64_t size,
                                                  const CacheCaller& caller, const Filler& fill,
                                                  Flight& flight, bool keep) {
  fills_.fetch_add(1);
  // A declared size is booked before the download: what does not fit is
  // refused before it costs the disk anything.
  std::optional<Reservation> room;
  if (size >= 0) {
    auto booked = MakeRoom(caller, size);
    if (!booked.ok()) return booked.status();
    room.emplace(*std::move(booked));
  }
  std::string tmpdir = root_ + "/tmp";
  // Nameless until verified: nothing partial is ever visible.
  int raw = ::open(tmpdir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
  if (raw < 0) return ErrnoStatus("creating a temp file in the node cache", errno);
  UniqueFd fd(raw);
  RETURN_IF_ERROR(fill(fd.get(), [&](int64_t done) { flight.bytes.store(done); }));
  const std::string proc = absl::StrCat("/proc/self/fd/", fd.get());
  if (!keep) {
    ASSIGN_OR_RETURN(UniqueFd reader, OpenFile(proc, O_RDONLY | O_CLOEXEC));
    return Filled{std::move(reader), false};
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus("writing to the node cache (fsync)", errno);
  if (!room.has_value()) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat of a new cache entry", errno);
    auto booked = MakeRoom(caller, static_cast<int64_t>(st.st_blocks) * 512);
    if (!booked.ok()) {
      // It serves this pull, unnamed, and goes with it.
      spdlog::info("node cache: not keeping {} {}: {}", type, digest,
                   std::string(booked.status().message()));
      ASSIGN_OR_RETURN(UniqueFd reader, OpenFile(proc, O_RDONLY | O_CLOEXEC));
      return Filled{std::move(reader), false};
    }
    room.emplace(*std::move(booked));
  }
  ASSIGN_OR_RETURN(UniqueFd kept, Keep(type, digest, fd.get(), caller));
  return Filled{std::move(kept), true};
}

// Names the filled temp file as the entry and records its first user.
absl::StatusOr<UniqueFd> BlobCache::Keep(const std::string& type, const std::string& digest, int fd,
                                         const CacheCaller& caller) {
  const std::string path = PathOf(type, digest);
  const std::string proc = absl::StrCat("/proc/self/fd/", fd);
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
      errno != EEXIST) {
    return ErrnoStatus("adding the entry to the node cache", errno);
  }
  RETURN_IF_ERROR_CTX(refs_.Add(KeyOf(type, digest), caller.uid), "node cache");
  spdlog::info("node cache: added {} {} for uid {}", type, digest, caller.uid);
  return OpenFile(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

void BlobCache::Delete(const std::string& type, const std::string& digest) {
  // Removing a name is safe under readers: open descriptors keep the data.
  if (::unlink(PathOf(type, digest).c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("node cache: removing {} {}: {}", type, digest, strerror(errno));
    return;
  }
  refs_.Erase(KeyOf(type, digest));
}

}  // namespace berth::daemon::pull
