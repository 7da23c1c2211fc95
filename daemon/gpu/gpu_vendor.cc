// GpuService::AddVendor: one vendor's part of the GPU bind set (--nv or
// --rocm): driver files, control nodes, the job's GPUs, the host GPUs a full
// /dev must hide, the persistenced socket and the rewritten visible-devices
// variable.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/gpu/gpu_selection.h"
#include "daemon/gpu/gpu_service.h"

namespace berth::daemon::gpu {
namespace {

constexpr char kPersistencedSocket[] = "/var/run/nvidia-persistenced/socket";

void AddNode(GpuGrant& grant, launch::DeviceSpec d) {
  for (const launch::DeviceSpec& have : grant.devices.nodes) {
    if (have.destination == d.destination) return;
  }
  grant.devices.nodes.push_back(std::move(d));
}

launch::DeviceSpec NodeSpec(const DriverRoot& root, GpuNode& node, bool required,
                            const std::string& why) {
  launch::DeviceSpec d;
  d.node = std::move(node.fd);
  d.source_path = absl::StrCat(root.Display(node.path), why);
  d.destination = node.path;
  d.required = required;
  return d;
}

// "/dev/nvidia0" → "nvidia0", "/dev/dri/renderD128" → "dri".
std::string TopName(const std::string& dev_path) {
  std::string rel = dev_path.substr(5);
  return rel.substr(0, rel.find('/'));
}

// The host's own nodes of this vendor: a full /dev shows only those granted.
absl::Status AddHidden(Vendor vendor, const DriverRoot& root, GpuGrant& grant) {
  std::optional<DriverRoot> host;
  const DriverRoot* scan = &root;
  if (!root.is_host()) {
    ASSIGN_OR_RETURN(host, DriverRoot::Open("/"));
    scan = &*host;
  }
  ASSIGN_OR_RETURN(GpuNodes nodes, ScanGpuNodes(*scan, vendor));
  std::set<std::string> names(grant.devices.hidden.begin(), grant.devices.hidden.end());
  for (const auto* list : {&nodes.control, &nodes.gpus, &nodes.all_gpus_only}) {
    for (const GpuNode& n : *list) names.insert(TopName(n.path));
  }
  grant.devices.hidden.assign(names.begin(), names.end());
  return absl::OkStatus();
}

absl::Status AddFiles(const DriverFiles& files, GpuGrant& grant) {
  for (const auto* list : {&files.libraries, &files.files}) {
    for (const DriverFile& f : *list) {
      UniqueFd fd(::fcntl(f.fd.get(), F_DUPFD_CLOEXEC, 3));
      if (!fd) return ErrnoStatus(absl::StrCat("duplicating ", f.host_path), errno);
      grant.devices.files.push_back({std::move(fd), f.host_path, f.destination, true, false});
    }
  }
  grant.library_path = grant.library_path || !files.libraries.empty();
  if (files.libraries.empty()) return absl::OkStatus();
  if (!grant.devices.files_dir.empty()) {
    grant.devices.files_tree.reset();  // --nv and --rocm: one tree cannot hold both lists
    return absl::OkStatus();
  }
  grant.devices.files_dir = kLibsDir;
  if (files.libs_tree) {
    UniqueFd tree(::fcntl(files.libs_tree.get(), F_DUPFD_CLOEXEC, 3));
    if (!tree) return ErrnoStatus("duplicating the libraries' tree", errno);
    grant.devices.files_tree =
        launch::BindSpec{std::move(tree), "the driver libraries", kLibsDir, true, false};
  }
  return absl::OkStatus();
}

void AddPersistenced(const DriverRoot& root, GpuGrant& grant) {
  auto fd = root.OpenPath(kPersistencedSocket, O_PATH);
  struct stat st;
  if (!fd.ok() || ::fstat(fd->get(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  grant.devices.files.push_back(
      {*std::move(fd), root.Display(kPersistencedSocket), kPersistencedSocket, false, true});
}

}  // namespace

absl::Status GpuService::AddVendor(Vendor vendor, const GpuRequest& request, GpuGrant& grant) {
  ASSIGN_OR_RETURN(const DriverRoot* root, Root());
  ASSIGN_OR_RETURN(std::shared_ptr<const DriverFiles> files, Files(vendor, *root));
  ASSIGN_OR_RETURN(GpuNodes nodes, ScanGpuNodes(*root, vendor));
  std::vector<int> available;
  for (const GpuNode& g : nodes.gpus) available.push_back(g.index);
  std::map<std::string, int> uuids;
  if (vendor == Vendor::kNvidia) uuids = ReadNvidiaUuids(*root);
  ASSIGN_OR_RETURN(GpuSelection selection, SelectGpus(request.env, vendor, available, uuids));
  RETURN_IF_ERROR(AddHidden(vendor, *root, grant));
  for (GpuNode& n : nodes.control) AddNode(grant, NodeSpec(*root, n, false, ""));
  for (GpuNode& g : nodes.gpus) {
    bool chosen = std::binary_search(selection.indices.begin(), selection.indices.end(), g.index);
    if (selection.restricted && !chosen) continue;
    std::string why = selection.restricted ? absl::StrCat(" (GPU ", g.index, ", asked for by ",
                                                          selection.source, ")")
                                           : "";
    AddNode(grant, NodeSpec(*root, g, selection.restricted, why));
  }
  if (!selection.restricted) {
    for (GpuNode& n : nodes.all_gpus_only) AddNode(grant, NodeSpec(*root, n, false, ""));
  }
  RETURN_IF_ERROR(AddFiles(*files, grant));
  if (vendor == Vendor::kNvidia) AddPersistenced(*root, grant);
  grant.env.insert(grant.env.end(), selection.env.begin(), selection.env.end());
  return absl::OkStatus();
}

}  // namespace berth::daemon::gpu
