// Writing a whole new SIF the way `apptainer build` lays one out: every
// object in group 1 after the default descriptor table, then the table and,
// last, the header, so a reader sees a SIF only once all of its objects are
// in place. Used by the OCI converter and by the builder, which write the
// objects' data themselves (the squashfs straight into the file).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "sif/format.h"
#include "sif/layout.h"

namespace berth::sif {

inline constexpr int64_t kBuildDataOffset =
    kDefaultDescriptorsOffset + kDefaultDescriptorCapacity * kDescriptorSize;

inline int64_t AlignUp(int64_t v, int64_t a) {
  return (v + a - 1) / a * a;
}

// A used descriptor in group 1; `padding` bytes precede the data.
Descriptor MakeBuildDescriptor(DataType type, uint32_t id, int64_t offset, int64_t size,
                               int64_t padding, int64_t time, std::string_view name);

// Writes the descriptor table (`objects` in order) and then the header, with
// Apptainer's launch script, a random UUID and `arch` ("02").
absl::Status WriteBuildMetadata(int fd, const std::vector<Descriptor>& objects,
                                const std::string& arch, int64_t time);

}  // namespace berth::sif
