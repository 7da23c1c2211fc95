// inspect-metadata.json in a built SIF: what `apptainer inspect --all
// --json` prints for the image, captured right after the build, stored as a
// JSON.Generic object of the image's group, as Apptainer's build stores it
// (formats.md §1.8). `berth inspect` and `apptainer inspect` answer from it
// without opening the filesystem.
//
// The client adds it to the file berthd wrote for it (the user's own file,
// before it is renamed into place), reading the image as the user.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace berth::client {

absl::Status AddInspectMetadata(const std::string& sif_path);

}  // namespace berth::client
