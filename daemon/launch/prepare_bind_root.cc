// The container's root without overlayfs: the image's own mount as "/", with
// bind mounts only where the container needs something the image lacks.
//
// Why: a fresh overlayfs per container builds its own dentry and inode for
// every file the container touches, and asks the lower filesystem for
// xattrs on each lookup. That halved warm reads on a kernel squashfs and sent
// one FUSE GETXATTR per file in user mode (docs/benchmarks.md). A clone of the
// shared image mount costs nothing per file.
//
// How: PlanMounts() has already staged, on the session tmpfs, every mount
// point the image lacks and the generated /etc/passwd and /etc/group, at the
// places the image resolves them to. This walks that staging tree beside the
// image:
//   - a staged directory that is also a directory of the image is passed
//     through (the image shows it; its staged content is handled below it);
//   - a staged file that shadows a regular file of the image is bound over
//     it (a file bind from the staging tree);
//   - anything else is new, and its parent directory D is "underlaid": the
//     staging copy of D is bound at D (or is the root, for "/"), with a
//     placeholder for each entry of the image's D, on which that entry is
//     bound back (symlinks are copied instead).
// The result shows exactly the image plus the staged entries, like the
// overlay did. A directory with too many entries to underlay cheaply makes
// the caller use the overlay root instead (PlanBindRoot returns false).
//
// Privilege: the daemon's (open_tree clones of the image mount, writes to the
// session tmpfs). The staging parts are cloned by the child, which is the
// only one that can see the session tmpfs attached (child_rootfs.cc).
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/launch/image_paths.h"
#include "daemon/launch/mount_api.h"
#include "daemon/launch/prepare.h"

