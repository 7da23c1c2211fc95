// Bootstrap agents: which `Bootstrap:` values berth builds from and the
// header keys each needs (formats.md §5.2), checked before anything is
// fetched, so a missing key fails at its line instead of after a download.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "deffile/definition.h"

namespace berth::deffile {

enum class Agent {
  kScratch,
  kLocalImage,
  kDocker,  // docker, docker-archive, oci, oci-archive: the OCI conveyor
  kOras,
  kDebootstrap,
  kBusybox,
  kYum,  // yum and dnf
  kZypper,
};

// The agent for a stage whose CheckBootstrap passed.
Agent AgentOf(const Definition& stage);

// Refuses, with the header line: no Bootstrap (Apptainer's "no bootstrap
// specification found"), an unknown one ("invalid build source X"), one
// berth does not build from (library and shub name the alternative), a
// missing required key, and Fingerprints entries that are not 40 hex digits.
absl::Status CheckBootstrap(const Definition& stage, absl::string_view file);

// Whether the stage's base is made by a package tool on the build host
// (debootstrap, yum/dnf, zypper: daemon/build/bootstrap_tool.h) rather than
// handed over by the client.
bool BuiltByHostTool(Agent agent);

// What berth's builder builds today: stages from `Bootstrap: scratch`,
// `localimage` (a SIF), `busybox` (its binary, fetched by the client), a
// base pulled through the node cache (docker, docker-archive, oci,
// oci-archive, oras), or one a host tool makes (debootstrap, yum, dnf,
// zypper), with `%files from` an earlier
// stage, %pre and SCIF apps. The rest is refused before any work
// ("... is not supported by berth build yet"), by the client and again by
// the daemon, after CheckBootstrap.
absl::Status CheckBuilderSupports(const std::vector<Definition>& stages, absl::string_view file);

}  // namespace berth::deffile
