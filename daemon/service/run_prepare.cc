#include "daemon/service/run_prepare.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/action/action.h"
#include "daemon/fakeroot/fakeroot_ids.h"
#include "daemon/gpu/run_gpus.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/launch/image_paths.h"
#include "daemon/service/caller_process.h"
#include "daemon/service/mpi_run.h"
#include "daemon/service/pty.h"
#include "daemon/service/run_limits.h"
#include "daemon/service/run_overlay.h"
#include "daemon/service/run_workdir.h"

namespace berth::daemon {
namespace {

image::CallerCreds CredsOf(const PeerIdentity& peer) {
  return {peer.uid, peer.gid, peer.groups};
}

// The caller's account from the host's databases (NSS); a uid without an
// entry still runs, under a synthetic name, like Apptainer does (`listed`
// says which).
launch::Identity AccountOf(const PeerIdentity& peer, bool& listed) {
  launch::Identity id;
  id.uid = peer.uid;
  id.gid = peer.gid;
  id.groups = peer.groups;
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  listed = ::getpwuid_r(peer.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr;
  if (listed) {
    id.user_name = pw.pw_name;
    id.home = pw.pw_dir;
    id.shell = pw.pw_shell;
    id.gecos = pw.pw_gecos;
  } else {
    id.user_name = absl::StrCat("uid", peer.uid);
    id.home = "/";
  }
  std::vector<gid_t> gids = peer.groups;
  gids.insert(gids.begin(), peer.gid);
  for (gid_t g : gids) {
    group gr{}, *gfound = nullptr;
    if (::getgrgid_r(g, &gr, buf.data(), buf.size(), &gfound) == 0 && gfound != nullptr) {
      id.group_names.emplace_back(g, gr.gr_name);
    }
  }
  return id;
}

// Where the opened image really lives, for allowed_dirs: the kernel's name
// for the descriptor, so symlinks in the request path change nothing.
absl::StatusOr<std::string> ResolvedPath(int fd) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
  if (n < 0) return ErrnoStatus("resolving the image path", errno);
  return std::string(buf, static_cast<size_t>(n));
}

absl::Status CheckImagePolicy(int fd, const std::string& display, const policy::Config& c) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(display, errno);
  if (!c.allowed_image_owners.empty() &&
      std::find(c.allowed_image_owners.begin(), c.allowed_image_owners.end(), st.st_uid) ==
          c.allowed_image_owners.end()) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "image %s is owned by uid %d, which this node's allowed_owners does not list", display,
        st.st_uid));
  }
  if (c.allowed_image_dirs.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string real, ResolvedPath(fd));
  for (const std::string& dir : c.allowed_image_dirs) {
    if (policy::PathWithinDir(real, dir)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("image ", display, " (", real,
                                                  ") is outside this node's allowed_dirs (",
                                                  absl::StrJoin(c.allowed_image_dirs, ", "), ")"));
}

// What a run's target is: Apptainer 1.4 runs SIF files, bare squashfs
// files and sandbox directories (berth.conf [images] allow_container_*).
enum class TargetKind { kSif, kSquashfs, kDirectory };

absl::StatusOr<TargetKind> KindOf(int fd, const std::string& display) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(display, errno);
  if (S_ISDIR(st.st_mode)) return TargetKind::kDirectory;
  uint8_t magic[4] = {};
  if (S_ISREG(st.st_mode) && ::pread(fd, magic, sizeof magic, 0) == sizeof magic &&
      magic[0] == 'h' && magic[1] == 's' && magic[2] == 'q' && magic[3] == 's') {
    return TargetKind::kSquashfs;
  }
  return TargetKind::kSif;  // anything else: the SIF reader names what is wrong
}

