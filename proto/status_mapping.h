// How an error crosses the socket.
//
// Both sides work in absl::Status; gRPC carries grpc::Status. The two share
// their numeric codes (both follow google.rpc.Code), so the mapping keeps the
// code and the whole message: the chain of context the daemon built up
// ("running X: mounting Y: ...") reaches the user's terminal in one line.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace berth::rpc {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace berth::rpc
