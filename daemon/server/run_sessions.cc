#include "daemon/server/run_sessions.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/server/refusal_log.h"
#include "proto/run_wire.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

// RunChannel over the session's socket. Reads happen on the handler's reader
// thread and writes on its supervising thread: the directions share nothing
// but the cancel eventfd.
class SocketRunChannel final : public RunChannel {
 public:
  SocketRunChannel(int fd, int cancel_fd, absl::Duration request_deadline)
      : fd_(fd), cancel_fd_(cancel_fd), request_deadline_(request_deadline) {}

  absl::Status ReadFirst(v1::RunInput& in) override {
    std::string frame;
    auto got = reader_.ReadFrame(fd_, &frame, cancel_fd_, absl::Now() + request_deadline_);
    if (!got.ok()) return Annotate(got.status(), "reading the run request");
    if (*got != rpc::FrameReader::Result::kFrame) {
      return absl::CancelledError("the client closed the connection before its request");
    }
    return rpc::ParseFrame(frame, in, "the run request");
  }

  bool Read(v1::RunInput& in) override {
    std::string frame;
    auto got = reader_.ReadFrame(fd_, &frame, cancel_fd_);
    if (!got.ok() || *got != rpc::FrameReader::Result::kFrame) return false;
    // Garbage after the request ends the session like a hang-up would.
    return rpc::ParseFrame(frame, in, "a run-session message").ok();
  }

  bool Write(const v1::RunOutput& out) override {
    absl::MutexLock lock(&write_mu_);
    return rpc::WriteFrame(fd_, out, cancel_fd_).ok();
  }

  void Cancel() override {
    uint64_t one = 1;
    (void)!::write(cancel_fd_, &one, sizeof one);
  }

 private:
  int fd_;
  int cancel_fd_;
  absl::Duration request_deadline_;
  rpc::FrameReader reader_;
  absl::Mutex write_mu_;
};

}  // namespace

void RefuseRunSession(int fd, const absl::Status& why) {
  v1::RunOutput out;
  rpc::StatusToFailed(why, *out.mutable_failed());
  (void)rpc::WriteFrame(fd, out);  // non-blocking: a full socket just loses it
}

struct RunSessions::Session {
  UniqueFd conn;
  UniqueFd cancel;
  std::shared_ptr<const PeerIdentity> peer;
  std::unique_ptr<SocketRunChannel> channel;
  std::thread thread;
  std::atomic<bool> done{false};
};

RunSessions::RunSessions(RunSessionHandler handler, RunSessionLimits limits)
    : handler_(std::move(handler)), limits_(limits) {}

RunSessions::~RunSessions() {
  Shutdown(absl::ZeroDuration());
}

void RunSessions::Start(UniqueFd conn, PeerIdentity peer) {
  JoinFinished();
  uid_t uid = peer.uid;
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  auto refuse = [&](const absl::Status& why) {
    AcceptLoopRefusals().Warn(peer, "refusing a run session", why.message());
    RefuseRunSession(conn.get(), why);
  };
  if (sessions_.size() >= limits_.total) {
    return refuse(absl::ResourceExhaustedError(absl::StrFormat(
        "berthd already serves %d run sessions; try again later", sessions_.size())));
  }
  auto held = per_uid_.find(uid);
  if (held != per_uid_.end() && held->second >= limits_.per_uid) {
    return refuse(absl::ResourceExhaustedError(
        absl::StrFormat("user %d already has %d run sessions open on this node "
                        "(max_sessions_per_user in berth.conf)",
                        uid, held->second)));
  }
  UniqueFd cancel(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cancel) return refuse(ErrnoStatus("berthd: eventfd", errno));
  size_t& mine = per_uid_[uid];
  ++mine;
  auto session = std::make_unique<Session>();
  session->channel =
      std::make_unique<SocketRunChannel>(conn.get(), cancel.get(), limits_.request_deadline);
  session->conn = std::move(conn);
  session->cancel = std::move(cancel);
  session->peer = std::make_shared<const PeerIdentity>(std::move(peer));
  Session* raw = session.get();
  try {
    raw->thread = std::thread(&RunSessions::Serve, this, raw);
  } catch (const std::system_error& e) {
    // Out of threads (RLIMIT_NPROC, memory): this session is refused, the
    // daemon goes on.
    --mine;
    if (mine == 0) per_uid_.erase(uid);
    spdlog::warn("refusing a run session from {}: cannot start a thread: {}",
                 DescribePeer(*raw->peer), e.what());
    return RefuseRunSession(raw->conn.get(), absl::ResourceExhaustedError(absl::StrCat(
                                                 "berthd cannot start a thread for the session (",
                                                 e.what(), "); try again later")));
  }
  sessions_.push_back(std::move(session));
}

void RunSessions::Serve(Session* session) {
  absl::Status served = handler_(*session->channel, session->peer);
  if (!served.ok()) {
    spdlog::info("Run failed: {}", std::string(served.message()));
    v1::RunOutput out;
    rpc::StatusToFailed(served, *out.mutable_failed());
    session->channel->Write(out);
  }
  // Closing here, not at join time: the client waits for the end of stream.
  session->conn.Reset();
  {
    absl::MutexLock lock(&mu_);
    auto it = per_uid_.find(session->peer->uid);
    if (it != per_uid_.end() && --it->second == 0) per_uid_.erase(it);
  }
  // The identity holds the connection's share of the user's budget and any
  // handed descriptors: let them go now, not when the thread is joined.
  session->peer.reset();
  session->done.store(true);
}

void RunSessions::JoinFinished() {
  std::list<std::unique_ptr<Session>> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : finished) s->thread.join();
}

void RunSessions::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }
  absl::Time deadline = absl::Now() + grace;
  for (;;) {
    JoinFinished();
    if (size() == 0) return;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto& s : sessions_) s->channel->Cancel();
  }
  std::list<std::unique_ptr<Session>> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(sessions_);
  }
  for (auto& s : all) s->thread.join();
}

size_t RunSessions::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace berth::daemon
