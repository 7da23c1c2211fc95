// The container launcher: from a fully prepared LaunchSpec to a running
// container process (run / exec / shell all end here).
//
// What the caller (the service layer) must have done before Launch():
//   - mounted the image's squashfs read-only at `image_root` in the daemon's
//     mount namespace, and keep it mounted (refcount) until the container is
//     waited for;
//   - read the caller's identity from the kernel (peer credentials), and
//     filled in the name, home, shell and group names it wants in the
//     container's /etc/passwd and /etc/group;
//   - opened every bind source (user binds, $HOME, the cwd) *as the caller*
//     and passed the descriptors: the launcher mounts exactly those inodes,
//     so a path swapped after the check gets the caller nothing;
//   - computed argv and the environment (Apptainer's rules) and resolved the
//     stdio descriptors; found the caller's cgroup directories
//     (CgroupDirsToJoin() in cgroups.h) when the container must join them.
//
// Process shape. The daemon is multi-threaded (gRPC), so the container is a
// raw clone3() child of the calling thread that only makes system calls:
// every string, array and descriptor it uses is prepared here first, in
// the parent, where allocation and absl::Status are fine (child.h has the
// rules). A helper binary re-exec'd for each launch would allow ordinary
// code in the child, but costs an exec per start (the floor we aim at is
// ~1.7 ms) and would itself be a binary to protect from the container
// (CVE-2019-5736); the raw child never execs anything but the payload.
//
// The child becomes a tiny init that forks the payload, forwards signals to
// it, reaps every orphan and reports the payload's wait status: PID 1 of
// the container's PID namespace when it has one (-p, instances), or,
// without one (the default, as Apptainer's), the child subreaper that ends
// every process left of the container when the payload exits or the
// container is killed (child_init.cc). Only --no-init with a PID namespace
// runs the payload without it. It starts as a copy-on-write image of the
// daemon; once the payload is forked it hands the daemon's anonymous memory
// back (MADV_DONTNEED), so a long-running container pins no copy of the
// daemon's heap (~1 MiB instead). It runs as the caller with no
// capabilities and is non-dumpable: the container cannot ptrace it or open
// /proc/1/{exe,mem,fd}, where the daemon's binary and text remain mapped.
//
// Privilege: Launch() runs with the daemon's full privileges (root in system
// mode; root of the daemon's own user namespace in user mode). The child
// builds the mount tree with them, then drops to the caller (or to a
// fakeroot user namespace) before anything of the caller's runs.
//
// Requirements on the rest of the daemon: nobody may wait for "any child"
// (waitpid(-1)) or set SIGCHLD to SIG_IGN, which would steal the container's
// exit status; containers are reaped only through Container.
#pragma once

#include <sched.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace berth::daemon::launch {

// Who the container runs as. Numbers come from the kernel, names from the
// host's databases (the service layer's choice); names only go into the
// generated /etc/passwd and /etc/group.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, e.g. from SO_PEERGROUPS
  std::string user_name;
  std::string home;   // the home directory *inside* the container (passwd field)
  std::string shell;  // passwd field; "/bin/sh" when empty
  std::string gecos;
  // Names for the caller's primary and supplementary groups, for /etc/group.
  std::vector<std::pair<gid_t, std::string>> group_names;
};

