// An OCI distribution API client for one repository on one registry: ping,
// authentication, manifests, blobs in both directions.
//
// Every reply is treated as hostile:
//   - manifests are capped (max_manifest_bytes) and their sha256 must match
//     the digest asked for and any Docker-Content-Digest the server claims;
//   - a blob is hashed while it streams; more bytes than its descriptor's
//     size abort the transfer at once, fewer or a wrong digest fail it, and
//     the caller's sink is told to start over when a resume is refused;
//   - redirects are followed here, never by curl, and the Authorization
//     header is dropped when a redirect leaves the registry's origin
//     (CVE-2022-23538); at most 5 hops;
//   - 429, 5xx and broken connections are retried with exponential backoff;
//     a broken blob download resumes with `Range: bytes=N-`.
//
// Authentication follows formats.md §3.2: Basic when the registry asks for
// it; Bearer tokens fetched from the challenge's realm (with the user's
// credentials, or anonymously), re-fetched with merged scopes when a later
// 401 names a new scope. Credentials are never logged.
//
// Not thread-safe: use one client per thread (Clone() shares no state).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "oras/credentials.h"
#include "oras/http.h"

namespace berth::oras {

inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct ClientOptions {
  bool plain_http = false;  // --no-https, or an insecure registry from berth.conf
  HttpOptions http;
  Credentials credentials;
  size_t max_manifest_bytes = 4 << 20;
  int max_attempts = 5;          // per request, for retryable failures
  int backoff_initial_ms = 200;  // doubled after each retry
};

struct FetchedManifest {
  std::string media_type;  // from Content-Type (or the JSON's mediaType)
  std::string digest;      // sha256 of `bytes`, verified
  std::string bytes;
};

// Where a blob's bytes go. Restart() means "discard everything written so
// far" (the server ignored a Range request and is sending from byte 0).
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  virtual absl::Status Write(std::span<const uint8_t> data) = 0;
  virtual absl::Status Restart() = 0;
};

// Bytes done so far of the current blob.
using ProgressFn = std::function<void(int64_t done)>;

class RegistryClient {
 public:
  RegistryClient(std::string host, std::string repository, ClientOptions options);

  // A fresh client for the same repository with the same credentials and
  // the tokens obtained so far (for parallel downloads).
  std::unique_ptr<RegistryClient> Clone() const;

  // GET /v2/ : reachable, speaks the API, and our credentials are accepted.
  absl::Status Ping();

  // GET /v2/<repo>/manifests/<ref> accepting `accept` (media types).
  absl::StatusOr<FetchedManifest> GetManifest(const std::string& ref,
                                              const std::vector<std::string>& accept);

  // Streams blob `digest` (exactly `size` bytes) into `sink`, verifying both.
  absl::Status FetchBlob(const std::string& digest, int64_t size, BlobSink& sink,
                         const ProgressFn& progress = nullptr);

  // Small blobs (configs) into memory, verified; `size` is the descriptor's.
  absl::StatusOr<std::string> FetchSmallBlob(const std::string& digest, int64_t size,
                                             size_t max_bytes);

  absl::StatusOr<bool> BlobExists(const std::string& digest);

  // Uploads `size` bytes of `fd` as blob `digest` unless the registry has it.
  // `chunk_size` 0 uploads in one request; otherwise PATCH chunks of that
  // size. `mount_from` (a repository on the same registry) tries a
  // cross-repository mount first.
  absl::Status PushBlob(const std::string& digest, int fd, int64_t size, int64_t chunk_size = 0,
                        const std::string& mount_from = "", const ProgressFn& progress = nullptr);
  absl::Status PushSmallBlob(const std::string& digest, const std::string& bytes);

  // PUT /v2/<repo>/manifests/<tag>; returns the manifest's digest.
  absl::StatusOr<std::string> PutManifest(const std::string& tag, const std::string& media_type,
                                          const std::string& bytes);

  const std::string& host() const { return host_; }
  const std::string& repository() const { return repository_; }

 private:
  enum class Access { kPull, kPush };
  struct AuthState {
    bool basic = false;  // the registry asked for Basic
    std::string realm, service;
    std::set<std::string> scopes;  // granted to `token`
    std::string token;
  };

  std::string BaseUrl() const;
  // Sends `request` with authentication, redirects and retries; returns the
  // final reply whatever its status (callers judge it).
  absl::StatusOr<HttpResponse> Send(HttpRequest request, Access access);
  absl::StatusOr<HttpResponse> SendOnce(HttpRequest request);
  // Handles a 401: updates auth_ from its challenge. False if retrying is futile.
  absl::StatusOr<bool> Authenticate(const HttpResponse& reply, Access access, bool tried);
  absl::Status FetchToken(const std::set<std::string>& scopes);
  std::string AuthorizationHeader() const;
  absl::Status UploadChunks(std::string location, const std::string& digest, int fd, int64_t size,
                            int64_t chunk_size, const ProgressFn& progress);

  std::string host_;
  std::string repository_;
  ClientOptions options_;
  std::unique_ptr<HttpSession> http_;
  AuthState auth_;
};

// An error reply as one line: "HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)".
std::string DescribeReply(const HttpResponse& reply);

}  // namespace berth::oras
