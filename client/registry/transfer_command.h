// pull and push: requests to berthd with the user's credentials and files.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"

namespace berth::client {

struct PullOptions {
  std::string output;     // may be empty: derived from the reference
  std::string reference;  // oras://… or docker://…
  std::string authfile;
  std::string arch;
  std::string arch_variant;  // pull --arch-variant: folded into arch (OS/ARCH/VARIANT)
  std::string dir;           // --dir: the output goes in this directory
  std::string name;          // --name: the output's name, beating the positional one
  bool no_https = false;
  bool force = false;
  bool quiet = false;
  bool disable_cache = false;  // neither read nor fill the node cache
  bool build_base = false;     // a build's base: the daemon's fast intermediate SIF
};

// Apptainer's default output name for a pull of `uri` (its uri.GetName):
// the last path component of the reference, split at its first ':' into
// name and tag ("latest" when none; of a comma list, the first), as
// NAME_TAG.sif. "" when `uri` names no transport.
std::string DefaultPullName(const std::string& uri);

struct PushOptions {
  std::string image;
  std::string reference;
  std::string authfile;
  bool no_https = false;
  bool quiet = false;
  int64_t chunk_size = 0;
  std::vector<std::string> annotations;  // k=v
  std::string description;
};

absl::Status RunPull(const std::string& socket_flag, const PullOptions& options);
// The pull itself, into `out_fd` (a regular file the caller created as the
// user): the caller's credentials, the daemon's node cache. `output` and
// `force` are not used.
absl::StatusOr<v1::PullResult> PullInto(const std::string& socket_flag, const PullOptions& options,
                                        int out_fd);
absl::Status RunPush(const std::string& socket_flag, const PushOptions& options);

// run/exec/shell of docker://… or oras://…: pulls through the node cache
// into a private temp file (0700 directory under $TMPDIR or /tmp, owned by
// the user) and returns its path; the caller removes it with
// RemovePulledImage after the container exits. `how` gives the reference
// and the action's --authfile and --no-https; its output is not used.
absl::StatusOr<std::string> PullForRun(const std::string& socket_flag, const PullOptions& how);
void RemovePulledImage(const std::string& path);

// The user's credentials for the reference's registry (empty when none).
absl::StatusOr<v1::RegistryAuth> AuthFor(const std::string& reference, const std::string& authfile);

}  // namespace berth::client