// One line of a user namespace's uid_map or gid_map: the ids inside to
// inside+count-1 are outside to outside+count-1 in the daemon's namespace.
struct IdMapping {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

// One host path to bind into the container.
struct BindSpec {
  UniqueFd source;          // opened as the caller (O_PATH is enough); directory or file
  std::string source_path;  // for messages only; never re-opened
  std::string destination;  // absolute path inside the container
  bool read_only = false;
  bool no_exec = false;
};

// A host device node for the container (a GPU, a CDI deviceNode), bound by
// descriptor like every other bind: the path is never resolved again.
// One layer of -o/--overlay: a detached, non-recursive clone of a tree the
// daemon opened with the caller's rights (open_tree), and the layer's
// directory in that clone. The child attaches the clone in its namespace
// (overlayfs takes layers only from mounts there) and names `dir` by its
// /proc/self/fd link, so no path is resolved again.
struct OverlayLayer {
  UniqueFd tree;
  UniqueFd dir;      // O_PATH or O_RDONLY, in `tree`; invalid: the tree's root
  std::string what;  // "--overlay /home/a/ov", for messages
};

// The caller's overlays. With `upper`, the root is written into the
// caller's own directory, so a plain user's overlay is made by a process of
// their ids in a user namespace of its own (child_rootfs.cc OverlayHelper),
// never with root's credentials.
struct OverlaySet {
  std::optional<OverlayLayer> upper;  // dir: DIR/upper
  UniqueFd work;                      // DIR/work, in upper->tree
  std::vector<OverlayLayer> lowers;   // topmost first, below the session's staging layer
};

struct DeviceSpec {
  UniqueFd node;            // O_PATH of the host node, a character or block device
  std::string source_path;  // for messages only
  std::string destination;  // absolute path inside the container
  // Access (R_OK | W_OK) the caller's device cgroup must grant. The child
  // checks it once it is in the caller's cgroups, before attaching the node.
  int access = 06;
  // When the cgroup forbids it: refuse the launch (a device the request
  // named), or leave the node out (the "every GPU the job may use" default).
  bool required = true;
  // Set (CDI fileMode/uid/gid): a node of the same device is made afresh
  // with this mode and owner (system mode) instead of binding the host's.
  struct Attributes {
    mode_t mode;  // permission bits
    uid_t uid;
    gid_t gid;
  };
  std::optional<Attributes> make;
};

// An OCI hook from a CDI spec, run at its stage with the OCI state on its
// stdin and the caller's stderr as its output (launch_hooks.h).
struct HookSpec {
  enum class Stage { kCreateRuntime, kCreateContainer, kStartContainer, kPoststart, kPoststop };
  Stage stage = Stage::kCreateContainer;
  // Opened and checked by the daemon (root-owned); unset for startContainer,
  // whose path is resolved inside the container.
  UniqueFd binary;
  std::string path;
  std::vector<std::string> argv;  // OCI `args`; empty: {path}
  std::vector<std::string> env;   // exactly the hook's environment
  int timeout_seconds = 30;
};

// What GPUs (--nv, --rocm) and CDI devices add to a container; computed by
// daemon/gpu/ (the "GPU bind set"), applied here.
struct DeviceSet {
  std::vector<DeviceSpec> nodes;
  // Host /dev entries ("nvidia3", "dri") that a full /dev leaves out: the
  // GPUs of the vendor in use that were not granted.
  std::vector<std::string> hidden;
  // Driver libraries, binaries and files, the persistenced socket, CDI
  // mounts: opened by the daemon, always nosuid and nodev.
  std::vector<BindSpec> files;
  // The directory most files go to (/.singularity.d/libs): when the image's
  // is empty or missing, a tmpfs of ours is mounted there and the files'
  // mount points are made in it, instead of each one staged above the image.
  std::string files_dir;
  // The files bound in files_dir as one detached tree made beforehand (one
  // clone per launch instead of one bind per file); used when files_dir is
  // a tmpfs of ours, as above.
  std::optional<BindSpec> files_tree;
  std::vector<HookSpec> hooks;
  bool empty() const { return nodes.empty() && hidden.empty() && files.empty() && hooks.empty(); }
};

// The default system mounts, each one disabled by --no-mount.
struct SystemMounts {
  bool proc = true;
  bool sys = true;
  bool dev = true;
  bool minimal_dev = false;  // a minimal /dev even without `contain` ("mount dev = minimal")
  bool tmp = true;           // /tmp and /var/tmp
  bool etc_files = true;     // /etc/hosts, /etc/localtime, /etc/resolv.conf from the host
  bool devpts = true;        // a new devpts instance in a minimal /dev (--no-mount devpts)
  // Of the etc files, those not to mount (--no-mount bind-paths or /etc/hosts).
  std::vector<std::string> etc_skip;
};

struct LaunchSpec {
  // The read-only mounted image rootfs, a directory in the daemon's mount ns;
  // or a build's root as "/proc/self/fd/N", the daemon's descriptor, which an
  // overlay takes as a detached clone of its own (prepare.cc).
  std::string image_root;
  // A build's root for %post (%test's is read-only), or a sandbox run with
  // --writable: `image_root` is a writable directory that becomes "/"
  // itself, read-write (nosuid, nodev). It must already hold every mount
  // point the spec needs (the builder creates them). A build gets no
  // generated /etc/passwd or /etc/group (package managers edit the image's
  // own); a sandbox gets them bound over its own when it has both
  // (image_passwd, image_group).
  bool writable_root = false;
  // `image_root` is a kernel squashfs mount berthd made of an image file the
  // caller opened (so could read byte for byte): only then may --fakeroot and
  // a writable layer idmap it (image_idmap.h). Never a sandbox directory,
  // even one on a host squashfs (a snap, a site's software mount): those are
  // the host's files, root-only ones included.
  bool image_from_caller_squashfs = false;
  // A sandbox's /etc/passwd and /etc/group, read by the daemon with the
  // caller's rights (run_prepare.cc): a sandbox is a tree its user controls,
  // so the launcher must not read it as root. Unset: read from image_root.
  std::optional<std::string> image_passwd, image_group;
  Identity identity;

