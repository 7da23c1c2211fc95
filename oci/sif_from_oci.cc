#include "oci/sif_from_oci.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "oci/manifest.h"
#include "oci/rootfs_builder.h"
#include "oci/singularity_layout.h"
#include "sif/format.h"
#include "sif/image.h"
#include "sif/layout.h"

namespace berth::oci {
namespace {

constexpr int64_t kCapacity = sif::kDefaultDescriptorCapacity;
constexpr int64_t kDataOffset = sif::kDefaultDescriptorsOffset + kCapacity * sif::kDescriptorSize;
constexpr uint32_t kGroup = 1;  // apptainer build puts every object in group 1

int64_t AlignUp(int64_t v, int64_t a) {
  return (v + a - 1) / a * a;
}

absl::Status CheckOutput(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("output", errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("output is not a regular file");
  if (::ftruncate(fd, 0) != 0) return ErrnoStatus("truncating output", errno);
  return absl::OkStatus();
}

// The SIF arch code of the image config's architecture ("02" for amd64).
std::string ArchCode(const ImageConfig& config) {
  auto code = sif::ArchCodeFromName(config.architecture.empty() ? "amd64" : config.architecture);
  return code ? *code : "00";
}

sif::Descriptor MakeDescriptor(sif::DataType type, uint32_t id, int64_t offset, int64_t size,
                               int64_t padding, int64_t time, std::string_view name) {
  sif::Descriptor d;
  d.data_type = static_cast<int32_t>(type);
  d.used = 1;
  d.id = id;
  d.group_raw = kGroup | sif::kGroupMask;
  d.offset = offset;
  d.size = size;
  d.size_with_padding = padding + size;
  d.created_at = d.modified_at = time;
  d.SetName(name);
  return d;
}

// Descriptor table, then the header: a reader sees a SIF only once all of
// its objects are in place.
absl::Status WriteSifMetadata(int fd, const std::vector<sif::Descriptor>& objects,
                              const std::string& arch, int64_t time) {
  std::vector<uint8_t> table(kCapacity * sif::kDescriptorSize, 0);
  for (size_t i = 0; i < objects.size(); ++i) {
    sif::EncodeDescriptor(objects[i],
                          std::span<uint8_t, sif::kDescriptorSize>(
                              table.data() + i * sif::kDescriptorSize, sif::kDescriptorSize));
  }
  RETURN_IF_ERROR(PwriteFull(fd, table, sif::kDefaultDescriptorsOffset));

  sif::Header h;
  std::copy(sif::kApptainerLaunchScript.begin(), sif::kApptainerLaunchScript.end(),
            h.launch_script.begin());
  std::copy(sif::kMagic.begin(), sif::kMagic.end(), h.magic.begin());
  std::copy(sif::kVersion.begin(), sif::kVersion.end(), h.version.begin());
  h.arch = {static_cast<uint8_t>(arch[0]), static_cast<uint8_t>(arch[1]), 0};
  if (::getrandom(h.uuid.data(), h.uuid.size(), 0) != static_cast<ssize_t>(h.uuid.size())) {
    return ErrnoStatus("getrandom", errno);
  }
  h.uuid[6] = (h.uuid[6] & 0x0f) | 0x40;  // RFC 4122 version 4
  h.uuid[8] = (h.uuid[8] & 0x3f) | 0x80;
  h.created_at = h.modified_at = time;
  h.descriptors_free = kCapacity - static_cast<int64_t>(objects.size());
  h.descriptors_total = kCapacity;
  h.descriptors_offset = sif::kDefaultDescriptorsOffset;
  h.descriptors_size = kCapacity * sif::kDescriptorSize;
  h.data_offset = kDataOffset;
  for (const auto& d : objects) h.data_size += d.size_with_padding;
  std::array<uint8_t, sif::kHeaderSize> raw{};
  sif::EncodeHeader(h, raw);
  return PwriteFull(fd, raw, 0);
}

absl::StatusOr<ConversionStats> Convert(const OciImage& image, int out_fd,
                                        const SifBuildOptions& options) {
  RETURN_IF_ERROR(CheckOutput(out_fd));
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(image.config_json));
  ASSIGN_OR_RETURN(SingularityLayout layout, BuildSingularityLayout(image.config_json));
  int64_t now = options.timestamp >= 0 ? options.timestamp : static_cast<int64_t>(::time(nullptr));
  ConversionStats stats;
  stats.dropped_env = layout.dropped_env;

  // Layout: oci-config.json right after the descriptor table, then the
  // squashfs at the next 4 KiB boundary (formats.md §1.7-1.8).
  const std::string& json = layout.oci_config_json;
  int64_t json_end = kDataOffset + static_cast<int64_t>(json.size());
  int64_t part_offset = AlignUp(json_end, sif::kPartitionAlignment);

  ASSIGN_OR_RETURN(auto builder, RootfsBuilder::Create({out_fd, part_offset}, options));
  RETURN_IF_ERROR_CTX(builder->AddGeneratedFiles(layout, now), "generated files");
  for (int i = static_cast<int>(image.layers.size()) - 1; i >= 0; --i) {
    RETURN_IF_ERROR(builder->AddLayer(image.layers[i], i));
  }
  RETURN_IF_ERROR_CTX(builder->AddMissing(layout, now), "generated directories");
  ASSIGN_OR_RETURN(int64_t squashfs_size, builder->Finish(stats));
  builder.reset();

  RETURN_IF_ERROR(PwriteFull(out_fd, {reinterpret_cast<const uint8_t*>(json.data()), json.size()},
                             kDataOffset));
  std::vector<sif::Descriptor> objects;
  objects.push_back(MakeDescriptor(sif::DataType::kGenericJson, 1, kDataOffset, json.size(), 0, now,
                                   "oci-config.json"));
  std::string arch = ArchCode(config);
  sif::Descriptor part = MakeDescriptor(sif::DataType::kPartition, 2, part_offset, squashfs_size,
                                        part_offset - json_end, now, "");
  part.SetPartition({static_cast<int32_t>(sif::FsType::kSquashfs),
                     static_cast<int32_t>(sif::PartType::kPrimSys), arch});
  objects.push_back(part);
  RETURN_IF_ERROR(WriteSifMetadata(out_fd, objects, arch, now));

  // Prove the result with the same validator every reader uses.
  int dup_fd = ::fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus("dup", errno);
  auto check = sif::Image::FromFd(UniqueFd(dup_fd), sif::OpenMode::kReadOnly, "converted image");
  if (!check.ok())
    return Annotate(check.status(), "internal error: the written SIF does not validate");
  return stats;
}

}  // namespace

absl::StatusOr<ConversionStats> WriteSifFromOci(const OciImage& image, int out_fd,
                                                const SifBuildOptions& options) {
  auto result = Convert(image, out_fd, options);
  if (!result.ok()) {
    // Never leave bytes behind that a caller could mistake for an image.
    (void)::ftruncate(out_fd, 0);
    return Annotate(result.status(), "converting OCI image to SIF");
  }
  return result;
}

}  // namespace berth::oci
