// Creating SIF images and editing them in place, following the reference
// implementation's placement and write order (formats.md §1.7): object data
// first, then the whole descriptor table, then the header. A crash therefore
// leaves at worst unreferenced bytes past the old data end, never a
// descriptor pointing at unwritten data.
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "sif/image.h"

namespace berth::sif {
namespace {

int64_t AlignUp(int64_t offset, int64_t alignment) {
  if (alignment <= 1 || offset % alignment == 0) return offset;
  return (offset / alignment + 1) * alignment;
}

absl::StatusOr<std::array<uint8_t, 16>> RandomUuid() {
  std::array<uint8_t, 16> u;
  if (::getrandom(u.data(), u.size(), 0) != static_cast<ssize_t>(u.size())) {
    return ErrnoStatus("generating image UUID", errno);
  }
  u[6] = (u[6] & 0x0F) | 0x40;  // version 4
  u[8] = (u[8] & 0x3F) | 0x80;  // RFC 4122 variant
  return u;
}

absl::Status FillTypedExtra(const ObjectInput& in, Descriptor& d) {
  switch (in.type) {
    case DataType::kPartition:
      if (!in.partition) return absl::InvalidArgumentError("a partition needs fs, type and arch");
      d.SetPartition(*in.partition);
      break;
    case DataType::kSignature:
      if (!in.signature) return absl::InvalidArgumentError("a signature needs a hash type");
      if (!in.signature->fingerprint.empty() &&
          in.signature->fingerprint.size() != kFingerprintLen) {
        return absl::InvalidArgumentError("a signing fingerprint is exactly 20 bytes");
      }
      d.SetSignature(in.signature->hash_type,
                     std::span(reinterpret_cast<const uint8_t*>(in.signature->fingerprint.data()),
                               in.signature->fingerprint.size()));
      break;
    case DataType::kCryptoMessage:
      // siftool leaves the extra area zero when no format is given.
      if (in.crypto_message) d.SetCryptoMessage(*in.crypto_message);
      break;
    case DataType::kSbom:
      if (!in.sbom_format) return absl::InvalidArgumentError("an SBOM needs a format");
      d.SetSbomFormat(*in.sbom_format);
      break;
    case DataType::kOciBlob:
    case DataType::kOciRootIndex:
      if (!in.oci_digest) return absl::InvalidArgumentError("an OCI object needs a digest");
      d.SetOciDigest(*in.oci_digest);
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

int64_t Image::DefaultTime(std::optional<int64_t> now) const {
  if (now) return *now;
  return IsDeterministic() ? kGoZeroTime : static_cast<int64_t>(::time(nullptr));
}

absl::Status Image::RequireWritable() const {
  if (!writable_) {
    return absl::FailedPreconditionError(absl::StrCat(name_, " was opened read-only"));
  }
  return absl::OkStatus();
}

absl::Status Image::WriteDescriptors() {
  std::vector<uint8_t> table(slots_.size() * kDescriptorSize);
  for (size_t i = 0; i < slots_.size(); ++i) {
    EncodeDescriptor(slots_[i], std::span<uint8_t, kDescriptorSize>(&table[i * kDescriptorSize],
                                                                    kDescriptorSize));
  }
  return PwriteFull(fd_.get(), table, header_.descriptors_offset);
}

absl::Status Image::WriteHeader() {
  std::array<uint8_t, kHeaderSize> raw;
  EncodeHeader(header_, raw);
  return PwriteFull(fd_.get(), raw, 0);
}

absl::StatusOr<Image> Image::Create(const std::string& path, const CreateOptions& options) {
  if (options.launch_script.size() >= kLaunchScriptLen) {
    return absl::InvalidArgumentError(
        absl::StrFormat("launch script is %d bytes; it must be shorter than %d",
                        options.launch_script.size(), kLaunchScriptLen));
  }
  if (options.descriptor_capacity < 1 || options.descriptor_capacity > kMaxDescriptorCapacity) {
    return absl::InvalidArgumentError(
        absl::StrFormat("descriptor capacity %d is out of range (1..%d)",
                        options.descriptor_capacity, kMaxDescriptorCapacity));
  }
  Image img;
  img.name_ = path;
  img.writable_ = true;
  Header& h = img.header_;
  std::copy(options.launch_script.begin(), options.launch_script.end(), h.launch_script.begin());
  std::copy(kMagic.begin(), kMagic.end(), h.magic.begin());
  std::copy(kVersion.begin(), kVersion.end(), h.version.begin());
  h.arch = {'0', '0', 0};
  if (options.deterministic) {
    h.uuid.fill(0);
  } else if (options.uuid) {
    h.uuid = *options.uuid;
  } else {
    ASSIGN_OR_RETURN(h.uuid, RandomUuid());
  }
  int64_t t = options.deterministic ? kGoZeroTime
                                    : options.time.value_or(static_cast<int64_t>(::time(nullptr)));
  h.created_at = h.modified_at = t;
  h.descriptors_free = h.descriptors_total = options.descriptor_capacity;
  h.descriptors_offset = kDefaultDescriptorsOffset;
  h.descriptors_size = options.descriptor_capacity * kDescriptorSize;
  h.data_offset = h.descriptors_offset + h.descriptors_size;
  h.data_size = 0;
  img.slots_.resize(static_cast<size_t>(options.descriptor_capacity));

  // 0755 like the reference: a SIF with a launch script is directly executable.
  ASSIGN_OR_RETURN(img.fd_, OpenFile(path, O_RDWR | O_CREAT | O_TRUNC | O_NOCTTY, 0755));
  RETURN_IF_ERROR_CTX(img.WriteDescriptors(), absl::StrCat("writing ", path));
  RETURN_IF_ERROR_CTX(img.WriteHeader(), absl::StrCat("writing ", path));
  img.file_size_ = h.data_offset;
  return img;
}

absl::Status Image::AddObject(const ObjectInput& in, std::optional<int64_t> now) {
  RETURN_IF_ERROR(RequireWritable());
  auto free_slot =
      std::find_if(slots_.begin(), slots_.end(), [](const Descriptor& d) { return !d.IsUsed(); });
  if (free_slot == slots_.end()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s has no free descriptor (all %d are used)", name_, header_.descriptors_total));
  }
  // New data goes at the end of the data area; a table placed after it (legal,
  // though siftool never writes one) would be overwritten.
  if (header_.descriptors_offset + header_.descriptors_size > header_.data_offset) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s cannot grow: its descriptor table (offset %d) lies after the data area (offset %d)",
        name_, header_.descriptors_offset, header_.data_offset));
  }
  bool primary = in.type == DataType::kPartition && in.partition &&
                 in.partition->part_type == static_cast<int32_t>(PartType::kPrimSys);
  if (primary && PrimaryPartition() != nullptr) {
    return absl::FailedPreconditionError("image already contains a primary partition");
  }
  if (in.group_id & kGroupMask) {
    return absl::InvalidArgumentError(absl::StrFormat("group ID %d is too large", in.group_id));
  }
  if (in.name.size() > kNameLen) {
    return absl::InvalidArgumentError(
        absl::StrFormat("object name is %d bytes; the limit is %d", in.name.size(), kNameLen));
  }
  // Validate() rejects such names, e.g. from a file name in another encoding.
  if (!ValidUtf8(in.name)) return absl::InvalidArgumentError("object name is not valid UTF-8");
  // Only a fully set top nibble marks a group link (formats.md §1.6); any
  // other value is an object ID to Validate().
  if (in.link_raw != 0 && (in.link_raw & kGroupMask) != kGroupMask &&
      MutableById(in.link_raw) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("link target object %d does not exist", in.link_raw));
  }
  // Validate() rejects links to empty groups, so refuse to write one; the new
  // object itself counts when it joins the group it links to.
  if ((in.link_raw & kGroupMask) == kGroupMask) {
    uint32_t target = in.link_raw & ~kGroupMask;
    if (target == 0 || (target != in.group_id && GroupMembers(target).empty())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("link target group %d has no objects", target));
    }
  }
  // IDs follow slot positions in images siftool writes, but a hand-made
  // image may already use this slot's ID elsewhere; a duplicate would make
  // the image fail Validate().
  uint32_t new_id = static_cast<uint32_t>(free_slot - slots_.begin()) + 1;
  if (MutableById(new_id) != nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "object ID %d, the ID of the first free descriptor, is already in use", new_id));
  }
  Descriptor d;
  RETURN_IF_ERROR(FillTypedExtra(in, d));

  int64_t t = DefaultTime(now);
  int64_t alignment = in.alignment >= 0                 ? in.alignment
                      : in.type == DataType::kPartition ? kPartitionAlignment
                                                        : 0;
  int64_t unaligned = header_.data_offset + header_.data_size;
  int64_t offset = AlignUp(unaligned, alignment);
  auto copied = CopyStreamToOffset(in.data_fd, fd_.get(), offset);
  if (!copied.ok()) {
    // Drop whatever part of the object reached the file; nothing refers to it.
    (void)::ftruncate(fd_.get(), file_size_);
    return Annotate(copied.status(), "copying object data");
  }
  int64_t size = *copied;

  d.data_type = static_cast<int32_t>(in.type);
  d.used = 1;
  d.id = new_id;
  d.group_raw = in.group_id | kGroupMask;
  d.link_raw = in.link_raw;
  d.offset = offset;
  d.size = size;
  d.size_with_padding = offset - unaligned + size;
  d.created_at = d.modified_at = t;
  d.SetName(in.name);
  *free_slot = d;

  if (primary)
    header_.arch = {static_cast<uint8_t>(in.partition->arch_code[0]),
                    static_cast<uint8_t>(in.partition->arch_code[1]), 0};
  header_.descriptors_free--;
  header_.data_size += d.size_with_padding;
  header_.modified_at = t;
  // An empty object at the end leaves the file shorter than the data area
  // claims; extend it so the image stays self-consistent.
  int64_t data_end = header_.data_offset + header_.data_size;
  if (file_size_ < data_end) {
    if (::ftruncate(fd_.get(), data_end) != 0) return ErrnoStatus("extending image", errno);
    file_size_ = data_end;
  }
  RETURN_IF_ERROR_CTX(WriteDescriptors(), absl::StrCat("writing ", name_));
  RETURN_IF_ERROR_CTX(WriteHeader(), absl::StrCat("writing ", name_));
  return absl::OkStatus();
}

