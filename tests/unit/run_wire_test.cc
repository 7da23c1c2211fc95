// proto/run_wire: frames survive any split of the byte stream, and a hostile
// peer's framing is an error, never a huge buffer or a hang.
#include "proto/run_wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>

namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    ::close(a);
    ::close(b);
  }
};

std::string Bytes(const berth::v1::RunInput& in) {
  std::string body = in.SerializeAsString();
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((body.size() >> (8 * i)) & 0xff);
  return out + body;
}

berth::v1::RunInput Signal(int n) {
  berth::v1::RunInput in;
  in.set_signal(n);
  return in;
}

using Result = berth::rpc::FrameReader::Result;

}  // namespace

TEST_CASE("run frames arrive whole however the stream is split", "[run_wire]") {
  Pair p;
  std::string stream = Bytes(Signal(15)) + Bytes(Signal(2)) + Bytes(Signal(1));
  berth::rpc::FrameReader reader;
  std::vector<int> got;
  for (char c : stream) {  // one byte per read: the worst split there is
    REQUIRE(::write(p.a, &c, 1) == 1);
    auto filled = reader.Fill(p.b);
    REQUIRE(filled.ok());
    std::string frame;
    while (*reader.Next(&frame) == Result::kFrame) {
      berth::v1::RunInput in;
      REQUIRE(berth::rpc::ParseFrame(frame, in, "test").ok());
      got.push_back(in.signal());
    }
  }
  CHECK(got == std::vector<int>{15, 2, 1});
}

TEST_CASE("WriteFrame and ReadFrame round-trip, then end of stream", "[run_wire]") {
  Pair p;
  berth::v1::RunOutput out;
  out.mutable_exited()->set_status(143);
  out.mutable_exited()->set_signal(15);
  REQUIRE(berth::rpc::WriteFrame(p.a, out).ok());
  ::shutdown(p.a, SHUT_WR);
  berth::rpc::FrameReader reader;
  std::string frame;
  REQUIRE(*reader.ReadFrame(p.b, &frame) == Result::kFrame);
  berth::v1::RunOutput back;
  REQUIRE(berth::rpc::ParseFrame(frame, back, "test").ok());
  CHECK(back.exited().status() == 143);
  CHECK(*reader.ReadFrame(p.b, &frame) == Result::kEnd);
}

TEST_CASE("hostile framing is an error", "[run_wire]") {
  Pair p;
  berth::rpc::FrameReader reader;
  std::string frame;
  SECTION("a length over the limit is refused before its body arrives") {
    REQUIRE(::write(p.a, "\x01\x00\x40\x00", 4) == 4);  // 4 MiB + 1
    auto got = reader.ReadFrame(p.b, &frame);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().message().find("larger than max") != std::string::npos);
  }
  SECTION("a stream that ends inside a frame") {
    std::string bytes = Bytes(Signal(9));
    REQUIRE(::write(p.a, bytes.data(), bytes.size() - 1) == static_cast<ssize_t>(bytes.size() - 1));
    ::shutdown(p.a, SHUT_WR);
    auto got = reader.ReadFrame(p.b, &frame);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().message().find("middle of a message") != std::string::npos);
  }
  SECTION("silence until the deadline") {
    auto got = reader.ReadFrame(p.b, &frame, -1, absl::Now() + absl::Milliseconds(50));
    REQUIRE_FALSE(got.ok());
    CHECK(absl::IsDeadlineExceeded(got.status()));
  }
  SECTION("a cancel ends the wait") {
    Pair cancel;
    REQUIRE(::write(cancel.a, "x", 1) == 1);
    auto got = reader.ReadFrame(p.b, &frame, cancel.b);
    REQUIRE_FALSE(got.ok());
    CHECK(absl::IsCancelled(got.status()));
  }
  SECTION("bytes that are not a message") {
    CHECK_FALSE(berth::rpc::ParseFrame(std::string("\xff\xff\xff", 3),
                                       *std::make_unique<berth::v1::RunInput>(), "x")
                    .ok());
  }
}

TEST_CASE("a failure crosses the wire with its code and message", "[run_wire]") {
  berth::v1::Failed failed;
  berth::rpc::StatusToFailed(absl::NotFoundError("running /x.sif: No such file"), failed);
  absl::Status back = berth::rpc::FailedToStatus(failed);
  CHECK(absl::IsNotFound(back));
  CHECK(back.message() == "running /x.sif: No such file");
  failed.set_code(0);  // OK cannot describe a failure
  CHECK(absl::IsUnknown(berth::rpc::FailedToStatus(failed)));
}