absl::Status CheckTargetAllowed(TargetKind kind, const std::string& display,
                                const policy::Config& config, EclGate* ecl) {
  if (kind == TargetKind::kSif) return absl::OkStatus();
  const bool dir = kind == TargetKind::kDirectory;
  const char* what = dir ? "a sandbox directory" : "a bare squashfs image";
  if (!(dir ? config.allow_container_dir : config.allow_container_squashfs)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "image ", display, " is ", what, ", which this node does not run (berth.conf [images] ",
        dir ? "allow_container_dir" : "allow_container_squashfs", " = false)"));
  }
  // Why: only a SIF carries signatures. Apptainer skips its ECL for other
  // formats; a berth ECL that anything unsigned could walk past would be no
  // control at all (docs/compat.md).
  if (ecl != nullptr && ecl->Activated()) {
    return absl::PermissionDeniedError(
        absl::StrCat("image ", display, " is ", what,
                     ", which cannot be signed; this node's ECL (ecl.toml) runs signed SIF "
                     "images only"));
  }
  return absl::OkStatus();
}

// A sandbox's /etc/passwd and /etc/group for the launcher, read with the
// caller's rights inside the bind the container gets (never as root: the
// user controls the tree).
absl::Status ReadSandboxAccounts(const image::MountLease& lease, const PeerIdentity& peer,
                                 const std::string& display, launch::LaunchSpec& spec) {
  ASSIGN_OR_RETURN(UniqueFd root, OpenFile(lease.root(), O_PATH | O_DIRECTORY));
  auto accounts = image::ReadAccountFilesAsCaller(CredsOf(peer), root.get());
  if (!accounts.ok()) return Annotate(accounts.status(), absl::StrCat("sandbox ", display));
  spec.image_passwd = std::move(accounts->passwd);
  spec.image_group = std::move(accounts->group);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<image::MountLease>> LeaseImage(const v1::RunRequest& r,
                                                              const PeerIdentity& peer,
                                                              const policy::Config& config,
                                                              image::MountCache& images,
                                                              EclGate* ecl) {
  // O_RDONLY as the caller: a sandbox directory must be readable by them,
  // like an image file; the descriptor is never O_PATH.
  ASSIGN_OR_RETURN(UniqueFd fd, image::OpenAsCaller(CredsOf(peer), r.image(), O_RDONLY));
  RETURN_IF_ERROR(CheckImagePolicy(fd.get(), r.image(), config));
  ASSIGN_OR_RETURN(TargetKind kind, KindOf(fd.get(), r.image()));
  RETURN_IF_ERROR(CheckTargetAllowed(kind, r.image(), config, ecl));
  if (kind == TargetKind::kDirectory) {
    return images.AcquireDirectory(std::move(fd), r.image(), peer.uid, r.writable());
  }
  if (r.writable()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--writable: image ", r.image(),
                     " is not a sandbox directory; berth writes only into sandboxes (use "
                     "--writable-tmpfs for a discarded writable layer)"));
  }
  // With the ECL active, `fd` becomes the verified (immutable) bytes to mount.
  if (ecl != nullptr) {
    ASSIGN_OR_RETURN(fd, ecl->Admit(std::move(fd), r.image(), peer.uid));
  }
  return images.Acquire(std::move(fd), r.image(), peer.uid);
}

// Does the image have /bin/sh (resolved inside the image, symlinks included)?
bool HasShell(const std::string& root) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return false;
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), "bin/sh", &how, sizeof how));
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

action::Action ActionOf(v1::Action a) {
  return a == v1::ACTION_RUN     ? action::Action::kRun
         : a == v1::ACTION_SHELL ? action::Action::kShell
         : a == v1::ACTION_TEST  ? action::Action::kTest
                                 : action::Action::kExec;
}

std::string BindList(const v1::RunRequest& r) {
  std::vector<std::string> items;
  for (const v1::Bind& b : r.binds()) {
    items.push_back(absl::StrCat(b.source(), ":", b.destination(), b.read_only() ? ":ro" : ""));
  }
  return absl::StrJoin(items, ",");
}

bool NoMount(const v1::RunRequest& r, absl::string_view what) {
  return std::find(r.no_mount().begin(), r.no_mount().end(), what) != r.no_mount().end();
}

absl::StatusOr<launch::BindSpec> OpenBind(const PeerIdentity& peer, const std::string& source,
                                          const std::string& destination, bool read_only,
                                          absl::string_view what) {
  auto fd = image::OpenPathAsCaller(CredsOf(peer), source);
  if (!fd.ok()) return Annotate(fd.status(), what);
  return launch::BindSpec{*std::move(fd), source, destination, read_only};
}

