#include "daemon/service/run_request_check.h"

#include <arpa/inet.h>

#include <climits>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace berth::daemon {
namespace {

absl::Status Refuse(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckString(absl::string_view field, absl::string_view value, size_t max) {
  if (value.find('\0') != absl::string_view::npos) return Refuse(field, "contains a NUL byte");
  if (value.size() > max) {
    return Refuse(field, absl::StrFormat("%d bytes, over the %d-byte limit", value.size(), max));
  }
  return absl::OkStatus();
}

// /proc/self/fd/N, /proc/thread-self/fd/N, /proc/<pid>/fd/N and friends: a
// working directory there would be a host directory (CVE-2024-21626).
bool UnderProcFd(absl::string_view path) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  return parts.size() >= 3 && parts[0] == "proc" &&
         (parts[2] == "fd" || parts[2] == "cwd" || parts[2] == "root" || parts[2] == "exe");
}

absl::Status CheckLists(const v1::RunRequest& r, const RequestLimits& limits) {
  if (r.args_size() > static_cast<int>(limits.max_args)) {
    return Refuse("args", absl::StrFormat("%d arguments, over the limit of %d", r.args_size(),
                                          limits.max_args));
  }
  size_t total = 0;
  for (const std::string& a : r.args()) {
    RETURN_IF_ERROR(CheckString("args", a, limits.max_arg_bytes));
    total += a.size();
  }
  if (r.env_size() > static_cast<int>(limits.max_env_entries)) {
    return Refuse("environment",
                  absl::StrFormat("%d variables, over the limit of %d (unset some, or use "
                                  "--cleanenv)",
                                  r.env_size(), limits.max_env_entries));
  }
  for (const std::string& e : r.env()) {
    RETURN_IF_ERROR(CheckString("environment", e, limits.max_arg_bytes));
    total += e.size();
  }
  for (const auto* list :
       {&r.env_flags(), &r.env_file_lines(), &r.no_mount(), &r.devices(), &r.cdi_dirs()}) {
    for (const std::string& s : *list) {
      RETURN_IF_ERROR(CheckString("environment option", s, limits.max_arg_bytes));
      total += s.size();
    }
  }
  if (total > limits.max_total_bytes) {
    return Refuse("request", absl::StrFormat("%d bytes of arguments, over the %d-byte limit", total,
                                             limits.max_total_bytes));
  }
  return absl::OkStatus();
}

absl::Status CheckBinds(const v1::RunRequest& r, const policy::Config& config,
                        const RequestLimits& limits) {
  if (r.binds_size() > 0 && !config.user_bind_control) {
    return absl::PermissionDeniedError(
        "--bind: user binds are disabled on this node (user_bind_control = false in berth.conf)");
  }
  if (r.binds_size() > static_cast<int>(limits.max_binds)) {
    return Refuse("--bind", absl::StrFormat("%d binds, over the limit of %d", r.binds_size(),
                                            limits.max_binds));
  }
  for (const v1::Bind& b : r.binds()) {
    RETURN_IF_ERROR(CheckAbsolutePath("--bind source", b.source()));
    RETURN_IF_ERROR(CheckAbsolutePath("--bind destination", b.destination()));
  }
  if (r.scratch_size() > static_cast<int>(limits.max_binds)) {
    return Refuse("--scratch", absl::StrFormat("%d directories, over the limit of %d",
                                               r.scratch_size(), limits.max_binds));
  }
  for (const std::string& s : r.scratch()) {
    RETURN_IF_ERROR(CheckAbsolutePath("--scratch", s));
    std::vector<absl::string_view> parts = absl::StrSplit(s, '/', absl::SkipEmpty());
    if (parts.empty() || parts[0] == "proc") {
      return Refuse("--scratch", absl::StrCat("'", s, "' is / or under /proc: refused"));
    }
  }
  if (!r.workdir().empty()) RETURN_IF_ERROR(CheckAbsolutePath("--workdir", r.workdir()));
  return absl::OkStatus();
}

absl::Status CheckFds(const v1::RunRequest& r, size_t handed, const RequestLimits& limits) {
  std::set<int> targets;
  std::set<uint32_t> used;
  for (const v1::FdMapping& m : r.fds()) {
    if (m.handoff_index() >= handed) {
      return Refuse("fds", absl::StrFormat("descriptor #%d was never passed", m.handoff_index()));
    }
    if (m.container_fd() < 0 || m.container_fd() >= 1024) {
      return Refuse("fds", absl::StrFormat("descriptor number %d is out of range (0..1023)",
                                           m.container_fd()));
    }
    if (!targets.insert(m.container_fd()).second || !used.insert(m.handoff_index()).second) {
      return Refuse("fds", "a descriptor is mapped twice");
    }
  }
  if (targets.size() > limits.max_fds) return Refuse("fds", "too many descriptors");
  return absl::OkStatus();
}

// -n/--net, --network, --netns-path, --dns. The addresses become lines of
// a file the container reads: only real addresses, no newline, no options.
absl::Status CheckNetwork(const v1::RunRequest& r, const policy::Config& c) {
  if (!r.network().empty() && r.network() != "none") {
    return Refuse("--network",
                  absl::StrCat("'", absl::CHexEscape(r.network().substr(0, 64)),
                               "': berth has no CNI networks; 'none' (a network namespace with "
                               "only loopback) is the one there is"));
  }
  bool net = r.net() || !r.network().empty() || !r.netns_path().empty();
  if (net && !c.allow_net_ns) {
    return absl::PermissionDeniedError("--net: network namespaces are disabled on this node");
  }
  if (!r.netns_path().empty() && (r.netns_path()[0] != '/' || r.netns_path().size() >= PATH_MAX ||
                                  r.netns_path().find('\0') != std::string::npos)) {
    return Refuse("--netns-path", "give an absolute path");
  }
  if (r.dns_size() > 8) return Refuse("--dns", "at most 8 nameservers");
  for (const std::string& server : r.dns()) {
    unsigned char addr[sizeof(in6_addr)];
    if (server.size() >= INET6_ADDRSTRLEN || (inet_pton(AF_INET, server.c_str(), addr) != 1 &&
                                              inet_pton(AF_INET6, server.c_str(), addr) != 1)) {
      return Refuse(
          "--dns", absl::StrCat("'", absl::CHexEscape(server), "' is not an IPv4 or IPv6 address"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNamespaces(const v1::RunRequest& r, const policy::Config& c) {
  if ((r.fakeroot() || r.userns()) && !c.allow_user_ns) {
    return absl::PermissionDeniedError(
        "--fakeroot/--userns: user namespaces are disabled on this node (allow_user = false)");
  }
  if (r.ipc() && !c.allow_ipc_ns) {
    return absl::PermissionDeniedError("--ipc: IPC namespaces are disabled on this node");
  }
  if (r.pid() && !r.no_pid() && !c.allow_pid_ns) {
    return absl::PermissionDeniedError("--pid: PID namespaces are disabled on this node");
  }
  if (!r.hostname().empty()) {
    if (!c.allow_uts_ns) {
      return absl::PermissionDeniedError("--hostname: UTS namespaces are disabled on this node");
    }
    if (r.hostname().size() > 64 ||
        !std::all_of(r.hostname().begin(), r.hostname().end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.';
        })) {
      return Refuse("--hostname", "use at most 64 letters, digits, '-' and '.'");
    }
  }
  if (r.uts() && !c.allow_uts_ns) {
    return absl::PermissionDeniedError("--uts: UTS namespaces are disabled on this node");
  }
  RETURN_IF_ERROR(CheckNetwork(r, c));
  if (r.writable() && r.writable_tmpfs()) {
    return Refuse("--writable", "it cannot be combined with --writable-tmpfs");
  }
  if (r.tmpfs_size_mib() > c.writable_tmpfs_max_mib) {
    return Refuse("--tmpfs-size", absl::StrFormat("%d MiB is over this node's limit of %d MiB",
                                                  r.tmpfs_size_mib(), c.writable_tmpfs_max_mib));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAbsolutePath(absl::string_view field, absl::string_view path) {
  RETURN_IF_ERROR(CheckString(field, path, PATH_MAX - 1));
  if (path.empty() || path.front() != '/') {
    return Refuse(field, absl::StrCat("'", path, "' is not an absolute path"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return Refuse(field, absl::StrCat("'", path, "' contains '..'"));
  }
  return absl::OkStatus();
}

absl::Status CheckRunRequest(const v1::RunRequest& r, size_t handed_fds,
                             const policy::Config& config, const RequestLimits& limits) {
  if (r.action() != v1::ACTION_EXEC && r.action() != v1::ACTION_RUN &&
      r.action() != v1::ACTION_SHELL && r.action() != v1::ACTION_TEST) {
    return Refuse("action", "must be run, exec, shell or test");
  }
  // A SCIF app name becomes a path component (/scif/apps/NAME) and a
  // variable's value: letters, digits, '_', '-', '.', not a dot first.
  if (!r.app().empty() && (r.app().size() > 128 || r.app().front() == '.' ||
                           !std::all_of(r.app().begin(), r.app().end(), [](char ch) {
                             return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                                    ch == '-' || ch == '.';
                           }))) {
    return Refuse("--app", "an app name is at most 128 letters, digits, '_', '-' and '.'");
  }
  if (r.action() == v1::ACTION_EXEC && r.args().empty()) {
    return Refuse("exec", "needs a command to run in the container");
  }
  RETURN_IF_ERROR(CheckAbsolutePath("image", r.image()));
  RETURN_IF_ERROR(CheckAbsolutePath("working directory", r.cwd()));
  if (!r.pwd().empty()) {
    RETURN_IF_ERROR(CheckAbsolutePath("--cwd", r.pwd()));
    if (UnderProcFd(r.pwd())) {
      return Refuse("--cwd", absl::StrCat("'", r.pwd(), "' is under /proc/*/fd: refused"));
    }
  }
  if (UnderProcFd(r.cwd())) {
    return Refuse("working directory", absl::StrCat("'", r.cwd(), "' is under /proc: refused"));
  }
  if (!r.shell().empty()) RETURN_IF_ERROR(CheckAbsolutePath("--shell", r.shell()));
  if (!r.home().empty()) {
    std::vector<absl::string_view> parts = absl::StrSplit(r.home(), absl::MaxSplits(':', 1));
    for (absl::string_view p : parts) RETURN_IF_ERROR(CheckAbsolutePath("--home", p));
  }
  if (r.umask() > 0777) return Refuse("umask", "out of range");
  RETURN_IF_ERROR(CheckLists(r, limits));
  RETURN_IF_ERROR(CheckBinds(r, config, limits));
  RETURN_IF_ERROR(CheckFds(r, handed_fds, limits));
  if (r.has_resources() && r.share() == v1::SHARE_PARENT) {
    return Refuse("--sharens",
                  "a container with cgroup limits has a cgroup of its own and is "
                  "never shared; drop --sharens or the limits");
  }
  return CheckNamespaces(r, config);
}

}  // namespace berth::daemon
