// What `berth build` builds from. A definition file is read as the user;
// a URI (docker://, oras://, ...) or an existing image (SIF, squashfs,
// sandbox directory) becomes the one-stage definition Apptainer makes of it
// (types.NewDefinitionFromURI), so both take the same path from here on.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::client {

struct BuildSpec {
  std::string name;        // the path or URI, for messages
  std::string bytes;       // the definition text
  bool from_file = false;  // a definition file (not made from a URI or an image)
};

// At most deffile::kMaxFileBytes + 1 bytes are read, so that an oversized
// file is refused by the parser without being read whole.
absl::StatusOr<BuildSpec> ReadBuildSpec(const std::string& spec);

// A --build-arg-file, refused over 1 MiB.
absl::StatusOr<std::string> ReadBuildArgFile(const std::string& path);

}  // namespace berth::client