// $HOME: -H src[:dst], else the caller's home at the same path, or at /root
// with --fakeroot (Apptainer's "$HOME:/root").
absl::Status AddHome(const v1::RunRequest& r, const PeerIdentity& peer,
                     const policy::Config& config, launch::LaunchSpec& spec) {
  std::string source = spec.identity.home, destination = spec.identity.home;
  if (r.fakeroot() && r.home().empty()) {
    destination = "/root";
    spec.identity.home = destination;
    if (source == "/") return absl::OkStatus();  // an account without a home
  }
  if (!r.home().empty()) {
    std::vector<std::string> parts = absl::StrSplit(r.home(), absl::MaxSplits(':', 1));
    source = parts[0];
    destination = parts.size() > 1 ? parts[1] : parts[0];
    spec.identity.home = destination;
  }
  if (r.no_home() || NoMount(r, "home") || !config.mount_home || destination == "/") {
    return absl::OkStatus();
  }
  if (r.contain() && r.home().empty()) {
    // --contain: a fresh tmpfs at $HOME; the launcher never reads the source.
    spec.home = launch::BindSpec{UniqueFd(), source, destination, false};
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(spec.home, OpenBind(peer, source, destination, false, "home directory"));
  return absl::OkStatus();
}

// --bind IMG:DST:image-src=/P, --mount ...,image-src=/P: the image file
// (opened as the caller, the site's image rules applied; a data image is not
// run, so the ECL, which rules what runs, is not asked) is mounted read-only
// as a container's image is, and P is resolved inside that mount
// (RESOLVE_IN_ROOT: "..", absolute links and magic links stay in the image)
// and bound read-only. The lease keeps the mount until the container ends.
absl::StatusOr<launch::BindSpec> OpenImageBind(const v1::Bind& b, const PeerIdentity& peer,
                                               const policy::Config& config,
                                               image::MountCache& images, PreparedRun& run) {
  const std::string what =
      absl::StrCat("--bind ", b.source(), " image-src=", b.image_src(),
                   b.image_id() != 0 ? absl::StrCat(",id=", b.image_id()) : std::string());
  auto fd = image::OpenAsCaller(CredsOf(peer), b.source(), O_RDONLY);
  if (!fd.ok()) return Annotate(fd.status(), what);
  RETURN_IF_ERROR_CTX(CheckImagePolicy(fd->get(), b.source(), config), what);
  ASSIGN_OR_RETURN(TargetKind kind, KindOf(fd->get(), b.source()));
  if (kind == TargetKind::kDirectory) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", b.source(), " is a directory; bind it, or a path in it, without image-src"));
  }
  RETURN_IF_ERROR_CTX(CheckTargetAllowed(kind, b.source(), config, nullptr), what);
  auto inside = launch::CleanContainerPath(b.image_src(), /*allow_root=*/true);
  if (!inside.ok()) return Annotate(inside.status(), what);
  ASSIGN_OR_RETURN(std::shared_ptr<image::MountLease> lease,
                   images.Acquire(*std::move(fd), b.source(), peer.uid, b.image_id()));
  UniqueFd root(::open(lease->root().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(absl::StrCat(what, ": the image's mount"), errno);
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const std::string rel = inside->empty() ? "." : *inside;
  UniqueFd source(
      static_cast<int>(::syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how)));
  if (!source) return ErrnoStatus(absl::StrCat(what, ": ", b.image_src(), " in the image"), errno);
  run.bind_leases.push_back(std::move(lease));
  return launch::BindSpec{std::move(source), absl::StrCat(b.source(), ":", b.image_src()),
                          b.destination(), /*read_only=*/true};
}

absl::Status AddBinds(const v1::RunRequest& r, const PeerIdentity& peer,
                      const policy::Config& config, image::MountCache& images, PreparedRun& run) {
  launch::LaunchSpec& spec = run.spec;
  if (!NoMount(r, "bind-paths")) {
    for (const std::string& path : config.default_binds) {
      if (path == "/etc/hosts" || path == "/etc/localtime") continue;  // launcher's own
      if (NoMount(r, path)) continue;                                  // --no-mount /PATH
      auto bind = OpenBind(peer, path, path, true, "default bind");
      if (bind.ok()) spec.binds.push_back(*std::move(bind));
    }
  }
  for (const v1::Bind& b : r.binds()) {
    if (b.image_id() != 0 && b.image_src().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--bind ", b.source(), ": id= needs image-src=PATH (a path in the image)"));
    }
    if (!b.image_src().empty()) {
      ASSIGN_OR_RETURN(launch::BindSpec bind, OpenImageBind(b, peer, config, images, run));
      spec.binds.push_back(std::move(bind));
      continue;
    }
    ASSIGN_OR_RETURN(launch::BindSpec bind,
                     OpenBind(peer, b.source(), b.destination(), b.read_only(),
                              absl::StrCat("--bind ", b.source())));
    spec.binds.push_back(std::move(bind));
  }
  return absl::OkStatus();
}

// The caller's cwd is bound at the same path (unless disabled) and becomes
// the container's cwd; --cwd overrides where the payload starts.
void AddCwd(const v1::RunRequest& r, const PeerIdentity& peer, launch::LaunchSpec& spec) {
  bool bound = false;
  if (!r.contain() && !NoMount(r, "cwd") && r.cwd() != "/") {
    auto bind = OpenBind(peer, r.cwd(), r.cwd(), false, "working directory");
    if (bind.ok()) {
      spec.cwd_bind = *std::move(bind);
      bound = true;
    }
  }
  if (!r.pwd().empty()) {
    spec.cwd = r.pwd();
  } else if (bound) {
    spec.cwd = r.cwd();
  } else {
    spec.cwd = spec.home ? spec.home->destination : "/";
  }
}

absl::Status AddStdio(const v1::RunRequest& r, std::vector<UniqueFd>& handed,
                      const PeerIdentity& peer, PreparedRun& run) {
  for (const v1::FdMapping& m : r.fds()) {
    run.spec.fds.emplace_back(std::move(handed[m.handoff_index()]), m.container_fd());
  }
  if (!r.tty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(Pty pty, OpenPty(peer.uid, peer.gid, r.window().rows(), r.window().cols()));
  bool stderr_passed = false;
  for (const auto& [fd, target] : run.spec.fds) stderr_passed |= target == 2;
  for (int target : {0, 1, 2}) {
    if (target == 2 && stderr_passed) continue;
    int dup = ::fcntl(pty.slave.get(), F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return ErrnoStatus("duplicating the pty", errno);
    run.spec.fds.emplace_back(UniqueFd(dup), target);
  }
  run.spec.controlling_tty = 0;
  run.pty_master = std::move(pty.master);
  return absl::OkStatus();
}

// `image` is what APPTAINER_CONTAINER names; `instance` (when set) goes
// into APPTAINER_INSTANCE, as Apptainer sets it in an instance and its joins.
absl::Status AddCommand(const v1::RunRequest& r, const std::string& image, bool image_has_shell,
                        const gpu::GpuGrant& grant, const std::string& instance,
                        launch::LaunchSpec& spec) {
  action::EnvRequest env_request;
  env_request.host_env.assign(r.env().begin(), r.env().end());
  env_request.clean_env = r.cleanenv();
  env_request.env_flags.assign(r.env_flags().begin(), r.env_flags().end());
  env_request.env_file_lines.assign(r.env_file_lines().begin(), r.env_file_lines().end());
  env_request.container_home = spec.identity.home;
  env_request.image_path = image;
  env_request.action = ActionOf(r.action());
  env_request.app = r.app();
  env_request.bind_list = BindList(r);
  env_request.no_eval = r.no_eval();
  env_request.runtime_env = grant.env;
  if (!instance.empty()) {
    env_request.runtime_env.emplace_back("APPTAINER_INSTANCE", instance);
    env_request.runtime_env.emplace_back("SINGULARITY_INSTANCE", instance);
  }
  // --containlibs binds libraries there (the client's -B); Apptainer's
  // action script puts the directory on LD_LIBRARY_PATH whatever filled it.
  bool libs_bound = std::any_of(r.binds().begin(), r.binds().end(), [](const v1::Bind& b) {
    return absl::StartsWith(b.destination(), absl::StrCat(gpu::kLibsDir, "/"));
  });
  if (grant.library_path || libs_bound) env_request.library_dir = gpu::kLibsDir;
  ASSIGN_OR_RETURN(action::ContainerEnv env, action::BuildEnvironment(env_request));
  action::CommandRequest command;
  command.action = env_request.action;
  command.app = r.app();
  command.args.assign(r.args().begin(), r.args().end());
  command.shell = r.shell();
  command.image_has_shell = image_has_shell;
  ASSIGN_OR_RETURN(action::LaunchCommand launch_command, action::BuildCommand(command, env));
  spec.argv = std::move(launch_command.argv);
  spec.env = std::move(launch_command.env);
  return absl::OkStatus();
}

void AddNamespaces(const v1::RunRequest& r, const DaemonOptions& options,
                   const policy::Config& config, bool instance, launch::LaunchSpec& spec) {
  // As Apptainer: the host's PID namespace unless -p (or -C) asks for one.
  // An instance always has its own (CheckInstanceStart refuses --no-pid):
  // its init holds the namespaces its joins enter.
  bool pid = instance || ((r.pid() || r.containall()) && !r.no_pid());
  spec.pid_namespace = pid && config.allow_pid_ns;
  spec.ipc_namespace = r.ipc();
  spec.hostname = r.hostname();
  spec.uts_namespace = !r.hostname().empty() || r.uts();
  spec.net_namespace = r.net() || !r.network().empty();
  if (!r.dns().empty()) {
    for (const std::string& server : r.dns())
      absl::StrAppend(&spec.resolv_conf, "nameserver ", server, "\n");
  }
  spec.fakeroot = r.fakeroot();
  // User mode is already confined by the daemon's own user namespace.
  spec.user_namespace = options.mode == DaemonMode::kSystem && (r.userns() || r.fakeroot());
  spec.contain = r.contain();
  spec.no_init = r.no_init();
  if (r.writable_tmpfs()) {
    uint64_t mib = r.tmpfs_size_mib() != 0 ? r.tmpfs_size_mib() : config.writable_tmpfs_default_mib;
    spec.writable_tmpfs_bytes = static_cast<int64_t>(mib) << 20;
  }
  spec.system_mounts.proc = config.mount_proc && !NoMount(r, "proc");
  spec.system_mounts.sys = config.mount_sys && !NoMount(r, "sys");
  spec.system_mounts.dev = config.mount_dev != policy::DevMode::kNone && !NoMount(r, "dev");
  spec.system_mounts.tmp = config.mount_tmp && !NoMount(r, "tmp");
  spec.system_mounts.minimal_dev = config.mount_dev == policy::DevMode::kMinimal;
  spec.system_mounts.devpts = !NoMount(r, "devpts");
  // /etc/hosts and /etc/localtime are bind paths in Apptainer's default
  // configuration (and berth.conf's default_binds): --no-mount takes them
  // with the other bind paths, or by name.
  for (const char* path : {"/etc/hosts", "/etc/localtime"}) {
    if (NoMount(r, "bind-paths") || NoMount(r, path)) spec.system_mounts.etc_skip.push_back(path);
  }
}

// --fakeroot: the ids of the caller's subordinate ranges, or the
// root-mapped single id with an INFO line (daemon/fakeroot).
absl::Status AddFakeroot(const PeerIdentity& peer, bool listed, const DaemonOptions& options,
                         PreparedRun& run) {
  fakeroot::Sources sources{options.subuid_path, options.subgid_path,
                            options.mode == DaemonMode::kUser};
  fakeroot::Caller caller{peer.uid, peer.gid, listed ? run.spec.identity.user_name : ""};
  absl::StatusOr<fakeroot::Ids> ids = fakeroot::ResolveIds(sources, caller);
  if (!ids.ok()) return Annotate(ids.status(), "could not use fakeroot");
  run.spec.fakeroot_uid_map = std::move(ids->uid_map);
  run.spec.fakeroot_gid_map = std::move(ids->gid_map);
  if (!ids->notice.empty()) run.notices.push_back(std::move(ids->notice));
  return absl::OkStatus();
}

// The caller's process state the payload takes on: its cgroups (those the
// daemon may move it into), affinity, limits and umask.
// `cgroup`, when given, gets the container's own cgroup if the request has
// limits (a join has none: it stays in its caller's cgroups).
absl::Status AddCallerProcess(const v1::RunRequest& r, const PeerIdentity& peer,
                              const DaemonOptions& options, launch::LaunchSpec& spec,
                              std::optional<cgroup::ContainerCgroup>* cgroup = nullptr) {
  spec.umask = static_cast<mode_t>(r.umask());
  // An instance's restart has no caller process: it keeps the daemon's.
  if (peer.pidfd == nullptr) return absl::OkStatus();
  // Without SO_PEERPIDFD (kernels < 6.5) the pidfd came from pidfd_open(pid)
  // at accept time, while the caller was blocked connecting: it names the
  // caller unless that process handed its connection on and exited before.
  ASSIGN_OR_RETURN(CallerProcess caller, ReadCallerProcess(peer.pid, peer.pidfd->get()));
  spec.cgroup_dirs = std::move(caller.cgroup_dirs);
  if (cgroup != nullptr) {
    ASSIGN_OR_RETURN(*cgroup, MakeRunCgroup(r, peer.pid, peer.pidfd->get(), spec.cgroup_dirs));
  }
  if (options.mode == DaemonMode::kUser) {
    // A user may move processes only between cgroups delegated to them; the
    // container then stays in the user daemon's cgroup for the others.
    std::erase_if(spec.cgroup_dirs, [](const std::string& dir) {
      return ::access(absl::StrCat(dir, "/cgroup.procs").c_str(), W_OK) != 0;
    });
  }
  spec.affinity = caller.affinity;
  spec.rlimits = std::move(caller.rlimits);
  spec.umask = static_cast<mode_t>(r.umask());
  return absl::OkStatus();
}

// Whether `path` names something inside the container whose root is `root`
// (resolved there, never on the host).
bool ExistsIn(const std::string& root, const std::string& path) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return false;
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how));
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

// --netns-path: root callers only. Joining a namespace by path is joining
// whatever network a file names (another user's container, a host VRF); a
// plain user gets a namespace of their own with --net instead (Apptainer
// lets a user do it only where its `allow netns paths` lists the path).
absl::Status AddNetnsPath(const v1::RunRequest& r, const PeerIdentity& peer,
                          launch::LaunchSpec& spec) {
  if (r.netns_path().empty()) return absl::OkStatus();
  if (peer.uid != 0) {
    return absl::PermissionDeniedError(
        "--netns-path: only root may run a container in an existing network namespace; use "
        "-n/--net for a network namespace of your own");
  }
  // O_NONBLOCK: a FIFO there must not park the handler thread.
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(r.netns_path(), O_RDONLY | O_NONBLOCK));
  if (::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    return absl::InvalidArgumentError(
        absl::StrCat("--netns-path ", r.netns_path(),
                     ": not a network namespace (e.g. /var/run/netns/NAME or /proc/PID/ns/net)"));
  }
  spec.netns = std::move(fd);
  spec.net_namespace = true;
  return absl::OkStatus();
}

