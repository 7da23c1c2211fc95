#include "client/action/action_flags.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/action/bind_spec.h"
#include "client/cli_log.h"
#include "client/env_flags.h"
#include "common/status_macros.h"

extern char** environ;

namespace berth::client {
namespace {

absl::StatusOr<std::string> CurrentDirectory() {
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf) == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot determine the working directory: ", std::strerror(errno)));
  }
  return std::string(buf);
}

absl::StatusOr<std::vector<std::string>> ReadEnvFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("--env-file ", path, ": ", std::strerror(errno)));
  }
  std::vector<std::string> lines;
  size_t total = 0;
  for (std::string line; std::getline(in, line);) {
    total += line.size();
    if (total > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat("--env-file ", path, ": larger than 1 MiB"));
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string Absolute(const std::string& path, const std::string& cwd) {
  return path.empty() || path.front() == '/' ? path : absl::StrCat(cwd, "/", path);
}

void AddFd(v1::RunRequest& request, int fd, uint32_t& next_index, std::vector<int>& seen) {
  if (std::find(seen.begin(), seen.end(), fd) != seen.end()) return;
  if (::fcntl(fd, F_GETFD) < 0) return;  // not open: nothing to pass
  seen.push_back(fd);
  auto* m = request.add_fds();
  m->set_handoff_index(next_index++);
  m->set_container_fd(fd);
}

// --nv, --rocm and CDI devices (daemon/gpu/ decides what they give).
void AddGpuFlags(CLI::App& cmd, ActionFlags& f) {
  cmd.add_flag("--nv", f.nv, "NVIDIA GPUs: the host's driver libraries and the job's GPUs");
  // Apptainer's --nvccli runs nvidia-container-cli; berthd finds the same
  // driver files itself (docs/compat.md), so it is --nv.
  cmd.add_flag("--nvccli", f.nv, "")->group("");
  cmd.add_flag("--no-nv", f.no_nv, "no NVIDIA GPUs, even where the node always gives them");
  cmd.add_flag("--rocm", f.rocm, "AMD GPUs: the host's ROCm files and the job's GPUs");
  cmd.add_flag("--no-rocm", f.no_rocm, "no AMD GPUs, even where the node always gives them");
  cmd.add_option("--device", f.devices, "CDI devices: vendor.com/class=name[,...]");
  cmd.add_option("--cdi-dirs", f.cdi_dirs, "CDI spec directories instead of /etc/cdi,/var/run/cdi")
      ->delimiter(',');
}

absl::Status ApplyGpuDefaults(const CLI::App& cmd, ActionFlags& f) {
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--nv", "NV", f.nv));
  if (!f.nv) RETURN_IF_ERROR(BoolFromEnv(cmd, "--nvccli", "NVCCLI", f.nv));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-nv", "NO_NV", f.no_nv));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--rocm", "ROCM", f.rocm));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-rocm", "NO_ROCM", f.no_rocm));
  if (cmd.count("--device") == 0) {
    if (const char* v = EnvForm("DEVICE"); v != nullptr && *v != '\0') f.devices = {v};
  }
  if (cmd.count("--cdi-dirs") == 0) {
    if (const char* v = EnvForm("CDI_DIRS"); v != nullptr && *v != '\0') {
      f.cdi_dirs = absl::StrSplit(v, ',', absl::SkipEmpty());
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AddActionFlags(CLI::App& cmd, ActionFlags& f) {
  cmd.add_option("-B,--bind", f.binds, "bind host paths: src[:dst[:ro|rw]],...");
  cmd.add_option("--mount", f.mounts, "a bind as Apptainer's --mount: type=bind,src=A,dst=B[,ro]");
  cmd.add_flag("-c,--contain", f.contain, "minimal /dev, empty /tmp, /var/tmp and home");
  cmd.add_flag("-C,--containall", f.containall,
               "--contain, plus PID/IPC namespaces and --cleanenv");
  cmd.add_flag("-e,--cleanenv", f.cleanenv, "do not pass the host environment");
  cmd.add_option("--env", f.env, "set variables in the container: K=V[,K=V]");
  cmd.add_option("--env-file", f.env_files, "read K=V lines from files");
  cmd.add_option("-H,--home", f.home, "home directory: src[:dst]");
  cmd.add_flag("--no-home", f.no_home, "do not mount the home directory");
  cmd.add_option("--no-mount", f.no_mount,
                 "disable mounts: proc,sys,dev,devpts,home,tmp,hostfs,cwd,bind-paths,/PATH")
      ->delimiter(',');
  cmd.add_option("--cwd,--pwd", f.pwd, "working directory inside the container");
  cmd.add_option("--app", f.app, "a SCIF app of the image (/scif/apps/NAME)");
  cmd.add_flag("-w,--writable", f.writable, "write into a sandbox directory (as yourself)");
  cmd.add_flag("--writable-tmpfs", f.writable_tmpfs, "writable, discarded overlay on the image");
  cmd.add_option("-o,--overlay", f.overlays,
                 "overlay a directory (writable, or :ro) or squashfs image");
  cmd.add_option("--tmpfs-size", f.tmpfs_size_mib, "size of --writable-tmpfs in MiB");
  cmd.add_flag("-f,--fakeroot", f.fakeroot, "be root inside (mapped to you outside)");
  cmd.add_flag("-u,--userns", f.userns, "run in a user namespace");
  cmd.add_flag("-i,--ipc", f.ipc, "new IPC namespace");
  cmd.add_flag("-p,--pid", f.pid, "new PID namespace (--containall implies it)");
  cmd.add_flag("--no-pid", f.no_pid, "share the host PID namespace (the default), even with -C");
  cmd.add_option("--hostname", f.hostname, "hostname inside (implies a UTS namespace)");
  cmd.add_flag("--no-init", f.no_init, "no init process as PID 1");
  cmd.add_flag("--no-eval", f.no_eval,
               "take --env, --env-file and APPTAINERENV_ values literally, unexpanded");
  cmd.add_flag("--no-umask", f.no_umask, "umask 0022 in the container, not the caller's");
  cmd.add_flag("--compat", f.compat,
               "as OCI runtimes: --containall --no-init --no-umask --no-eval --writable-tmpfs");
  cmd.add_option("-S,--scratch", f.scratch, "a private, writable scratch directory at this path")
      ->delimiter(',');
  cmd.add_option("-W,--workdir", f.workdir,
                 "host directory for -S scratch and, with --contain, /tmp, /var/tmp and home");
  cmd.add_option("--keep-fd", f.keep_fds, "pass this open descriptor into the container");
  cmd.add_flag("--sharens", f.sharens,
               "share one container with the other processes of the same parent");
  cmd.add_flag("--no-sharens", f.no_sharens,
               "a container of its own, even among the ranks of a Slurm job step");
  cmd.add_option("--mpi", f.mpi, "bind the node's MPI stack STACK (mpi.d) into it")->expected(0, 1);
  AddGpuFlags(cmd, f);
  AddLimitFlags(cmd, f.limits);
  AddNetworkFlags(cmd, f.network);
  AddParityFlags(cmd, f.parity);
}

absl::Status ApplyEnvironmentDefaults(const CLI::App& cmd, ActionFlags& f) {
  // As Apptainer: the environment's binds are added to those of -B, not
  // replaced by them.
  for (const char* name : {"BIND", "BINDPATH"}) {
    if (const char* v = EnvForm(name); v != nullptr && *v != '\0') f.binds.push_back(v);
  }
  // APPTAINER_MOUNT: one spec per line, added to --mount's as BIND is to -B's.
  if (const char* v = EnvForm("MOUNT"); v != nullptr && *v != '\0') {
    for (absl::string_view line : absl::StrSplit(v, '\n', absl::SkipWhitespace())) {
      f.mounts.emplace_back(line);
    }
  }
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--contain", "CONTAIN", f.contain));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--containall", "CONTAINALL", f.containall));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--cleanenv", "CLEANENV", f.cleanenv));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-home", "NO_HOME", f.no_home));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--writable", "WRITABLE", f.writable));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--writable-tmpfs", "WRITABLE_TMPFS", f.writable_tmpfs));
  if (cmd.count("--overlay") == 0) {
    if (const char* v = EnvForm("OVERLAY"); v != nullptr && *v != '\0') {
      f.overlays = {v};
    }
  }
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--fakeroot", "FAKEROOT", f.fakeroot));
  // Apptainer's EnvKeys for -u, -i and -p: X and UNSHARE_X, either one.
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--userns", "USERNS", f.userns));
  if (!f.userns) RETURN_IF_ERROR(BoolFromEnv(cmd, "--userns", "UNSHARE_USERNS", f.userns));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--ipc", "IPC", f.ipc));
  if (!f.ipc) RETURN_IF_ERROR(BoolFromEnv(cmd, "--ipc", "UNSHARE_IPC", f.ipc));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--pid", "PID", f.pid));
  if (!f.pid) RETURN_IF_ERROR(BoolFromEnv(cmd, "--pid", "UNSHARE_PID", f.pid));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-umask", "NO_UMASK", f.no_umask));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--compat", "COMPAT", f.compat));
  StringFromEnv(cmd, "--workdir", "WORKDIR", f.workdir);
  if (cmd.count("--scratch") == 0) {
    for (const char* name : {"SCRATCH", "SCRATCHDIR"}) {
      const char* v = EnvForm(name);
      if (v == nullptr || *v == '\0') continue;
      f.scratch = absl::StrSplit(v, ',', absl::SkipEmpty());
      break;
    }
  }
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-pid", "NO_PID", f.no_pid));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-init", "NO_INIT", f.no_init));
  if (!f.no_init) RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-init", "NOSHIMINIT", f.no_init));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-eval", "NO_EVAL", f.no_eval));
  // Only the shell verb has --shell; elsewhere APPTAINER_SHELL means nothing.
  if (cmd.get_option_no_throw("--shell") != nullptr)
    StringFromEnv(cmd, "--shell", "SHELL", f.shell);
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--sharens", "SHARENS", f.sharens));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--no-sharens", "NO_SHARENS", f.no_sharens));
  StringFromEnv(cmd, "--home", "HOME", f.home);
  for (const char* name : {"CWD", "TARGET_CWD", "PWD", "TARGET_PWD"}) {
    if (f.pwd.empty()) StringFromEnv(cmd, "--cwd", name, f.pwd);
  }
  StringFromEnv(cmd, "--hostname", "HOSTNAME", f.hostname);
  StringFromEnv(cmd, "--app", "APPNAME", f.app);
  StringFromEnv(cmd, "--app", "APP", f.app);
  StringFromEnv(cmd, "--mpi", "MPI", f.mpi);
  // A bare --mpi asks for berth.conf's default stack.
  if (cmd.count("--mpi") > 0 && f.mpi.empty()) f.mpi = "default";
  if (cmd.count("--env-file") == 0) {
    if (const char* v = EnvForm("ENV_FILE"); v != nullptr && *v != '\0') {
      f.env_files = absl::StrSplit(v, ',', absl::SkipEmpty());
    }
  }
  if (cmd.count("--no-mount") == 0) {
    if (const char* v = EnvForm("NO_MOUNT"); v != nullptr && *v != '\0') {
      f.no_mount = absl::StrSplit(v, ',', absl::SkipEmpty());
    }
  }
  // Apptainer's values; an absolute path names one of berth.conf's
  // default binds. Anything else is ignored, with Apptainer's warning.
  for (const std::string& m : f.no_mount) {
    static constexpr const char* kKnown[] = {"proc", "sys",    "dev", "devpts",    "home",
                                             "tmp",  "hostfs", "cwd", "bind-paths"};
    if (absl::StartsWith(m, "/") ||
        std::find(std::begin(kKnown), std::end(kKnown), m) != std::end(kKnown)) {
      continue;
    }
    log::Warning(absl::StrCat("Ignoring unknown mount type '", m, "'"));
  }
  RETURN_IF_ERROR(ApplyLimitEnvironment(cmd, f.limits));
  RETURN_IF_ERROR(ApplyNetworkEnvironment(cmd, f.network));
  RETURN_IF_ERROR(ApplyParityFlags(cmd, f.parity, f.binds));
  return ApplyGpuDefaults(cmd, f);
}

