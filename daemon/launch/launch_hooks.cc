#include "daemon/launch/launch_hooks.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/hook_exec.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::launch {
namespace {

constexpr int kMaxTimeoutSeconds = 50;  // under the launcher's 60 s setup limit

const char* StageName(HookSpec::Stage stage) {
  switch (stage) {
    case HookSpec::Stage::kCreateRuntime:
      return "createRuntime";
    case HookSpec::Stage::kCreateContainer:
      return "createContainer";
    case HookSpec::Stage::kStartContainer:
      return "startContainer";
    case HookSpec::Stage::kPoststart:
      return "poststart";
    case HookSpec::Stage::kPoststop:
      return "poststop";
  }
  return "hook";
}

int TimeoutMs(const HookSpec& h) {
  int seconds = h.timeout_seconds <= 0 || h.timeout_seconds > kMaxTimeoutSeconds
                    ? kMaxTimeoutSeconds
                    : h.timeout_seconds;
  return seconds * 1000;
}

// argv and envp of `h` as null-terminated arrays into `h`'s strings.
struct HookArrays {
  std::vector<const char*> argv, envp;
  explicit HookArrays(const HookSpec& h) {
    if (h.argv.empty()) argv.push_back(h.path.c_str());
    for (const std::string& a : h.argv) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    for (const std::string& e : h.env) envp.push_back(e.c_str());
    envp.push_back(nullptr);
  }
};

// Runs one daemon-side hook; the error names it.
absl::Status RunHostHook(const HookSpec& h, const std::string& state, int output_fd) {
  HookArrays arrays(h);
  HookProcess p;
  p.binary_fd = h.binary.get();
  p.path = h.path.c_str();
  p.argv = arrays.argv.data();
  p.envp = arrays.envp.data();
  p.timeout_ms = TimeoutMs(h);
  HookOutcome outcome = RunHookProcess(p, state.data(), state.size(), output_fd);
  if (outcome.ok()) return absl::OkStatus();
  char why[96];
  DescribeHookOutcome(outcome, why, sizeof why);
  std::string detail = outcome.timed_out ? absl::StrCat(" after ", p.timeout_ms / 1000, " s")
                       : outcome.spawn_errno != 0
                           ? absl::StrCat(": ", std::strerror(outcome.spawn_errno))
                           : "";
  return absl::FailedPreconditionError(
      absl::StrCat(StageName(h.stage), " hook ", h.path, ": ", why, detail));
}

// The caller's stderr among the container's descriptors, or -1.
int StderrSource(const LaunchSpec& spec) {
  for (const auto& [fd, target] : spec.fds) {
    if (target == 2) return fd.get();
  }
  return -1;
}

}  // namespace

std::string OciState(pid_t pid, const char* status) {
  return absl::StrCat(R"({"ociVersion":"1.2.0","id":"berth-)", pid, R"(","status":")", status,
                      R"(","pid":)", pid, R"(,"bundle":"","annotations":{}})");
}

absl::Status PlanHooks(LaunchSpec& spec, ChildPlan& plan, HostHooks& host) {
  int output = StderrSource(spec);
  plan.hook_output_fd = output;
  if (output >= 0 && !spec.devices.hooks.empty()) {
    host.output.Reset(::fcntl(output, F_DUPFD_CLOEXEC, 3));
    if (!host.output) return ErrnoStatus("duplicating stderr for the hooks", errno);
  }
  for (HookSpec& h : spec.devices.hooks) {
    switch (h.stage) {
      case HookSpec::Stage::kCreateRuntime:
        plan.ask_before_pivot = true;
        host.create_runtime.push_back(std::move(h));
        continue;
      case HookSpec::Stage::kPoststart:
        host.poststart.push_back(std::move(h));
        continue;
      case HookSpec::Stage::kPoststop:
        host.poststop.push_back(std::move(h));
        continue;
      case HookSpec::Stage::kCreateContainer:
        plan.ask_before_pivot = true;
        break;
      case HookSpec::Stage::kStartContainer:
        break;
    }
    ChildHook c;
    c.stage = static_cast<int>(h.stage);
    c.binary_fd = h.binary.get();
    c.path = h.path;
    c.what = absl::StrCat(StageName(h.stage), " hook ", h.path);
    HookArrays arrays(h);
    c.argv = std::move(arrays.argv);
    c.envp = std::move(arrays.envp);
    c.timeout_ms = TimeoutMs(h);
    plan.hooks.push_back(std::move(c));
  }
  return absl::OkStatus();
}

absl::Status AnswerHookState(HostHooks& host, pid_t pid, int stage, int channel) {
  bool create = stage == static_cast<int>(HookSpec::Stage::kCreateContainer);
  if (create) {
    std::string creating = OciState(pid, "creating");
    for (const HookSpec& h : host.create_runtime) {
      RETURN_IF_ERROR(RunHostHook(h, creating, host.output.get()));
    }
  }
  std::string state = OciState(pid, create ? "creating" : "created");
  ChildMessage reply;
  reply.kind = ChildMessage::kHookStateReply;
  std::memcpy(reply.text, state.data(), std::min(state.size(), sizeof(reply.text) - 1));
  if (::send(channel, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply)) {
    return ErrnoStatus("answering the container", errno);
  }
  return absl::OkStatus();
}

void RunLoggedHooks(const std::vector<HookSpec>& hooks, pid_t pid, const char* status,
                    int output_fd) {
  if (hooks.empty()) return;
  std::string state = OciState(pid, status);
  for (const HookSpec& h : hooks) {
    absl::Status st = RunHostHook(h, state, output_fd);
    if (!st.ok()) spdlog::warn("container {}: {}", pid, std::string(st.message()));
  }
}

}  // namespace berth::daemon::launch