absl::StatusOr<PreparedRun> PrepareRun(const v1::RunRequest& r, const PeerIdentity& peer,
                                       std::vector<UniqueFd> handed, const DaemonOptions& options,
                                       const policy::Config& config, image::MountCache& images,
                                       EclGate* ecl, gpu::GpuService* gpus,
                                       const std::string& instance,
                                       std::vector<std::string>* early_notices) {
  PreparedRun run;
  launch::LaunchSpec& spec = run.spec;
  bool listed = false;
  spec.identity = AccountOf(peer, listed);
  if (r.fakeroot()) RETURN_IF_ERROR(AddFakeroot(peer, listed, options, run));
  RETURN_IF_ERROR(CheckOverlayRequest(r, ecl != nullptr && ecl->Activated()));
  ASSIGN_OR_RETURN(run.lease, LeaseImage(r, peer, config, images, ecl));
  spec.image_root = run.lease->root();
  spec.image_from_caller_squashfs = run.lease->backend() == image::MountBackend::kKernelDirect ||
                                    run.lease->backend() == image::MountBackend::kKernelCopy;
  if (run.lease->backend() == image::MountBackend::kDirectory) {
    RETURN_IF_ERROR(ReadSandboxAccounts(*run.lease, peer, r.image(), spec));
    // --writable: the sandbox itself is "/", read-write (nosuid, nodev).
    spec.writable_root = r.writable();
  }
  AddNamespaces(r, options, config, !instance.empty(), spec);
  // A squashfs overlay is held to the site's image rules, as a data image.
  AcquireOverlayImage acquire =
      [&](UniqueFd fd,
          const std::string& path) -> absl::StatusOr<std::shared_ptr<image::MountLease>> {
    RETURN_IF_ERROR(CheckImagePolicy(fd.get(), path, config));
    RETURN_IF_ERROR(CheckTargetAllowed(TargetKind::kSquashfs, path, config, nullptr));
    return images.Acquire(std::move(fd), path, peer.uid);
  };
  RETURN_IF_ERROR(AddOverlays(r, CredsOf(peer), ecl != nullptr && ecl->Activated(), acquire,
                              run.bind_leases, spec));
  RETURN_IF_ERROR(AddNetnsPath(r, peer, spec));
  RETURN_IF_ERROR(AddHome(r, peer, config, spec));
  RETURN_IF_ERROR(AddScratchAndWorkdir(r, CredsOf(peer), spec.system_mounts.tmp, spec));
  RETURN_IF_ERROR(AddBinds(r, peer, config, images, run));
  AddCwd(r, peer, spec);
  gpu::GpuGrant grant;
  if (gpus != nullptr) {
    ASSIGN_OR_RETURN(grant, gpus->Prepare(gpu::GpuRequestOf(r), CredsOf(peer)));
  } else if (r.nv() || r.rocm() || !r.devices().empty()) {
    return absl::UnimplementedError("--nv/--rocm/--device: this daemon has no GPU support");
  }
  RETURN_IF_ERROR(AddCommand(r, r.image(), HasShell(spec.image_root), grant, instance, spec));
  gpu::ApplyGrant(std::move(grant), spec);
  std::vector<std::string> ignored;
  RETURN_IF_ERROR(AddMpiStack(r, options, config, spec, run.notices,
                              early_notices != nullptr ? *early_notices : ignored));
  RETURN_IF_ERROR(AddStdio(r, handed, peer, run));
  RETURN_IF_ERROR(AddCallerProcess(r, peer, options, spec, &run.cgroup));
  return run;
}

