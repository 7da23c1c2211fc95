// hostile_client SOCKET: sends berthd Run requests no real client would send
// (NUL bytes, oversize fields, descriptor numbers never passed, protocol
// misuse) and checks each is refused with a one-line error while the daemon
// keeps serving. Prints ok/FAIL lines and "N passed, M failed".
#include <grpcpp/client_context.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "berth/v1/berth.grpc.pb.h"
#include "client/rpc/daemon_channel.h"

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

// Sends `first` as the stream's first message; returns the call's status.
grpc::Status Send(const std::string& socket, const RunInput& first) {
  auto channel = berth::client::ConnectToDaemon(socket);
  if (!channel.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no daemon");
  auto stub = berth::v1::Berth::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->Run(&context);
  stream->Write(first);
  stream->WritesDone();
  RunOutput out;
  while (stream->Read(&out)) {
  }
  return stream->Finish();
}

void Expect(const std::string& socket, const char* name, const RunInput& first,
            const std::string& want) {
  grpc::Status st = Send(socket, first);
  const std::string& msg = st.error_message();
  bool one_line = msg.find('\n') == std::string::npos && !msg.empty();
  if (!st.ok() && one_line && msg.find(want) != std::string::npos) {
    std::printf("ok   %s\n", name);
    ++passed;
  } else {
    std::printf("FAIL %s: code %d message '%s' (want '%s')\n", name, st.error_code(),
                msg.substr(0, 300).c_str(), want.c_str());
    ++failed;
  }
}

RunInput Start(const RunRequest& r) {
  RunInput in;
  *in.mutable_start() = r;
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hostile_client SOCKET\n");
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
  // Still serving?
  r = Valid();
  Expect(sock, "daemon still answers (missing image named)", Start(r), "/nonexistent.sif");
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
