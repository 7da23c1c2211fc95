// A run session on the wire: RunInput and RunOutput messages (berth.proto),
// each framed as a 4-byte little-endian length and the serialized message,
// straight on the Unix socket after the connection preamble
// (common/fd_handoff.h, ConnectionKind::kRunSession).
//
// Why not gRPC: run / exec / shell is the one hot path. A gRPC client starts
// its executor and timer threads and the two sides exchange HTTP/2 preface
// and settings before the request moves; a session carries only a request,
// a few signals and an exit status. Framing the same protobuf messages
// directly saves ~2.5 ms of a ~13 ms `berth exec` (docs/benchmarks.md)
// without a second schema.
//
// Both ends are hostile to each other: a frame longer than kMaxRunFrameBytes
// is an error before any of it is buffered, and a frame that does not parse
// ends the session with a message naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "berth/v1/berth.pb.h"

namespace berth::rpc {

// The largest frame either side accepts: gRPC's default message limit, which
// the request checks (run_request_check.h) were written against.
inline constexpr size_t kMaxRunFrameBytes = 4 << 20;

// Writes one framed message to the (blocking or non-blocking) socket `fd`;
// waits for room with poll(). `cancel_fd`, when >= 0, is an eventfd or pipe
// whose readability aborts the wait (kCancelled).
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message, int cancel_fd = -1);

// Reassembles frames from a stream socket.
class FrameReader {
 public:
  enum class Result { kFrame, kNeedMore, kEnd };

  // Reads what the socket has (one read) into the buffer. kEnd at end of
  // stream; kNeedMore when nothing complete is buffered yet; kFrame when
  // Next() will return a frame. A frame announced larger than the limit is
  // an error at once.
  absl::StatusOr<Result> Fill(int fd);

  // The next complete frame in the buffer, if any (kFrame), or kNeedMore.
  absl::StatusOr<Result> Next(std::string* frame);

  // Blocks (poll) until a whole frame arrived, the stream ended (kEnd),
  // `cancel_fd` became readable (kCancelled), or `deadline` passed
  // (kDeadlineExceeded).
  absl::StatusOr<Result> ReadFrame(int fd, std::string* frame, int cancel_fd = -1,
                                   absl::Time deadline = absl::InfiniteFuture());

 private:
  absl::StatusOr<Result> Check() const;

  std::string buffer_;
};

// Parses a frame as `message`; `what` names it in the error.
absl::Status ParseFrame(absl::string_view frame, google::protobuf::MessageLite& message,
                        absl::string_view what);

// A session's end on the wire and back.
void StatusToFailed(const absl::Status& status, v1::Failed& failed);
absl::Status FailedToStatus(const v1::Failed& failed);

}  // namespace berth::rpc
