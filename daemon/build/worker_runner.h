// Running one berth-build-worker job (build_worker.proto) for a build: the
// worker starts as the build's fakeroot user (host_process.h) in the
// client's working directory, gets the request on its control socket and
// the descriptors the job names, and its progress and warnings are relayed
// to the client while the daemon waits (and polls for the client's end).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "berth/v1/build_worker.pb.h"
#include "daemon/build/build_context.h"

namespace berth::daemon::build {

class WorkerJob {
 public:
  // `root` becomes the request's root_fd.
  WorkerJob(std::string what, int root);
  // Passes `fd` to the worker; returns its number there, for the request.
  int Pass(int fd);
  v1::WorkerRequest& request() { return request_; }

  // Runs the job; a failure is "<what>: <the worker's message>".
  absl::StatusOr<v1::WorkerResult> Run(BuildContext& ctx);

 private:
  std::string what_;
  v1::WorkerRequest request_;
  std::vector<int> fds_;
};

}  // namespace berth::daemon::build
