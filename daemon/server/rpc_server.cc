#include "daemon/server/rpc_server.h"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(5);
// Without accepts, closed connections are still swept this often.
constexpr int kIdleSweepMillis = 30'000;
constexpr auto kPreambleTimeout = std::chrono::milliseconds(2000);
constexpr size_t kMaxPendingConnections = 256;

std::unique_ptr<grpc::Server> StartGrpcServer(grpc::Service& service) {
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  // No listening port: every connection comes through AcceptConnection.
  return builder.BuildAndStart();
}

void LogAcceptFailure(int err) {
  if (err == EAGAIN || err == EINTR || err == ECONNABORTED) return;  // the client gave up
  spdlog::warn("accept: {}", std::strerror(err));
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    // The pending connection stays readable: back off instead of spinning on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// A connection whose preamble (fd_handoff.h) has not arrived yet. Clients
// send it with connect(), so waiting is rare; the deadline stops a client
// that connects and stays silent from holding a slot.
struct PendingConnection {
  UniqueFd conn;
  PeerIdentity peer;
  std::chrono::steady_clock::time_point deadline;
};

void HandToGrpc(UniqueFd conn, PeerIdentity peer, PeerRegistry& peers, grpc::Server& server) {
  std::string who = DescribePeer(peer);
  peers.SweepClosed();
  if (absl::Status registered = peers.Register(conn.get(), std::move(peer)); !registered.ok()) {
    spdlog::warn("rejecting a connection from {}: {}", who, std::string(registered.message()));
    return;
  }
  spdlog::debug("connection fd:{} from {}", conn.get(), who);
  // gRPC owns the descriptor from here on and closes it with the transport.
  grpc::AddInsecureChannelFromFd(&server, conn.Release());
}

// What a connection is handed to once its preamble arrived.
struct Destinations {
  PeerRegistry& peers;
  grpc::Server& server;
  RunSessions& sessions;
};

// Reads the preamble; true when the connection is finished with (handed to
// gRPC or a run session, or dropped), false when it must wait for more bytes.
bool TryCompleteHandoff(PendingConnection& pending, const Destinations& to) {
  auto handoff = ReceiveHandoff(pending.conn.get());
  if (absl::IsUnavailable(handoff.status())) return false;
  if (absl::IsCancelled(handoff.status())) {
    spdlog::debug("connection from {} closed before its preamble", DescribePeer(pending.peer));
    return true;
  }
  if (!handoff.ok()) {
    spdlog::warn("dropping a connection from {}: {}", DescribePeer(pending.peer),
                 std::string(handoff.status().message()));
    return true;
  }
  pending.peer.handed_fds = std::make_shared<HandedFds>(std::move(handoff->fds));
  if (handoff->kind == ConnectionKind::kRunSession) {
    to.sessions.Start(std::move(pending.conn), std::move(pending.peer));
  } else {
    HandToGrpc(std::move(pending.conn), std::move(pending.peer), to.peers, to.server);
  }
  return true;
}

void AcceptConnection(int listen_fd, std::vector<PendingConnection>& pending) {
  UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!conn) return LogAcceptFailure(errno);
  auto peer = ReadPeerIdentity(conn.get());
  if (!peer.ok()) {
    spdlog::warn("rejecting a connection: {}", std::string(peer.status().message()));
    return;
  }
  if (pending.size() >= kMaxPendingConnections) {
    spdlog::warn("dropping a connection from {}: too many connections without a preamble",
                 DescribePeer(*peer));
    return;
  }
  pending.push_back(
      {std::move(conn), *std::move(peer), std::chrono::steady_clock::now() + kPreambleTimeout});
}

// Completes what can be completed and drops what timed out.
void ServicePending(std::vector<PendingConnection>& pending, const Destinations& to) {
  auto now = std::chrono::steady_clock::now();
  std::erase_if(pending, [&](PendingConnection& p) {
    if (TryCompleteHandoff(p, to)) return true;
    if (now < p.deadline) return false;
    spdlog::warn("dropping a connection from {}: no preamble within {} ms", DescribePeer(p.peer),
                 kPreambleTimeout.count());
    return true;
  });
}

int PollTimeoutMillis(const std::vector<PendingConnection>& pending) {
  if (pending.empty()) return kIdleSweepMillis;
  auto next = pending.front().deadline;
  for (const auto& p : pending) next = std::min(next, p.deadline);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      next - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, kIdleSweepMillis));
}

std::optional<int> ReadSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (read(signal_fd, &info, sizeof(info)) != sizeof(info)) return std::nullopt;
  return static_cast<int>(info.ssi_signo);
}

absl::Status AcceptUntilSignalled(ListeningSocket& listener, const Destinations& to,
                                  int signal_fd) {
  std::vector<PendingConnection> pending;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{listener.fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}});
    for (const auto& p : pending) fds.push_back({p.conn.get(), POLLIN, 0});
    int ready = poll(fds.data(), fds.size(), PollTimeoutMillis(pending));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoStatus("poll", errno);
    if (ready == 0 && pending.empty()) {
      to.peers.SweepClosed();
      continue;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      if (std::optional<int> sig = ReadSignal(signal_fd)) {
        spdlog::info("{}: shutting down", strsignal(*sig));
        return absl::OkStatus();
      }
    }
    if ((fds[0].revents & POLLIN) != 0) AcceptConnection(listener.fd(), pending);
    ServicePending(pending, to);
  }
}

}  // namespace

absl::StatusOr<UniqueFd> BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (int err = pthread_sigmask(SIG_BLOCK, &signals, nullptr); err != 0) {
    return ErrnoStatus("blocking SIGTERM/SIGINT", err);
  }
  UniqueFd fd(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) return ErrnoStatus("signalfd", errno);
  return fd;
}

absl::Status ServeUntilSignalled(ListeningSocket& listener, PeerRegistry& peers,
                                 grpc::Service& service, RunSessions& sessions,
                                 const UniqueFd& signal_fd) {
  std::unique_ptr<grpc::Server> server = StartGrpcServer(service);
  if (!server) return absl::InternalError("the gRPC server did not start");
  spdlog::info("listening on {}", listener.path());
  absl::Status served =
      AcceptUntilSignalled(listener, Destinations{peers, *server, sessions}, signal_fd.get());
  listener.Close();
  // Both get the same grace period, side by side.
  std::thread sessions_done([&sessions] { sessions.Shutdown(absl::FromChrono(kShutdownGrace)); });
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  sessions_done.join();
  return served;
}

}  // namespace berth::daemon
