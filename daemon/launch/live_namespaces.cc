// OpenLiveNamespaces (launch.h): the descriptors that let later processes
// join a holder's container.
#include <fcntl.h>
#include <poll.h>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/launch.h"

namespace berth::daemon::launch {
namespace {

absl::Status OpenOne(pid_t pid, const char* name, UniqueFd& out) {
  auto fd = OpenFile(absl::StrCat("/proc/", pid, "/ns/", name), O_RDONLY);
  if (!fd.ok())
    return Annotate(fd.status(), absl::StrCat("opening the container's ", name, " namespace"));
  out = std::move(*fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LiveNamespaces> OpenLiveNamespaces(const Container& holder, const LaunchSpec& spec) {
  LiveNamespaces ns;
  pid_t pid = holder.pid();
  // Each one from those Launch() opened while the holder was still
  // reachable (always, for a holder; handed over, not copied), else from
  // /proc.
  auto take = [&holder, pid](const char* name, UniqueFd LiveNamespaces::*member,
                             UniqueFd& out) -> absl::Status {
    if (holder.held_ != nullptr && (holder.held_.get()->*member).valid()) {
      out = std::move(holder.held_.get()->*member);
      return absl::OkStatus();
    }
    return OpenOne(pid, name, out);
  };
  RETURN_IF_ERROR(take("mnt", &LiveNamespaces::mnt, ns.mnt));
  if (spec.ipc_namespace) RETURN_IF_ERROR(take("ipc", &LiveNamespaces::ipc, ns.ipc));
  if (spec.uts_namespace || !spec.hostname.empty()) {
    RETURN_IF_ERROR(take("uts", &LiveNamespaces::uts, ns.uts));
  }
  if (spec.pid_namespace) RETURN_IF_ERROR(take("pid", &LiveNamespaces::pid, ns.pid));
  if (spec.net_namespace) RETURN_IF_ERROR(take("net", &LiveNamespaces::net, ns.net));
  if (spec.user_namespace || spec.fakeroot) {
    RETURN_IF_ERROR(take("user", &LiveNamespaces::user, ns.user));
  }
  // The pid was the holder's only if it still runs now (it is our child
  // until reaped, so the number cannot have been reused before that).
  pollfd p{holder.pidfd(), POLLIN, 0};
  if (::poll(&p, 1, 0) != 0) {
    return absl::AbortedError("the shared container's holder ended while it was being opened");
  }
  return ns;
}

}  // namespace berth::daemon::launch