  // Namespaces. A mount namespace is always created.
  bool pid_namespace = true;
  bool ipc_namespace = false;
  bool uts_namespace = false;
  std::string hostname;  // set inside a UTS namespace (implies uts_namespace)
  // A network namespace of the container's own: a new one with only
  // loopback, up, or, when `netns` is open, that existing one (entered
  // before anything else, so that joins find it as the container's).
  bool net_namespace = false;
  UniqueFd netns;  // opened by the daemon (root callers only, run_prepare.cc)
  // Set: the container's /etc/resolv.conf, shadowing the image's and
  // replacing the host's (--dns).
  std::string resolv_conf;
  // A user namespace of its own for the container (--userns), created after
  // the mount tree is built, mapping the caller's uid and gid to themselves.
  // Not needed in user mode: the daemon's own user namespace already
  // confines the container there.
  bool user_namespace = false;
  // uid/gid 0 inside a user namespace, mapped to the caller outside; keeps
  // its capabilities inside that namespace (like Apptainer's --fakeroot).
  // Implies user_namespace.
  bool fakeroot = false;
  // With fakeroot, the namespace's maps (daemon/fakeroot decides them).
  // Empty: the single-id maps, 0 -> the caller's uid and gid. Otherwise the
  // first line must be that one and the others (the caller's subordinate
  // ranges) may map neither id 0 nor the caller's id; setgroups then stays
  // allowed inside, as newgidmap leaves it, so package managers can drop to
  // their own users. Checked by the launcher (id_maps.h) whoever filled them.
  std::vector<IdMapping> fakeroot_uid_map;
  std::vector<IdMapping> fakeroot_gid_map;

  // --contain: minimal /dev, and empty tmpfs at /tmp, /var/tmp and $HOME.
  bool contain = false;
  // --no-init: exec the payload as PID 1 of the PID namespace.
  bool no_init = false;
  // --writable-tmpfs: an overlay upper layer on a tmpfs of this size.
  std::optional<int64_t> writable_tmpfs_bytes;
  // -o/--overlay: the caller's layers (none: empty).
  OverlaySet overlays;

  SystemMounts system_mounts;
  // $HOME: `home->source` bound at `home->destination`; with `contain` and
  // an invalid source, a fresh tmpfs owned by the caller is mounted at the
  // destination instead (with a valid one, -W's home directory is bound).
  // Unset: no home mount (--no-home).
  std::optional<BindSpec> home;
  // -W with `contain`: /tmp and /var/tmp are these directories of the
  // workdir (made and opened as the caller) instead of fresh tmpfs.
  std::optional<BindSpec> workdir_tmp, workdir_var_tmp;
  // -S without -W: a fresh tmpfs owned by the caller at each of these
  // container paths (with -W they are binds of the workdir's directories).
  std::vector<std::string> scratch_tmpfs;
  // User binds (-B). The launcher mounts them shortest destination first,
  // keeping the given order between equal lengths (Apptainer 1.2+).
  std::vector<BindSpec> binds;
  // The host cwd bound at the same path; mounted last. Unset: none.
  std::optional<BindSpec> cwd_bind;
  // GPUs and CDI devices: nodes in /dev (a full /dev is then rebuilt from
  // the host's entries, less `hidden`), driver files, hooks.
  DeviceSet devices;
  // Working directory inside the container. Refused when it is or resolves
  // through /proc or a magic link (CVE-2024-21626); must exist.
  std::string cwd = "/";

  // The payload. argv[0] without a '/' is searched in env's PATH.
  std::vector<std::string> argv;
  std::vector<std::string> env;  // exactly the payload's environment

  // Descriptors the container gets: each source fd appears as the given
  // number (0, 1, 2, PMI_FD, --keep-fd). Everything else is closed.
  std::vector<std::pair<UniqueFd, int>> fds;
  // A container fd number (one of `fds`' targets) that is a terminal to make
  // the payload's controlling terminal, or -1.
  int controlling_tty = -1;

  // A shared container's own /tmp, /var/tmp and /dev/shm (fresh tmpfs
  // mounts): the processes that join it share them, nobody else sees them.
  bool private_tmp = false;
  // A holder (the first process of a shared container, see Join): its init
  // runs no payload (argv and env are ignored) and lives until killed,
  // keeping the namespaces alive for the processes that join them. With
  // user_namespace or fakeroot the init makes the user namespace (and, with
  // fakeroot, the mount namespace it owns) itself: joins enter that one.
  bool hold = false;

