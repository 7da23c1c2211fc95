#include "daemon/gpu/cdi_edits.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/gpu/trusted_path.h"

namespace berth::daemon::gpu {
namespace {

using launch::HookSpec;

constexpr int kDefaultHookSeconds = 30;

absl::Status Refuse(const std::string& who, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(who, ": ", why));
}

// The host node a deviceNode names, checked against its type and numbers.
absl::StatusOr<UniqueFd> OpenNode(const CdiDeviceNode& n, const std::string& who, struct stat& st) {
  const std::string& host = n.host_path.empty() ? n.path : n.host_path;
  auto fd = OpenFile(host, O_PATH);
  if (!fd.ok()) return Annotate(fd.status(), absl::StrCat(who, ": device node"));
  if (::fstat(fd->get(), &st) != 0) return ErrnoStatus(host, errno);
  bool chr = S_ISCHR(st.st_mode), blk = S_ISBLK(st.st_mode);
  if ((!chr && !blk) || (n.type == "b" && !blk) || ((n.type == "c" || n.type == "u") && !chr)) {
    return Refuse(who, absl::StrCat(host, " is not the ", n.type == "b" ? "block" : "character",
                                    " device its spec names"));
  }
  if ((n.major && *n.major != major(st.st_rdev)) || (n.minor && *n.minor != minor(st.st_rdev))) {
    return Refuse(who, absl::StrCat(host, " is device ", major(st.st_rdev), ":", minor(st.st_rdev),
                                    ", not the ", n.major.value_or(major(st.st_rdev)), ":",
                                    n.minor.value_or(minor(st.st_rdev)), " its spec names"));
  }
  return fd;
}

int AccessOf(const std::string& permissions) {
  if (permissions.empty()) return R_OK | W_OK;
  return (permissions.find('r') != std::string::npos ? R_OK : 0) |
         (permissions.find('w') != std::string::npos ? W_OK : 0);
}

absl::Status AddDeviceNode(const CdiDeviceNode& n, const std::string& who, GpuGrant& grant) {
  struct stat st;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenNode(n, who, st));
  launch::DeviceSpec d;
  d.node = std::move(fd);
  d.source_path = n.host_path.empty() ? n.path : n.host_path;
  d.destination = n.path;
  d.access = AccessOf(n.permissions);
  d.required = true;
  launch::DeviceSpec::Attributes want{static_cast<mode_t>(n.file_mode.value_or(st.st_mode & 07777)),
                                      n.uid.value_or(st.st_uid), n.gid.value_or(st.st_gid)};
  if (want.mode != (st.st_mode & 07777) || want.uid != st.st_uid || want.gid != st.st_gid) {
    d.make = want;
  }
  grant.devices.nodes.push_back(std::move(d));
  return absl::OkStatus();
}

absl::Status AddMount(const CdiMount& m, const std::string& who, GpuGrant& grant) {
  static const std::set<std::string> kIgnored = {
      "bind",  "rbind",  "nosuid", "nodev",   "exec",     "rw",         "private", "rprivate",
      "slave", "rslave", "shared", "rshared", "relatime", "norelatime", "noatime", "strictatime"};
  if (!m.type.empty() && m.type != "bind" && m.type != "none") {
    return Refuse(who, absl::StrCat("mount type '", m.type, "' of ", m.container_path,
                                    " is not supported (only bind mounts)"));
  }
  launch::BindSpec b;
  for (const std::string& o : m.options) {
    if (o == "ro") {
      b.read_only = true;
    } else if (o == "noexec") {
      b.no_exec = true;
    } else if (!kIgnored.count(o)) {
      return Refuse(who, absl::StrCat("mount option '", o, "' of ", m.container_path,
                                      " is not supported (mounts are nosuid,nodev binds)"));
    }
  }
  auto fd = OpenFile(m.host_path, O_PATH);
  if (!fd.ok()) return Annotate(fd.status(), absl::StrCat(who, ": mount source"));
  b.source = *std::move(fd);
  b.source_path = m.host_path;
  b.destination = m.container_path;
  grant.devices.files.push_back(std::move(b));
  return absl::OkStatus();
}

HookSpec::Stage StageOf(const std::string& name) {
  if (name == "createRuntime") return HookSpec::Stage::kCreateRuntime;
  if (name == "startContainer") return HookSpec::Stage::kStartContainer;
  if (name == "poststart") return HookSpec::Stage::kPoststart;
  if (name == "poststop") return HookSpec::Stage::kPoststop;
  return HookSpec::Stage::kCreateContainer;
}

// A hook the daemon runs is a program run as root for every user: only a
// root-owned binary nobody else can replace (SCE PR #383's rule).
absl::Status AddHook(const CdiHook& h, const std::string& who, const EditContext& ctx,
                     GpuGrant& grant) {
  HookSpec spec;
  spec.stage = StageOf(h.hook_name);
  spec.path = h.path;
  spec.argv = h.args;
  spec.env = h.env;
  spec.timeout_seconds = h.timeout.value_or(kDefaultHookSeconds);
  if (spec.stage != HookSpec::Stage::kStartContainer) {
    auto fd = OpenFile(h.path, O_PATH);
    if (!fd.ok()) return Annotate(fd.status(), absl::StrCat(who, ": ", h.hook_name, " hook"));
    if (ctx.system_mode) {
      RETURN_IF_ERROR_CTX(CheckTrusted(fd->get(), h.path, 0),
                          absl::StrCat(who, ": ", h.hook_name, " hook"));
    }
    spec.binary = *std::move(fd);
  }
  grant.devices.hooks.push_back(std::move(spec));
  return absl::OkStatus();
}

absl::Status AddGroups(const std::vector<uint32_t>& gids, const std::string& who,
                       const EditContext& ctx, GpuGrant& grant) {
  for (uint32_t gid : gids) {
    bool held = gid == ctx.caller_gid ||
                std::count(ctx.caller_groups.begin(), ctx.caller_groups.end(), gid);
    if (!ctx.system_mode && !held) {
      return Refuse(
          who, absl::StrCat("additionalGids ", gid,
                            " cannot be granted by a user-mode daemon (use the system daemon)"));
    }
    if (!held && std::find(grant.extra_groups.begin(), grant.extra_groups.end(), gid) ==
                     grant.extra_groups.end()) {
      grant.extra_groups.push_back(gid);
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyCdiEdits(const CdiEdits& edits, const std::string& who, const EditContext& ctx,
                           GpuGrant& grant) {
  if (edits.intel_rdt) return Refuse(who, "intelRdt edits are not supported by berth");
  if (edits.net_devices) return Refuse(who, "netDevices edits are not supported by berth");
  for (const std::string& kv : edits.env) {
    size_t eq = kv.find('=');
    grant.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  for (const CdiDeviceNode& n : edits.device_nodes) RETURN_IF_ERROR(AddDeviceNode(n, who, grant));
  for (const CdiMount& m : edits.mounts) RETURN_IF_ERROR(AddMount(m, who, grant));
  for (const CdiHook& h : edits.hooks) RETURN_IF_ERROR(AddHook(h, who, ctx, grant));
  return AddGroups(edits.additional_gids, who, ctx, grant);
}

}  // namespace berth::daemon::gpu
