// What a container needs under a PMIx launcher (Slurm's mpi/pmix), derived
// from the client's environment, as enroot's 50-slurm-pmi hook does:
//   - the step's PMIX_SERVER_TMPDIR (the server's shared-memory store) and
//     Slurm's client directory spmix_appdir_<uid>_<job>.<step> bound at the
//     same paths;
//   - PMIX_MCA_ptl, PMIX_MCA_psec and PMIX_MCA_gds from PMIX_PTL_MODULE,
//     PMIX_SECURITY_MODE and PMIX_GDS_MODULE when not set already, so the
//     image's PMIx client picks what the server offers;
//   - psec "munge" dropped (native when nothing is left) when the image has
//     no munge client: its PMIx would fail to find the component (Pyxis
//     #139) while native works through the shared socket credentials.
// The client also keeps the host network namespace: PMIx reaches its server
// over loopback TCP (berth has no --net; docs/mpi.md). Pure.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace berth::mpi {

struct PmixNeeds {
  bool pmix = false;  // the environment is a PMIx client's
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::string> bind_paths;  // absolute host paths, at the same path
  std::vector<std::string> notes;       // lines for `berth mpi check` and the log
};

// `env`: the client's environment ("K=V"); `uid`: the caller's;
// `image_has_munge`: libmunge.so.2 will be in the container.
PmixNeeds PmixNeedsOf(const std::vector<std::string>& env, uint32_t uid, bool image_has_munge);

// Which PMI the launcher offers, from the environment: "PMIx (PMIX_SERVER_URI41)",
// "PMI-2 (PMI_FD)", or "none".
std::string OfferedPmi(const std::vector<std::string>& env);

}  // namespace berth::mpi
