// forged_key_client SOCKET IMAGE JOB STEP SRC:DST: a run session whose request
// carries SLURM_JOB_ID=JOB and SLURM_STEP_ID=STEP in its environment while
// the process itself was started without them. The daemon must take a
// process's Slurm step from what it sees of the process (its cgroup, the
// environment it was started with), never from the request: the container
// it gets is then a new one, not the step's. The request binds SRC at DST
// and runs in this process's cwd, like the step's ranks (so that only the
// key could keep it out). Runs `readlink /proc/self/ns/mnt` in it; prints
// that line (stdout passed through) and
// exits with the container's status, or prints the failure and exits 255.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "berth/v1/berth.pb.h"
#include "client/rpc/daemon_channel.h"
#include "proto/run_wire.h"

int main(int argc, char** argv) {
  if (argc != 6 || std::strchr(argv[5], ':') == nullptr) {
    std::fprintf(stderr, "usage: forged_key_client SOCKET IMAGE JOB STEP SRC:DST\n");
    return 2;
  }
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return 2;
  std::string bind = argv[5];
  berth::v1::RunInput in;
  berth::v1::RunRequest& r = *in.mutable_start();
  r.set_action(berth::v1::ACTION_EXEC);
  r.set_image(argv[2]);
  r.add_args("readlink");
  r.add_args("/proc/self/ns/mnt");
  r.set_cwd(cwd);
  auto* b = r.add_binds();
  b->set_source(bind.substr(0, bind.find(':')));
  b->set_destination(bind.substr(bind.find(':') + 1));
  r.add_env("PATH=/bin:/usr/bin");
  r.add_env(std::string("SLURM_JOB_ID=") + argv[3]);
  r.add_env(std::string("SLURM_STEP_ID=") + argv[4]);
  auto* out = r.add_fds();
  out->set_handoff_index(0);
  out->set_container_fd(1);
  std::vector<int> fds = {1};
  auto sock = berth::client::ConnectRunSession(argv[1], fds);
  if (!sock.ok()) {
    std::fprintf(stderr, "%s\n", std::string(sock.status().message()).c_str());
    return 255;
  }
  if (!berth::rpc::WriteFrame(sock->get(), in).ok()) return 255;
  berth::rpc::FrameReader reader;
  for (;;) {
    auto filled = reader.Fill(sock->get());
    if (!filled.ok() || *filled == berth::rpc::FrameReader::Result::kEnd) return 255;
    std::string frame;
    while (true) {
      auto next = reader.Next(&frame);
      if (!next.ok()) return 255;
      if (*next != berth::rpc::FrameReader::Result::kFrame) break;
      berth::v1::RunOutput o;
      if (!o.ParseFromString(frame)) return 255;
      if (o.has_exited()) return o.exited().status();
      if (o.has_failed()) {
        std::fprintf(stderr, "%s\n", o.failed().message().c_str());
        return 255;
      }
    }
  }
}