absl::StatusOr<v1::RunRequest> BuildRunRequest(v1::Action action, const std::string& image,
                                               const std::vector<std::string>& args,
                                               const ActionFlags& f) {
  if (absl::StartsWith(image, "docker://") || absl::StartsWith(image, "oras://") ||
      absl::StartsWith(image, "library://")) {
    return absl::UnimplementedError(absl::StrCat(
        "image '", image, "': registry images are not supported yet; use a local .sif file"));
  }
  ASSIGN_OR_RETURN(std::string cwd, CurrentDirectory());
  v1::RunRequest r;
  r.set_action(action);
  // instance://NAME names a running instance, not a file.
  r.set_image(absl::StartsWith(image, "instance://") ? image : Absolute(image, cwd));
  for (const auto& a : args) r.add_args(a);
  for (char** e = environ; *e != nullptr; ++e) r.add_env(*e);
  r.set_cwd(cwd);
  for (const std::string& value : f.binds) {
    ASSIGN_OR_RETURN(std::vector<BindEntry> entries, ParseBinds(value, cwd));
    for (const BindEntry& b : entries) {
      auto* bind = r.add_binds();
      bind->set_source(b.source);
      bind->set_destination(b.destination);
      bind->set_read_only(b.read_only);
      bind->set_image_src(b.image_src);
      bind->set_image_id(b.image_id);
    }
  }
  for (const std::string& value : f.mounts) {
    ASSIGN_OR_RETURN(BindEntry b, ParseMount(value, cwd));
    auto* bind = r.add_binds();
    bind->set_source(b.source);
    bind->set_destination(b.destination);
    bind->set_read_only(b.read_only);
    bind->set_image_src(b.image_src);
    bind->set_image_id(b.image_id);
  }
  const bool containall = f.containall || f.compat;
  // As Apptainer: the caller's umask, or 0022 with --no-umask.
  mode_t mask = ::umask(0);
  ::umask(mask);
  r.set_umask(f.no_umask || f.compat ? 022 : mask);
  r.set_contain(f.contain || containall);
  r.set_containall(containall);
  r.set_cleanenv(f.cleanenv || containall);
  for (const auto& e : f.env) r.add_env_flags(e);
  for (const auto& file : f.env_files) {
    ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadEnvFile(Absolute(file, cwd)));
    for (auto& l : lines) r.add_env_file_lines(std::move(l));
  }
  r.set_home(f.home);
  r.set_no_home(f.no_home);
  for (const auto& m : f.no_mount) r.add_no_mount(m);
  r.set_pwd(f.pwd);
  r.set_app(f.app);
  r.set_writable(f.writable);
  r.set_writable_tmpfs(f.writable_tmpfs || f.compat);
  r.set_tmpfs_size_mib(f.tmpfs_size_mib);
  // PATH[:ro],... (Apptainer's string slice), each path made absolute here.
  for (absl::string_view o :
       absl::StrSplit(absl::StrJoin(f.overlays, ","), ',', absl::SkipEmpty())) {
    bool ro = absl::EndsWith(o, ":ro");
    std::string path(ro ? o.substr(0, o.size() - 3) : o);
    if (path.empty()) return absl::InvalidArgumentError("--overlay: an empty path");
    r.add_overlay(absl::StrCat(Absolute(path, cwd), ro ? ":ro" : ""));
  }
  r.set_fakeroot(f.fakeroot);
  r.set_userns(f.userns);
  r.set_ipc(f.ipc || containall);
  r.set_pid(f.pid || containall);
  r.set_no_pid(f.no_pid);
  r.set_hostname(f.hostname);
  r.set_no_init(f.no_init || f.compat);
  r.set_shell(f.shell);
  r.set_no_eval(f.no_eval || f.compat);
  for (const std::string& s : f.scratch) r.add_scratch(s);
  r.set_workdir(Absolute(f.workdir, cwd));
  if (f.sharens && f.no_sharens) {
    return absl::InvalidArgumentError("--sharens and --no-sharens contradict each other");
  }
  r.set_share(f.sharens ? v1::SHARE_PARENT : f.no_sharens ? v1::SHARE_NEVER : v1::SHARE_DEFAULT);
  r.set_mpi(f.mpi);
  r.set_nv(f.nv);
  r.set_no_nv(f.no_nv);
  r.set_rocm(f.rocm);
  r.set_no_rocm(f.no_rocm);
  for (const auto& d : f.devices) r.add_devices(d);
  for (const auto& d : f.cdi_dirs) r.add_cdi_dirs(Absolute(d, cwd));
  RETURN_IF_ERROR(AddLimits(f.limits, cwd, r));
  AddNetwork(f.network, r);
  return r;
}

// Declared in run_session.h; kept here beside the request it completes.
void AddPassedDescriptors(v1::RunRequest& request, bool tty, const std::vector<int>& keep_fds,
                          std::vector<int>& handoff) {
  uint32_t next = 0;
  std::vector<int> seen;
  // With a terminal the daemon provides a pty for 0/1; stderr still goes
  // straight to the caller's when it was redirected away from the terminal.
  if (!tty) {
    AddFd(request, 0, next, seen);
    AddFd(request, 1, next, seen);
  }
  if (!tty || !::isatty(2)) AddFd(request, 2, next, seen);
  // Slurm's mpi/pmi2 hands ranks an inherited socket named by PMI_FD.
  int pmi_fd;
  if (const char* v = std::getenv("PMI_FD");
      v != nullptr && absl::SimpleAtoi(v, &pmi_fd) && pmi_fd > 2) {
    AddFd(request, pmi_fd, next, seen);
  }
  for (int fd : keep_fds) {
    if (fd > 2) AddFd(request, fd, next, seen);
  }
  handoff = seen;
}

}  // namespace berth::client
