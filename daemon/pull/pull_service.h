// The Pull, Push and Cache RPCs: registry transfers done by the daemon for a
// caller, through the node cache (blob_cache.h).
//
// Pull, step by step:
//   1. parse the reference (oras/reference.h: strict grammar, digest syntax);
//   2. fetch the manifest with THE CALLER'S credentials, always, even when
//      everything is cached: that request is the registry's authorisation
//      of this user for this repository, and only blobs named by the
//      manifest it returns are served from the cache;
//   3. fetch missing blobs into the cache (digest-verified while streaming,
//      single-flight across all users);
//   4. write the image into the descriptor the client handed over (a temp
//      file the client created as itself: the daemon never creates or names
//      a file on the caller's behalf); the client renames it on success.
//
// Push reads the SIF through the handed descriptor (opened by the client as
// the user) and uploads it as Apptainer's ORAS artifact.
//
// Credentials arrive in the request, are used for that request's registry
// client only, and are never logged or stored.
//
// Privilege: runs on gRPC threads as the daemon. Network and cache I/O are
// the daemon's; the caller's files are reached only through handed fds.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "berth/v1/berth.grpc.pb.h"
#include "daemon/daemon_options.h"
#include "daemon/policy/config.h"
#include "daemon/pull/blob_cache.h"
#include "daemon/pull/image_resolve.h"
#include "daemon/server/peer_identity.h"
#include "oras/registry_client.h"

namespace berth::daemon::pull {

using PullWriter = grpc::ServerWriter<v1::PullOutput>;

class PullService {
 public:
  PullService(const DaemonOptions& options, const policy::Config& config, BlobCache& cache);

  absl::Status Pull(grpc::ServerContext& context, const v1::PullRequest& request,
                    PullWriter& writer, const PeerIdentity& peer);
  absl::Status Push(grpc::ServerContext& context, const v1::PushRequest& request,
                    PullWriter& writer, const PeerIdentity& peer);
  absl::Status CacheList(const PeerIdentity& peer, v1::CacheListReply& reply);
  // registry login's check: the registry accepts these credentials.
  absl::Status CheckLogin(const v1::CheckLoginRequest& request, const PeerIdentity& peer);
  absl::Status CacheClean(const v1::CacheCleanRequest& request, const PeerIdentity& peer,
                          v1::CacheCleanReply& reply);

 private:
  // oci:, oci-archive:, docker-archive: (handed descriptors, no cache).
  absl::Status PullLocal(const v1::PullRequest& request, PullWriter& writer,
                         const PeerIdentity& peer);
  // oras://: the artifact's single SIF layer, from the cache or the registry.
  // When this pull fills the cache, the bytes also go to `out_fd` as they
  // arrive (`output_written`).
  absl::StatusOr<UniqueFd> FetchSif(oras::RegistryClient& client, const ResolvedImage& image,
                                    BlobCache::Transfer& cache, PullWriter& writer, int out_fd,
                                    std::string& digest, bool& output_written);
  // docker://: config and layers into the cache, then the SIF built from
  // them (cached too, keyed by the manifest digest).
  // A build's base is squashed for speed instead (PullRequest.build_base).
  absl::StatusOr<UniqueFd> BuildSifFromImage(oras::RegistryClient& client,
                                             const ResolvedImage& image, BlobCache::Transfer& cache,
                                             PullWriter& writer, bool build_base);
  // Steps 2-4 of Pull, through the pull's cache transfer.
  absl::Status PullThrough(grpc::ServerContext& context, const v1::PullRequest& request,
                           const oras::Reference& ref, int out_fd, BlobCache::Transfer& cache,
                           PullWriter& writer, const PeerIdentity& peer);

  // Where this user last pulled or pushed a SIF layer on a registry, so a
  // push of the same bytes to another repository there asks for a
  // cross-repository mount instead of uploading them again. Per uid: the
  // daemon never tells one user where another's blobs live; the registry
  // still checks the pushing user's right to read the source repository.
  void RememberRepository(uid_t uid, const std::string& host, const std::string& digest,
                          const std::string& repository);
  std::string MountSourceFor(uid_t uid, const std::string& host, const std::string& digest,
                             const std::string& target_repository);

  DaemonOptions options_;
  const policy::Config& config_;
  BlobCache& cache_;
  absl::Mutex seen_mu_;
  // (uid, host, digest) -> repository; bounded: when full, the first entry in
  // key order is dropped (a lost hint only means a normal upload).
  std::map<std::tuple<uid_t, std::string, std::string>, std::string> seen_
      ABSL_GUARDED_BY(seen_mu_);
};

}  // namespace berth::daemon::pull
