#include "client/inspect/image_source.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/inspect/directory_reader.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::inspect {
namespace {

constexpr std::array<uint8_t, 4> kSquashfsMagic = {'h', 's', 'q', 's'};

}  // namespace

absl::StatusOr<ImageSource> ImageSource::Open(const std::string& path) {
  // O_NONBLOCK: a FIFO named as the image must not hang us; it fails below
  // as "not a regular file".
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  ImageSource source;
  if (S_ISDIR(st.st_mode)) {
    source.directory_fd_ = std::move(fd);
    return source;
  }
  std::array<uint8_t, 4> magic{};
  if (S_ISREG(st.st_mode) && st.st_size >= static_cast<off_t>(magic.size()) &&
      PreadFull(fd.get(), magic, 0).ok() && magic == kSquashfsMagic) {
    source.squashfs_size_ = st.st_size;
    source.squashfs_fd_ = std::move(fd);
    return source;
  }
  ASSIGN_OR_RETURN(sif::Image image,
                   sif::Image::FromFd(std::move(fd), sif::OpenMode::kReadOnly, path));
  source.sif_.emplace(std::move(image));
  return source;
}

absl::StatusOr<std::optional<std::string>> ImageSource::ReadSifObject(sif::DataType type,
                                                                      absl::string_view name,
                                                                      int64_t max_size) const {
  if (!sif_) return std::nullopt;
  for (const sif::Descriptor* d : sif_->Objects()) {
    if (d->data_type != static_cast<int32_t>(type) || (!name.empty() && d->Name() != name)) {
      continue;
    }
    auto data = sif_->ReadObjectToString(*d, max_size);
    if (!data.ok()) {
      return Annotate(data.status(), absl::StrFormat("reading SIF object %d (%s)", d->id,
                                                     sif::DataTypeName(d->data_type)));
    }
    return *std::move(data);
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<RootReader>> ImageSource::OpenRoot() {
  if (directory_fd_) return std::make_unique<DirectoryReader>(std::move(directory_fd_));
  if (!sif_) {
    auto reader = SquashfsReader::Open(squashfs_fd_.get(), 0, squashfs_size_);
    if (!reader.ok()) return Annotate(reader.status(), "squashfs image");
    return reader;
  }
  const sif::Descriptor* part = sif_->PrimaryPartition();
  if (part == nullptr) return absl::NotFoundError("the SIF has no primary system partition");
  int32_t fs = part->Partition().fs_type;
  switch (static_cast<sif::FsType>(fs)) {
    case sif::FsType::kSquashfs:
      break;
    case sif::FsType::kEncryptedSquashfs:
    case sif::FsType::kGocryptfsSquashfs:
      return absl::UnimplementedError(
          "the primary partition is encrypted; berth cannot read it without mounting it");
    default:
      return absl::UnimplementedError(
          absl::StrCat("the primary partition is ", sif::FsTypeName(fs), ", not squashfs"));
  }
  auto reader = SquashfsReader::Open(sif_->fd(), part->offset, part->size);
  if (!reader.ok()) {
    return Annotate(reader.status(), absl::StrFormat("primary partition (object %d)", part->id));
  }
  return reader;
}

absl::StatusOr<RootReader*> ImageSource::Root() {
  if (!root_) {
    ASSIGN_OR_RETURN(root_, OpenRoot());
  }
  return root_.get();
}

}  // namespace berth::inspect