absl::Status Image::DeleteObject(uint32_t id, const DeleteOptions& options,
                                 std::optional<int64_t> now) {
  RETURN_IF_ERROR(RequireWritable());
  Descriptor* d = MutableById(id);
  if (d == nullptr) return absl::NotFoundError(absl::StrFormat("no object with ID %d", id));
  // A dangling link would make the image fail Validate(), so the linking
  // object (e.g. a signature) has to go first.
  bool last_in_group = d->GroupId() != 0 && GroupMembers(d->GroupId()).size() == 1;
  for (const Descriptor* o : Objects()) {
    if (o == d || o->link_raw == 0) continue;
    if (o->LinkIsGroup() ? last_in_group && o->LinkedId() == d->GroupId() : o->link_raw == id) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "object %d is linked from object %d; delete object %d first", id, o->id, o->id));
    }
  }
  // Compaction truncates the file where the object's alignment gap starts.
  // Validate() bounds neither the gap nor data-area slack, so check that the
  // cut removes nothing but this object and leaves the data area consistent.
  int64_t end = d->offset + d->size;
  int64_t start = end - d->size_with_padding;
  bool is_last = end == header_.data_offset + header_.data_size && start >= header_.data_offset;
  for (const Descriptor* o : Objects()) {
    if (o != d && o->offset + o->size > start) is_last = false;
  }
  if (options.compact && !is_last) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cannot compact: object %d is not the last object in the image", id));
  }
  if (options.zero) {
    std::vector<uint8_t> zeros(static_cast<size_t>(std::min<int64_t>(d->size, 1 << 20)));
    for (int64_t done = 0; done < d->size;) {
      size_t n = static_cast<size_t>(std::min<int64_t>(d->size - done, zeros.size()));
      RETURN_IF_ERROR(PwriteFull(fd_.get(), std::span(zeros.data(), n), d->offset + done));
      done += n;
    }
  }
  if (options.compact) {
    if (::ftruncate(fd_.get(), start) != 0) return ErrnoStatus("truncating image", errno);
    file_size_ = start;
    header_.data_size -= d->size_with_padding;
  }
  if (d->data_type == static_cast<int32_t>(DataType::kPartition) &&
      d->Partition().part_type == static_cast<int32_t>(PartType::kPrimSys)) {
    header_.arch = {'0', '0', 0};
  }
  *d = Descriptor{};
  header_.descriptors_free++;
  header_.modified_at = DefaultTime(now);
  RETURN_IF_ERROR_CTX(WriteDescriptors(), absl::StrCat("writing ", name_));
  RETURN_IF_ERROR_CTX(WriteHeader(), absl::StrCat("writing ", name_));
  return absl::OkStatus();
}

