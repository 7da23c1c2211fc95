// The base a build starts from, obtained by the client as the user: a
// localimage opened with the user's rights; a registry or OCI-layout base
// (docker, oras, oci, oci-archive, docker-archive) pulled through berthd's
// Pull RPC (the node cache, the user's own credentials) into an unnamed file
// beside the output, which then goes to the build as a localimage would;
// busybox's binary from MirrorURL (file:// opened, http(s):// downloaded, as
// the user); nothing for scratch. The daemon checks Fingerprints: against the base
// with the user's public keys, which are read here too.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "deffile/definition.h"

namespace berth::client {

struct BaseOptions {
  std::string socket_flag;
  std::string output;  // the image the build writes (the pulled base goes beside it)
  std::string authfile;
  std::string arch;
  bool no_https = false;
  bool disable_cache = false;  // --disable-cache: the pull bypasses the node cache
};

// The base's descriptor; an invalid one for Bootstrap: scratch.
absl::StatusOr<UniqueFd> OpenBuildBase(const deffile::Definition& stage, const BaseOptions& o);

// The registry reference a bootstrap's From: names ("" for localimage and scratch).
std::string BaseReference(const deffile::Definition& stage);

// The user's public keys (binary OpenPGP), for the daemon's Fingerprints:
// check; "" when the user has none.
absl::StatusOr<std::string> PublicKeysForFingerprints();

}  // namespace berth::client
