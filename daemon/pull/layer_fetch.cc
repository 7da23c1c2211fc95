#include "daemon/pull/layer_fetch.h"

#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::pull {
namespace {

class FdBlobSink : public oras::BlobSink {
 public:
  explicit FdBlobSink(int fd) : fd_(fd) {}
  absl::Status Write(std::span<const uint8_t> data) override {
    absl::Status st = WriteAll(fd_, data);
    return st.ok() ? st : Annotate(st, "writing to the node cache");
  }
  absl::Status Restart() override {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
      return ErrnoStatus("restarting a cache download", errno);
    }
    return absl::OkStatus();
  }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<std::vector<UniqueFd>> FetchBlobs(const oras::RegistryClient& client,
                                                 BlobCache::Transfer& cache,
                                                 const std::string& type,
                                                 const std::vector<BlobRef>& blobs, int parallel,
                                                 const BlobProgress& progress) {
  std::vector<absl::StatusOr<UniqueFd>> results;
  results.reserve(blobs.size());
  for (size_t i = 0; i < blobs.size(); ++i) results.emplace_back(absl::UnknownError("not fetched"));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    std::unique_ptr<oras::RegistryClient> own = client.Clone();
    for (size_t i = next.fetch_add(1); i < blobs.size() && !failed.load(); i = next.fetch_add(1)) {
      const BlobRef& blob = blobs[i];
      bool from_cache = true;
      results[i] = cache.GetOrFill(
          type, blob.digest, blob.size,
          [&](int fd, const std::function<void(int64_t)>& note) -> absl::Status {
            from_cache = false;
            FdBlobSink sink(fd);
            return own->FetchBlob(blob.digest, blob.size, sink, [&](int64_t done) {
              note(done);
              progress(blob, done, false, false);
            });
          },
          [&](int64_t done, bool cached) {
            if (!cached) {
              from_cache = false;
              progress(blob, done, false, false);
            }
          });
      if (!results[i].ok()) {
        failed.store(true);
      } else {
        progress(blob, blob.size, true, from_cache);
      }
    }
  };
  int n = std::max(1, std::min<int>(parallel, static_cast<int>(blobs.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  std::vector<UniqueFd> fds;
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (!results[i].ok() && !absl::IsUnknown(results[i].status())) {
      return Annotate(results[i].status(), blobs[i].what);
    }
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    if (!results[i].ok()) return Annotate(results[i].status(), blobs[i].what);
    fds.push_back(*std::move(results[i]));
  }
  return fds;
}

}  // namespace berth::daemon::pull
