#include "daemon/build/sections.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/host_process.h"
#include "daemon/gpu/run_gpus.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/launch/image_paths.h"
#include "deffile/deffile.h"

namespace berth::daemon::build {
namespace {

constexpr int kScriptFd = 5;
constexpr const char* kScriptPath = "/proc/self/fd/5";
constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::StatusOr<UniqueFd> ScriptFd(const std::string& body) {
  int fd = ::memfd_create("berth-section", MFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("memfd_create", errno);
  UniqueFd owned(fd);
  RETURN_IF_ERROR(WriteAll(fd, {reinterpret_cast<const uint8_t*>(body.data()), body.size()}));
  if (::lseek(fd, 0, SEEK_SET) != 0) return ErrnoStatus("lseek", errno);
  return owned;
}

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> Pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

absl::StatusOr<UniqueFd> DevNull() {
  return OpenFile("/dev/null", O_RDONLY);
}

}  // namespace

absl::StatusOr<UniqueFd> ScriptStdio(const std::string& body,
                                     std::vector<std::pair<UniqueFd, int>>& fds) {
  ASSIGN_OR_RETURN(auto out, Pipe());
  ASSIGN_OR_RETURN(UniqueFd null, DevNull());
  ASSIGN_OR_RETURN(UniqueFd script, ScriptFd(body));
  int err = ::fcntl(out.second.get(), F_DUPFD_CLOEXEC, 0);
  if (err < 0) return ErrnoStatus("dup", errno);
  fds.emplace_back(std::move(null), 0);
  fds.emplace_back(std::move(out.second), 1);
  fds.emplace_back(UniqueFd(err), 2);
  fds.emplace_back(std::move(script), kScriptFd);
  return std::move(out.first);
}

namespace {

std::string Where(const BuildContext& ctx, const ScriptSection& s) {
  return absl::StrCat("%", s.name, ", ", ctx.definition_name, ":",
                      s.script != nullptr ? s.script->line : 0);
}

absl::Status ExitStatusError(const BuildContext& ctx, const ScriptSection& s, int status) {
  return absl::FailedPreconditionError(
      absl::StrCat("while running engine: exit status ", status, " (", Where(ctx, s), ")"));
}

}  // namespace

absl::Status Relay(BuildContext& ctx, int out, int pidfd) {
  char buf[16384];
  bool open = true;
  for (;;) {
    RETURN_IF_ERROR(ctx.CheckCancelled());
    pollfd p[2] = {{open ? out : -1, POLLIN, 0}, {pidfd, POLLIN, 0}};
    int ready = ::poll(p, 2, 200);
    if (ready < 0 && errno != EINTR) return ErrnoStatus("waiting for the section", errno);
    if (open && (p[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = ::read(out, buf, sizeof(buf));
      if (n > 0) ctx.progress->Log(absl::string_view(buf, static_cast<size_t>(n)));
      if (n == 0) open = false;
      continue;  // drain before looking at the exit
    }
    if (p[1].revents & POLLIN) {
      // Whatever is still buffered, without blocking on writers that live on.
      ::fcntl(out, F_SETFL, O_NONBLOCK);
      for (ssize_t n; open && (n = ::read(out, buf, sizeof(buf))) > 0;) {
        ctx.progress->Log(absl::string_view(buf, static_cast<size_t>(n)));
      }
      return absl::OkStatus();
    }
  }
}

namespace {

// Whether `path` resolves to something in the build root (resolved as the
// container would, inside it).
bool InRoot(int root_fd, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how)));
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// --nv/--rocm: the host's driver files and the caller's GPUs, chosen as a
// run chooses them (gpu_selection.h), with the grant's environment and the
// libraries' directory on LD_LIBRARY_PATH (Apptainer's build does the same).
// A build's root is what the build writes, so a bind needs its mount point
// there already (prepare_bind_root.cc): a driver file whose place the image
// lacks (nvidia-smi in an image without it) is left out, with a warning
// naming it, rather than an empty placeholder left in the image.
absl::Status AddGpus(BuildContext& ctx, int root_fd, launch::LaunchSpec& spec) {
  const v1::BuildRequest& r = *ctx.request;
  if (!r.nv() && !r.rocm()) return absl::OkStatus();
  if (ctx.gpus == nullptr) {
    return absl::UnimplementedError("--nv/--rocm: this daemon has no GPU support");
  }
  gpu::GpuRequest request;
  request.nv = r.nv();
  request.rocm = r.rocm();
  request.env.assign(r.env().begin(), r.env().end());
  const Caller& c = ctx.caller;
  ASSIGN_OR_RETURN(gpu::GpuGrant grant, ctx.gpus->Prepare(request, {c.uid, c.gid, c.groups}));
  std::vector<std::string> missing;
  std::erase_if(grant.devices.files, [&](const launch::BindSpec& b) {
    if (InRoot(root_fd, b.destination)) return false;
    missing.push_back(b.destination);
    return true;
  });
  if (!missing.empty()) {
    ctx.progress->Warning(absl::StrCat("--nv/--rocm: not bound in this build, the image has no ",
                                       absl::StrJoin(missing, ", ")));
  }
  for (const auto& [name, value] : grant.env) spec.env.push_back(absl::StrCat(name, "=", value));
  if (grant.library_path) spec.env.push_back("LD_LIBRARY_PATH=/.singularity.d/libs");
  gpu::ApplyGrant(std::move(grant), spec);
  return absl::OkStatus();
}

// -B/--bind and --mount: each source opened with the caller's rights (as a
// run's binds are), so a build shows %post nothing its caller could not
// read. The destination must already be in the root: a mount point made
// for the bind would stay in the image, so a missing one is an error that
// names the fix rather than a placeholder left behind.
absl::Status AddUserBinds(BuildContext& ctx, int root_fd, launch::LaunchSpec& spec) {
  const Caller& c = ctx.caller;
  const image::CallerCreds creds{c.uid, c.gid, c.groups};
  for (const v1::BuildBind& b : ctx.request->binds()) {
    const std::string what = absl::StrCat("--bind ", b.source(), ":", b.destination());
    auto destination = launch::CleanContainerPath(b.destination());
    if (!destination.ok()) return Annotate(destination.status(), what);
    const std::string path = absl::StrCat("/", *destination);
    if (!InRoot(root_fd, path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": ", path,
          " is not in the build's root; berth makes no mount point there (it would stay in the "
          "image): bind to a path the base has, or make it in %setup ($APPTAINER_ROOTFS",
          path, ")"));
    }
    auto fd = image::OpenPathAsCaller(creds, b.source());
    if (!fd.ok()) return Annotate(fd.status(), what);
    spec.binds.push_back({*std::move(fd), b.source(), path, b.read_only()});
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> BuildEnvironment(const BuildContext& ctx) {
  std::vector<std::string> env = {absl::StrCat("PATH=", kPath), "LANG=C", "HOME=/root", "USER=root",
                                  "LOGNAME=root"};
  for (const std::string& kv : ctx.request->env()) {
    std::string name = kv.substr(0, kv.find('='));
    std::string lower = absl::AsciiStrToLower(name);
    bool proxy = absl::EndsWith(lower, "_proxy");
    if ((proxy || name == "TERM") && kv.find('=') != std::string::npos) env.push_back(kv);
  }
  return env;
}

absl::Status RunHostScript(BuildContext& ctx, const ScriptSection& section,
                           const std::string& rootfs_path) {
  ASSIGN_OR_RETURN(std::vector<std::string> argv,
                   deffile::SectionCommand(section.name, *section.script, kScriptPath));
  HostProcessSpec spec;
  spec.what = absl::StrCat("%", section.name);
  ASSIGN_OR_RETURN(spec.program, OpenFile("/bin/sh", O_PATH));
  spec.argv = std::move(argv);
  spec.env = BuildEnvironment(ctx);
  if (!rootfs_path.empty()) {
    spec.env.push_back(absl::StrCat("APPTAINER_ROOTFS=", rootfs_path));
    spec.env.push_back(absl::StrCat("SINGULARITY_ROOTFS=", rootfs_path));
  }
  ASSIGN_OR_RETURN(UniqueFd out, ScriptStdio(section.body, spec.fds));
  ASSIGN_OR_RETURN(int status,
                   RunHostProcess(ctx, std::move(spec), ctx.cwd ? ctx.cwd.get() : -1, out.get()));
  if (status != 0) return ExitStatusError(ctx, section, status);
  return absl::OkStatus();
}

absl::StatusOr<int> RunHostProcess(BuildContext& ctx, HostProcessSpec spec, int cwd_fd, int out) {
  if (cwd_fd >= 0) {
    int cwd = ::fcntl(cwd_fd, F_DUPFD_CLOEXEC, 0);
    if (cwd < 0) return ErrnoStatus("dup", errno);
    spec.cwd.Reset(cwd);
  }
  ApplyCaller(ctx.caller, spec);
  ASSIGN_OR_RETURN(HostProcess process, StartHostProcess(std::move(spec)));
  ctx.staging->RecordProcess(process.pid());
  RETURN_IF_ERROR(Relay(ctx, out, process.pidfd()));
  return process.Wait();
}

absl::Status RunContainerScript(BuildContext& ctx, const ScriptSection& section, int rootfs_fd,
                                const std::vector<std::string>& extra_env) {
  ASSIGN_OR_RETURN(std::vector<std::string> argv,
                   deffile::SectionCommand(section.name, *section.script, kScriptPath));
  launch::LaunchSpec spec;
  // The launcher takes the root by this descriptor, never by its path in
  // the staging directory (the caller's --tmpdir, theirs to swap).
  spec.image_root = absl::StrCat("/proc/self/fd/", rootfs_fd);
  // %test checks the image as it will run, read-only as Apptainer's; with
  // --writable-tmpfs its writes go to a discarded tmpfs layer over the root.
  const bool test = section.name == "test";
  spec.writable_root = !test;
  if (test && ctx.request->writable_tmpfs()) {
    uint64_t mib = ctx.config != nullptr ? ctx.config->writable_tmpfs_default_mib : 64;
    spec.writable_tmpfs_bytes = static_cast<int64_t>(mib) << 20;
  }
  const Caller& c = ctx.caller;
  // A read-only root gets generated account files merged from the root's
  // own: read here with the caller's rights, since the staged tree is theirs
  // (a hard link there to a host file must not be read as root).
  if (!spec.writable_root) {
    auto accounts = image::ReadAccountFilesAsCaller({c.uid, c.gid, c.groups}, rootfs_fd);
    if (!accounts.ok()) return Annotate(accounts.status(), "the build's root");
    spec.image_passwd = std::move(accounts->passwd);
    spec.image_group = std::move(accounts->group);
  }
  spec.identity.uid = c.uid;
  spec.identity.gid = c.gid;
  spec.identity.groups = c.groups;
  spec.identity.user_name = c.name.empty() ? absl::StrCat(c.uid) : c.name;
  spec.identity.home = "/root";
  spec.fakeroot = true;
  spec.fakeroot_uid_map = c.uid_map;
  spec.fakeroot_gid_map = c.gid_map;
  spec.system_mounts.tmp = false;
  spec.system_mounts.etc_files = false;
  spec.system_mounts.minimal_dev = true;
  for (const char* file : {"/etc/resolv.conf", "/etc/hosts"}) {
    auto fd = OpenFile(file, O_PATH);
    if (!fd.ok()) continue;
    spec.binds.push_back({std::move(*fd), file, file, /*read_only=*/true});
  }
  spec.cwd = "/";
  spec.argv = std::move(argv);
  spec.env = BuildEnvironment(ctx);
  spec.env.insert(spec.env.end(), extra_env.begin(), extra_env.end());
  RETURN_IF_ERROR(AddGpus(ctx, rootfs_fd, spec));
  RETURN_IF_ERROR(AddUserBinds(ctx, rootfs_fd, spec));
  spec.cgroup_dirs = c.cgroup_dirs;
  spec.umask = 022;
  ASSIGN_OR_RETURN(UniqueFd out, ScriptStdio(section.body, spec.fds));
  auto container = launch::Launch(std::move(spec));
  if (!container.ok()) {
    return Annotate(container.status(),
                    absl::StrCat("starting the container for ", Where(ctx, section)));
  }
  ctx.staging->RecordProcess(container->pid());
  RETURN_IF_ERROR(Relay(ctx, out.get(), container->pidfd()));
  ASSIGN_OR_RETURN(launch::ExitStatus exit, container->Wait());
  if (exit.ShellStatus() != 0) return ExitStatusError(ctx, section, exit.ShellStatus());
  return absl::OkStatus();
}

}  // namespace berth::daemon::build
