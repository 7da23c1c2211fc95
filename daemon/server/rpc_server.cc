#include "daemon/server/rpc_server.h"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/file_io.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(5);
// Without accepts, closed connections are still swept this often.
constexpr int kIdleSweepMillis = 30'000;

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

void AcceptConnection(int listen_fd, PeerRegistry& peers, grpc::Server& server) {
  UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!conn) return LogAcceptFailure(errno);
  auto peer = ReadPeerIdentity(conn.get());
  if (!peer.ok()) {
    spdlog::warn("rejecting a connection: {}", std::string(peer.status().message()));
    return;
  }
  std::string who = DescribePeer(*peer);
  peers.SweepClosed();
  if (absl::Status registered = peers.Register(conn.get(), *std::move(peer)); !registered.ok()) {
    spdlog::warn("rejecting a connection from {}: {}", who, std::string(registered.message()));
    return;
  }
  spdlog::debug("connection fd:{} from {}", conn.get(), who);
  // gRPC owns the descriptor from here on and closes it with the transport.
  grpc::AddInsecureChannelFromFd(&server, conn.Release());
}

std::optional<int> ReadSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (read(signal_fd, &info, sizeof(info)) != sizeof(info)) return std::nullopt;
  return static_cast<int>(info.ssi_signo);
}

absl::Status AcceptUntilSignalled(ListeningSocket& listener, PeerRegistry& peers,
                                  grpc::Server& server, int signal_fd) {
  pollfd fds[] = {{listener.fd(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
  for (;;) {
    int ready = poll(fds, 2, kIdleSweepMillis);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoStatus("poll", errno);
    if (ready == 0) {
      peers.SweepClosed();
      continue;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      if (std::optional<int> sig = ReadSignal(signal_fd)) {
        spdlog::info("{}: shutting down", strsignal(*sig));
        return absl::OkStatus();
      }
    }
    if ((fds[0].revents & POLLIN) != 0) AcceptConnection(listener.fd(), peers, server);
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
                                 grpc::Service& service, const UniqueFd& signal_fd) {
  std::unique_ptr<grpc::Server> server = StartGrpcServer(service);
  if (!server) return absl::InternalError("the gRPC server did not start");
  spdlog::info("listening on {}", listener.path());
  absl::Status served = AcceptUntilSignalled(listener, peers, *server, signal_fd.get());
  listener.Close();
  server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  server->Wait();
  return served;
}

}  // namespace berth::daemon
