#include "common/fd_handoff.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"

namespace berth {
namespace {

constexpr char kGrpcMagic[8] = {'B', 'E', 'R', 'T', 'H', 'F', 'D', '1'};
constexpr char kRunMagic[8] = {'B', 'E', 'R', 'T', 'H', 'R', 'N', '1'};
constexpr size_t kPreambleSize = 12;

const char* MagicOf(ConnectionKind kind) {
  return kind == ConnectionKind::kRunSession ? kRunMagic : kGrpcMagic;
}

}  // namespace

absl::Status SendHandoff(int sock, std::span<const int> fds, ConnectionKind kind) {
  if (fds.size() > kMaxHandoffFds) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d descriptors to pass; at most %d", fds.size(), kMaxHandoffFds));
  }
  char data[kPreambleSize];
  std::memcpy(data, MagicOf(kind), sizeof kGrpcMagic);
  uint32_t count = static_cast<uint32_t>(fds.size());
  std::memcpy(data + 8, &count, 4);
  iovec iov{data, sizeof data};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxHandoffFds)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus("passing descriptors to berthd", errno);
  if (n != static_cast<ssize_t>(sizeof data)) {
    return absl::InternalError("passing descriptors to berthd: short write");
  }
  return absl::OkStatus();
}

absl::StatusOr<Handoff> ReceiveHandoff(int sock) {
  char data[kPreambleSize];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxHandoffFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  // MSG_PEEK first would race with nothing here: the reader is the only one.
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return absl::UnavailableError("preamble not received yet");
  }
  if (n < 0) return ErrnoStatus("reading the connection preamble", errno);
  // Take ownership of whatever arrived before judging it, so nothing leaks.
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  // A probe ("does a daemon answer here?") connects and closes.
  if (n == 0 && fds.empty()) {
    return absl::CancelledError("the client closed the connection before its preamble");
  }
  Handoff handoff;
  if (n == static_cast<ssize_t>(sizeof data) && std::memcmp(data, kRunMagic, 8) == 0) {
    handoff.kind = ConnectionKind::kRunSession;
  } else if (n != static_cast<ssize_t>(sizeof data) || std::memcmp(data, kGrpcMagic, 8) != 0) {
    return absl::InvalidArgumentError("connection did not start with the berth preamble");
  }
  uint32_t count;
  std::memcpy(&count, data + 8, 4);
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    // Within the limit, the kernel truncates only when our table is full.
    if (count > kMaxHandoffFds) return absl::InvalidArgumentError("too many descriptors passed");
    handoff.no_room = true;
    return handoff;
  }
  if (count != fds.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("preamble announced %d descriptors but %d arrived", count, fds.size()));
  }
  handoff.fds = std::move(fds);
  return handoff;
}

std::optional<ConnectionKind> PeekConnectionKind(int sock) {
  char data[sizeof kGrpcMagic];
  ssize_t n = ::recv(sock, data, sizeof data, MSG_PEEK | MSG_DONTWAIT);
  if (n != static_cast<ssize_t>(sizeof data)) return std::nullopt;
  if (std::memcmp(data, kRunMagic, sizeof data) == 0) return ConnectionKind::kRunSession;
  if (std::memcmp(data, kGrpcMagic, sizeof data) == 0) return ConnectionKind::kGrpc;
  return std::nullopt;
}

absl::Status CheckHandedDescriptor(int fd, const HandedItem& item) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoStatus(item.what, errno);
  const char* wanted = item.need == HandedAccess::kWrite  ? "O_WRONLY or O_RDWR"
                       : item.need == HandedAccess::kRead ? "O_RDONLY or O_RDWR"
                                                          : "O_RDONLY, O_WRONLY or O_RDWR";
  if ((flags & O_PATH) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(item.what, " was handed as an O_PATH descriptor, which carries no right to ",
                     "read or write it: open it with ", wanted));
  }
  int mode = flags & O_ACCMODE;
  bool readable = mode == O_RDONLY || mode == O_RDWR;
  bool writable = mode == O_WRONLY || mode == O_RDWR;
  if ((item.need == HandedAccess::kRead && !readable) ||
      (item.need == HandedAccess::kWrite && !writable)) {
    return absl::PermissionDeniedError(absl::StrCat(
        item.what, " was handed without ", item.need == HandedAccess::kRead ? "read" : "write",
        " access: open it with ", wanted));
  }
  return absl::OkStatus();
}

}  // namespace berth
