// berthd: the per-node launcher daemon. main() turns the command line into
// DaemonOptions, sets up logging, claims the socket and serves until SIGTERM.
//
// Privilege: system mode must run as root (it will act for every user of the
// node); user mode runs as the one user it serves.
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/daemon_options.h"
#include "daemon/doctor/doctor.h"
#include "daemon/gpu/gpu_service.h"
#include "daemon/image/mount_cache.h"
#include "daemon/image/user_namespace.h"
#include "daemon/instance/instance_registry.h"
#include "daemon/policy/config.h"
#include "daemon/pull/blob_cache.h"
#include "daemon/pull/pull_service.h"
#include "daemon/server/connection_budget.h"
#include "daemon/server/listening_socket.h"
#include "daemon/server/log_sink.h"
#include "daemon/server/peer_registry.h"
#include "daemon/server/rpc_server.h"
#include "daemon/service/berth_service.h"
#include "daemon/service/ecl_gate.h"
#include "daemon/service/run_handler.h"
#include "daemon/shared/container_registry.h"
#include "spdlog/cfg/env.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/sinks/syslog_sink.h"
#include "spdlog/spdlog.h"

namespace berth::daemon {
namespace {

constexpr const char* kSystemSocket = "/run/berth/berthd.sock";

void AddFlags(CLI::App& app, DaemonOptions& options, bool& user_mode) {
  app.set_version_flag("--version", std::string("berthd version ") + BERTH_VERSION);
  app.add_option("--socket", options.socket_path,
                 "Unix socket to serve (default /run/berth/berthd.sock; in user mode "
                 "$XDG_RUNTIME_DIR/berth/berthd.sock)");
  app.add_option("--config-dir", options.config_dir, "Configuration directory")
      ->default_val("/etc/berth");
  app.add_option("--state-dir", options.state_dir,
                 "State directory: image cache, mounts (default /var/lib/berth; in user mode "
                 "$XDG_RUNTIME_DIR/berth/state or ~/.berth/state)");
  app.add_flag("--user-mode", user_mode,
               "Serve only the user running berthd, without root (unprivileged user namespaces)");
  app.add_flag("--foreground", options.foreground,
               "Log to stderr instead of syslog (berthd never forks; SPDLOG_LEVEL=debug for more)");
  // Test-only: other subordinate id files (root-owned, like the real ones).
  app.add_option("--subuid-file", options.subuid_path)->group("");
  app.add_option("--subgid-file", options.subgid_path)->group("");
  app.add_option("--build-worker", options.build_worker,
                 "berth-build-worker (default: beside berthd, then ../libexec/berth)");
}

// The user's private directory for a user-mode daemon: $XDG_RUNTIME_DIR/berth,
// else ~/.berth (the client looks in the same places).
absl::StatusOr<std::string> UserBaseDir() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  if (runtime_dir != nullptr && *runtime_dir == '/') return absl::StrCat(runtime_dir, "/berth");
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home == '/') return absl::StrCat(home, "/.berth");
  return absl::InvalidArgumentError(
      "user mode needs --socket and --state-dir, XDG_RUNTIME_DIR or HOME");
}

// Socket and state directory when not named: the node's in system mode, the
// user's own in user mode.
absl::Status ResolvePaths(DaemonOptions& options) {
  if (options.mode == DaemonMode::kSystem) {
    if (options.socket_path.empty()) options.socket_path = kSystemSocket;
    if (options.state_dir.empty()) options.state_dir = "/var/lib/berth";
    return absl::OkStatus();
  }
  if (!options.socket_path.empty() && !options.state_dir.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string base, UserBaseDir());
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  bool in_runtime_dir = xdg != nullptr && *xdg == '/';
  if (options.socket_path.empty()) {
    options.socket_path = absl::StrCat(base, in_runtime_dir ? "" : "/run", "/berthd.sock");
  }
  if (options.state_dir.empty()) options.state_dir = absl::StrCat(base, "/state");
  // The user's private base directory: created 0700, as the user, if missing
  // (CVE-2019-19724: never world-accessible).
  if (::mkdir(base.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating ", base), errno);
  }
  return absl::OkStatus();
}

absl::Status CheckPrivilegeForMode(DaemonMode mode) {
  if (mode == DaemonMode::kSystem && geteuid() != 0) {
    return absl::PermissionDeniedError(
        "system mode needs root (use --user-mode to serve only you)");
  }
  return absl::OkStatus();
}

// Every message is escaped on its way out (log_sink.h): callers' strings
// cannot forge a log line.
void SetUpLogging(bool foreground) {
  std::shared_ptr<spdlog::sinks::sink> out;
  if (foreground) {
    out = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    out = std::make_shared<spdlog::sinks::syslog_sink_mt>("berthd", LOG_PID, LOG_DAEMON, false);
  }
  auto logger = std::make_shared<spdlog::logger>("berthd", EscapingSink(std::move(out)));
  spdlog::initialize_logger(logger);
  spdlog::set_default_logger(logger);
  spdlog::cfg::load_env_levels();
}

image::ImagePolicy ImagePolicyOf(const policy::Config& config) {
  image::ImagePolicy p;
  p.kernel_squashfs = static_cast<image::ImagePolicy::KernelSquashfs>(config.kernel_squashfs);
  p.max_loop_devices_per_uid = config.max_loop_devices_per_user;
  p.max_images_per_uid = config.max_images_per_user;
  p.copy_store_max_bytes = int64_t{config.copy_store_max_mib} << 20;
  p.store_max_bytes_per_uid = int64_t{config.max_store_mib_per_user} << 20;
  return p;
}

RunSessionLimits RunSessionLimitsFor(const policy::Config& config) {
  RunSessionLimits limits;
  limits.per_uid = static_cast<size_t>(config.max_sessions_per_user);
  return limits;
}

ConnectionLimits ConnectionLimitsFor(const policy::Config& config) {
  ConnectionLimits limits;
  limits.connections_per_user = static_cast<size_t>(config.max_connections_per_user);
  limits.pending_per_user = static_cast<size_t>(config.max_pending_connections_per_user);
  limits.handed_fds_per_user = static_cast<size_t>(config.max_handed_fds_per_user);
  return limits;
}

// The soft descriptor limit up to the hard one: the daemon's table is shared
// by every user's connections and containers, and the per-user budgets
// (connection_budget.h) are what bound each user's part of it. Containers
// get their caller's own limits, not these.
void RaiseDescriptorLimit() {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur >= nofile.rlim_max) return;
  rlim_t was = nofile.rlim_cur;
  nofile.rlim_cur = nofile.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
    spdlog::warn("cannot raise the descriptor limit from {}: {}", was, std::strerror(errno));
  }
}

