// The node cache: registry content shared by every user of the node,
// content-addressed by digest, owned by berthd (under its state directory,
// mode 0700, root-only in system mode).
//
// Layout: <root>/<type>/sha256/<hex>, type "oras" (SIF layers of ORAS
// artifacts), "blob" (OCI configs and layers), "sif" (docker images converted
// to SIF, keyed by the manifest digest). Entries are only ever created whole:
// a filler writes into an O_TMPFILE in the cache's filesystem, which gets a
// name (linkat) only after the filler verified the digest and the data was
// fsync'ed. A crash, a kill or a full disk mid-download leaves no entry and
// no debris; there is nothing to sweep at start-up.
//
// Single-flight: concurrent requests for one missing entry share one fill;
// the others wait (seeing its progress) and then open the entry. A failed
// fill is not shared as a verdict: each waiter retries with its own
// request, because the leader's failure may be its own (credentials).
//
// Authorisation is not decided here: callers open an entry only after the
// registry answered the caller's own manifest request that names it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace berth::daemon::pull {

struct CacheEntryInfo {
  std::string type;
  std::string digest;
  int64_t size = 0;
  int64_t mtime_unix = 0;
};

class BlobCache {
 public:
  // Writes the entry's content into `fd` (an empty file) and verifies it;
  // calls `progress(bytes)` as it goes.
  using Filler = std::function<absl::Status(int fd, const std::function<void(int64_t)>& progress)>;
  // What a waiter sees: bytes done so far by whoever fills the entry.
  using Observer = std::function<void(int64_t done, bool from_cache)>;

  explicit BlobCache(std::string root);

  // Creates the directories (0700) and checks the root is ours.
  absl::Status Init();

  // The entry, read-only, or NotFound. Touches its mtime (last use).
  absl::StatusOr<UniqueFd> Open(const std::string& type, const std::string& digest);

  // The entry, filled by `fill` first when absent (once per node at a time).
  absl::StatusOr<UniqueFd> GetOrFill(const std::string& type, const std::string& digest,
                                     const Filler& fill, const Observer& observe);

  absl::StatusOr<std::vector<CacheEntryInfo>> List() const;

  // Removes entries of `types` (empty = all) unused for `days` days (0 = all).
  absl::StatusOr<std::vector<CacheEntryInfo>> Clean(int days, const std::vector<std::string>& types,
                                                    bool dry_run);

  // How many fills ran (tests and logs: "one download per blob").
  int64_t fills() const { return fills_.load(); }

  const std::string& root() const { return root_; }

 private:
  struct Flight {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    std::atomic<int64_t> bytes{0};
  };

  std::string PathOf(const std::string& type, const std::string& digest) const;
  absl::StatusOr<UniqueFd> Fill(const std::string& type, const std::string& digest,
                                const Filler& fill, Flight& flight);

  std::string root_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> fills_{0};
};

// Cache types a request may name.
bool IsCacheType(const std::string& type);

}  // namespace berth::daemon::pull
