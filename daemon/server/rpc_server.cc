#include "daemon/server/rpc_server.h"

#include <fcntl.h>
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
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "daemon/server/pending_connections.h"
#include "daemon/server/refusal_log.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(5);
// Closed connections are swept this often while any are registered, and
// every kIdleMillis otherwise.
constexpr auto kSweepInterval = std::chrono::seconds(1);
constexpr int kSweepMillis = 1000;
constexpr int kIdleMillis = 30'000;
// Clients send the preamble with connect(): a second is plenty.
constexpr auto kPreambleTimeout = std::chrono::milliseconds(1000);
constexpr size_t kMaxPendingTotal = 1024;
// Connections accepted per wake-up, so that a full backlog drains quickly.
constexpr int kAcceptBatch = 64;

std::unique_ptr<grpc::Server> StartGrpcServer(grpc::Service& service) {
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  // No listening port: every connection comes through AcceptConnection.
  return builder.BuildAndStart();
}

void HandToGrpc(UniqueFd conn, PeerIdentity peer, PeerRegistry& peers, grpc::Server& server) {
  std::string who = DescribePeer(peer);
  if (absl::Status registered = peers.Register(conn.get(), std::move(peer)); !registered.ok()) {
    spdlog::warn("rejecting a connection from {}: {}", who, std::string(registered.message()));
    return;
  }
  spdlog::debug("connection fd:{} from {}", conn.get(), who);
  // gRPC owns the descriptor from here on and closes it with the transport.
  grpc::AddInsecureChannelFromFd(&server, conn.Release());
}

// What a connection is handed to once its preamble arrived, the budget its
// user's share comes from, and where a full descriptor table is noted for
// the loop to shed (ShedHeaviest) once it is done with the pending list.
struct Destinations {
  PeerRegistry& peers;
  grpc::Server& server;
  RunSessions& sessions;
  ConnectionBudget& budget;
  bool& table_full;
};

// Closes a connection over its user's budget; a run-session client is told
// why (a gRPC client only sees the connection close).
void Refuse(UniqueFd conn, ConnectionKind kind, const PeerIdentity& peer, const absl::Status& why) {
  AcceptLoopRefusals().Warn(peer, "refusing a connection", why.message());
  if (kind == ConnectionKind::kRunSession) RefuseRunSession(conn.get(), why);
}

// The descriptor table is full: `conn` is closed, its client told why when
// it asked for a run session.
void RefuseForLackOfDescriptors(UniqueFd conn, std::optional<ConnectionKind> kind,
                                const Destinations& to) {
  to.table_full = true;
  if (conn && kind == ConnectionKind::kRunSession) {
    RefuseRunSession(conn.get(), absl::ResourceExhaustedError(
                                     "berthd has run out of descriptors (users at their "
                                     "max_connections_per_user and max_handed_fds_per_user hold "
                                     "them all); try again later"));
  }
}

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
    AcceptLoopRefusals().Warn(pending.peer, "dropping a connection", handoff.status().message());
    return true;
  }
  if (handoff->no_room) {
    RefuseForLackOfDescriptors(std::move(pending.conn), handoff->kind, to);
    return true;
  }
  if (absl::Status whole = CompletePeerIdentity(pending.conn.get(), pending.peer); !whole.ok()) {
    if (absl::IsResourceExhausted(whole)) {
      RefuseForLackOfDescriptors(std::move(pending.conn), handoff->kind, to);
    } else {
      spdlog::debug("rejecting a connection: {}", std::string(whole.message()));
    }
    return true;
  }
  if (!handoff->fds.empty()) {
    auto charge = to.budget.Take(pending.peer.uid, Held::kHandedFds, handoff->fds.size());
    if (!charge.ok()) {
      Refuse(std::move(pending.conn), handoff->kind, pending.peer, charge.status());
      return true;
    }
    pending.peer.handed_fds =
        std::make_shared<HandedFds>(std::move(handoff->fds), *std::move(charge));
  }
  if (handoff->kind == ConnectionKind::kRunSession) {
    to.sessions.Start(std::move(pending.conn), std::move(pending.peer));
  } else {
    HandToGrpc(std::move(pending.conn), std::move(pending.peer), to.peers, to.server);
  }
  return true;
}

// The connection's share of its user's budget. Closed gRPC connections are
// only noticed by a sweep, so a user at the limit gets one before the
// refusal.
absl::StatusOr<Charge> ChargeConnection(uid_t uid, const Destinations& to) {
  auto charge = to.budget.Take(uid, Held::kConnections, 1);
  if (charge.ok()) return charge;
  to.peers.SweepClosed();
  return to.budget.Take(uid, Held::kConnections, 1);
}

struct AcceptLoop {
  ListeningSocket& listener;
  bool table_full = false;  // set through `to`, handled by ShedHeaviest
  Destinations to;
  PendingConnections pending;
  // Kept open to be closed when the descriptor table is full, so that the
  // connection at the head of the backlog can still be accepted and closed
  // instead of blocking everyone queued behind it.
  UniqueFd reserve;
  std::chrono::steady_clock::time_point last_sweep;
};

