#include "daemon/gpu/run_gpus.h"

#include <grp.h>

#include <algorithm>

namespace berth::daemon::gpu {

GpuRequest GpuRequestOf(const v1::RunRequest& r) {
  GpuRequest g;
  g.nv = r.nv();
  g.no_nv = r.no_nv();
  g.rocm = r.rocm();
  g.no_rocm = r.no_rocm();
  g.devices.assign(r.devices().begin(), r.devices().end());
  g.cdi_dirs.assign(r.cdi_dirs().begin(), r.cdi_dirs().end());
  g.env.assign(r.env().begin(), r.env().end());
  return g;
}

void ApplyGrant(GpuGrant grant, launch::LaunchSpec& spec) {
  spec.devices = std::move(grant.devices);
  std::vector<char> buf(16384);
  for (gid_t gid : grant.extra_groups) {
    std::vector<gid_t>& groups = spec.identity.groups;
    if (gid == spec.identity.gid || std::find(groups.begin(), groups.end(), gid) != groups.end()) {
      continue;
    }
    groups.push_back(gid);
    group gr{}, *found = nullptr;
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
      spec.identity.group_names.emplace_back(gid, gr.gr_name);
    }
  }
}

}  // namespace berth::daemon::gpu
