#include "sif/assemble.h"

#include <sys/random.h>

#include <array>
#include <cerrno>

#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::sif {
namespace {

constexpr int64_t kCapacity = kDefaultDescriptorCapacity;
constexpr uint32_t kGroup = 1;  // apptainer build puts every object in group 1

}  // namespace

Descriptor MakeBuildDescriptor(DataType type, uint32_t id, int64_t offset, int64_t size,
                               int64_t padding, int64_t time, std::string_view name) {
  Descriptor d;
  d.data_type = static_cast<int32_t>(type);
  d.used = 1;
  d.id = id;
  d.group_raw = kGroup | kGroupMask;
  d.offset = offset;
  d.size = size;
  d.size_with_padding = padding + size;
  d.created_at = d.modified_at = time;
  d.SetName(name);
  return d;
}

absl::Status WriteBuildMetadata(int fd, const std::vector<Descriptor>& objects,
                                const std::string& arch, int64_t time) {
  std::vector<uint8_t> table(kCapacity * kDescriptorSize, 0);
  for (size_t i = 0; i < objects.size(); ++i) {
    EncodeDescriptor(objects[i], std::span<uint8_t, kDescriptorSize>(
                                     table.data() + i * kDescriptorSize, kDescriptorSize));
  }
  RETURN_IF_ERROR(PwriteFull(fd, table, kDefaultDescriptorsOffset));

  Header h;
  std::copy(kApptainerLaunchScript.begin(), kApptainerLaunchScript.end(), h.launch_script.begin());
  std::copy(kMagic.begin(), kMagic.end(), h.magic.begin());
  std::copy(kVersion.begin(), kVersion.end(), h.version.begin());
  h.arch = {static_cast<uint8_t>(arch[0]), static_cast<uint8_t>(arch[1]), 0};
  if (::getrandom(h.uuid.data(), h.uuid.size(), 0) != static_cast<ssize_t>(h.uuid.size())) {
    return ErrnoStatus("getrandom", errno);
  }
  h.uuid[6] = (h.uuid[6] & 0x0f) | 0x40;  // RFC 4122 version 4
  h.uuid[8] = (h.uuid[8] & 0x3f) | 0x80;
  h.created_at = h.modified_at = time;
  h.descriptors_free = kCapacity - static_cast<int64_t>(objects.size());
  h.descriptors_total = kCapacity;
  h.descriptors_offset = kDefaultDescriptorsOffset;
  h.descriptors_size = kCapacity * kDescriptorSize;
  h.data_offset = kBuildDataOffset;
  for (const auto& d : objects) h.data_size += d.size_with_padding;
  std::array<uint8_t, kHeaderSize> raw{};
  EncodeHeader(h, raw);
  return PwriteFull(fd, raw, 0);
}

}  // namespace berth::sif
