#include "sif/image.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::sif {

absl::StatusOr<Image> Image::Open(const std::string& path, OpenMode mode) {
  // O_NONBLOCK: opening a FIFO someone names as an image must not hang us;
  // Load() then rejects anything that is not a regular file.
  int flags = (mode == OpenMode::kReadWrite ? O_RDWR : O_RDONLY) | O_NOCTTY | O_NONBLOCK;
  auto fd = OpenFile(path, flags);
  if (!fd.ok()) return fd.status();
  return Load(*std::move(fd), mode, path);
}

absl::StatusOr<Image> Image::FromFd(UniqueFd fd, OpenMode mode, std::string display_name) {
  return Load(std::move(fd), mode, std::move(display_name));
}

absl::StatusOr<Image> Image::Load(UniqueFd fd, OpenMode mode, std::string display_name) {
  std::string name = display_name;
  auto image = LoadUnannotated(std::move(fd), mode, std::move(display_name));
  if (!image.ok()) return Annotate(image.status(), name);
  return image;
}

absl::StatusOr<Image> Image::LoadUnannotated(UniqueFd fd, OpenMode mode, std::string display_name) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError("not a SIF image: not a regular file");
  }
  Image img;
  img.fd_ = std::move(fd);
  img.name_ = std::move(display_name);
  img.writable_ = mode == OpenMode::kReadWrite;
  ASSIGN_OR_RETURN(img.file_size_, FileSize(img.fd_.get()));
  if (img.file_size_ < kHeaderSize) {
    return absl::OutOfRangeError(absl::StrFormat(
        "not a SIF image: file is %d bytes, smaller than the 128-byte SIF header", img.file_size_));
  }
  std::array<uint8_t, kHeaderSize> raw_header;
  RETURN_IF_ERROR_CTX(PreadFull(img.fd_.get(), raw_header, 0), "reading SIF header");
  DecodeHeader(raw_header, img.header_);

  // The header is checked before the table is read, so the table allocation
  // is bounded by both kMaxDescriptorCapacity and the real file size.
  Header& h = img.header_;
  RETURN_IF_ERROR(ValidateHeader(h, img.file_size_));
  std::vector<uint8_t> table(static_cast<size_t>(h.descriptors_size));
  RETURN_IF_ERROR_CTX(PreadFull(img.fd_.get(), table, h.descriptors_offset),
                      "reading SIF descriptors");
  img.slots_.resize(static_cast<size_t>(h.descriptors_total));
  for (size_t i = 0; i < img.slots_.size(); ++i) {
    DecodeDescriptor(
        std::span<const uint8_t, kDescriptorSize>(&table[i * kDescriptorSize], kDescriptorSize),
        img.slots_[i]);
  }
  RETURN_IF_ERROR(Validate(h, img.slots_, img.file_size_));
  return img;
}

std::vector<const Descriptor*> Image::Objects() const {
  std::vector<const Descriptor*> out;
  for (const Descriptor& d : slots_) {
    if (d.IsUsed()) out.push_back(&d);
  }
  return out;
}

absl::StatusOr<const Descriptor*> Image::FindById(uint32_t id) const {
  for (const Descriptor& d : slots_) {
    if (d.IsUsed() && d.id == id) return &d;
  }
  return absl::NotFoundError(absl::StrFormat("no object with ID %d in %s", id, name_));
}

Descriptor* Image::MutableById(uint32_t id) {
  for (Descriptor& d : slots_) {
    if (d.IsUsed() && d.id == id) return &d;
  }
  return nullptr;
}

std::vector<const Descriptor*> Image::GroupMembers(uint32_t group_id) const {
  std::vector<const Descriptor*> out;
  for (const Descriptor* d : Objects()) {
    if (group_id != 0 && d->GroupId() == group_id) out.push_back(d);
  }
  return out;
}

std::vector<uint32_t> Image::GroupIds() const {
  std::set<uint32_t> ids;
  for (const Descriptor* d : Objects()) {
    if (d->GroupId() != 0) ids.insert(d->GroupId());
  }
  return {ids.begin(), ids.end()};
}

const Descriptor* Image::PrimaryPartition() const {
  for (const Descriptor* d : Objects()) {
    if (d->data_type == static_cast<int32_t>(DataType::kPartition) &&
        d->Partition().part_type == static_cast<int32_t>(PartType::kPrimSys)) {
      return d;
    }
  }
  return nullptr;
}

uint32_t Image::RelativeId(const Descriptor& d) const {
  uint32_t min_id = d.id;
  for (const Descriptor* o : Objects()) {
    if (o->group_raw == d.group_raw) min_id = std::min(min_id, o->id);
  }
  return d.id - min_id;
}

bool Image::IsDeterministic() const {
  return header_.UuidIsNil() && header_.created_at == kGoZeroTime &&
         header_.modified_at == kGoZeroTime;
}

absl::Status Image::ReadObject(const Descriptor& d, int64_t offset, std::span<uint8_t> out) const {
  int64_t len = static_cast<int64_t>(out.size());
  if (offset < 0 || offset > d.size || len > d.size - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "read of %d bytes at %d is outside object %d (%d bytes)", len, offset, d.id, d.size));
  }
  return PreadFull(fd_.get(), out, d.offset + offset);
}

absl::StatusOr<std::string> Image::ReadObjectToString(const Descriptor& d, int64_t max_size) const {
  if (d.size > max_size) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "object %d is %d bytes, more than the %d this operation accepts", d.id, d.size, max_size));
  }
  std::string data(static_cast<size_t>(d.size), '\0');
  RETURN_IF_ERROR(
      ReadObject(d, 0, std::span(reinterpret_cast<uint8_t*>(data.data()), data.size())));
  return data;
}

absl::Status Image::StreamObject(const Descriptor& d, int out_fd) const {
  return CopyRangeToStream(fd_.get(), d.offset, d.size, out_fd);
}

}  // namespace berth::sif
