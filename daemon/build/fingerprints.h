// `Fingerprints:` (build.md §3): the build's SIF base (localimage, oras)
// must be signed by every listed key, checked with the trust module's
// verification against the caller's public keys (the request's keyring).
// A failure stops the build before anything is unpacked, with Apptainer's
// message: "conveyor failed to get: while checking fingerprint: <e>".
//
// Privilege: runs as the daemon; the keys go into a scratch GnuPG home
// under the daemon's own trust directory (root's, 0700), never into a
// directory the caller could reach; the image is read through the
// descriptor the client handed over.
#pragma once

#include "absl/status/status.h"
#include "daemon/build/build_context.h"
#include "deffile/definition.h"

namespace berth::daemon::build {

// OK when the stage lists no fingerprints or its base is not a SIF source
// (docker and OCI bases, a sandbox directory, a bare squashfs file).
absl::Status CheckBaseFingerprints(BuildContext& ctx, const deffile::Definition& stage,
                                   int source_fd);

}  // namespace berth::daemon::build
