// Which users referenced each entry of the node cache (blob_cache.h).
//
// The cache is shared, so a user may clean only what nobody else needs: an
// entry is a user's own when they alone referenced it (pulled something that
// named it). The record lives beside the entries, in the daemon's state
// (<cache>/refs/<type>-<hex>, one uid per line, root 0600 in a root-only
// directory): users reach it only through the daemon, which writes each
// record whole (a temporary file renamed over it). An entry without a
// record (one cached before records existed) belongs to nobody: only root
// cleans it, and the budget's eviction.
#pragma once

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace berth::daemon::pull {

class CacheRefs {
 public:
  // `dir`: the records' directory (created 0700 by Load).
  explicit CacheRefs(std::string dir);

  // Reads every record; drops those whose entry `exists` says is gone.
  absl::Status Load(const std::function<bool(const std::string& key)>& exists);

  // `key` is "<type>/sha256:<hex>". Adds `uid` to the entry's users.
  absl::Status Add(const std::string& key, uid_t uid);
  // Removes `uid` from the entry's users; returns the users left.
  std::set<uid_t> Drop(const std::string& key, uid_t uid);
  // Forgets the entry (deleted).
  void Erase(const std::string& key);
  std::set<uid_t> Users(const std::string& key) const;

 private:
  std::string PathOf(const std::string& key) const;
  absl::Status WriteLocked(const std::string& key, const std::set<uid_t>& users)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::set<uid_t>> users_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon::pull
