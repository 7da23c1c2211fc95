// berth.conf: the site policy every container on the node runs under.
//
// One TOML file in the daemon's config directory (/etc/berth/berth.conf by
// default), documented setting by setting in docs/config.md and shipped as a
// commented template (packaging/berth.conf). The daemon refuses to start on a
// file that is not owned by root or is writable by others (system mode), on a
// syntax error, on an unknown key (a typo must not silently mean "default"),
// and on an out-of-range value, each with a one-line message naming the line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/policy/build_config.h"

namespace berth::daemon::policy {

// Apptainer's "allow setuid-mount squashfs": when the kernel's squashfs
// driver may parse an image's bytes.
enum class KernelSquashfs {
  kAlways,   // every image, even user-writable files (fast, trusts users' bytes)
  kTrusted,  // root-owned, non-user-writable files directly; others via an immutable copy
  kNever,    // never: FUSE (squashfuse) only
};

enum class DevMode { kFull, kMinimal, kNone };

struct Config {
  // [binds]
  bool user_bind_control = true;  // may users --bind at all
  std::vector<std::string> default_binds = {"/etc/localtime", "/etc/hosts"};
  bool mount_home = true, mount_tmp = true, mount_proc = true, mount_sys = true;
  DevMode mount_dev = DevMode::kFull;

  // [images]
  std::vector<std::string> allowed_image_dirs;  // empty: anywhere; else by path component
  std::vector<uint32_t> allowed_image_owners;   // empty: anyone
  KernelSquashfs kernel_squashfs = KernelSquashfs::kTrusted;
  // Apptainer's "allow container dir" / "allow container squashfs": may
  // sandbox directories / bare squashfs files run (SIF files always may).
  bool allow_container_dir = true, allow_container_squashfs = true;
  // Keep an image mounted this long after its last container exits (0: unmount at once).
  int idle_unmount_seconds = 60;
  // Budget of each daemon-owned copy store (<state>/images, <state>/verified); 0: none.
  int copy_store_max_mib = 20480;

  // [namespaces]
  bool allow_pid_ns = true, allow_ipc_ns = true, allow_uts_ns = true, allow_user_ns = true;
  bool allow_net_ns = true;  // -n/--net, --network none: loopback only

  // [limits]
  int max_containers_per_user = 256;
  // Named instances (berth instance start) one user may hold at once.
  int max_instances_per_user = 64;
  int max_images_per_user = 32;
  int max_loop_devices_per_user = 32;
  // Store copies a user's loop devices read, pinned ones included; 0: none.
  int max_store_mib_per_user = 10240;
  // Node-cache bytes of the entries a user references; 0: none.
  int max_cache_mib_per_user = 10240;
  uint64_t writable_tmpfs_default_mib = 64;
  uint64_t writable_tmpfs_max_mib = 65536;
  // What one user's connections may make the daemon hold (connection_budget.h).
  // Unset in the file, sessions follow max_containers_per_user (+16 awaiting
  // their request) and connections follow sessions.
  int max_sessions_per_user = 256 + 16;
  int max_connections_per_user = 512;
  int max_pending_connections_per_user = 16;
  int max_handed_fds_per_user = 1024;

  // [registry] (pull/push, the node cache)
  std::vector<std::string> insecure_registries;  // host[:port] spoken to over plain HTTP
  std::string registry_ca_file;                  // extra CA bundle; the system store always
  int64_t max_manifest_bytes = 4 << 20;
  int64_t max_blob_bytes = int64_t{64} << 30;
  int parallel_downloads = 4;
  int registry_stall_seconds = 30;  // abandon a transfer that moves nothing this long
  int registry_attempts = 5;        // per request, for 429/5xx/broken connections
  // Budget of the node cache (<state>/cache); least recently used entries no
  // transfer uses are deleted to make room. 0: none.
  int cache_max_mib = 20480;

  // [mpi] (docs/mpi.md)
  // The ranks of one Slurm job step on this node share one container.
  bool share_slurm_steps = true;
  // The stack of <config-dir>/mpi.d applied by default under a PMI launcher
  // (PMI_FD or PMIX_RANK set); empty: none unless --mpi asks.
  std::string default_mpi_stack;
  // [gpu] (--nv, --rocm, CDI --device; docs/config.md)
  bool always_use_nv = false, always_use_rocm = false;
  // CDI spec directories, lowest priority first (a later one wins).
  std::vector<std::string> cdi_dirs = {"/etc/cdi", "/var/run/cdi"};
  // Test-only: the host's GPU driver files and nodes are looked up beneath
  // this directory instead of "/" (the test suite's fake driver root).
  std::string gpu_test_driver_root;

  // [build] (build_config.h)
  BuildConfig build;
};

// Parses TOML text; `origin` names the file in messages.
absl::StatusOr<Config> ParseConfig(const std::string& text, const std::string& origin);

// Reads `<config_dir>/berth.conf` (defaults when the file is absent). With
// `require_root_owned`, refuses files not owned by root or writable by others.
absl::StatusOr<Config> LoadConfig(const std::string& config_dir, bool require_root_owned);

// True when `path` (absolute, normalised) lies in `dir` by whole components:
// /scratch matches /scratch/a.sif but not /scratch2/a.sif (CVE-2026-48785).
bool PathWithinDir(const std::string& path, const std::string& dir);

}  // namespace berth::daemon::policy
