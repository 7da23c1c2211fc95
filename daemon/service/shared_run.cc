#include "daemon/service/shared_run.h"

#include <fcntl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace berth::daemon {
namespace {

std::string Flag(bool on) {
  return on ? "on" : "off";
}

// Every option of the request that changes the container, in a fixed order.
std::vector<std::pair<std::string, std::string>> OptionsOf(const v1::RunRequest& r) {
  std::vector<std::string> binds;
  for (const v1::Bind& b : r.binds()) {
    binds.push_back(absl::StrCat(b.source(), ":", b.destination(), b.read_only() ? ":ro" : "",
                                 b.image_src().empty() ? "" : ":image-src=", b.image_src(),
                                 b.image_id() == 0 ? "" : absl::StrCat(",id=", b.image_id())));
  }
  return {
      {"--bind", absl::StrJoin(binds, ",")},
      {"--contain", Flag(r.contain())},
      {"--containall", Flag(r.containall())},
      {"--home", r.home()},
      {"--no-home", Flag(r.no_home())},
      {"--no-mount", absl::StrJoin(r.no_mount(), ",")},
      {"--writable-tmpfs", Flag(r.writable_tmpfs())},
      {"--overlay", absl::StrJoin(r.overlay(), ",")},
      {"--tmpfs-size", absl::StrCat(r.tmpfs_size_mib())},
      {"--fakeroot", Flag(r.fakeroot())},
      {"--userns", Flag(r.userns())},
      {"--pid", Flag(r.pid())},
      {"--no-pid", Flag(r.no_pid())},
      {"--hostname", r.hostname()},
      {"--uts", Flag(r.uts())},
      {"--net", Flag(r.net() || !r.network().empty())},
      {"--dns", absl::StrJoin(r.dns(), ",")},
      {"--netns-path", r.netns_path()},
      {"--no-init", Flag(r.no_init())},
      {"--scratch", absl::StrJoin(r.scratch(), ",")},
      {"--workdir", r.workdir()},
      {"--mpi", r.mpi()},
      {"the working directory", r.cwd()},
  };
}

}  // namespace

// The holder takes the container's part of the first process's spec.
launch::LaunchSpec HolderSpecOf(launch::LaunchSpec& spec) {
  launch::LaunchSpec h;
  h.image_root = spec.image_root;
  h.image_from_caller_squashfs = spec.image_from_caller_squashfs;
  h.identity = spec.identity;
  h.pid_namespace = spec.pid_namespace;
  h.ipc_namespace = true;
  h.uts_namespace = spec.uts_namespace;
  h.hostname = spec.hostname;
  h.net_namespace = spec.net_namespace;
  if (spec.netns.valid()) h.netns = UniqueFd(::fcntl(spec.netns.get(), F_DUPFD_CLOEXEC, 0));
  h.resolv_conf = spec.resolv_conf;
  h.user_namespace = spec.user_namespace;
  h.fakeroot = spec.fakeroot;
  h.fakeroot_uid_map = spec.fakeroot_uid_map;
  h.fakeroot_gid_map = spec.fakeroot_gid_map;
  h.contain = spec.contain;
  h.writable_tmpfs_bytes = spec.writable_tmpfs_bytes;
  h.overlays = std::move(spec.overlays);
  h.system_mounts = spec.system_mounts;
  h.home = std::move(spec.home);
  h.workdir_tmp = std::move(spec.workdir_tmp);
  h.workdir_var_tmp = std::move(spec.workdir_var_tmp);
  h.scratch_tmpfs = spec.scratch_tmpfs;
  h.binds = std::move(spec.binds);
  h.cwd_bind = std::move(spec.cwd_bind);
  h.private_tmp = true;
  h.hold = true;
  // The holder lives in the first process's cgroups, so Slurm's own
  // cleanup of the step covers it too.
  h.cgroup_dirs = spec.cgroup_dirs;
  h.affinity = spec.affinity;
  h.rlimits = spec.rlimits;
  return h;
}

shared::ShareRequest ShareRequestOf(const v1::RunRequest& request) {
  switch (request.share()) {
    case v1::SHARE_PARENT:
      return shared::ShareRequest::kParent;
    case v1::SHARE_NEVER:
      return shared::ShareRequest::kNever;
    default:
      return shared::ShareRequest::kDefault;
  }
}

shared::ContainerShape ShapeOf(const v1::RunRequest& request, const image::MountLease& lease,
                               const launch::LaunchSpec& spec) {
  shared::ContainerShape shape;
  shape.image_id = lease.digest();
  shape.image = request.image();
  shape.options = OptionsOf(request);
  std::vector<std::string> groups;
  for (gid_t g : spec.identity.groups) groups.push_back(absl::StrCat(g));
  shape.options.emplace_back("the group ids",
                             absl::StrCat(spec.identity.gid, ":", absl::StrJoin(groups, ",")));
  return shape;
}

absl::StatusOr<std::unique_ptr<shared::LiveContainer>> MakeLiveContainer(
    launch::LaunchSpec& spec, std::shared_ptr<image::MountLease> lease) {
  launch::LaunchSpec holder_spec = HolderSpecOf(spec);
  auto holder = launch::Launch(std::move(holder_spec));
  if (!holder.ok()) return holder.status();
  // Launch() took the spec; what OpenLiveNamespaces reads are its flags.
  launch::LaunchSpec flags;
  flags.ipc_namespace = true;
  flags.uts_namespace = spec.uts_namespace || !spec.hostname.empty();
  flags.net_namespace = spec.net_namespace || spec.netns.valid();
  flags.pid_namespace = spec.pid_namespace;
  flags.user_namespace = spec.user_namespace || spec.fakeroot;
  ASSIGN_OR_RETURN(launch::LiveNamespaces ns, launch::OpenLiveNamespaces(*holder, flags));
  return std::make_unique<shared::LiveContainer>(*std::move(holder), std::move(ns),
                                                 std::move(lease));
}

}  // namespace berth::daemon
