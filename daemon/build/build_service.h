// The Build RPC: `berth build` done by the daemon for its caller
// (builder.h says what runs where).
//
// Step by step: the caller is who the connection says (never the request);
// the definition is re-parsed and checked here whatever the client did; the
// output file, the client's working directory and the bootstrap source
// arrive as descriptors the client opened as the caller; the fakeroot ids
// come from daemon/fakeroot; staging goes under berth.conf's build_dir
// (default /var/tmp/berth-build, root's, 0711; a user-mode daemon's state
// directory) or,
// where the admin allows, the caller's --tmpdir, which must be a directory
// the caller may write (checked with the caller's identity); the build runs
// in the caller's cgroups; the staging tree goes on every exit path.
//
// Privilege: runs on a gRPC thread as the daemon. It takes the caller's
// identity to check --tmpdir (image/open_as_caller.h) and starts every build
// process as the caller's fakeroot user; it creates and removes staging
// directories and writes the SIF's header through the handed descriptor.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <string>

#include "absl/status/status.h"
#include "berth/v1/berth.grpc.pb.h"
#include "common/unique_fd.h"
#include "daemon/build/staging.h"
#include "daemon/daemon_options.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/policy/config.h"
#include "daemon/pull/blob_cache.h"
#include "daemon/server/peer_identity.h"

namespace berth::daemon::build {

using BuildWriter = grpc::ServerWriter<v1::BuildOutput>;

class BuildService {
 public:
  // `gpus` serves --nv/--rocm in %post and %test (null: refused);
  // `cache` keeps the stage cache's entries (null: no stage cache).
  BuildService(const DaemonOptions& options, const policy::Config& config,
               gpu::GpuService* gpus = nullptr, pull::BlobCache* cache = nullptr);

  // Opens the worker binary, prepares the default staging directory and
  // the records, and sweeps what a dead daemon left.
  absl::Status Init(const std::string& worker_path);

  absl::Status Build(grpc::ServerContext& context, const v1::BuildRequest& request,
                     BuildWriter& writer, const PeerIdentity& peer);

 private:
  absl::StatusOr<UniqueFd> StagingBase(const v1::BuildRequest& request, const PeerIdentity& peer,
                                       std::string& path) const;
  std::string DefaultBase() const;

  const DaemonOptions& options_;
  const policy::Config& config_;
  gpu::GpuService* gpus_;
  pull::BlobCache* cache_;
  StagingRecords records_;
  std::string default_base_;
  UniqueFd worker_;
  std::string worker_error_;
};

// Where berthd looks for berth-build-worker when --build-worker is not
// given: beside itself, then in ../libexec/berth.
std::string DefaultWorkerPath();

}  // namespace berth::daemon::build
