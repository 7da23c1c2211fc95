#include "client/action/run_session.h"

#include <grpcpp/client_context.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/action/terminal.h"
#include "client/rpc/daemon_channel.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

using Stream = grpc::ClientReaderWriter<v1::RunInput, v1::RunOutput>;

constexpr int kForwarded[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGUSR1,  SIGUSR2, SIGALRM,
                              SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGPIPE};

// What the reader thread learned; read by the main thread after `done`.
struct Outcome {
  std::optional<v1::Exited> exited;
};

// Reads daemon messages until the stream ends; wakes the main loop when the
// exit status arrives (so it closes our side, which lets the daemon finish)
// or when the stream ends without one.
void ReadOutputs(Stream* stream, Outcome* outcome, int done_fd) {
  v1::RunOutput out;
  uint64_t one = 1;
  while (stream->Read(&out)) {
    if (out.has_terminal_output()) {
      const std::string& bytes = out.terminal_output();
      (void)WriteAll(STDOUT_FILENO,
                     std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    } else if (out.has_exited()) {
      outcome->exited = out.exited();
      (void)!::write(done_fd, &one, sizeof one);
    }
  }
  (void)!::write(done_fd, &one, sizeof one);
}

bool ForwardSignal(Stream& stream, int sig, bool tty) {
  v1::RunInput in;
  if (sig == SIGWINCH) {
    if (!tty) return true;
    *in.mutable_resize() = TerminalSize(STDIN_FILENO);
  } else if (sig == SIGPIPE) {
    return true;  // our own broken pipe: the container's stdio is its own
  } else {
    in.set_signal(sig);
  }
  return stream.Write(in);
}

// Relays terminal input, signals and resizes until the reader is done.
void PumpInputs(Stream& stream, int signal_fd, int done_fd, bool tty) {
  bool stdin_open = tty;
  for (;;) {
    pollfd fds[] = {
        {done_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      if (::read(signal_fd, &info, sizeof info) == sizeof info &&
          !ForwardSignal(stream, static_cast<int>(info.ssi_signo), tty)) {
        return;
      }
    }
    if (fds[2].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        stdin_open = false;
        continue;
      }
      v1::RunInput in;
      in.set_terminal_input(std::string(buf, static_cast<size_t>(n)));
      if (!stream.Write(in)) return;
    }
  }
}

}  // namespace

sigset_t BlockForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kForwarded) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

absl::StatusOr<int> RunSession(const std::string& socket_path, v1::RunRequest request,
                               const std::vector<int>& keep_fds, const sigset_t& signals) {
  bool tty = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  std::vector<int> handoff;
  AddPassedDescriptors(request, tty, keep_fds, handoff);
  request.set_tty(tty);
  if (tty) *request.mutable_window() = TerminalSize(STDIN_FILENO);
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket_path, handoff));

  UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  UniqueFd done_fd(::eventfd(0, EFD_CLOEXEC));
  if (!signal_fd || !done_fd) return ErrnoStatus("setting up signal forwarding", errno);

  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub->Run(&context);
  v1::RunInput start;
  *start.mutable_start() = std::move(request);
  Outcome outcome;
  std::optional<RawTerminal> raw;
  if (tty) raw.emplace(STDIN_FILENO);
  if (stream->Write(start)) {
    std::thread reader(ReadOutputs, stream.get(), &outcome, done_fd.get());
    PumpInputs(*stream, signal_fd.get(), done_fd.get(), tty);
    stream->WritesDone();
    reader.join();
  }
  grpc::Status status = stream->Finish();
  raw.reset();
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!outcome.exited) {
    return absl::UnavailableError("berthd ended the session without an exit status");
  }
  return outcome.exited->status();
}

}  // namespace berth::client
