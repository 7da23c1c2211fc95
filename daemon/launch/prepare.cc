#include "daemon/launch/prepare.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/account_files.h"
#include "daemon/launch/cgroups.h"
#include "daemon/launch/id_maps.h"
#include "daemon/launch/image_idmap.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/mount_api.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::launch {
namespace {

constexpr size_t kMaxArgBytes = 2 << 20;  // the kernel's default ARG_MAX budget
constexpr size_t kMaxAccountFile = 4 << 20;
constexpr int kMaxFdTarget = 1 << 20;  // fs.nr_open's default
constexpr int64_t kSessionBytes = 16 << 20;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string ReadSmallFile(const char* path) {
  auto fd = OpenFile(path, O_RDONLY);
  if (!fd.ok()) return "";
  char buf[256];
  ssize_t n = ::read(fd->get(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

absl::Status CheckStrings(absl::string_view what, const std::vector<std::string>& strings,
                          size_t& total) {
  for (const std::string& s : strings) {
    if (s.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
    }
    total += s.size() + 1;
  }
  return absl::OkStatus();
}

// `joining`: a process for a live container, which needs no image root.
absl::Status ValidateSpec(const LaunchSpec& spec, bool joining = false) {
  if (!joining && (spec.image_root.empty() || spec.image_root[0] != '/')) {
    return absl::InvalidArgumentError("image root must be an absolute path");
  }
  bool has_payload = !spec.hold || joining;
  if (has_payload && (spec.argv.empty() || spec.argv[0].empty())) {
    return absl::InvalidArgumentError("empty argv");
  }
  size_t total = 0;
  RETURN_IF_ERROR(CheckStrings("argv", spec.argv, total));
  RETURN_IF_ERROR(CheckStrings("environment", spec.env, total));
  if (total > kMaxArgBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("argv and environment are ", total, " bytes, more than ", kMaxArgBytes));
  }
  if (spec.hostname.size() > 64 || spec.hostname.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("invalid hostname");
  }
  std::set<int> targets;
  for (const auto& [fd, target] : spec.fds) {
    if (!fd.valid()) return absl::InvalidArgumentError("invalid descriptor to pass");
    if (target < 0 || target >= kMaxFdTarget || !targets.insert(target).second) {
      return absl::InvalidArgumentError(absl::StrCat("invalid or repeated fd number ", target));
    }
  }
  if (spec.controlling_tty >= 0 && !targets.count(spec.controlling_tty)) {
    return absl::InvalidArgumentError("the controlling terminal is not among the descriptors");
  }
  if (spec.writable_tmpfs_bytes && *spec.writable_tmpfs_bytes <= 0) {
    return absl::InvalidArgumentError("writable tmpfs size must be positive");
  }
  for (const std::string& dir : spec.cgroup_dirs) {
    if (dir.empty() || dir[0] != '/') return absl::InvalidArgumentError("cgroup dir not absolute");
  }
  return absl::OkStatus();
}

// A writable --overlay of a plain user's is made by a helper of their ids
// in a user namespace of its own (child_rootfs.cc OverlayHelper); not for
// root, nor in user mode, where the daemon's own user namespace already
// holds capabilities only over the user's ids.
bool NeedsOverlayHelper(const LaunchSpec& spec) {
  return spec.overlays.upper.has_value() && spec.identity.uid != 0 &&
         GetHostFacts().initial_user_namespace;
}

bool HasOverlays(const LaunchSpec& spec) {
  return spec.overlays.upper.has_value() || !spec.overlays.lowers.empty();
}

// overlayfs splits lowerdir on ':' and honours backslash escapes.
std::string EscapeLayer(absl::string_view path) {
  std::string out;
  for (char c : path) {
    if (c == ':' || c == '\\' || c == ',') out += '\\';
    out += c;
  }
  return out;
}

// The session tmpfs: "staging" (the overlay's top lower layer) and, with
// --writable-tmpfs, "upper" and "work". Returns the staging directory.
absl::StatusOr<UniqueFd> MakeSession(const LaunchSpec& spec, PreparedLaunch& p) {
  bool writable = spec.writable_tmpfs_bytes.has_value();
  int64_t size = writable ? std::max(*spec.writable_tmpfs_bytes, kSessionBytes) : kSessionBytes;
  // The overlay helper (child_rootfs.cc), of the caller's ids, walks from
  // the session's root to the layers: it may search, not list.
  const char* mode = NeedsOverlayHelper(spec) ? "0711" : "0700";
  ASSIGN_OR_RETURN(p.session_fd,
                   NewDetachedMount("tmpfs", {{"mode", mode}, {"size", absl::StrCat(size)}},
                                    MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  std::vector<const char*> dirs = {"staging"};
  if (writable) dirs.insert(dirs.end(), {"upper", "work"});
  UniqueFd staging;
  for (const char* dir : dirs) {
    if (::mkdirat(p.session_fd.get(), dir, 0755) != 0) {
      return ErrnoStatus(absl::StrCat("session ", dir), errno);
    }
    UniqueFd fd(::openat(p.session_fd.get(), dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(absl::StrCat("session ", dir), errno);
    // The merged "/" shows the topmost layer's root: make it the image's.
    if (dir != std::string("work")) RETURN_IF_ERROR(CopyRootAttributes(p.image_fd.get(), fd.get()));
    if (staging.get() < 0) staging = std::move(fd);
  }
  return staging;
}

// /etc/passwd and /etc/group with the caller, and --dns's /etc/resolv.conf,
// shadowing the image's.
absl::Status StageAccountFiles(const LaunchSpec& spec, int image_fd, int staging_fd) {
  std::string passwd, group;
  if (spec.image_passwd.has_value() || spec.image_group.has_value()) {
    passwd = spec.image_passwd.value_or("");
    group = spec.image_group.value_or("");
  } else {
    ASSIGN_OR_RETURN(passwd, ReadImageFile(image_fd, "etc/passwd", kMaxAccountFile));
    ASSIGN_OR_RETURN(group, ReadImageFile(image_fd, "etc/group", kMaxAccountFile));
  }
  ASSIGN_OR_RETURN(AccountFiles files,
                   MakeAccountFiles(passwd, group, spec.identity, spec.fakeroot));
  RETURN_IF_ERROR_CTX(StageShadowFile(image_fd, staging_fd, "etc/passwd", files.passwd),
                      "/etc/passwd");
  RETURN_IF_ERROR_CTX(StageShadowFile(image_fd, staging_fd, "etc/group", files.group),
                      "/etc/group");
  // --dns: the host's file is then not bound over it (prepare_mounts.cc).
  if (spec.resolv_conf.empty()) return absl::OkStatus();
  return Annotate(StageShadowFile(image_fd, staging_fd, "etc/resolv.conf", spec.resolv_conf),
                  "/etc/resolv.conf (--dns)");
}

std::string FdPath(int fd) {
  return absl::StrCat("/proc/self/fd/", fd);
}

// With --overlay every layer lives on the session tmpfs: the staging
// directory, and the caller's trees and a clone of the image's own mount,
// which the child attaches at "layerN" there (overlayfs takes layers only
// from mounts in its namespace) and which go with the session when that is
// detached. Without a writable overlay of the caller's, the child makes the
// overlay and each layer is a /proc/self/fd link. With one, a helper of the
// caller's ids in a user namespace of its own makes it (child_rootfs.cc
// OverlayHelper), from a copy of the child's mount namespace where the
// descriptors' mounts are not: there the layers are paths relative to the
// session tmpfs, resolved with the caller's rights.
absl::Status PlanOverlayLayers(LaunchSpec& spec, UniqueFd staging, PreparedLaunch& p) {
  ChildPlan& plan = p.plan;
  OverlaySet& o = spec.overlays;
  const bool helper = NeedsOverlayHelper(spec);
  std::vector<std::string> lowers = {helper ? "staging" : FdPath(staging.get())};
  p.owned.push_back(std::move(staging));
  // `sub`: the layer's directory in the tree ("" for its root).
  auto attach = [&](const UniqueFd& tree, const UniqueFd& dir,
                    const char* sub) -> absl::StatusOr<std::string> {
    std::string name = absl::StrCat("layer", plan.overlay_trees.size());
    if (::mkdirat(p.session_fd.get(), name.c_str(), 0700) != 0) {
      return ErrnoStatus(absl::StrCat("session ", name), errno);
    }
    plan.overlay_trees.push_back({tree.get(), name});
    if (helper) return *sub == '\0' ? name : absl::StrCat(name, "/", sub);
    return FdPath(dir.valid() ? dir.get() : tree.get());
  };
  for (const OverlayLayer& layer : o.lowers) {
    ASSIGN_OR_RETURN(std::string path,
                     attach(layer.tree, layer.dir, layer.dir.valid() ? "upper" : ""));
    lowers.push_back(std::move(path));
  }
  ASSIGN_OR_RETURN(UniqueFd image, CloneDetached(p.image_fd.get(), "", /*recursive=*/false));
  if (p.image_idmap.valid()) {
    RETURN_IF_ERROR_CTX(SetMountAttributes(image.get(), 0, 0, false, p.image_idmap.get()),
                        "idmapping the image");
  }
  ASSIGN_OR_RETURN(std::string image_path, attach(image, UniqueFd(), ""));
  lowers.push_back(std::move(image_path));
  p.owned.push_back(std::move(image));
  plan.overlay_options.push_back({"lowerdir", absl::StrJoin(lowers, ":")});
  if (o.upper) {
    size_t tree = plan.overlay_trees.size();
    ASSIGN_OR_RETURN(std::string upper, attach(o.upper->tree, o.upper->dir, "upper"));
    plan.overlay_options.push_back({"upperdir", upper});
    plan.overlay_options.push_back(
        {"workdir", helper ? absl::StrCat("layer", tree, "/work") : FdPath(o.work.get())});
    // The caller's directory is theirs to change behind our back: nothing
    // in it may redirect a lookup or take data from another layer. Outside
    // the initial user namespace overlayfs keeps its attributes as user.*.
    plan.overlay_options.push_back({"redirect_dir", "nofollow"});
    plan.overlay_options.push_back({"metacopy", "off"});
    plan.overlay_options.push_back({"index", "off"});
    if (helper) plan.overlay_options.push_back({"userxattr", ""});
    plan.overlay_as_caller = helper;
  }
  return absl::OkStatus();
}

// The root overlay, made by the child from the session's paths.
absl::Status PlanRootOverlay(LaunchSpec& spec, UniqueFd staging, PreparedLaunch& p) {
  bool writable = spec.writable_tmpfs_bytes.has_value();
  std::string self = absl::StrCat("/proc/self/fd/", p.session_fd.get());
  ChildPlan& plan = p.plan;
  plan.session_fd = p.session_fd.get();
  plan.session_path = self;
  // An idmapped image is a clone of its own (image_idmap.h), not the
  // shared mount's path; so is a build's root, given as a descriptor's
  // link to a mount of the daemon's namespace, which overlayfs would not
  // take from the child's (sections.cc: never its path in the caller's
  // staging directory).
  if (HasOverlays(spec) || p.image_idmap.valid() ||
      absl::StartsWith(spec.image_root, "/proc/self/fd/")) {
    RETURN_IF_ERROR(PlanOverlayLayers(spec, std::move(staging), p));
  } else {
    plan.overlay_options.push_back(
        {"lowerdir", absl::StrCat(self, "/staging:", EscapeLayer(spec.image_root))});
  }
  if (writable) {
    plan.overlay_options.push_back({"upperdir", absl::StrCat(self, "/upper")});
    plan.overlay_options.push_back({"workdir", absl::StrCat(self, "/work")});
  }
  // Outside the initial user namespace trusted.* xattrs are out of reach.
  if (!GetHostFacts().initial_user_namespace) plan.overlay_options.push_back({"userxattr", ""});
  writable |= spec.overlays.upper.has_value();
  plan.overlay_attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (writable ? 0 : MOUNT_ATTR_RDONLY);
  return absl::OkStatus();
}

// Which launches see the image idmapped, and with which maps (image_idmap.h):
// --fakeroot with the container's own maps; a plain user with a writable
// layer with image root as the caller. Only the image mount of a squashfs
// the caller opened (bytes they could read) in system mode, never a build's
// root nor a directory that merely lies on a squashfs (the host's files).
absl::Status PlanImageIdmap(const LaunchSpec& spec, PreparedLaunch& p) {
  if (!GetHostFacts().initial_user_namespace || spec.writable_root ||
      !spec.image_from_caller_squashfs) {
    return absl::OkStatus();
  }
  const ChildPlan& plan = p.plan;
  std::string uid_map, gid_map;
  if (spec.fakeroot) {
    uid_map = plan.uid_map;
    gid_map = plan.gid_map;
  } else if (plan.uid != 0 && (spec.writable_tmpfs_bytes || spec.overlays.upper)) {
    uid_map = PlainUserImageMap(plan.uid);
    gid_map = PlainUserImageMap(plan.gid);
  } else {
    return absl::OkStatus();
  }
  if (KernelRefusedIdmap() || !ImageMayBeIdmapped(p.image_fd.get())) return absl::OkStatus();
  // Without a user namespace (user.max_user_namespaces = 0, say) a plain
  // run goes on as before: only the owners it shows differ.
  auto ns = MakeMappedUserNamespace(uid_map, gid_map);
  if (!ns.ok()) {
    spdlog::warn("image files keep their host owners: {}", std::string(ns.status().message()));
    return absl::OkStatus();
  }
  if (KernelIdmapsImage(p.image_fd.get(), ns->get())) p.image_idmap = std::move(*ns);
  return absl::OkStatus();
}

// The layer roots, generated /etc files and mount points the daemon made
// on the session tmpfs take the image root's owner as the idmap shows it.
absl::Status ChownSession(const PreparedLaunch& p) {
  if (!p.image_idmap.valid()) return absl::OkStatus();
  for (const char* dir : {"staging", "upper"}) {
    UniqueFd fd(::openat(p.session_fd.get(), dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(absl::StrCat("session ", dir), errno);
    }
    RETURN_IF_ERROR(
        GiveImageRootOwner(fd.get(), absl::StrCat("session ", dir), p.plan.uid, p.plan.gid));
  }
  return absl::OkStatus();
}

absl::Status PlanRootFilesystem(LaunchSpec& spec, PreparedLaunch& p, UniqueFd staging);

absl::Status PrepareRootFilesystem(LaunchSpec& spec, PreparedLaunch& p) {
  ASSIGN_OR_RETURN(p.image_fd, OpenFile(spec.image_root, O_PATH | O_DIRECTORY));
  RETURN_IF_ERROR(PlanImageIdmap(spec, p));
  ASSIGN_OR_RETURN(UniqueFd staging, MakeSession(spec, p));
  RETURN_IF_ERROR(PlanRootFilesystem(spec, p, std::move(staging)));
  return Annotate(ChownSession(p), "giving the session's files the image root's owner");
}

absl::Status PlanRootFilesystem(LaunchSpec& spec, PreparedLaunch& p, UniqueFd staging) {
  p.writable_root = spec.writable_root;
  if (spec.overlays.upper && spec.writable_tmpfs_bytes) {
    return absl::InvalidArgumentError("a writable --overlay takes no --writable-tmpfs");
  }
  if (spec.writable_root) {
    if (spec.writable_tmpfs_bytes) {
      return absl::InvalidArgumentError("a writable root takes no --writable-tmpfs");
    }
    if (HasOverlays(spec)) return absl::InvalidArgumentError("a writable root takes no --overlay");
    // A writable sandbox (its account files read as the caller, run_prepare.cc)
    // gets the caller's entries bound over its own where it has both files;
    // a build edits the image's own.
    if (spec.image_passwd.value_or("") != "" && spec.image_group.value_or("") != "") {
      RETURN_IF_ERROR(StageAccountFiles(spec, p.image_fd.get(), staging.get()));
    } else if (!spec.resolv_conf.empty()) {
      return absl::InvalidArgumentError(
          "--dns: a writable sandbox without /etc/passwd and /etc/group takes its own "
          "/etc/resolv.conf; write the nameservers there");
    }
    RETURN_IF_ERROR(PlanMounts(spec, staging.get(), p));
    ASSIGN_OR_RETURN(bool bound, PlanBindRoot(staging.get(), p));
    if (!bound) return absl::InternalError("the writable root could not be planned");
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(StageAccountFiles(spec, p.image_fd.get(), staging.get()));
  RETURN_IF_ERROR(PlanMounts(spec, staging.get(), p));
  // A writable root needs the overlay's upper layer; otherwise the image's
  // own mount is the faster root (prepare_bind_root.cc).
  if (!spec.writable_tmpfs_bytes.has_value() && !HasOverlays(spec)) {
    ASSIGN_OR_RETURN(bool bound, PlanBindRoot(staging.get(), p));
    if (bound) return absl::OkStatus();
  }
  return PlanRootOverlay(spec, std::move(staging), p);
}

// A working directory in /proc is how a leaked descriptor becomes a cwd
// outside the container (CVE-2024-21626); the child also refuses magic links.
absl::Status PrepareCwd(const LaunchSpec& spec, ChildPlan& plan) {
  auto cwd = CleanContainerPath(spec.cwd, /*allow_root=*/true);
  if (!cwd.ok()) return Annotate(cwd.status(), "working directory");
  if (IsUnderProc(*cwd)) {
    return absl::InvalidArgumentError(
        absl::StrCat("working directory ", spec.cwd, " is under /proc (refused)"));
  }
  plan.cwd = absl::StrCat("/", *cwd);
  return absl::OkStatus();
}

const char* RlimitName(int resource) {
  static constexpr const char* kNames[] = {
      "RLIMIT_CPU",      "RLIMIT_FSIZE", "RLIMIT_DATA",   "RLIMIT_STACK",
      "RLIMIT_CORE",     "RLIMIT_RSS",   "RLIMIT_NPROC",  "RLIMIT_NOFILE",
      "RLIMIT_MEMLOCK",  "RLIMIT_AS",    "RLIMIT_LOCKS",  "RLIMIT_SIGPENDING",
      "RLIMIT_MSGQUEUE", "RLIMIT_NICE",  "RLIMIT_RTPRIO", "RLIMIT_RTTIME"};
  return resource >= 0 && resource < 16 ? kNames[resource] : "an unknown resource limit";
}

// Each cgroup.procs write costs the child an RCU grace period (about 8 ms
// here, bench/cgroup_join.sh), so the cgroup v2 directory is entered at birth
// with CLONE_INTO_CGROUP; only v1 hierarchies still cost a write. (Callers
// leave out the hierarchies the child already is in: CgroupDirsToJoin.)
absl::Status PrepareCgroups(const LaunchSpec& spec, PreparedLaunch& p) {
  for (const std::string& dir : spec.cgroup_dirs) {
    // Opened by the daemon: cgroup v2 checks the opener's credentials.
    auto opened = OpenFile(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (!opened.ok()) return Annotate(opened.status(), "joining the cgroup");
    UniqueFd dir_fd = std::move(*opened);
    struct statfs fs {};
    if (::fstatfs(dir_fd.get(), &fs) != 0) return ErrnoStatus(dir, errno);
    if (fs.f_type == CGROUP2_SUPER_MAGIC && p.plan.clone_into_cgroup_fd < 0) {
      p.plan.clone_into_cgroup_fd = dir_fd.get();
      p.owned.push_back(std::move(dir_fd));
      continue;
    }
    std::string procs = absl::StrCat(dir, "/cgroup.procs");
    auto fd = OpenFile(procs, O_WRONLY);
    if (!fd.ok()) return Annotate(fd.status(), "joining the cgroup");
    p.plan.cgroup_procs_fds.push_back(fd->get());
    p.plan.cgroup_what.push_back(absl::StrCat("joining cgroup ", dir));
    p.owned.push_back(std::move(*fd));
  }
  return absl::OkStatus();
}

absl::Status PrepareProcess(LaunchSpec& spec, PreparedLaunch& p) {
  ChildPlan& plan = p.plan;
  for (const auto& [fd, target] : spec.fds) {
    plan.fds.push_back({fd.get(), target});
    plan.max_target = std::max(plan.max_target, target);
  }
  // The child closes the gaps between targets in order.
  std::sort(plan.fds.begin(), plan.fds.end(),
            [](const FdPlacement& a, const FdPlacement& b) { return a.target < b.target; });
  plan.fd_scratch.assign(plan.fds.size(), -1);
  plan.controlling_tty = spec.controlling_tty;
  for (const auto& [resource, limit] : spec.rlimits) {
    plan.rlimits.emplace_back(resource, limit);
    plan.rlimit_what.push_back(absl::StrCat("setting ", RlimitName(resource)));
  }
  if (spec.affinity) {
    plan.set_affinity = true;
    plan.affinity = *spec.affinity;
  }
  if (spec.umask) {
    plan.set_umask = true;
    plan.umask = *spec.umask;
  }
  return PrepareCgroups(spec, p);
}

// The user namespace's maps: single ids, or the fakeroot ranges, checked.
absl::Status PrepareIdMaps(const LaunchSpec& spec, ChildPlan& plan) {
  bool ranges = !spec.fakeroot_uid_map.empty() || !spec.fakeroot_gid_map.empty();
  if (ranges && !spec.fakeroot) {
    return absl::InvalidArgumentError("id ranges are for fakeroot launches only");
  }
  ASSIGN_OR_RETURN(plan.uid_map,
                   IdMapText(spec.fakeroot_uid_map, plan.inside_uid, plan.uid, "uid"));
  ASSIGN_OR_RETURN(plan.gid_map,
                   IdMapText(spec.fakeroot_gid_map, plan.inside_gid, plan.gid, "gid"));
  // newgidmap's rule: a namespace given subordinate gids may call setgroups
  // (apt and dnf drop to their own users with it); one that maps only the
  // caller may not shed the caller's groups.
  plan.deny_setgroups = spec.fakeroot_gid_map.size() <= 1;
  return absl::OkStatus();
}

absl::Status PrepareIdentity(const LaunchSpec& spec, ChildPlan& plan) {
  const HostFacts& facts = GetHostFacts();
  plan.user_namespace = spec.user_namespace || spec.fakeroot;
  plan.fakeroot = spec.fakeroot;
  plan.can_setgroups = facts.can_setgroups;
  plan.last_cap = facts.last_cap;
  plan.uid = spec.identity.uid;
  plan.gid = spec.identity.gid;
  plan.groups = spec.identity.groups;
  plan.inside_uid = spec.fakeroot ? 0 : spec.identity.uid;
  plan.inside_gid = spec.fakeroot ? 0 : spec.identity.gid;
  return Annotate(PrepareIdMaps(spec, plan), "the user namespace");
}

// execvp's search, decided here so the child only tries paths.
std::vector<std::string> ExecCandidates(const LaunchSpec& spec) {
  const std::string& name = spec.argv[0];
  if (name.find('/') != std::string::npos) return {name};
  std::string path = kDefaultPath;
  for (const std::string& kv : spec.env) {
    if (absl::StartsWith(kv, "PATH=")) {
      path = kv.substr(5);  // the first one, as getenv() would see it
      break;
    }
  }
  std::vector<std::string> out;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    out.push_back(absl::StrCat(dir.empty() ? "." : dir, "/", name));
  }
  return out;
}

void PrepareExec(LaunchSpec& spec, ChildPlan& plan) {
  // Without a PID namespace the init is what ends the container's processes
  // with it (child_init.cc): --no-init only applies to PID 1 of a namespace.
  plan.run_init = !(spec.pid_namespace && spec.no_init);
  if (spec.hold) {
    // The holder is all init: no payload to exec.
    plan.hold = plan.run_init = true;
    return;
  }
  plan.exec_candidates = ExecCandidates(spec);
  plan.exec_what = absl::StrCat("exec ", spec.argv[0]);
  for (const std::string& a : spec.argv) plan.argv.push_back(a.c_str());
  plan.argv.push_back(nullptr);
  for (const std::string& e : spec.env) plan.envp.push_back(e.c_str());
  plan.envp.push_back(nullptr);
}

absl::Status PrepareControl(PreparedLaunch& p) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return ErrnoStatus("socketpair", errno);
  }
  p.channel_parent.Reset(pair[0]);
  p.channel_child.Reset(pair[1]);
  // Each message then carries its sender's pid in our PID namespace, which
  // is how Launch() learns the payload's pid.
  int on = 1;
  if (::setsockopt(pair[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
    return ErrnoStatus("SO_PASSCRED", errno);
  }
  p.plan.channel_fd = pair[1];
  if (!p.plan.run_init) return absl::OkStatus();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  p.status_read.Reset(pipe_fds[0]);
  p.status_write.Reset(pipe_fds[1]);
  p.plan.status_fd = pipe_fds[1];
  return absl::OkStatus();
}

}  // namespace

const HostFacts& GetHostFacts() {
  static const HostFacts facts = [] {
    HostFacts f;
    std::string uid_map = ReadSmallFile("/proc/self/uid_map");
    std::vector<std::string> fields = absl::StrSplit(uid_map, ' ', absl::SkipEmpty());
    f.initial_user_namespace = fields.size() >= 3 && fields[0] == "0" && fields[1] == "0" &&
                               absl::StripAsciiWhitespace(fields[2]) == "4294967295";
    f.can_setgroups = absl::StartsWith(ReadSmallFile("/proc/self/setgroups"), "allow");
    int last = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadSmallFile("/proc/sys/kernel/cap_last_cap")),
                         &last)) {
      f.last_cap = last;
    }
    return f;
  }();
  return facts;
}

absl::StatusOr<std::unique_ptr<PreparedLaunch>> PrepareLaunch(LaunchSpec& spec) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  if (spec.fakeroot) spec.user_namespace = true;
  if (!spec.hostname.empty()) spec.uts_namespace = true;
  if (spec.netns.valid()) spec.net_namespace = true;
  auto p = std::make_unique<PreparedLaunch>();
  RETURN_IF_ERROR(PrepareCwd(spec, p->plan));
  // Before the root: an idmapped image takes the container's maps.
  RETURN_IF_ERROR(PrepareIdentity(spec, p->plan));
  RETURN_IF_ERROR_CTX(PrepareRootFilesystem(spec, *p), "preparing the root filesystem");
  RETURN_IF_ERROR(PrepareProcess(spec, *p));
  RETURN_IF_ERROR(PlanHooks(spec, p->plan, p->hooks));
  PrepareExec(spec, p->plan);
  RETURN_IF_ERROR(PrepareControl(*p));
  p->plan.clone_flags = CLONE_NEWNS | (spec.pid_namespace ? CLONE_NEWPID : 0) |
                        (spec.ipc_namespace ? CLONE_NEWIPC : 0) |
                        (spec.uts_namespace ? CLONE_NEWUTS : 0) |
                        (spec.net_namespace && !spec.netns.valid() ? CLONE_NEWNET : 0);
  p->plan.pid_namespace = spec.pid_namespace;
  p->plan.hostname = spec.hostname;
  p->plan.loopback_up = spec.net_namespace && !spec.netns.valid();
  p->plan.netns_fd = spec.netns.get();
  return p;
}

absl::StatusOr<std::unique_ptr<PreparedLaunch>> PrepareJoin(LaunchSpec& spec,
                                                            const LiveNamespaces& ns) {
  spec.hold = false;
  RETURN_IF_ERROR(ValidateSpec(spec, /*joining=*/true));
  // Root with capabilities is only ever root of the container's own user
  // namespace: a fakeroot process never joins a container without one (it
  // would make a namespace of its own, or be the daemon's root).
  if (spec.fakeroot && !ns.user.valid()) {
    return absl::FailedPreconditionError(
        "--fakeroot: the container to join has no user namespace of its own");
  }
  auto p = std::make_unique<PreparedLaunch>();
  ChildPlan& plan = p->plan;
  RETURN_IF_ERROR(PrepareCwd(spec, plan));
  RETURN_IF_ERROR(PrepareProcess(spec, *p));
  // The container's user namespace, if any, exists: no maps to write.
  spec.user_namespace = ns.user.valid();
  spec.fakeroot_uid_map.clear();
  spec.fakeroot_gid_map.clear();
  RETURN_IF_ERROR(PrepareIdentity(spec, plan));
  // Only children enter a PID namespace: with one, an init-like parent
  // stays outside and forks the payload into it.
  spec.pid_namespace = ns.pid.valid();
  if (spec.pid_namespace) spec.no_init = false;
  PrepareExec(spec, plan);
  RETURN_IF_ERROR(PrepareControl(*p));
  plan.join = true;
  plan.join_ipc_fd = ns.ipc.get();
  plan.join_uts_fd = ns.uts.get();
  plan.join_net_fd = ns.net.get();
  plan.join_pid_fd = ns.pid.get();
  plan.join_mnt_fd = ns.mnt.get();
  plan.join_user_fd = ns.user.get();
  return p;
}

}  // namespace berth::daemon::launch
