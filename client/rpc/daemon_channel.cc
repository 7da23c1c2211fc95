#include "client/rpc/daemon_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/unique_fd.h"

namespace berth::client {
namespace {

constexpr const char* kSystemSocket = "/run/berth/berthd.sock";

// Why nothing answers on `path`, in the kernel's words: gRPC keeps the errno
// of a failed connect to itself.
std::string DiagnoseUnreachable(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return "socket path too long";
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::strerror(errno);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return std::strerror(errno);
  }
  return "the connection failed";
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

}  // namespace

std::string ResolveSocketPath(const std::string& socket_flag) {
  if (!socket_flag.empty()) return socket_flag;
  const char* from_env = std::getenv("BERTH_SOCKET");
  if (from_env != nullptr && *from_env != '\0') return from_env;
  return kSystemSocket;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToDaemon(const std::string& socket_path,
                                                               absl::Duration timeout) {
  auto channel = grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials());
  KeepUntilExit(channel);
  auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    // Fail on the first failed attempt: gRPC would otherwise retry until the deadline.
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return Unreachable(socket_path, DiagnoseUnreachable(socket_path));
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return Unreachable(socket_path,
                         absl::StrCat("no answer within ", absl::FormatDuration(timeout)));
    }
    state = channel->GetState(/*try_to_connect=*/true);
  }
  return channel;
}

}  // namespace berth::client