// After a full descriptor table: the user holding the most lets go of what
// they have waiting (pending connections, handed descriptors no call took).
void ShedHeaviest(AcceptLoop& loop) {
  static auto last_warning = std::chrono::steady_clock::time_point();
  loop.table_full = false;
  std::optional<uid_t> heaviest = loop.to.budget.Heaviest();
  size_t shed = 0;
  if (heaviest) {
    loop.to.peers.DropUnclaimedOf(*heaviest);
    shed = loop.pending.ShedUser(*heaviest);
  }
  auto now = std::chrono::steady_clock::now();
  if (now - last_warning > std::chrono::seconds(5)) {
    last_warning = now;
    spdlog::warn(
        "out of descriptors: refusing connections; shed {} pending connections of uid {} and its "
        "unclaimed handed descriptors",
        shed, heaviest ? static_cast<int64_t>(*heaviest) : -1);
  }
}

// accept() failed with EMFILE: the reserve descriptor makes room to accept
// the connection at the head of the backlog and refuse it, so the
// connections queued behind it move on.
void AcceptWithReserve(AcceptLoop& loop) {
  loop.reserve.Reset();
  UniqueFd head(accept4(loop.listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  std::optional<ConnectionKind> kind;
  if (head) kind = PeekConnectionKind(head.get());
  RefuseForLackOfDescriptors(std::move(head), kind, loop.to);
  loop.reserve = UniqueFd(open("/dev/null", O_RDONLY | O_CLOEXEC));
}

// Charges a fresh connection to its user and reads its preamble at once
// when it is there (the usual case); otherwise it waits among the pending.
void Admit(UniqueFd conn, AcceptLoop& loop) {
  // The groups and the pidfd are read once the connection is kept
  // (TryCompleteHandoff): a flood of refused connections costs one call each.
  auto peer = ReadPeerCredentials(conn.get());
  if (!peer.ok()) {
    spdlog::debug("rejecting a connection: {}", std::string(peer.status().message()));
    return;
  }
  auto charge = ChargeConnection(peer->uid, loop.to);
  if (!charge.ok()) {
    // Its preamble is usually there already: a run-session client learns why.
    auto handoff = ReceiveHandoff(conn.get());
    Refuse(std::move(conn), handoff.ok() ? handoff->kind : ConnectionKind::kGrpc, *peer,
           charge.status());
    return;
  }
  peer->connection = std::make_shared<Charge>(*std::move(charge));
  PendingConnection p{std::move(conn), *std::move(peer),
                      std::chrono::steady_clock::now() + kPreambleTimeout};
  if (TryCompleteHandoff(p, loop.to)) return;
  loop.pending.Add(std::move(p));
}

void AcceptBatch(AcceptLoop& loop) {
  for (int i = 0; i < kAcceptBatch; ++i) {
    UniqueFd conn(accept4(loop.listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (conn) {
      Admit(std::move(conn), loop);
      continue;
    }
    int err = errno;
    if (err == EMFILE || err == ENFILE) return AcceptWithReserve(loop);
    if (err == EAGAIN || err == EINTR || err == ECONNABORTED) return;  // drained, or gave up
    spdlog::warn("accept: {}", std::strerror(err));
    // ENOBUFS, ENOMEM: the pending connection stays readable; do not spin on it.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return;
  }
}

void SweepIfDue(AcceptLoop& loop) {
  auto now = std::chrono::steady_clock::now();
  if (now - loop.last_sweep < kSweepInterval) return;
  loop.to.peers.SweepClosed();
  loop.last_sweep = now;
}

std::optional<int> ReadSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (read(signal_fd, &info, sizeof(info)) != sizeof(info)) return std::nullopt;
  return static_cast<int>(info.ssi_signo);
}

absl::Status AcceptUntilSignalled(AcceptLoop& loop, int signal_fd) {
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign({{loop.listener.fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}});
    loop.pending.AppendPollFds(fds);
    int cap = loop.to.peers.size() > 0 ? kSweepMillis : kIdleMillis;
    int ready = poll(fds.data(), fds.size(), loop.pending.MillisToNextDeadline(cap));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoStatus("poll", errno);
    if ((fds[1].revents & POLLIN) != 0) {
      if (std::optional<int> sig = ReadSignal(signal_fd)) {
        spdlog::info("{}: shutting down", strsignal(*sig));
        return absl::OkStatus();
      }
    }
    // Before accepting: the pending entries line up with `fds` until then.
    loop.pending.Service(std::span(fds).subspan(2),
                         [&loop](PendingConnection& p) { return TryCompleteHandoff(p, loop.to); });
    if ((fds[0].revents & POLLIN) != 0) AcceptBatch(loop);
    if (loop.table_full) ShedHeaviest(loop);
    SweepIfDue(loop);
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
                                 ConnectionBudget& budget, const UniqueFd& signal_fd) {
  std::unique_ptr<grpc::Server> server = StartGrpcServer(service);
  if (!server) return absl::InternalError("the gRPC server did not start");
  UniqueFd reserve(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!reserve) return ErrnoStatus("opening the reserve descriptor (/dev/null)", errno);
  spdlog::info("listening on {}", listener.path());
  AcceptLoop loop{listener,
                  false,
                  Destinations{peers, *server, sessions, budget, loop.table_full},
                  PendingConnections(budget.limits().pending_per_user, kMaxPendingTotal),
                  std::move(reserve),
                  std::chrono::steady_clock::now()};
  absl::Status served = AcceptUntilSignalled(loop, signal_fd.get());
  listener.Close();
  // Both get the same grace period, side by side.
  std::thread sessions_done([&sessions] { sessions.Shutdown(absl::FromChrono(kShutdownGrace)); });
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  sessions_done.join();
  return served;
}

}  // namespace berth::daemon
