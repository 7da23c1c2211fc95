#include "client/action/run_session.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "client/action/terminal.h"
#include "client/cli_log.h"
#include "client/rpc/daemon_channel.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "proto/run_wire.h"

namespace berth::client {
namespace {

constexpr int kForwarded[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGUSR1,  SIGUSR2, SIGALRM,
                              SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH, SIGPIPE};

// A message to the daemon. A failed send is not the end: the daemon may have
// refused the request and closed, and its reason is still waiting to be read.
void Send(int sock, const v1::RunInput& in) {
  (void)rpc::WriteFrame(sock, in);
}

void ForwardSignal(int sock, int sig, bool tty) {
  v1::RunInput in;
  if (sig == SIGWINCH) {
    if (!tty) return;
    *in.mutable_resize() = TerminalSize(STDIN_FILENO);
  } else if (sig == SIGPIPE) {
    return;  // our own broken pipe: the container's stdio is its own
  } else {
    in.set_signal(sig);
  }
  Send(sock, in);
}

// What one daemon message means for the session: keep going, or its end.
std::optional<absl::StatusOr<int>> Handle(const v1::RunOutput& out, const NoticeSink& on_notice) {
  if (out.has_terminal_output()) {
    const std::string& bytes = out.terminal_output();
    (void)WriteAll(STDOUT_FILENO,
                   std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    return std::nullopt;
  }
  if (out.has_notice()) {
    if (!on_notice || !on_notice(out.notice().text())) log::Info(out.notice().text());
    return std::nullopt;
  }
  if (out.has_exited()) {
    if (out.exited().oom_killed()) {
      log::Error(
          "out of memory: the kernel's OOM killer ended a process of the container (its cgroup "
          "memory limit was reached)");
    }
    return out.exited().status();
  }
  if (out.has_failed()) return rpc::FailedToStatus(out.failed());
  return std::nullopt;  // Started, or something newer than this client
}

// Reads what the daemon sent; the session's end once it came.
std::optional<absl::StatusOr<int>> ReadDaemon(int sock, rpc::FrameReader& reader,
                                              const NoticeSink& on_notice) {
  auto filled = reader.Fill(sock);
  if (!filled.ok()) return Annotate(filled.status(), "berthd");
  if (*filled == rpc::FrameReader::Result::kEnd) {
    return absl::UnavailableError("berthd ended the session without an exit status");
  }
  std::string frame;
  for (;;) {
    auto next = reader.Next(&frame);
    if (!next.ok()) return Annotate(next.status(), "berthd");
    if (*next != rpc::FrameReader::Result::kFrame) return std::nullopt;
    v1::RunOutput out;
    if (absl::Status parsed = rpc::ParseFrame(frame, out, "berthd's reply"); !parsed.ok())
      return parsed;
    if (auto end = Handle(out, on_notice)) return end;
  }
}

// Relays daemon messages, signals and terminal input until the daemon sends
// the exit status (or a failure, or hangs up). One thread: nothing here
// waits on anything but this poll.
absl::StatusOr<int> Converse(int sock, int signal_fd, bool tty, const NoticeSink& on_notice) {
  rpc::FrameReader reader;
  bool stdin_open = tty;
  for (;;) {
    pollfd fds[] = {
        {sock, POLLIN, 0}, {signal_fd, POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("waiting for berthd", errno);
    }
    if (fds[0].revents != 0) {
      if (auto end = ReadDaemon(sock, reader, on_notice)) return *std::move(end);
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      if (::read(signal_fd, &info, sizeof info) == sizeof info) {
        ForwardSignal(sock, static_cast<int>(info.ssi_signo), tty);
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
      Send(sock, in);
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
                               const std::vector<int>& keep_fds, const sigset_t& signals,
                               const NoticeSink& on_notice) {
  bool tty = ::isatty(STDIN_FILENO) && ::isatty(STDOUT_FILENO);
  std::vector<int> handoff;
  AddPassedDescriptors(request, tty, keep_fds, handoff);
  request.set_tty(tty);
  if (tty) *request.mutable_window() = TerminalSize(STDIN_FILENO);
  ASSIGN_OR_RETURN(UniqueFd sock, ConnectRunSession(socket_path, handoff));

  UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!signal_fd) return ErrnoStatus("setting up signal forwarding", errno);

  v1::RunInput start;
  *start.mutable_start() = std::move(request);
  if (start.ByteSizeLong() > rpc::kMaxRunFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is ", start.ByteSizeLong(), " bytes, over berthd's limit of ",
                     rpc::kMaxRunFrameBytes, " (a huge environment or argument list?)"));
  }
  std::optional<RawTerminal> raw;
  if (tty) raw.emplace(STDIN_FILENO);
  Send(sock.get(), start);
  return Converse(sock.get(), signal_fd.get(), tty, on_notice);
}

absl::StatusOr<int> RunDetachedSession(const std::string& socket_path, v1::RunRequest request,
                                       const std::vector<int>& handoff) {
  ASSIGN_OR_RETURN(UniqueFd sock, ConnectRunSession(socket_path, handoff));
  v1::RunInput start;
  *start.mutable_start() = std::move(request);
  if (start.ByteSizeLong() > rpc::kMaxRunFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is ", start.ByteSizeLong(), " bytes, over berthd's limit of ",
                     rpc::kMaxRunFrameBytes, " (a huge environment or argument list?)"));
  }
  Send(sock.get(), start);
  rpc::FrameReader reader;
  int pid = 0;
  for (;;) {
    std::string frame;
    ASSIGN_OR_RETURN(rpc::FrameReader::Result got, reader.ReadFrame(sock.get(), &frame));
    if (got == rpc::FrameReader::Result::kEnd) {
      return absl::UnavailableError("berthd ended the session without a reply");
    }
    v1::RunOutput out;
    RETURN_IF_ERROR(rpc::ParseFrame(frame, out, "berthd's reply"));
    if (out.has_started()) pid = out.started().pid();
    if (out.has_notice()) log::Info(out.notice().text());
    if (out.has_failed()) return rpc::FailedToStatus(out.failed());
    if (out.has_exited()) return pid;
  }
}

}  // namespace berth::client
