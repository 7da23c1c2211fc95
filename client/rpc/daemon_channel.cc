#include "client/rpc/daemon_channel.h"

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/security/credentials.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fd_handoff.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace berth::client {
namespace {

// A connected, blocking, close-on-exec Unix socket to `path`.
absl::StatusOr<UniqueFd> ConnectSocket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  // CLOEXEC: a connection leaked into another program would let it act with
  // our identity (security.md B3.1).
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return absl::InternalError(std::strerror(errno));
  int rc;
  do {
    rc = connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return absl::UnavailableError(std::strerror(errno));
  return fd;
}

// Destroying the last channel runs gRPC's shutdown, which joins its threads
// with backoff sleeps: ~5 ms, more than the whole request. The client is a
// short-lived process, so channels stay open until it exits (main() exits
// without running destructors).
void KeepUntilExit(std::shared_ptr<grpc::Channel> channel) {
  static auto* open_channels = new std::vector<std::shared_ptr<grpc::Channel>>();
  open_channels->push_back(std::move(channel));
}

absl::Status Unreachable(const std::string& path, absl::string_view reason) {
  return absl::UnavailableError(absl::StrCat("cannot reach berthd at ", path, ": ", reason,
                                             " (start it with 'berthd' or set BERTH_SOCKET)"));
}

// Connects and sends the preamble.
absl::StatusOr<UniqueFd> Handshake(const std::string& socket_path, std::span<const int> fds,
                                   ConnectionKind kind, absl::Duration timeout) {
  auto sock = ConnectSocket(socket_path);
  if (!sock.ok()) return Unreachable(socket_path, sock.status().message());
  timeval tv = absl::ToTimeval(timeout);
  // A daemon that accepts but never reads must not hang the client.
  setsockopt(sock->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (absl::Status sent = SendHandoff(sock->get(), fds, kind); !sent.ok()) {
    return Unreachable(socket_path, sent.message());
  }
  return sock;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToDaemon(const std::string& socket_path,
                                                               std::span<const int> fds,
                                                               absl::Duration timeout) {
  ASSIGN_OR_RETURN(UniqueFd sock, Handshake(socket_path, fds, ConnectionKind::kGrpc, timeout));
  auto channel = grpc::CreateInsecureChannelFromFd("berthd", sock.Release());
  KeepUntilExit(channel);
  return channel;
}

absl::StatusOr<UniqueFd> ConnectRunSession(const std::string& socket_path, std::span<const int> fds,
                                           absl::Duration timeout) {
  return Handshake(socket_path, fds, ConnectionKind::kRunSession, timeout);
}

}  // namespace berth::client
