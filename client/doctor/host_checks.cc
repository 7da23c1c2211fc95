#include "client/doctor/host_checks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proto/doctor_check.h"

namespace berth::client::doctor {
namespace {

using rpc::MakeCheck;

std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool HasFilesystem(const std::string& filesystems, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(filesystems, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    if (!fields.empty() && fields.back() == name) return true;
  }
  return false;
}

v1::DoctorCheck FilesystemCheck(const std::string& filesystems, const std::string& name,
                                const std::string& use, const std::string& fix) {
  if (HasFilesystem(filesystems, name)) {
    return MakeCheck("kernel", name, v1::DOCTOR_OK, absl::StrCat(name, " is available: ", use));
  }
  return MakeCheck("kernel", name, v1::DOCTOR_ERROR,
                   absl::StrCat("no ", name, " in /proc/filesystems: ", use), fix);
}

v1::DoctorCheck UserNamespaceCheck(const HostPaths& paths) {
  std::string text = ReadText(paths.proc + "/sys/user/max_user_namespaces").value_or("0");
  int max = 0;
  (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &max);
  std::optional<std::string> debian =
      ReadText(paths.proc + "/sys/kernel/unprivileged_userns_clone");
  bool unprivileged = !debian || absl::StripAsciiWhitespace(*debian) == "1";
  if (max > 0 && unprivileged) {
    return MakeCheck("kernel", "user namespaces", v1::DOCTOR_OK,
                     absl::StrCat("enabled (max_user_namespaces ", max, ")"));
  }
  return MakeCheck("kernel", "user namespaces", v1::DOCTOR_WARNING,
                   "user namespaces are off: no --fakeroot, --userns or user-mode berthd",
                   "sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1");
}

v1::DoctorCheck FuseDeviceCheck(const HostPaths& paths) {
  std::string dev = paths.dev + "/fuse";
  if (::access(dev.c_str(), R_OK | W_OK) == 0) {
    return MakeCheck("kernel", "/dev/fuse", v1::DOCTOR_OK, dev + " is usable by you");
  }
  return MakeCheck(
      "kernel", "/dev/fuse", v1::DOCTOR_WARNING,
      absl::StrCat(dev, ": ", std::strerror(errno), ": a user-mode berthd cannot read images"),
      "modprobe fuse; chmod 0666 /dev/fuse");
}

v1::DoctorCheck LoopCheck(const HostPaths& paths) {
  std::string dev = paths.dev + "/loop-control";
  if (std::filesystem::exists(dev)) {
    return MakeCheck("kernel", "loop devices", v1::DOCTOR_OK, dev + " exists");
  }
  return MakeCheck("kernel", "loop devices", v1::DOCTOR_ERROR,
                   dev + " is missing: the system berthd cannot mount images with the kernel",
                   "modprobe loop (or set [images] kernel_squashfs = \"never\")");
}

// cgroup v2: the controllers this process's cgroup offers its children.
v1::DoctorCheck CgroupCheck(const HostPaths& paths) {
  std::string root = paths.sys + "/fs/cgroup";
  if (std::optional<std::string> all = ReadText(root + "/cgroup.controllers")) {
    std::string own = ReadText(paths.proc + "/self/cgroup").value_or("0::/");
    std::string rel(absl::StripAsciiWhitespace(absl::StripPrefix(own, "0::")));
    std::string mine = ReadText(absl::StrCat(root, rel, "/cgroup.controllers")).value_or(*all);
    std::string detail =
        absl::StrCat("cgroup v2; controllers here: ", absl::StripAsciiWhitespace(mine));
    for (const char* needed : {"cpu", "memory", "pids"}) {
      if (!absl::StrContains(absl::StrCat(" ", mine, " "), absl::StrCat(" ", needed, " "))) {
        return MakeCheck("kernel", "cgroups", v1::DOCTOR_WARNING,
                         absl::StrCat(detail, " (no ", needed, ": no limits on it)"),
                         "delegate it: systemd's Delegate=yes, or +" + std::string(needed) +
                             " in the parent's cgroup.subtree_control");
      }
    }
    return MakeCheck("kernel", "cgroups", v1::DOCTOR_OK, detail);
  }
  if (ReadText(paths.proc + "/cgroups")) {
    return MakeCheck("kernel", "cgroups", v1::DOCTOR_WARNING,
                     "cgroup v1 (legacy hierarchy): resource limits for root only",
                     "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2");
  }
  return MakeCheck("kernel", "cgroups", v1::DOCTOR_WARNING, "no cgroup filesystem",
                   "mount cgroup2 on /sys/fs/cgroup");
}

}  // namespace

std::vector<v1::DoctorCheck> KernelChecks(const HostPaths& paths) {
  std::string filesystems = ReadText(paths.proc + "/filesystems").value_or("");
  return {
      UserNamespaceCheck(paths),
      FilesystemCheck(filesystems, "overlay", "--writable-tmpfs and overlays", "modprobe overlay"),
      FilesystemCheck(filesystems, "squashfs", "the system berthd mounts images with it",
                      "modprobe squashfs (or set [images] kernel_squashfs = \"never\")"),
      FilesystemCheck(filesystems, "fuse", "user-mode berthd and kernel_squashfs = \"never\"",
                      "modprobe fuse"),
      FuseDeviceCheck(paths),
      LoopCheck(paths),
      CgroupCheck(paths),
  };
}

v1::DoctorCheck SlurmCheck(const HostPaths& paths) {
  const std::string& dir = paths.slurm_conf_dir;
  if (!std::filesystem::exists(dir + "/slurm.conf")) {
    return MakeCheck("slurm", "plugin", v1::DOCTOR_OK, "no Slurm on this node (" + dir + ")");
  }
  std::vector<std::string> stacks = {dir + "/plugstack.conf"};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/plugstack.conf.d", ec)) {
    stacks.push_back(entry.path().string());
  }
  for (const std::string& stack : stacks) {
    std::optional<std::string> text = ReadText(stack);
    if (text && absl::StrContains(*text, "berth")) {
      return MakeCheck("slurm", "plugin", v1::DOCTOR_OK, "berth's SPANK plugin is in " + stack);
    }
  }
  return MakeCheck("slurm", "plugin", v1::DOCTOR_WARNING,
                   "Slurm runs here but no plugstack.conf loads berth's plugin",
                   "install the berthd package (it puts " + dir +
                       "/plugstack.conf.d/berth.conf in place), or add its `required "
                       "/usr/lib/berth/slurm/berth_spank.so` line to " +
                       dir + "/plugstack.conf");
}

}  // namespace berth::client::doctor