namespace berth::daemon::launch {
namespace {

// Beyond this many image entries to bind back, an underlay costs more than the
// overlay it replaces (a bind is ~10 µs to set up and to tear down).
constexpr size_t kMaxImageBinds = 256;

std::string Join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : absl::StrCat(dir, "/", name);
}

absl::StatusOr<std::vector<std::string>> ListDir(int base_fd, const std::string& rel,
                                                 const char* what) {
  int fd = ::openat(base_fd, rel.empty() ? "." : rel.c_str(),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(absl::StrCat(what, " /", rel), errno);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus(absl::StrCat(what, " /", rel), err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoStatus(absl::StrCat(what, " /", rel), err);
  return names;
}

// What the container needs done, decided before anything is changed so that
// an over-budget tree leaves the staging layer as the overlay expects it.
struct Action {
  enum Kind { kBindImage, kBindStaging, kPlaceholderDir, kPlaceholderFile, kCopySymlink };
  Kind kind;
  std::string rel;
};

class BindRootPlanner {
 public:
  BindRootPlanner(int image_fd, int staging_fd) : image_fd_(image_fd), staging_fd_(staging_fd) {}

  // Fills actions_ for the whole tree; root_from_staging() tells how "/" is made.
  absl::Status Plan() {
    ASSIGN_OR_RETURN(StagedDir root, ReadStaged(""));
    root_from_staging_ = root.needs_underlay;
    return root_from_staging_ ? Underlay("", root, /*image_visible=*/false)
                              : PassThrough("", root, /*image_visible=*/true);
  }

  bool root_from_staging() const { return root_from_staging_; }
  // The first directory that had to be underlaid (something new staged in it).
  const std::optional<std::string>& underlaid() const { return underlaid_; }
  bool over_budget() const { return image_binds_ > kMaxImageBinds; }
  const std::vector<Action>& actions() const { return actions_; }

 private:
  enum class Staged { kPassDir, kShadowFile, kNew };

  // A staging directory's entries, each classified once against the image.
  struct StagedDir {
    std::vector<std::pair<std::string, Staged>> entries;  // name, kind
    bool needs_underlay = false;                          // some entry is kNew
  };

  absl::StatusOr<Staged> Classify(const std::string& rel) {
    struct stat staged, image;
    if (::fstatat(staging_fd_, rel.c_str(), &staged, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus(absl::StrCat("staging /", rel), errno);
    }
    if (::fstatat(image_fd_, rel.c_str(), &image, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return Staged::kNew;
      return ErrnoStatus(absl::StrCat("image /", rel), errno);
    }
    if (S_ISDIR(staged.st_mode) && S_ISDIR(image.st_mode)) return Staged::kPassDir;
    if (S_ISREG(staged.st_mode) && S_ISREG(image.st_mode)) return Staged::kShadowFile;
    return Staged::kNew;
  }

  absl::StatusOr<StagedDir> ReadStaged(const std::string& dir) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(staging_fd_, dir, "staging"));
    StagedDir out;
    for (std::string& name : names) {
      ASSIGN_OR_RETURN(Staged kind, Classify(Join(dir, name)));
      out.needs_underlay |= kind == Staged::kNew;
      out.entries.emplace_back(std::move(name), kind);
    }
    return out;
  }

  // `dir` shows (or will show, once bound) the image's directory; staged
  // content below it is bound on top.
  absl::Status PassThrough(const std::string& dir, const StagedDir& staged, bool image_visible) {
    if (!image_visible) Add(Action::kBindImage, dir);
    for (const auto& [name, kind] : staged.entries) {
      std::string rel = Join(dir, name);
      if (kind == Staged::kShadowFile) Add(Action::kBindStaging, rel);
      if (kind == Staged::kPassDir) RETURN_IF_ERROR(Dispatch(rel, /*image_visible=*/true));
    }
    return absl::OkStatus();
  }

  // `dir` shows the staging copy; each image entry it lacks is bound back.
  absl::Status Underlay(const std::string& dir, const StagedDir& staged, bool image_visible) {
    for (const auto& [name, kind] : staged.entries) {
      if (kind == Staged::kNew && !underlaid_) underlaid_ = Join(dir, name);
    }
    if (image_visible) Add(Action::kBindStaging, dir);
    std::set<std::string> staged_names;
    for (const auto& entry : staged.entries) staged_names.insert(entry.first);
    ASSIGN_OR_RETURN(std::vector<std::string> image_names, ListDir(image_fd_, dir, "image"));
    for (const std::string& name : image_names) {
      if (staged_names.count(name)) continue;
      std::string rel = Join(dir, name);
      struct stat st;
      if (::fstatat(image_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus(absl::StrCat("image /", rel), errno);
      }
      if (S_ISLNK(st.st_mode)) {
        Add(Action::kCopySymlink, rel);
        continue;
      }
      Add(S_ISDIR(st.st_mode) ? Action::kPlaceholderDir : Action::kPlaceholderFile, rel);
      Add(Action::kBindImage, rel);
    }
    for (const auto& [name, kind] : staged.entries) {
      if (kind == Staged::kPassDir) RETURN_IF_ERROR(Dispatch(Join(dir, name), false));
    }
    return absl::OkStatus();
  }

  absl::Status Dispatch(const std::string& dir, bool image_visible) {
    if (over_budget()) return absl::OkStatus();
    ASSIGN_OR_RETURN(StagedDir staged, ReadStaged(dir));
    return staged.needs_underlay ? Underlay(dir, staged, image_visible)
                                 : PassThrough(dir, staged, image_visible);
  }

  void Add(Action::Kind kind, const std::string& rel) {
    if (kind == Action::kBindImage) ++image_binds_;
    actions_.push_back({kind, rel});
  }

  int image_fd_;
  int staging_fd_;
  bool root_from_staging_ = false;
  std::optional<std::string> underlaid_;
  size_t image_binds_ = 0;
  std::vector<Action> actions_;
};

absl::Status CopySymlink(int image_fd, int staging_fd, const std::string& rel) {
  ASSIGN_OR_RETURN(std::string target, ReadLinkAt(image_fd, rel));
  if (::symlinkat(target.c_str(), staging_fd, rel.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("staging /", rel), errno);
  }
  struct stat st;
  if (::fstatat(image_fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // Cosmetic (ls -l shows the image's owner); a user-mode daemon may lack the ids.
    (void)::fchownat(staging_fd, rel.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  }
  return absl::OkStatus();
}

absl::Status MakePlaceholder(int staging_fd, const Action& a) {
  if (a.kind == Action::kPlaceholderDir) {
    if (::mkdirat(staging_fd, a.rel.c_str(), 0755) != 0) {
      return ErrnoStatus(absl::StrCat("staging /", a.rel), errno);
    }
    return absl::OkStatus();
  }
  UniqueFd f(::openat(staging_fd, a.rel.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!f) return ErrnoStatus(absl::StrCat("staging /", a.rel), errno);
  return absl::OkStatus();
}

// The image mount is private to the daemon: its clones need no propagation
// ties, and are read-only whatever the daemon's mount is (a build's root is
// the one writable exception, LaunchSpec::writable_root), and idmapped when
// the launch says so (image_idmap.h).
absl::StatusOr<UniqueFd> CloneImage(int image_fd, const std::string& rel, int idmap,
                                    bool writable = false) {
  ASSIGN_OR_RETURN(UniqueFd mnt, CloneDetached(image_fd, rel, /*recursive=*/false));
  uint64_t attributes = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (writable ? 0 : MOUNT_ATTR_RDONLY);
  RETURN_IF_ERROR(
      SetMountAttributes(mnt.get(), attributes, MS_PRIVATE, /*recursive=*/false, idmap));
  return mnt;
}

// A build's root is written by the build: an underlaid directory would send
// its writes to the session tmpfs, so every mount point must already exist.
absl::Status CheckWritableRoot(const BindRootPlanner& planner) {
  if (planner.underlaid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the writable root lacks /", *planner.underlaid(),
        ", a mount point the container needs (create it there, or leave that mount out)"));
  }
  return absl::OkStatus();
}

absl::Status Apply(const std::vector<Action>& actions, int image_fd, int staging_fd,
                   std::vector<MountStep>& steps, PreparedLaunch& p) {
  for (const Action& a : actions) {
    std::string what = absl::StrCat("mounting the image's /", a.rel);
    switch (a.kind) {
      case Action::kPlaceholderDir:
      case Action::kPlaceholderFile:
        RETURN_IF_ERROR(MakePlaceholder(staging_fd, a));
        break;
      case Action::kCopySymlink:
        RETURN_IF_ERROR(CopySymlink(image_fd, staging_fd, a.rel));
        break;
      case Action::kBindImage: {
        auto mnt = CloneImage(image_fd, a.rel, p.image_idmap.get());
        if (!mnt.ok()) return Annotate(mnt.status(), what);
        steps.push_back({MountStep::kAttach, mnt->get(), -1, a.rel, std::move(what), {}});
        p.owned.push_back(std::move(*mnt));
        break;
      }
      case Action::kBindStaging: {
        steps.push_back({MountStep::kStagingClone, -1, -1, a.rel,
                         absl::StrCat("mounting the container's /", a.rel),
                         absl::StrCat("staging/", a.rel)});
        break;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<bool> PlanBindRoot(int staging_fd, PreparedLaunch& p) {
  int image_fd = p.image_fd.get();
  BindRootPlanner planner(image_fd, staging_fd);
  RETURN_IF_ERROR_CTX(planner.Plan(), "planning the container's root");
  if (p.writable_root) RETURN_IF_ERROR(CheckWritableRoot(planner));
  if (planner.over_budget()) return false;
  std::vector<MountStep> steps;
  RETURN_IF_ERROR_CTX(Apply(planner.actions(), image_fd, staging_fd, steps, p),
                      "building the container's root");
  ChildPlan& plan = p.plan;
  plan.root_from_staging = planner.root_from_staging();
  if (!plan.root_from_staging) {
    auto root = CloneImage(image_fd, "", p.image_idmap.get(), p.writable_root);
    if (!root.ok()) return Annotate(root.status(), "mounting the image as the container's root");
    plan.root_fd = root->get();
    p.owned.push_back(std::move(*root));
  }
  plan.session_fd = p.session_fd.get();
  plan.session_path = absl::StrCat("/proc/self/fd/", p.session_fd.get());
  // Parents before children, and all before the system mounts that may go
  // inside them (a home directory in an underlaid /home).
  plan.mounts.insert(plan.mounts.begin(), std::make_move_iterator(steps.begin()),
                     std::make_move_iterator(steps.end()));
  return true;
}

}  // namespace berth::daemon::launch
