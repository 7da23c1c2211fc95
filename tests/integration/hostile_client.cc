// hostile_client SOCKET: sends berthd run sessions no real client would send
// (NUL bytes, oversize fields, descriptor numbers never passed, protocol
// misuse, broken framing, silence, a flood of sessions) and checks each is
// refused with a one-line error while the daemon keeps serving. Prints
// ok/FAIL lines and "N passed, M failed".
//
// hostile_client SOCKET flood-fds N SECONDS: holds N connections; of each
//   four, a gRPC and a run-session one passed 64 descriptors, two gRPC ones
//   none and make no call.
// hostile_client SOCKET flood-silent N SECONDS: holds N connections that
//   never send their preamble.
// hostile_client SOCKET flood-idle N SECONDS: holds N gRPC connections that
//   never make a call.
// Each opens a new connection whenever the daemon closes one, prints
// "holding K connections" once the first N are made, and stops after
// SECONDS. Tests run them as one user while another user's execs are timed.
// hostile_client SOCKET slow-run IMAGE MS: a run session (exec IMAGE
//   /bin/true with this process's stdio) whose preamble comes MS ms after
//   connect(), as from a client the scheduler held up; exits 0 when the
//   container ran and exited 0.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "berth/v1/berth.pb.h"
#include "client/rpc/daemon_channel.h"
#include "common/fd_handoff.h"
#include "proto/run_wire.h"

namespace {

using berth::v1::RunInput;
using berth::v1::RunOutput;
using berth::v1::RunRequest;

int passed = 0, failed = 0;

RunRequest Valid() {
  RunRequest r;
  r.set_action(berth::v1::ACTION_EXEC);
  r.set_image("/nonexistent.sif");
  r.add_args("/bin/true");
  r.set_cwd("/");
  return r;
}

std::string Frame(const RunInput& in) {
  std::string body = in.SerializeAsString();
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + body;
}

void WriteRaw(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the daemon refused and closed: its answer is still readable
    done += static_cast<size_t>(n);
  }
}

// The session's end as the daemon reported it: "" for an exit status,
// otherwise the failure message (or why none came).
std::string Outcome(int fd) {
  berth::rpc::FrameReader reader;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    std::string frame;
    auto got = reader.ReadFrame(fd, &frame, -1, deadline);
    if (!got.ok()) return "no answer: " + std::string(got.status().message());
    if (*got != berth::rpc::FrameReader::Result::kFrame) return "no answer: end of stream";
    RunOutput out;
    if (!out.ParseFromString(frame)) return "no answer: unparsable reply";
    if (out.has_failed())
      return out.failed().message().empty() ? "(empty)" : out.failed().message();
    if (out.has_exited()) return "";
  }
}

int Connect(const std::string& socket) {
  auto sock = berth::client::ConnectRunSession(socket, {});
  if (!sock.ok()) {
    std::printf("FAIL cannot connect: %s\n", std::string(sock.status().message()).c_str());
    return -1;
  }
  return sock->Release();
}

// Sends `bytes` (then half-closes) on a fresh session; returns the outcome.
std::string Session(const std::string& socket, const std::string& bytes) {
  int fd = Connect(socket);
  if (fd < 0) return "no connection";
  WriteRaw(fd, bytes);
  ::shutdown(fd, SHUT_WR);
  std::string out = Outcome(fd);
  ::close(fd);
  return out;
}

void Check(const char* name, const std::string& msg, const std::string& want) {
  bool one_line = msg.find('\n') == std::string::npos && !msg.empty();
  if (one_line && msg.find(want) != std::string::npos) {
    std::printf("ok   %s\n", name);
    ++passed;
  } else {
    std::printf("FAIL %s: message '%s' (want '%s')\n", name, msg.substr(0, 300).c_str(),
                want.c_str());
    ++failed;
  }
}

void Expect(const std::string& socket, const char* name, const RunInput& first,
            const std::string& want) {
  Check(name, Session(socket, Frame(first)), want);
}

RunInput Start(const RunRequest& r) {
  RunInput in;
  *in.mutable_start() = r;
  return in;
}

