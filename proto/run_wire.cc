#include "proto/run_wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace berth::rpc {
namespace {

constexpr size_t kHeaderBytes = 4;
constexpr size_t kReadChunk = 64 << 10;

uint32_t DecodeLength(const char* p) {
  uint8_t b[4];
  std::memcpy(b, p, 4);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

void EncodeLength(uint32_t n, char* p) {
  const uint8_t b[4] = {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                        static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 24)};
  std::memcpy(p, b, 4);
}

absl::Status Errno(absl::string_view what, int err) {
  if (err == EPIPE || err == ECONNRESET) {
    return absl::UnavailableError(absl::StrCat(what, ": the other end closed the connection"));
  }
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(err)));
}

// Waits until `fd` is ready for `events`, or `cancel_fd` readable, or the
// deadline. OK means ready.
absl::Status Wait(int fd, short events, int cancel_fd, absl::Time deadline) {
  for (;;) {
    pollfd fds[] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int timeout = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError("the other end sent nothing in time");
      }
      timeout = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000));
    }
    int ready = ::poll(fds, 2, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno("poll", errno);
    if (fds[1].revents != 0) return absl::CancelledError("the session was cancelled");
    if (fds[0].revents != 0) return absl::OkStatus();
  }
}

}  // namespace

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message, int cancel_fd) {
  size_t size = message.ByteSizeLong();
  if (size > kMaxRunFrameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "message of %d bytes is larger than max (%d bytes)", size, kMaxRunFrameBytes));
  }
  std::string out(kHeaderBytes + size, '\0');
  EncodeLength(static_cast<uint32_t>(size), out.data());
  if (!message.SerializeToArray(out.data() + kHeaderBytes, static_cast<int>(size))) {
    return absl::InternalError("serializing a run-session message");
  }
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (absl::Status ready = Wait(fd, POLLOUT, cancel_fd, absl::InfiniteFuture()); !ready.ok())
        return ready;
    } else {
      return Errno("sending", n < 0 ? errno : EPIPE);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FrameReader::Result> FrameReader::Check() const {
  if (buffer_.size() < kHeaderBytes) return Result::kNeedMore;
  uint32_t size = DecodeLength(buffer_.data());
  if (size > kMaxRunFrameBytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "received a message of %d bytes, larger than max (%d bytes)", size, kMaxRunFrameBytes));
  }
  return buffer_.size() - kHeaderBytes >= size ? Result::kFrame : Result::kNeedMore;
}

absl::StatusOr<FrameReader::Result> FrameReader::Fill(int fd) {
  char chunk[kReadChunk];
  ssize_t n;
  do {
    n = ::read(fd, chunk, sizeof chunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Check();
  if (n < 0) return Errno("receiving", errno);
  if (n == 0) {
    if (!buffer_.empty()) {
      return absl::DataLossError("the connection ended in the middle of a message");
    }
    return Result::kEnd;
  }
  buffer_.append(chunk, static_cast<size_t>(n));
  return Check();
}

absl::StatusOr<FrameReader::Result> FrameReader::Next(std::string* frame) {
  absl::StatusOr<Result> ready = Check();
  if (!ready.ok() || *ready != Result::kFrame) return ready;
  uint32_t size = DecodeLength(buffer_.data());
  frame->assign(buffer_, kHeaderBytes, size);
  buffer_.erase(0, kHeaderBytes + size);
  return Result::kFrame;
}

absl::StatusOr<FrameReader::Result> FrameReader::ReadFrame(int fd, std::string* frame,
                                                           int cancel_fd, absl::Time deadline) {
  for (;;) {
    absl::StatusOr<Result> got = Next(frame);
    if (!got.ok() || *got == Result::kFrame) return got;
    if (absl::Status ready = Wait(fd, POLLIN, cancel_fd, deadline); !ready.ok()) return ready;
    absl::StatusOr<Result> filled = Fill(fd);
    if (!filled.ok() || *filled == Result::kEnd) return filled;
  }
}

absl::Status ParseFrame(absl::string_view frame, google::protobuf::MessageLite& message,
                        absl::string_view what) {
  if (!message.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d bytes that are not a valid message", what, frame.size()));
  }
  return absl::OkStatus();
}

void StatusToFailed(const absl::Status& status, v1::Failed& failed) {
  failed.set_code(static_cast<int32_t>(status.code()));
  failed.set_message(std::string(status.message()));
}

absl::Status FailedToStatus(const v1::Failed& failed) {
  auto code = static_cast<absl::StatusCode>(failed.code());
  // A code we do not know (or OK, which cannot describe a failure) is still
  // a failure: keep the message.
  if (failed.code() <= 0 ||
      failed.code() > static_cast<int32_t>(absl::StatusCode::kUnauthenticated))
    code = absl::StatusCode::kUnknown;
  return absl::Status(code, failed.message());
}

}  // namespace berth::rpc
