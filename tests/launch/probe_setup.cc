#include "tests/launch/probe_setup.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/launch/cgroups.h"

namespace launch_probe {
namespace launch = berth::daemon::launch;
using berth::UniqueFd;

namespace {

// Opens `path` as the container's user (setfsuid/setfsgid and its groups),
// so the kernel checks the caller's own permissions, as berthd will.
UniqueFd OpenAsCaller(const launch::Identity& id, bool switch_ids, const std::string& path) {
  if (switch_ids) {
    if (setgroups(id.groups.size(), id.groups.data()) != 0) Die("setgroups");
    setfsgid(id.gid);
    setfsuid(id.uid);
  }
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  int err = errno;
  if (switch_ids) {  // back to root for the launch itself
    setfsuid(0);
    setfsgid(0);
    setgroups(0, nullptr);
  }
  if (fd < 0) Die(absl::StrCat("opening ", path, " as the caller: ", std::strerror(err)));
  return UniqueFd(fd);
}

// Reads /etc/passwd and /etc/group directly (fgetpwent), not through NSS:
// loading NSS modules would dominate the probe's own start time, which is
// not the launcher's (berthd resolves names once, in a running process).
launch::Identity IdentityOf(const std::string& name) {
  launch::Identity id;
  bool found = false;
  if (FILE* f = fopen("/etc/passwd", "re")) {
    while (passwd* pw = fgetpwent(f)) {
      if (name.empty() ? pw->pw_uid != getuid() : name != pw->pw_name) continue;
      id.uid = pw->pw_uid;
      id.gid = pw->pw_gid;
      id.user_name = pw->pw_name;
      id.home = pw->pw_dir;
      id.gecos = pw->pw_gecos;
      found = true;
      break;
    }
    fclose(f);
  }
  if (!found)
    Die(absl::StrCat("user ", name.empty() ? absl::StrCat(getuid()) : name, " not in /etc/passwd"));
  id.shell = "/bin/sh";
  if (FILE* f = fopen("/etc/group", "re")) {
    while (group* gr = fgetgrent(f)) {
      bool member = gr->gr_gid == id.gid;
      for (char** m = gr->gr_mem; *m != nullptr && !member; ++m) member = id.user_name == *m;
      if (!member) continue;
      if (gr->gr_gid != id.gid) id.groups.push_back(gr->gr_gid);
      id.group_names.emplace_back(gr->gr_gid, gr->gr_name);
    }
    fclose(f);
  }
  return id;
}

void NoMount(Options& o, const std::string& list) {
  launch::SystemMounts& m = o.settings.system_mounts;
  for (absl::string_view p : absl::StrSplit(list, ',')) {
    if (p == "proc")
      m.proc = false;
    else if (p == "sys")
      m.sys = false;
    else if (p == "dev")
      m.dev = false;
    else if (p == "tmp")
      m.tmp = false;
    else if (p == "etc")
      m.etc_files = false;
    else if (p == "home")
      o.no_home = true;
    else if (p == "cwd")
      o.no_cwd = true;
    else
      Die(absl::StrCat("unknown --no-mount ", p));
  }
}

int Number(const char* flag, const std::string& text) {
  int64_t n;
  if (!absl::SimpleAtoi(text, &n)) Die(absl::StrCat(flag, ": not a number: ", text));
  return static_cast<int>(n);
}

UniqueFd Dup(const UniqueFd& fd) {
  return UniqueFd(fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
}

launch::BindSpec ToBindSpec(const OpenedBind& b) {
  launch::BindSpec spec;
  spec.source = Dup(b.fd);
  spec.source_path = b.source;
  spec.destination = b.destination;
  spec.read_only = b.read_only;
  return spec;
}

}  // namespace

void Die(const std::string& msg, int code) {
  std::fprintf(stderr, "launch_probe: %s\n", msg.c_str());
  std::exit(code);
}

void ParseArgs(int argc, char** argv, Options& o) {
  launch::LaunchSpec& s = o.settings;
  int i = 1;
  auto value = [&](const char* flag) -> std::string {
    if (i + 1 >= argc) Die(absl::StrCat(flag, " needs a value"), 2);
    return argv[++i];
  };
  for (; i < argc && argv[i][0] == '-'; ++i) {
    std::string a = argv[i];
    if (a == "--bind")
      o.bind_args.push_back(value("--bind"));
    else if (a == "--contain")
      s.contain = true;
    else if (a == "--minimal-dev")
      s.system_mounts.minimal_dev = true;
    else if (a == "--fakeroot")
      s.fakeroot = true;
    else if (a == "--userns")
      s.user_namespace = true;
    else if (a == "--no-pid")
      s.pid_namespace = false;
    else if (a == "--ipc")
      s.ipc_namespace = true;
    else if (a == "--hostname")
      s.hostname = value("--hostname");
    else if (a == "--no-init")
      s.no_init = true;
    else if (a == "--writable-tmpfs")
      s.writable_tmpfs_bytes = Number("--writable-tmpfs", value("--writable-tmpfs"));
    else if (a == "--cwd")
      o.cwd = value("--cwd");
    else if (a == "--home")
      o.home_src = value("--home");
    else if (a == "--home-dest")
      o.home_dst = value("--home-dest");
    else if (a == "--no-home")
      o.no_home = true;
    else if (a == "--no-mount")
      NoMount(o, value("--no-mount"));
    else if (a == "--fd")
      o.keep_fds.push_back(Number("--fd", value("--fd")));
    else if (a == "--pty")
      o.pty = true;
    else if (a == "--time")
      o.timing = true;
    else if (a == "--cgroup")
      s.cgroup_dirs.push_back(value("--cgroup"));
    else if (a == "--cgroup-of-self")
      o.cgroup_of_self = true;
    else if (a == "--env")
      s.env.push_back(value("--env"));
    else if (a == "--as-user")
      o.as_user = value("--as-user");
    else if (a == "--user-mode")
      o.user_mode = true;
    else if (a == "--malloc-threads")
      o.malloc_threads = Number("--malloc-threads", value("--malloc-threads"));
    else if (a == "--ballast-mib")
      o.ballast_mib = Number("--ballast-mib", value("--ballast-mib"));
    else if (a == "--repeat")
      o.repeat = Number("--repeat", value("--repeat"));
    else if (a == "--parallel")
      o.parallel = Number("--parallel", value("--parallel"));
    else
      Die(absl::StrCat("unknown option ", a), 2);
  }
  if (i < argc) o.rootfs = argv[i++];
  if (i < argc && std::string(argv[i]) == "--") ++i;
  for (; i < argc; ++i) o.argv.push_back(argv[i]);
  if (o.rootfs.empty() || o.argv.empty()) {
    Die("usage: launch_probe [options] ROOTFS [--] CMD [ARG...]", 2);
  }
}

Setup MakeSetup(const Options& o) {
  Setup setup;
  bool as_caller = !o.as_user.empty();
  setup.identity = IdentityOf(o.as_user);
  std::string host_home = setup.identity.home;
  if (o.settings.fakeroot) setup.identity.home = "/root";  // Apptainer's fakeroot $HOME
  for (const std::string& arg : o.bind_args) {
    std::vector<std::string> parts = absl::StrSplit(arg, ':');
    OpenedBind b;
    b.source = parts[0];
    b.destination = parts.size() > 1 ? parts[1] : parts[0];
    b.read_only = parts.size() > 2 && parts[2] == "ro";
    b.fd = OpenAsCaller(setup.identity, as_caller, b.source);
    setup.binds.push_back(std::move(b));
  }
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) Die("getcwd");
  // Apptainer: --contain neither binds the cwd nor starts in it.
  bool bind_cwd = !o.no_cwd && !o.settings.contain;
  setup.cwd = !o.cwd.empty() ? o.cwd : bind_cwd ? cwd : setup.identity.home;
  if (!o.no_home) {
    setup.has_home = true;
    setup.home.source = o.home_src.empty() ? host_home : o.home_src;
    setup.home.destination = o.home_dst.empty() ? setup.identity.home : o.home_dst;
    setup.identity.home = setup.home.destination;
    if (!o.settings.contain)
      setup.home.fd = OpenAsCaller(setup.identity, as_caller, setup.home.source);
  }
  if (bind_cwd) setup.binds.push_back({OpenAsCaller(setup.identity, as_caller, cwd), cwd, cwd});
  return setup;
}

launch::LaunchSpec BuildSpec(const Options& o, const Setup& setup, int pty_slave) {
  const launch::LaunchSpec& set = o.settings;
  launch::LaunchSpec spec;
  spec.image_root = o.rootfs;
  spec.identity = setup.identity;
  spec.pid_namespace = set.pid_namespace;
  spec.ipc_namespace = set.ipc_namespace;
  spec.hostname = set.hostname;
  spec.user_namespace = set.user_namespace;
  spec.fakeroot = set.fakeroot;
  spec.contain = set.contain;
  spec.no_init = set.no_init;
  spec.writable_tmpfs_bytes = set.writable_tmpfs_bytes;
  spec.system_mounts = set.system_mounts;
  spec.cgroup_dirs = set.cgroup_dirs;
  spec.affinity = set.affinity;
  spec.rlimits = set.rlimits;
  spec.umask = set.umask;
  spec.cwd = setup.cwd;
  spec.argv = o.argv;
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              absl::StrCat("HOME=", setup.identity.home)};
  spec.env.insert(spec.env.end(), set.env.begin(), set.env.end());
  if (setup.has_home) spec.home = ToBindSpec(setup.home);  // no source with --contain
  bool cwd_bound = !o.no_cwd && !o.settings.contain;
  size_t user_binds = setup.binds.size() - (cwd_bound ? 1 : 0);
  for (size_t i = 0; i < user_binds; ++i) spec.binds.push_back(ToBindSpec(setup.binds[i]));
  if (cwd_bound) spec.cwd_bind = ToBindSpec(setup.binds.back());
  if (pty_slave >= 0) {
    // As berthd does for a terminal client: a fresh pty, its slave as the
    // payload's stdio and controlling terminal.
    for (int fd : {0, 1, 2})
      spec.fds.emplace_back(UniqueFd(fcntl(pty_slave, F_DUPFD_CLOEXEC, 3)), fd);
    spec.controlling_tty = 0;
  } else {
    for (int fd : {0, 1, 2}) spec.fds.emplace_back(UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 3)), fd);
  }
  for (int fd : o.keep_fds) spec.fds.emplace_back(UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 3)), fd);
  if (o.cgroup_of_self) {
    auto dirs = launch::CgroupDirsOf(getpid());
    if (!dirs.ok()) Die(std::string(dirs.status().message()));
    spec.cgroup_dirs = *dirs;
  }
  return spec;
}

}  // namespace launch_probe