// A blocking connect with no preamble; -1 when the daemon is not there.
int RawConnect(const std::string& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

// True when the daemon has closed `fd` (end of stream or an error); data it
// sent (a refusal, gRPC's settings) is read and dropped.
bool ClosedByDaemon(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

// Keeps `n` connections made by `open_one` for `seconds`, replacing each one
// the daemon closes.
int Flood(int n, int seconds, const std::function<int(int)>& open_one) {
  std::vector<pollfd> conns;
  for (int i = 0; i < n; ++i) {
    int fd = open_one(i);
    if (fd >= 0) conns.push_back({fd, POLLIN, 0});
  }
  std::printf("holding %zu connections\n", conns.size());
  std::fflush(stdout);
  size_t replaced = 0;
  absl::Time end = absl::Now() + absl::Seconds(seconds);
  while (absl::Now() < end) {
    int ready = ::poll(conns.data(), conns.size(), 100);
    for (size_t i = 0; i < conns.size(); ++i) {
      bool closed = conns[i].fd < 0;  // refused at connect: try again
      if (!closed && ready > 0 && conns[i].revents != 0 && ClosedByDaemon(conns[i].fd)) {
        ::close(conns[i].fd);
        closed = true;
      }
      if (!closed) continue;
      conns[i].fd = open_one(static_cast<int>(i));
      ++replaced;
    }
  }
  std::printf("flood over: %zu connections replaced after the daemon closed them\n", replaced);
  return 0;
}

int SlowRun(const std::string& sock, const std::string& image, int delay_ms) {
  int fd = RawConnect(sock);
  if (fd < 0) return 1;
  ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
  const int stdio[] = {0, 1, 2};
  RunRequest r = Valid();
  r.set_image(image);
  for (int i = 0; i < 3; ++i) {
    auto* m = r.add_fds();
    m->set_handoff_index(i);
    m->set_container_fd(i);
  }
  if (!berth::SendHandoff(fd, stdio, berth::ConnectionKind::kRunSession).ok()) {
    std::printf("slow-run: the daemon closed the connection before the preamble\n");
    return 1;
  }
  WriteRaw(fd, Frame(Start(r)));
  berth::rpc::FrameReader reader;
  for (;;) {
    std::string frame;
    auto got = reader.ReadFrame(fd, &frame, -1, absl::Now() + absl::Seconds(20));
    RunOutput out;
    if (!got.ok() || *got != berth::rpc::FrameReader::Result::kFrame ||
        !out.ParseFromString(frame)) {
      std::printf("slow-run: no answer\n");
      return 1;
    }
    if (out.has_failed()) std::printf("slow-run: %s\n", out.failed().message().c_str());
    if (out.has_failed()) return 1;
    if (out.has_exited()) return out.exited().status();
  }
}

int FloodMain(const std::string& sock, const std::string& mode, int n, int seconds) {
  if (mode == "flood-silent") return Flood(n, seconds, [&](int) { return RawConnect(sock); });
  if (mode == "flood-idle") {
    return Flood(n, seconds, [&](int) {
      int fd = RawConnect(sock);
      if (fd >= 0 && !berth::SendHandoff(fd, {}, berth::ConnectionKind::kGrpc).ok()) {
        ::close(fd);
        return -1;
      }
      return fd;
    });
  }
  if (mode != "flood-fds") return 2;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<int> passed(berth::kMaxHandoffFds, devnull);
  return Flood(n, seconds, [&](int i) {
    int fd = RawConnect(sock);
    auto kind = i % 4 == 1 ? berth::ConnectionKind::kRunSession : berth::ConnectionKind::kGrpc;
    std::span<const int> fds = i % 4 < 2 ? std::span<const int>(passed) : std::span<const int>();
    if (fd >= 0 && !berth::SendHandoff(fd, fds, kind).ok()) {
      ::close(fd);
      return -1;
    }
    return fd;
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[2]) == "slow-run") {
    return SlowRun(argv[1], argv[3], std::atoi(argv[4]));
  }
  if (argc == 5) return FloodMain(argv[1], argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: hostile_client SOCKET [flood-fds|flood-silent|flood-idle CONNECTIONS "
                 "SECONDS | slow-run IMAGE MS]\n");
    return 2;
  }
  std::string sock = argv[1];
  RunRequest r = Valid();
  r.set_image(std::string("/a\0b.sif", 8));
  Expect(sock, "NUL byte in the image path", Start(r), "NUL");
  r = Valid();
  r.set_image("/" + std::string(10000, 'a'));
  Expect(sock, "oversize image path", Start(r), "limit");
  r = Valid();
  r.set_image("relative.sif");
  Expect(sock, "relative image path", Start(r), "absolute");
  r = Valid();
  r.set_image("/tmp/../root/x.sif");
  Expect(sock, "'..' in the image path", Start(r), "'..'");
  r = Valid();
  for (int i = 0; i < 5000; ++i) r.add_args("x");
  Expect(sock, "too many arguments", Start(r), "args");
  r = Valid();
  r.add_args(std::string(200000, 'a'));
  Expect(sock, "oversize argument", Start(r), "limit");
  r = Valid();
  for (int i = 0; i < 5000; ++i) r.add_env("V" + std::to_string(i) + "=x");
  Expect(sock, "oversize environment", Start(r), "environment");
  r = Valid();
  r.add_env(std::string("A=b\0c", 5));
  Expect(sock, "NUL byte in the environment", Start(r), "environment: contains a NUL byte");
  // Instance names become file names in the daemon's state directory.
  for (const auto& [what, name] :
       std::vector<std::pair<std::string, std::string>>{{"NUL byte", std::string("a\0b", 3)},
                                                        {"'/'", "a/b"},
                                                        {"'..'", ".."},
                                                        {"10 KB", std::string(10240, 'n')},
                                                        {"nothing", ""}}) {
    r = Valid();
    r.mutable_instance()->set_name(name);
    Expect(sock, ("instance start with " + what + " in its name").c_str(), Start(r),
           "instance name");
    r = Valid();
    r.set_image("instance://" + name);
    Expect(sock, ("join of instance://NAME with " + what + " in the name").c_str(), Start(r),
           "instance name");
  }
  r = Valid();
  auto* fd = r.add_fds();
  fd->set_handoff_index(5);
  fd->set_container_fd(0);
  Expect(sock, "descriptor never passed", Start(r), "never passed");
  r = Valid();
  r.set_pwd("/proc/self/fd/4");
  Expect(sock, "--cwd /proc/self/fd/N (CVE-2024-21626)", Start(r), "--cwd");
  r = Valid();
  r.set_action(static_cast<berth::v1::Action>(99));
  Expect(sock, "unknown action", Start(r), "action");
  RunInput signal_first;
  signal_first.set_signal(9);
  Expect(sock, "a stream that does not start with the request", signal_first, "first message");
  r = Valid();
  r.add_args(std::string(5 << 20, 'a'));
  Expect(sock, "a 5 MiB message", Start(r), "larger than max");
  // Framing itself.
  Check("a frame announcing 4 GiB", Session(sock, std::string("\xff\xff\xff\xff", 4)),
        "larger than max");
  Check("a frame that is not a message",
        Session(sock, std::string("\x05\0\0\0\xff\xff\xff\xff\xff", 9)), "not a valid message");
  Check("the connection ends inside a frame", Session(sock, Frame(Start(Valid())).substr(0, 20)),
        "middle of a message");
  Check("the connection ends before the request", Session(sock, ""), "before its request");
  // A silent client is dropped after the request deadline, and does not
  // hold anyone else up meanwhile.
  {
    int silent = Connect(sock);
    Expect(sock, "served while another session is silent", Start(Valid()), "/nonexistent.sif");
    Check("a silent client is dropped", silent < 0 ? "no connection" : Outcome(silent), "in time");
    if (silent >= 0) ::close(silent);
  }
  // One user cannot hold every session slot: past max_containers_per_user
  // (+16 awaiting their request) the daemon refuses at once.
  {
    std::vector<int> flood;
    for (int i = 0; i < 400; ++i) {
      int fd = Connect(sock);
      if (fd < 0) break;
      flood.push_back(fd);
    }
    // Refusals come at once and the others wait for a request, but a loaded
    // machine may take a while to accept 400 connections: look at whichever
    // answers, until one is a refusal or the daemon has answered them all.
    std::string refused, seen;
    std::vector<bool> answered(flood.size(), false);
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (refused.find("run sessions open") == std::string::npos && absl::Now() < deadline) {
      bool pending = false;
      for (size_t i = 0; i < flood.size(); ++i) {
        if (answered[i]) continue;
        pending = true;
        pollfd p{flood[i], POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) continue;
        answered[i] = true;
        seen = Outcome(flood[i]);
        if (seen.find("run sessions open") != std::string::npos) refused = seen;
      }
      if (!pending) break;
      ::usleep(20'000);
    }
    if (refused.empty()) refused = seen.empty() ? "no connection answered" : seen;
    Check("a flood of sessions is refused past the per-user limit", refused, "run sessions open");
    for (int fd : flood) ::close(fd);
  }
  // Still serving? The flood's slots come back as the daemon notices the
  // closed connections, which takes a moment on a loaded machine.
  r = Valid();
  std::string answer;
  for (int i = 0; i < 200; ++i) {
    answer = Session(sock, Frame(Start(r)));
    if (answer.find("run sessions open") == std::string::npos) break;
    ::usleep(50'000);
  }
  Check("daemon still answers (missing image named)", answer, "/nonexistent.sif");
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
