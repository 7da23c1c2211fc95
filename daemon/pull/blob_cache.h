// The node cache: registry content shared by every user of the node,
// content-addressed by digest, owned by berthd (under its state directory,
// mode 0700, root-only in system mode).
//
// Layout: <root>/<type>/sha256/<hex>, type "oras" (SIF layers of ORAS
// artifacts), "blob" (OCI configs and layers), "sif" (docker images
// converted to SIF, keyed by the manifest digest), "sif-build" (the same for
// a build's base: zstd level 1, an intermediate the build unpacks at once),
// "build-stage" (a build stage's root after %post, a squashfs keyed by the
// stage cache's key, which includes the user: daemon/build/stage_cache.h).
// Entries are only ever created whole: a filler writes into an O_TMPFILE in
// the cache's filesystem, which gets a name (linkat) only after the filler
// verified the digest and the data was fsync'ed. A crash, a kill or a full
// disk mid-download leaves no entry and no debris; there is nothing to sweep
// at start-up.
//
// Single-flight: concurrent requests for one missing entry share one fill;
// the others wait (seeing its progress) and then open the entry. A failed
// fill is not shared as a verdict: each waiter retries with its own
// request, because the leader's failure may be its own (credentials).
//
// Authorisation is not decided here: callers open an entry only after the
// registry answered the caller's own manifest request that names it.
//
// Budgets: every user can make the daemon fill root's state filesystem
// through pulls, so the cache has a budget (berth.conf [registry]
// cache_max_mib, counted in allocated bytes): before a fill, the least
// recently used entries no transfer is using are deleted until it fits; an
// entry whose size is known only once filled (a converted SIF) and does not
// fit serves its pull unnamed and is not kept. Each user also has a share
// ([limits] max_cache_mib_per_user) of the bytes they reference: over it,
// their own least recently used references go first (an entry nobody else
// references is deleted), so one user's pulls cannot push everyone else's
// entries out beyond that share.
//
// Users: each entry records which users referenced it (cache_refs.h). A
// transfer (one pull) pins the entries it uses until it ends; when the pull
// fails, the entries it filled that no other transfer uses and no other
// user referenced are deleted (a failed conversion keeps nothing). A user
// lists and cleans their own entries; root, all of them.
//
// A transfer begun with `bypass` (pull --disable-cache) neither opens nor
// names an entry: each fill goes to a nameless file that dies with its
// descriptor, still within the budget while it is written.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "daemon/pull/cache_refs.h"

namespace berth::daemon::pull {

struct CacheEntryInfo {
  std::string type;
  std::string digest;
  int64_t size = 0;
  int64_t mtime_unix = 0;
  int64_t mtime_ns = 0;  // the same, in ns: what least-recently-used compares
  int64_t allocated = 0;
  std::set<uid_t> users;  // who referenced it
};

struct CacheBudget {
  int64_t max_bytes = 0;           // the whole cache; 0: none
  int64_t max_bytes_per_user = 0;  // bytes a user references; 0: none
};

// Who asks the cache: `owner` (root, or the user-mode daemon's user) sees
// and cleans every entry and has no share limit.
struct CacheCaller {
  uid_t uid = 0;
  bool owner = false;
};

class BlobCache {
 public:
  // Writes the entry's content into `fd` (an empty file) and verifies it;
  // calls `progress(bytes)` as it goes.
  using Filler = std::function<absl::Status(int fd, const std::function<void(int64_t)>& progress)>;
  // What a waiter sees: bytes done so far by whoever fills the entry.
  using Observer = std::function<void(int64_t done, bool from_cache)>;

  explicit BlobCache(std::string root, CacheBudget budget = {});

  // Creates the directories (0700), checks the root is ours and reads the
  // users' records.
  absl::Status Init();