absl::StatusOr<PreparedRun> PrepareJoin(const v1::RunRequest& r, const PeerIdentity& peer,
                                        std::vector<UniqueFd> handed, const DaemonOptions& options,
                                        const JoinTarget& target) {
  PreparedRun run;
  launch::LaunchSpec& spec = run.spec;
  bool listed = false;
  spec.identity = AccountOf(peer, listed);
  spec.identity.home = target.home;
  spec.fakeroot = target.fakeroot;
  // --cwd, else the caller's directory when the instance has it (bound at
  // its start), else $HOME, else "/". Where the instance's root cannot be
  // looked into (a user-mode daemon: its init is not dumpable), the caller's
  // directory is taken when it is the one the instance started in.
  spec.cwd = "/";
  bool root_open = ExistsIn(target.root, "/");
  for (const std::string& dir : {r.pwd(), r.cwd(), target.home}) {
    if (dir.empty()) continue;
    if (root_open ? ExistsIn(target.root, dir) : (dir == r.pwd() || dir == target.start_cwd)) {
      spec.cwd = dir;
      break;
    }
  }
  RETURN_IF_ERROR(
      AddCommand(r, target.image, target.has_shell, gpu::GpuGrant{}, target.name, spec));
  RETURN_IF_ERROR(AddStdio(r, handed, peer, run));
  RETURN_IF_ERROR(AddCallerProcess(r, peer, options, spec));
  return run;
}

bool ImageHasShell(const std::string& root) {
  return HasShell(root);
}

}  // namespace berth::daemon
