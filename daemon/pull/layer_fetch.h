// Fetching an image's blobs (config and layers) into the node cache, several
// at once: each worker thread has its own registry client (a Clone() of the
// caller's, which carries the caller's token), and each blob goes through
// the pull's cache transfer (BlobCache::Transfer::GetOrFill), so a blob
// another pull is fetching is waited for, never fetched twice.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/pull/blob_cache.h"
#include "oras/registry_client.h"

namespace berth::daemon::pull {

struct BlobRef {
  std::string digest;
  int64_t size = 0;
  std::string what;  // "layer 1/3", "config"
};

// Called from worker threads (the callee serialises): bytes done of `blob`,
// or finished (with from_cache).
using BlobProgress =
    std::function<void(const BlobRef& blob, int64_t done, bool finished, bool from_cache)>;

// Read-only descriptors of the cached blobs, in the order of `blobs`.
absl::StatusOr<std::vector<UniqueFd>> FetchBlobs(const oras::RegistryClient& client,
                                                 BlobCache::Transfer& cache,
                                                 const std::string& type,
                                                 const std::vector<BlobRef>& blobs, int parallel,
                                                 const BlobProgress& progress);

}  // namespace berth::daemon::pull
