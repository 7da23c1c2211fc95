// On-disk layout of the SIF global header and object descriptors.
//
// Decoding and encoding are explicit little-endian field by field (formats.md
// §1.2-1.3), so the structs below carry host-order values and never alias raw
// file bytes. Decoding never fails: whether the values make sense is the job
// of validate.cc, which needs the whole picture (file size, other objects).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "sif/format.h"

namespace berth::sif {

struct Header {
  std::array<uint8_t, kLaunchScriptLen> launch_script{};
  std::array<uint8_t, 10> magic{};
  std::array<uint8_t, 3> version{};
  std::array<uint8_t, 3> arch{};
  std::array<uint8_t, 16> uuid{};
  int64_t created_at = 0;
  int64_t modified_at = 0;
  int64_t descriptors_free = 0;
  int64_t descriptors_total = 0;
  int64_t descriptors_offset = 0;
  int64_t descriptors_size = 0;
  int64_t data_offset = 0;
  int64_t data_size = 0;

  // The launch script up to its first NUL.
  std::string LaunchScript() const;
  // The two arch digits ("02"), without the NUL.
  std::string ArchCode() const;
  // RFC 4122 text form, e.g. "e922e695-770c-403b-8125-0a0963ff0de9".
  std::string UuidString() const;
  bool UuidIsNil() const;
};

struct PartitionInfo {
  int32_t fs_type = 0;
  int32_t part_type = 0;
  std::string arch_code;  // two digits, e.g. "02"
};

struct SignatureInfo {
  int32_t hash_type = 0;
  // Binary OpenPGP v4 fingerprint; empty when the 20 bytes are zero (DSSE).
  std::string fingerprint;
};

struct CryptoMessageInfo {
  int32_t format = 0;
  int32_t message = 0;
};

struct Descriptor {
  int32_t data_type = 0;
  uint8_t used = 0;
  uint32_t id = 0;
  uint32_t group_raw = 0;  // stored ORed with kGroupMask
  uint32_t link_raw = 0;   // plain object ID, or gid|kGroupMask
  int64_t offset = 0;
  int64_t size = 0;
  int64_t size_with_padding = 0;
  int64_t created_at = 0;
  int64_t modified_at = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  std::array<uint8_t, kNameLen> name{};
  std::array<uint8_t, kExtraLen> extra{};

  bool IsUsed() const { return used != 0; }
  uint32_t GroupId() const { return group_raw & ~kGroupMask; }
  uint32_t LinkedId() const { return link_raw & ~kGroupMask; }
  bool LinkIsGroup() const { return (link_raw & kGroupMask) == kGroupMask; }
  std::string Name() const;  // up to the first NUL

  // Typed views of the extra area; callers check data_type first.
  PartitionInfo Partition() const;
  SignatureInfo Signature() const;
  CryptoMessageInfo CryptoMessage() const;
  int32_t SbomFormat() const;
  std::string OciDigest() const;  // "sha256:<hex>", NULs trimmed

  void SetName(std::string_view name);
  void SetPartition(const PartitionInfo& info);
  void SetSignature(int32_t hash_type, std::span<const uint8_t> fingerprint);
  void SetCryptoMessage(const CryptoMessageInfo& info);
  void SetSbomFormat(int32_t format);
  void SetOciDigest(std::string_view digest);
};

void DecodeHeader(std::span<const uint8_t, kHeaderSize> in, Header& out);
void EncodeHeader(const Header& in, std::span<uint8_t, kHeaderSize> out);
void DecodeDescriptor(std::span<const uint8_t, kDescriptorSize> in, Descriptor& out);
void EncodeDescriptor(const Descriptor& in, std::span<uint8_t, kDescriptorSize> out);

// Little-endian helpers, shared with the integrity code.
void PutLe32(uint8_t* p, uint32_t v);
void PutLe64(uint8_t* p, uint64_t v);
uint32_t GetLe32(const uint8_t* p);
uint64_t GetLe64(const uint8_t* p);

}  // namespace berth::sif
