// A SIF image opened from a file descriptor: validated metadata plus access to
// object data as byte ranges or streams, and the in-place edits siftool makes.
//
// Every Image has passed Validate() (validate.cc) before a caller sees it, so
// callers may trust that descriptors are in range, IDs are unique, objects do
// not overlap and links resolve. Object data is never loaded whole; callers
// read ranges or stream them, which keeps multi-GB partitions out of memory.
// The class holds no global state and is safe to use from both binaries.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "sif/format.h"
#include "sif/layout.h"

namespace berth::sif {

enum class OpenMode { kReadOnly, kReadWrite };

struct CreateOptions {
  std::string launch_script;  // must be < 32 bytes; empty like siftool
  // Zero UUID and Go's zero time in every time field, for reproducible output.
  bool deterministic = false;
  int64_t descriptor_capacity = kDefaultDescriptorCapacity;
  std::optional<std::array<uint8_t, 16>> uuid;  // random v4 when unset
  std::optional<int64_t> time;                  // Unix seconds; now when unset
};

// One object to append. The data comes from `data_fd`, read from its current
// position to EOF (a file or a pipe).
struct ObjectInput {
  DataType type = DataType::kGeneric;
  int data_fd = -1;
  std::string name;
  uint32_t group_id = 0;   // 0 = no group
  uint32_t link_raw = 0;   // object ID, or gid|kGroupMask for a group link
  int64_t alignment = -1;  // -1 = the default for `type`
  std::optional<PartitionInfo> partition;
  std::optional<SignatureInfo> signature;
  std::optional<CryptoMessageInfo> crypto_message;
  std::optional<int32_t> sbom_format;
  std::optional<std::string> oci_digest;
};

struct DeleteOptions {
  bool zero = false;     // overwrite the object's bytes with zeros
  bool compact = false;  // give the space back; only for the last object
};

// Well-formed UTF-8 (no overlong forms or surrogates): what object names must be.
bool ValidUtf8(std::string_view s);

// Validates the header alone against the file size (run before the table is
// read, so its allocation is bounded by the real file).
absl::Status ValidateHeader(const Header& header, int64_t file_size);

// Validates header + descriptors against the file size; the first problem
// found is returned as a one-line InvalidArgument/OutOfRange error.
absl::Status Validate(const Header& header, const std::vector<Descriptor>& slots,
                      int64_t file_size);

class Image {
 public:
  // Opens and validates `path`. Reads only the header and descriptor table.
  static absl::StatusOr<Image> Open(const std::string& path, OpenMode mode);
  // Same, for a descriptor the caller already opened (e.g. as another user).
  static absl::StatusOr<Image> FromFd(UniqueFd fd, OpenMode mode, std::string display_name);
  // Creates (truncating) `path` with no objects.
  static absl::StatusOr<Image> Create(const std::string& path, const CreateOptions& options);

  Image(Image&&) = default;
  Image& operator=(Image&&) = default;

  const Header& header() const { return header_; }
  const std::string& name() const { return name_; }
  int fd() const { return fd_.get(); }
  int64_t file_size() const { return file_size_; }

  // Used descriptors in table order (the order siftool lists them).
  std::vector<const Descriptor*> Objects() const;
  absl::StatusOr<const Descriptor*> FindById(uint32_t id) const;
  // Objects whose group is `group_id` (non-zero), in table order.
  std::vector<const Descriptor*> GroupMembers(uint32_t group_id) const;
  // Distinct non-zero group IDs, ascending.
  std::vector<uint32_t> GroupIds() const;
  // The primary system partition, or nullptr.
  const Descriptor* PrimaryPartition() const;
  // ID minus the smallest ID in the same group (the signed "relativeId").
  uint32_t RelativeId(const Descriptor& d) const;
  // UUID nil and both header times unset.
  bool IsDeterministic() const;

  // Reads `out.size()` bytes starting `offset` bytes into the object.
  absl::Status ReadObject(const Descriptor& d, int64_t offset, std::span<uint8_t> out) const;
  // Whole object as a string; refuses objects larger than `max_size`.
  absl::StatusOr<std::string> ReadObjectToString(const Descriptor& d, int64_t max_size) const;
  // Streams the object to `out_fd` without buffering it whole.
  absl::Status StreamObject(const Descriptor& d, int out_fd) const;

  // In-place edits, as siftool makes them (formats.md §1.7). `now` defaults to
  // the current time, or to Go's zero time for deterministic images.
  absl::Status AddObject(const ObjectInput& input, std::optional<int64_t> now = std::nullopt);
  absl::Status DeleteObject(uint32_t id, const DeleteOptions& options,
                            std::optional<int64_t> now = std::nullopt);
  absl::Status SetPrimaryPartition(uint32_t id, std::optional<int64_t> now = std::nullopt);

 private:
  Image() = default;
  static absl::StatusOr<Image> Load(UniqueFd fd, OpenMode mode, std::string display_name);
  static absl::StatusOr<Image> LoadUnannotated(UniqueFd fd, OpenMode mode,
                                               std::string display_name);
  int64_t DefaultTime(std::optional<int64_t> now) const;
  Descriptor* MutableById(uint32_t id);
  absl::Status WriteDescriptors();
  absl::Status WriteHeader();
  absl::Status RequireWritable() const;

  UniqueFd fd_;
  std::string name_;
  bool writable_ = false;
  int64_t file_size_ = 0;
  Header header_;
  std::vector<Descriptor> slots_;  // every slot, used or not
};

// Upper bound on descriptor capacity we accept (the reference uses 48).
inline constexpr int64_t kMaxDescriptorCapacity = 65536;

}  // namespace berth::sif