  // Slurm-readiness: what the client process had, copied onto the payload.
  std::vector<std::string> cgroup_dirs;  // each hierarchy's directory; see cgroups.h
  std::optional<cpu_set_t> affinity;
  std::vector<std::pair<int, rlimit>> rlimits;  // (RLIMIT_*, value)
  std::optional<mode_t> umask;
};

// Asks the container whose init `pidfd` names to end, as Container::Kill
// does: the init kills every process left of it (PID namespace or not) and
// exits. For those who hold only a pidfd (a shared container's members);
// SIGKILL to the init would orphan the rest to the host's init.
void EndContainer(int pidfd);

// How the payload ended.
struct ExitStatus {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // the signal that killed the payload, or 0
  bool core_dumped = false;
  // The shell's convention: the exit code, or 128 + the signal.
  int ShellStatus() const { return signal != 0 ? 128 + signal : exit_code; }
};

// A running container. Destroying one that was not waited for kills it
// (Kill(), SIGKILL after a grace period) and reaps it.
struct LiveNamespaces;
struct PreparedLaunch;

class Container {
 public:
  Container(Container&& other) noexcept;
  Container& operator=(Container&& other) noexcept;
  ~Container();

  // The container's first process (its init, or the payload with no_init or
  // without a PID namespace), in the daemon's PID namespace.
  pid_t pid() const { return pid_; }
  // The payload process in the daemon's PID namespace.
  pid_t payload_pid() const { return payload_pid_; }
  // A pidfd for pid(): becomes readable when the container exits.
  int pidfd() const { return pidfd_.get(); }

  // Delivers `sig` to the payload (through the init, which forwards it).
  absl::Status Signal(int sig);
  // Ends the container: the payload and every process left of it, PID
  // namespace or not (the init ends them before it exits). Wait() still
  // reaps it.
  absl::Status Kill();
  // Blocks until the container has exited and reaps it.
  absl::StatusOr<ExitStatus> Wait();
  // Lets the container run on without this object: it is neither killed
  // nor reaped here (a named instance outliving a daemon restart; whoever
  // inherits the process reaps it).
  void Detach();

 private:
  friend absl::StatusOr<Container> Launch(LaunchSpec spec);
  friend absl::StatusOr<Container> Join(LaunchSpec spec, const LiveNamespaces& ns);
  // Clones the prepared child and follows it until the payload runs.
  static absl::StatusOr<Container> StartPrepared(PreparedLaunch& prepared, LaunchSpec& spec);
  Container(pid_t pid, pid_t payload_pid, UniqueFd pidfd, UniqueFd status_fd, bool has_init);
  void KillAndReap();

  pid_t pid_ = -1;
  pid_t payload_pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd status_fd_;  // the init writes the payload's wait status here
  bool has_init_ = false;
  bool init_serving_ = false;  // the init runs its loop: it ends the container when asked
  bool reaped_ = true;
  std::vector<HookSpec> poststop_;  // OCI poststop hooks, run once reaped
  UniqueFd hook_output_;
  // A holder's namespaces, opened by Launch() before it dropped its
  // privileges (OpenLiveNamespaces hands them over).
  std::unique_ptr<LiveNamespaces> held_;
  friend absl::StatusOr<LiveNamespaces> OpenLiveNamespaces(const Container& holder,
                                                           const LaunchSpec& spec);
};

// Creates the container and returns once the payload has been exec'd. A
// failure anywhere (in this process or in the child, each child step named:
// "mounting /proc: Operation not permitted", "exec /bin/foo: No such file or
// directory") is returned as an error after the child has been reaped; no
// mount is ever left in the daemon's mount namespace.
//
// Privilege: call with the daemon's privileges (see the file comment).
absl::StatusOr<Container> Launch(LaunchSpec spec);

// A live container's namespaces, held by the daemon as descriptors so that
// later processes can join it (Join): opened from its holder right after
// Launch(), they keep naming the same namespaces whatever happens to
// /proc. Invalid where the container has none of its own.
struct LiveNamespaces {
  UniqueFd mnt, ipc, uts, pid, user, net;
};

// Opens the namespaces of `holder` (a Launch()ed hold spec) that it made
// for itself, per `spec` (the spec it was launched with). Fails when the
// holder is gone by the time they are open.
//
// Privilege: the daemon's (reading another uid's /proc/<pid>/ns).
absl::StatusOr<LiveNamespaces> OpenLiveNamespaces(const Container& holder, const LaunchSpec& spec);

// Starts a process in a live container instead of a new one: it joins the
// caller's cgroups and takes its limits, affinity and descriptors as
// Launch() would (from `spec`'s process fields: identity, fakeroot, argv,
// env, fds, controlling_tty, cwd, cgroup_dirs, affinity, rlimits, umask,
// no_init), then enters `ns` (user namespace last), becomes the caller and
// forks the payload into the container's PID namespace. `spec`'s mount and
// namespace fields are ignored: the container is what its holder built.
// The returned Container is that process (it forwards signals and reports
// the payload's status); ending it ends only this payload.
//
// Privilege: call with the daemon's privileges.
absl::StatusOr<Container> Join(LaunchSpec spec, const LiveNamespaces& ns);

}  // namespace berth::daemon::launch
