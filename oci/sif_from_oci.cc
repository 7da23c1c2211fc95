#include "oci/sif_from_oci.h"

#include <fcntl.h>
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
#include "sif/assemble.h"
#include "sif/format.h"
#include "sif/image.h"
#include "sif/layout.h"

namespace berth::oci {
namespace {

constexpr int64_t kDataOffset = sif::kBuildDataOffset;
using sif::AlignUp;

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
  objects.push_back(sif::MakeBuildDescriptor(sif::DataType::kGenericJson, 1, kDataOffset,
                                             json.size(), 0, now, "oci-config.json"));
  std::string arch = ArchCode(config);
  sif::Descriptor part = sif::MakeBuildDescriptor(sif::DataType::kPartition, 2, part_offset,
                                                  squashfs_size, part_offset - json_end, now, "");
  part.SetPartition({static_cast<int32_t>(sif::FsType::kSquashfs),
                     static_cast<int32_t>(sif::PartType::kPrimSys), arch});
  objects.push_back(part);
  RETURN_IF_ERROR(sif::WriteBuildMetadata(out_fd, objects, arch, now));

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