absl::Status RunDaemon(const DaemonOptions& options) {
  RETURN_IF_ERROR(CheckPrivilegeForMode(options.mode));
  if (options.mode == DaemonMode::kUser) {
    // Must precede every thread: unshare(CLONE_NEWUSER) refuses threaded callers.
    RETURN_IF_ERROR_CTX(image::EnterUserModeNamespaces(), "entering the user-mode namespaces");
  }
  // Non-dumpable: /proc/<berthd>/{fd,exe,mem,environ} then need CAP_SYS_PTRACE
  // even for the same uid, so a root container (which has no capabilities)
  // cannot reach the daemon's descriptors or binary (CVE-2019-5736 shape).
  // After the namespaces: a non-dumpable process may not write its uid_map.
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) return ErrnoStatus("PR_SET_DUMPABLE", errno);
  ASSIGN_OR_RETURN(policy::Config config,
                   policy::LoadConfig(options.config_dir, options.mode == DaemonMode::kSystem));
  // A client that vanishes mid-reply must cost a call, not the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  RaiseDescriptorLimit();
  ASSIGN_OR_RETURN(UniqueFd signal_fd, BlockShutdownSignals());
  ASSIGN_OR_RETURN(auto listener, ListeningSocket::Claim(options.socket_path, options.mode));
  image::MountCache images(options.state_dir, options.mode, ImagePolicyOf(config));
  RETURN_IF_ERROR_CTX(images.Init(), "preparing the image cache");
  EclGate ecl(options, int64_t{config.copy_store_max_mib} << 20, &images);
  RETURN_IF_ERROR_CTX(ecl.Init(), "loading the ECL");
  ConnectionBudget budget(ConnectionLimitsFor(config));
  PeerRegistry peers;
  shared::ContainerRegistry shared_containers;
  // After the image cache: an instance holds an image lease until it ends.
  instance::InstanceRegistry instances(options.state_dir, options.mode == DaemonMode::kSystem);
  RETURN_IF_ERROR_CTX(instances.Init(), "adopting running instances");
  gpu::GpuService gpus(options, config);
  RunHandler runs(options, config, images, &ecl, &gpus, &shared_containers, &instances);
  runs.ResumeInstanceRestarts();
  pull::BlobCache blobs(
      options.state_dir + "/cache",
      {int64_t{config.cache_max_mib} << 20, int64_t{config.max_cache_mib_per_user} << 20});
  RETURN_IF_ERROR_CTX(blobs.Init(), "preparing the node cache");
  pull::PullService pulls(options, config, blobs);
  doctor::Doctor doctor(options);
  build::BuildService builds(options, config, &gpus, &blobs);
  RETURN_IF_ERROR_CTX(
      builds.Init(options.build_worker.empty() ? build::DefaultWorkerPath() : options.build_worker),
      "preparing builds");
  BerthService service(options, peers, &pulls, &doctor, &gpus, &builds, &shared_containers,
                       &instances);
  RunSessions sessions(
      [&runs](RunChannel& channel, std::shared_ptr<const PeerIdentity> peer) {
        return runs.Serve(channel, std::move(peer));
      },
      RunSessionLimitsFor(config));
  spdlog::info("berthd {} starting in {} mode (config {}, state {})", BERTH_VERSION,
               DaemonModeName(options.mode), options.config_dir, options.state_dir);
  absl::Status served = ServeUntilSignalled(*listener, peers, service, sessions, budget, signal_fd);
  // Before the run handler goes: an instance's restart uses it.
  instances.Shutdown();
  return served;
}

}  // namespace
}  // namespace berth::daemon

int main(int argc, char** argv) {
  using namespace berth::daemon;
  // glibc gives each thread that allocates under contention an arena of its
  // own, up to 8 per core; each keeps what it once held mapped after the
  // thread is gone (session threads come and go with every container). Two
  // arenas hold the idle daemon's memory down; the hot paths (FUSE reads,
  // the launch) reuse per-thread buffers rather than allocate.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"berthd: the berth launcher daemon (one per node)"};
  DaemonOptions options;
  bool user_mode = false;
  AddFlags(app, options, user_mode);
  CLI11_PARSE(app, argc, argv);
  options.mode = user_mode ? DaemonMode::kUser : DaemonMode::kSystem;
  SetUpLogging(options.foreground);
  absl::Status status = ResolvePaths(options);
  if (status.ok()) status = RunDaemon(options);
  if (!status.ok()) {
    // One line on stderr whatever the log sink, so whoever started us sees why.
    std::fprintf(stderr, "FATAL:   berthd: %s\n", std::string(status.message()).c_str());
    if (!options.foreground) spdlog::critical("{}", std::string(status.message()));
    return 255;
  }
  return 0;
}
