// -o/--overlay (Apptainer's): the caller's overlay directories and squashfs
// images, stacked over the container's image.
//   DIR      the writable layer: DIR/upper and DIR/work (made when missing);
//            only one per container, and not with --writable-tmpfs
//   DIR:ro   a lower layer: DIR/upper when it exists, else DIR
//   IMG      a squashfs image: always a lower layer
// Lower layers stack in the order given, the first on top.
//
// Privilege: runs in the root daemon on a user's paths. Each path is opened,
// and upper/ and work/ made and opened (a symlink there refused, never
// followed), with the caller's filesystem identity (image::OpenAsCaller,
// MakeDirAtAsCaller); the launcher gets detached clones of those
// descriptors (open_tree) and, when the upper layer is a plain user's, has
// the overlay made by a process of their ids in a user namespace of its own
// (child_rootfs.cc OverlayHelper). A squashfs image is
// mounted as a container image is (the site's image rules, the immutable
// copy); ext3 images are refused (docs/compat.md).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "berth/v1/berth.pb.h"
#include "common/unique_fd.h"
#include "daemon/image/mount_cache.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/launch/launch.h"

namespace berth::daemon {

// Mounts a squashfs image the caller opened (path: for messages), after the
// site's image rules; the lease keeps it mounted.
using AcquireOverlayImage = std::function<absl::StatusOr<std::shared_ptr<image::MountLease>>(
    UniqueFd fd, const std::string& path)>;

// What refuses --overlay before anything is opened: Apptainer's refusal
// with --writable (the image's own --writable checks would speak first), an
// active ECL (`ecl_active`: the node runs signed SIF images only, and an
// overlay is unsigned content), more than 32 overlays.
absl::Status CheckOverlayRequest(const v1::RunRequest& request, bool ecl_active);

// Fills spec.overlays from request.overlay() (CheckOverlayRequest first);
// the squashfs images' leases go to `leases`.
absl::Status AddOverlays(const v1::RunRequest& request, const image::CallerCreds& caller,
                         bool ecl_active, const AcquireOverlayImage& acquire,
                         std::vector<std::shared_ptr<image::MountLease>>& leases,
                         launch::LaunchSpec& spec);

}  // namespace berth::daemon
