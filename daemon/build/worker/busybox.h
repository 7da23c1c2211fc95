// Bootstrap: busybox in the worker: the binary MirrorURL held (fetched by
// the client as the caller and handed over) becomes the root's
// /bin/busybox, and its applets (`busybox --list`) are hard-linked beside
// it, which is what Apptainer's `busybox --install /bin` makes.
//
// Privilege: the worker's (the build's fakeroot user). The binary is the
// caller's own: it runs with the worker's rights, in the worker's
// namespaces, with no descriptor but the root's /bin and its stdio.
#pragma once

#include "absl/status/status.h"
#include "berth/v1/build_worker.pb.h"

namespace berth::build_worker {

absl::Status InstallBusybox(int root_fd, const v1::InstallBusybox& job);

}  // namespace berth::build_worker