  // One pull's use of the cache. Thread-safe (a pull fetches layers in
  // parallel); the entries it got stay pinned until it is destroyed.
  class Transfer {
   public:
    ~Transfer();
    Transfer(Transfer&&) = delete;
    // The entry, filled by `fill` first when absent (once per node at a
    // time); `size` is its declared size (-1: unknown until filled). The
    // caller becomes one of its users.
    absl::StatusOr<UniqueFd> GetOrFill(const std::string& type, const std::string& digest,
                                       int64_t size, const Filler& fill, const Observer& observe);
    // The entry when it is there (pinned, the caller one of its users);
    // NotFound when not. Never fills.
    absl::StatusOr<UniqueFd> Get(const std::string& type, const std::string& digest);
    // The pull failed: deletes the entries this transfer filled that no
    // other transfer uses and no other user referenced.
    void DropFilled();

   private:
    friend class BlobCache;
    Transfer(BlobCache& cache, CacheCaller caller, bool bypass)
        : cache_(cache), caller_(caller), bypass_(bypass) {}
    BlobCache& cache_;
    const CacheCaller caller_;
    const bool bypass_;
    absl::Mutex mu_;
    std::vector<std::string> pinned_ ABSL_GUARDED_BY(mu_), filled_ ABSL_GUARDED_BY(mu_);
  };
  std::unique_ptr<Transfer> Begin(CacheCaller caller, bool bypass = false);

  // The caller's entries (every entry for the owner).
  absl::StatusOr<std::vector<CacheEntryInfo>> List(CacheCaller caller) const;

  // Removes the caller's entries of `types` (empty = all) unused for `days`
  // days (0 = all). For a user, an entry another user also referenced is
  // kept, only their reference dropped (returned in `released`); an entry a
  // transfer is using is left whole (returned in `in_use`).
  absl::StatusOr<std::vector<CacheEntryInfo>> Clean(CacheCaller caller, int days,
                                                    const std::vector<std::string>& types,
                                                    bool dry_run,
                                                    std::vector<CacheEntryInfo>* released = nullptr,
                                                    std::vector<CacheEntryInfo>* in_use = nullptr);

  // How many fills ran (tests and logs: "one download per blob").
  int64_t fills() const { return fills_.load(); }

  const std::string& root() const { return root_; }

 private:
  struct Flight {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    std::atomic<int64_t> bytes{0};
  };
  // Bytes of the budget held while an entry is filled.
  class Reservation {
   public:
    Reservation(BlobCache* cache, int64_t bytes) : cache_(cache), bytes_(bytes) {}
    Reservation(Reservation&& other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)), bytes_(other.bytes_) {}
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation();

   private:
    BlobCache* cache_;
    int64_t bytes_;
  };
  struct Filled {
    UniqueFd fd;
    bool kept = false;  // linked into the cache (false: served unnamed)
  };

  std::string PathOf(const std::string& type, const std::string& digest) const;
  absl::StatusOr<UniqueFd> Open(const std::string& type, const std::string& digest);
  // `keep`: name the result as the entry (false: it is served unnamed).
  absl::StatusOr<Filled> Fill(const std::string& type, const std::string& digest, int64_t size,
                              const CacheCaller& caller, const Filler& fill, Flight& flight,
                              bool keep = true);
  absl::StatusOr<UniqueFd> Keep(const std::string& type, const std::string& digest, int fd,
                                const CacheCaller& caller);
  absl::StatusOr<std::vector<CacheEntryInfo>> ListAll() const;
  absl::StatusOr<Reservation> MakeRoom(const CacheCaller& caller, int64_t bytes);
  absl::Status TrimShare(const CacheCaller& caller, int64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(room_mu_);
  absl::Status EvictFor(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(room_mu_);
  void Pin(const std::string& key, int delta);
  bool Pinned(const std::string& key, int more_than = 0);
  void Delete(const std::string& type, const std::string& digest);

  std::string root_;
  CacheBudget budget_;
  CacheRefs refs_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> pins_ ABSL_GUARDED_BY(mu_);  // key -> transfers
  absl::Mutex room_mu_;  // one budget decision at a time
  int64_t reserved_ ABSL_GUARDED_BY(room_mu_) = 0;
  std::atomic<int64_t> fills_{0};
};

// Cache types a request may name.
bool IsCacheType(const std::string& type);

}  // namespace berth::daemon::pull
