// The daemon's GPU support: from a request's --nv, --rocm, --device and
// --cdi-dirs (and berth.conf's always_use_nv / always_use_rocm) to the GPU
// bind set (gpu_grant.h) of one container.
//
//   --nv / --rocm  the admin's library list (nvliblist.conf, rocmliblist.conf
//                  in the config directory) resolved against the host's
//                  loader cache (driver_files.h), the GPU nodes of /dev
//                  (gpu_devices.h) narrowed to the job's GPUs
//                  (gpu_selection.h), the persistenced socket;
//   --device       CDI devices from the spec directories (cdi_registry.h,
//                  cdi_edits.h); they combine with --nv.
//
// Speed: a launch must not pay for resolving ~60 libraries, so the resolved
// list (with a descriptor held open for each file) is kept until the list
// file or the loader cache changes (their inode, size or mtime); a launch
// then costs two stat calls, a /dev scan and one dup per file.
//
// Everything in the request is hostile; nothing is resolved with the
// client's PATH or environment except the GPU choice, which the launcher
// checks inside the caller's device cgroup.
//
// Privilege: the daemon's; the caller's --cdi-dirs are opened as the caller.
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/daemon_options.h"
#include "daemon/gpu/cdi_registry.h"
#include "daemon/gpu/driver_files.h"
#include "daemon/gpu/driver_root.h"
#include "daemon/gpu/gpu_devices.h"
#include "daemon/gpu/gpu_grant.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/policy/config.h"

namespace berth::daemon::gpu {

struct GpuRequest {
  bool nv = false, no_nv = false, rocm = false, no_rocm = false;
  std::vector<std::string> devices;   // CDI names; each may be a comma-separated list
  std::vector<std::string> cdi_dirs;  // the caller's --cdi-dirs: replace the configured ones
  std::vector<std::string> env;       // the caller's environment, "K=V"
};

class GpuService {
 public:
  GpuService(const DaemonOptions& options, const policy::Config& config);

  // The GPU bind set for `request` (empty when it asks for nothing), or one
  // error naming what is wrong.
  absl::StatusOr<GpuGrant> Prepare(const GpuRequest& request, const image::CallerCreds& caller);

  // `berth cdi list`: what the directories offer (the configured ones when
  // `cdi_dirs` is empty).
  absl::StatusOr<CdiCatalog> ListCdi(const std::vector<std::string>& cdi_dirs,
                                     const image::CallerCreds& caller);

 private:
  struct FileKey {
    bool present = false;
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t size = 0, mtime_ns = 0, ctime_ns = 0;  // ctime: a chmod is a change too
    bool operator==(const FileKey&) const = default;
  };
  struct Resolved {
    FileKey list, ld_cache;
    std::shared_ptr<const DriverFiles> files;
  };

  absl::StatusOr<const DriverRoot*> Root();
  absl::StatusOr<std::shared_ptr<const DriverFiles>> Files(Vendor vendor, const DriverRoot& root);
  absl::StatusOr<std::shared_ptr<const DriverFiles>> Resolve(Vendor vendor, const DriverRoot& root,
                                                             const std::string& list_path);
  absl::Status AddVendor(Vendor vendor, const GpuRequest& request, GpuGrant& grant);
  absl::Status AddCdi(const GpuRequest& request, const image::CallerCreds& caller, GpuGrant& grant);
  absl::StatusOr<std::vector<CdiDir>> Dirs(const std::vector<std::string>& requested,
                                           const image::CallerCreds& caller) const;

  const DaemonOptions options_;
  const policy::Config config_;
  CdiRegistry cdi_;
  absl::Mutex mu_;
  std::optional<absl::StatusOr<DriverRoot>> root_ ABSL_GUARDED_BY(mu_);
  Resolved resolved_[2] ABSL_GUARDED_BY(mu_);  // by Vendor
};

}  // namespace berth::daemon::gpu