absl::Status Image::SetPrimaryPartition(uint32_t id, std::optional<int64_t> now) {
  RETURN_IF_ERROR(RequireWritable());
  Descriptor* d = MutableById(id);
  if (d == nullptr) return absl::NotFoundError(absl::StrFormat("no object with ID %d", id));
  if (d->data_type != static_cast<int32_t>(DataType::kPartition)) {
    return absl::FailedPreconditionError(absl::StrFormat("object %d is not a partition", id));
  }
  PartitionInfo info = d->Partition();
  if (info.part_type == static_cast<int32_t>(PartType::kPrimSys)) return absl::OkStatus();
  if (info.part_type != static_cast<int32_t>(PartType::kSystem)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("object %d is not a system partition", id));
  }
  int64_t t = DefaultTime(now);
  for (Descriptor& o : slots_) {
    if (o.IsUsed() && o.data_type == static_cast<int32_t>(DataType::kPartition) &&
        o.Partition().part_type == static_cast<int32_t>(PartType::kPrimSys)) {
      PartitionInfo old = o.Partition();
      old.part_type = static_cast<int32_t>(PartType::kSystem);
      o.SetPartition(old);
      o.modified_at = t;
    }
  }
  info.part_type = static_cast<int32_t>(PartType::kPrimSys);
  d->SetPartition(info);
  d->modified_at = t;
  header_.arch = {static_cast<uint8_t>(info.arch_code.size() > 0 ? info.arch_code[0] : '0'),
                  static_cast<uint8_t>(info.arch_code.size() > 1 ? info.arch_code[1] : '0'), 0};
  header_.modified_at = t;
  RETURN_IF_ERROR_CTX(WriteDescriptors(), absl::StrCat("writing ", name_));
  RETURN_IF_ERROR_CTX(WriteHeader(), absl::StrCat("writing ", name_));
  return absl::OkStatus();
}

}  // namespace berth::sif
