#include "daemon/build/worker_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/host_process.h"
#include "proto/run_wire.h"

namespace berth::daemon::build {
namespace {

constexpr int kControlFd = 3;
constexpr int kFirstFd = 4;

absl::StatusOr<UniqueFd> Dup(int fd) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return ErrnoStatus("dup", errno);
  return UniqueFd(d);
}

// Relays events until the result (or an error) arrives and the worker ends.
absl::StatusOr<v1::WorkerResult> Follow(BuildContext& ctx, HostProcess& process, int control,
                                        const std::string& what) {
  rpc::FrameReader reader;
  std::optional<v1::WorkerResult> result;
  std::string error;
  bool eof = false;
  while (!eof) {
    RETURN_IF_ERROR(ctx.CheckCancelled());
    pollfd p{control, POLLIN, 0};
    int ready = ::poll(&p, 1, 200);
    if (ready < 0 && errno != EINTR) return ErrnoStatus("waiting for the worker", errno);
    if (ready <= 0) continue;
    ASSIGN_OR_RETURN(rpc::FrameReader::Result r, reader.Fill(control));
    if (r == rpc::FrameReader::Result::kEnd) eof = true;
    std::string frame;
    for (;;) {
      ASSIGN_OR_RETURN(rpc::FrameReader::Result next, reader.Next(&frame));
      if (next != rpc::FrameReader::Result::kFrame) break;
      v1::WorkerEvent event;
      RETURN_IF_ERROR(rpc::ParseFrame(frame, event, "worker event"));
      if (event.has_progress())
        ctx.progress->Update(event.progress().done(), event.progress().total());
      if (event.has_warning()) ctx.progress->Warning(event.warning());
      if (event.has_result()) result = event.result();
      if (event.kind_case() == v1::WorkerEvent::kError) error = event.error();
    }
  }
  ASSIGN_OR_RETURN(int status, process.Wait());
  if (!error.empty()) return absl::FailedPreconditionError(absl::StrCat(what, ": ", error));
  if (!result || status != 0) {
    return absl::InternalError(absl::StrCat(what, ": the build worker ended with status ", status));
  }
  return *result;
}

}  // namespace

WorkerJob::WorkerJob(std::string what, int root) : what_(std::move(what)) {
  request_.set_root_fd(Pass(root));
}

int WorkerJob::Pass(int fd) {
  fds_.push_back(fd);
  return kFirstFd + static_cast<int>(fds_.size()) - 1;
}

absl::StatusOr<v1::WorkerResult> WorkerJob::Run(BuildContext& ctx) {
  RETURN_IF_ERROR(ctx.CheckCancelled());
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  HostProcessSpec spec;
  spec.what = what_;
  ASSIGN_OR_RETURN(spec.program, Dup(ctx.worker_fd));
  spec.argv = {"berth-build-worker"};
  spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"};
  spec.fds.emplace_back(std::move(theirs), kControlFd);
  for (size_t i = 0; i < fds_.size(); ++i) {
    ASSIGN_OR_RETURN(UniqueFd d, Dup(fds_[i]));
    spec.fds.emplace_back(std::move(d), kFirstFd + static_cast<int>(i));
  }
  if (ctx.cwd) {
    ASSIGN_OR_RETURN(spec.cwd, Dup(ctx.cwd.get()));
  }
  ApplyCaller(ctx.caller, spec);
  ASSIGN_OR_RETURN(HostProcess process, StartHostProcess(std::move(spec)));
  ctx.staging->RecordProcess(process.pid());
  RETURN_IF_ERROR(rpc::WriteFrame(ours.get(), request_));
  ::shutdown(ours.get(), SHUT_WR);
  return Follow(ctx, process, ours.get(), what_);
}

}  // namespace berth::daemon::build
