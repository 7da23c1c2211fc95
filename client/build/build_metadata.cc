#include "client/build/build_metadata.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "client/inspect/image_source.h"
#include "client/inspect/inspector.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "sif/image.h"

namespace berth::client {
namespace {

constexpr char kObjectName[] = "inspect-metadata.json";
constexpr uint32_t kImageGroup = 1;

absl::StatusOr<std::string> RenderMetadata(const std::string& sif_path) {
  ASSIGN_OR_RETURN(inspect::ImageSource source, inspect::ImageSource::Open(sif_path));
  inspect::InspectOptions all;
  all.all = true;
  all.json = true;
  ASSIGN_OR_RETURN(inspect::InspectResult result, inspect::Inspect(source, all));
  return inspect::RenderJson(result.attributes);
}

absl::StatusOr<UniqueFd> InMemory(const std::string& text) {
  UniqueFd fd(::memfd_create(kObjectName, MFD_CLOEXEC));
  if (!fd) return ErrnoStatus("memfd_create", errno);
  RETURN_IF_ERROR(WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus("lseek", errno);
  return fd;
}

}  // namespace

absl::Status AddInspectMetadata(const std::string& sif_path) {
  ASSIGN_OR_RETURN(std::string json, RenderMetadata(sif_path));
  ASSIGN_OR_RETURN(UniqueFd data, InMemory(json));
  ASSIGN_OR_RETURN(sif::Image image, sif::Image::Open(sif_path, sif::OpenMode::kReadWrite));
  sif::ObjectInput object;
  object.type = sif::DataType::kGenericJson;
  object.data_fd = data.get();
  object.name = kObjectName;
  object.group_id = kImageGroup;
  return image.AddObject(object);
}

}  // namespace berth::client
