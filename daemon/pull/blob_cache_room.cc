// The node cache's budget, its users' shares, and listing and cleaning by
// user (blob_cache.h).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/pull/blob_cache.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::pull {
namespace {

constexpr const char* kTypes[] = {"oras", "blob", "sif", "sif-build", "build-stage"};

int64_t Mib(int64_t bytes) {
  return (bytes + (1 << 20) - 1) >> 20;
}

std::string KeyOf(const CacheEntryInfo& e) {
  return absl::StrCat(e.type, "/", e.digest);
}

void OldestFirst(std::vector<CacheEntryInfo>& entries) {
  std::sort(entries.begin(), entries.end(), [](const CacheEntryInfo& a, const CacheEntryInfo& b) {
    return a.mtime_ns < b.mtime_ns;
  });
}

bool IsHex64(const std::string& name) {
  return name.size() == 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

BlobCache::Reservation::~Reservation() {
  if (cache_ == nullptr) return;
  absl::MutexLock lock(&cache_->room_mu_);
  cache_->reserved_ -= bytes_;
}

absl::StatusOr<BlobCache::Reservation> BlobCache::MakeRoom(const CacheCaller& caller,
                                                           int64_t bytes) {
  absl::MutexLock lock(&room_mu_);
  if (!caller.owner && budget_.max_bytes_per_user > 0) RETURN_IF_ERROR(TrimShare(caller, bytes));
  if (budget_.max_bytes > 0) RETURN_IF_ERROR(EvictFor(bytes));
  reserved_ += bytes;
  return Reservation(this, bytes);
}

// Over their share, a user's own least recently used references go first
// (an entry nobody else references goes with them).
absl::Status BlobCache::TrimShare(const CacheCaller& caller, int64_t bytes) {
  const int64_t max = budget_.max_bytes_per_user;
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> mine, List(caller));
  int64_t used = 0;
  for (const CacheEntryInfo& e : mine) used += e.allocated;
  OldestFirst(mine);
  for (const CacheEntryInfo& e : mine) {
    if (used + bytes <= max) break;
    if (Pinned(KeyOf(e))) continue;
    if (refs_.Drop(KeyOf(e), caller.uid).empty()) Delete(e.type, e.digest);
    used -= e.allocated;
  }
  if (used + bytes <= max) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "user %d's pulls use %d MiB of the node cache and this one needs %d MiB more (limit "
      "max_cache_mib_per_user = %d in berth.conf)",
      caller.uid, Mib(used), Mib(bytes), max >> 20));
}

// Deletes the least recently used entries no transfer uses until `bytes` fit.
absl::Status BlobCache::EvictFor(int64_t bytes) {
  const int64_t max = budget_.max_bytes;
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> entries, ListAll());
  int64_t used = reserved_;
  for (const CacheEntryInfo& e : entries) used += e.allocated;
  OldestFirst(entries);
  for (const CacheEntryInfo& e : entries) {
    if (used + bytes <= max) break;
    if (Pinned(KeyOf(e))) continue;
    Delete(e.type, e.digest);
    used -= e.allocated;
    spdlog::info("node cache: deleted the least recently used {} {} ({} MiB) to make room", e.type,
                 e.digest, Mib(e.allocated));
  }
  if (used + bytes <= max) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "the node cache has no room for %d MiB: %d MiB of its %d MiB budget are entries pulls are "
      "using or filling now (cache_max_mib in berth.conf)",
      Mib(bytes), Mib(used), max >> 20));
}

absl::StatusOr<std::vector<CacheEntryInfo>> BlobCache::ListAll() const {
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
      struct stat st {};
      if (!IsHex64(name) || ::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode)) {
        continue;
      }
      CacheEntryInfo info{type,
                          "sha256:" + name,
                          st.st_size,
                          st.st_mtim.tv_sec,
                          st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                          static_cast<int64_t>(st.st_blocks) * 512,
                          {}};
      info.users = refs_.Users(KeyOf(info));
      out.push_back(std::move(info));
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end(), [](const CacheEntryInfo& a, const CacheEntryInfo& b) {
    return std::tie(a.type, a.digest) < std::tie(b.type, b.digest);
  });
  return out;
}

absl::StatusOr<std::vector<CacheEntryInfo>> BlobCache::List(CacheCaller caller) const {
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> all, ListAll());
  if (caller.owner) return all;
  std::vector<CacheEntryInfo> mine;
  for (CacheEntryInfo& e : all) {
    if (e.users.contains(caller.uid)) mine.push_back(std::move(e));
  }
  return mine;
}

absl::StatusOr<std::vector<CacheEntryInfo>> BlobCache::Clean(CacheCaller caller, int days,
                                                             const std::vector<std::string>& types,
                                                             bool dry_run,
                                                             std::vector<CacheEntryInfo>* released,
                                                             std::vector<CacheEntryInfo>* in_use) {
  for (const std::string& t : types) {
    if (!IsCacheType(t) && t != "all") {
      return absl::InvalidArgumentError(absl::StrCat("unknown cache type '", t.substr(0, 40),
                                                     "' (oras, blob, sif, build-stage, all)"));
    }
  }
  bool all = types.empty() || std::find(types.begin(), types.end(), "all") != types.end();
  int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - int64_t{days} * 86400;
  absl::MutexLock lock(&room_mu_);  // no budget decision between our look and our delete
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> entries, List(caller));
  std::vector<CacheEntryInfo> removed;
  for (CacheEntryInfo& e : entries) {
    if (!all && std::find(types.begin(), types.end(), e.type) == types.end()) continue;
    if (days > 0 && e.mtime_unix > cutoff) continue;
    // A user's clean never takes an entry a pull is using, theirs or
    // another user's (that pull may not have recorded its user yet).
    if (!caller.owner && Pinned(KeyOf(e))) {
      if (in_use != nullptr) in_use->push_back(std::move(e));
      continue;
    }
    const bool shared = !caller.owner && (e.users.size() > 1 || !e.users.contains(caller.uid));
    if (shared) {
      // Another user needs it: only this user's reference goes.
      if (!dry_run) refs_.Drop(KeyOf(e), caller.uid);
      if (released != nullptr) released->push_back(std::move(e));
      continue;
    }
    if (!dry_run) Delete(e.type, e.digest);
    removed.push_back(std::move(e));
  }
  return removed;
}

}  // namespace berth::daemon::pull
