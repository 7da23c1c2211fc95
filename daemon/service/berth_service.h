// berth.v1.Berth as berthd serves it.
//
// Every handler starts the same way: it learns its caller from the connection
// the call arrived on (PeerRegistry), never from the request, and works in
// absl::Status; the gRPC boundary maps the result with its message intact.
// Version answers who the daemon is; Run (run_handler.h) runs containers.
//
// Privilege: handlers run on gRPC's threads with the daemon's full
// privileges. Version does nothing on the caller's behalf; each later handler
// states here at which step it takes on the caller's identity.
#pragma once

#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "berth/v1/berth.grpc.pb.h"
#include "daemon/daemon_options.h"
#include "daemon/server/peer_registry.h"
#include "daemon/service/run_handler.h"

namespace berth::daemon {

class BerthService final : public berth::v1::Berth::Service {
 public:
  // `peers` must outlive the service.
  BerthService(const DaemonOptions& options, const PeerRegistry& peers, RunHandler& runs);

  grpc::Status Version(grpc::ServerContext* context, const v1::VersionRequest* request,
                       v1::VersionReply* reply) override;
  grpc::Status Run(grpc::ServerContext* context, RunStream* stream) override;

 private:
  absl::StatusOr<std::shared_ptr<const PeerIdentity>> Authenticate(
      const grpc::ServerContext& context) const;
  absl::Status DoVersion(const grpc::ServerContext& context, v1::VersionReply& reply) const;

  DaemonOptions options_;
  const PeerRegistry& peers_;
  RunHandler& runs_;
};

}  // namespace berth::daemon
