// SIF format vocabulary: the numeric codes stored on disk and their names.
//
// The sif/ module reads, validates and writes Singularity Image Format files
// byte-compatibly with the reference Go implementation (sylabs/sif, used by
// Apptainer). This header holds only the constants and code<->name tables;
// layout.h encodes the structures and image.h is the API callers use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::sif {

inline constexpr int64_t kHeaderSize = 128;
inline constexpr int64_t kDescriptorSize = 585;
inline constexpr int64_t kDefaultDescriptorsOffset = 4096;
inline constexpr int64_t kDefaultDescriptorCapacity = 48;
inline constexpr int64_t kPartitionAlignment = 4096;
inline constexpr size_t kLaunchScriptLen = 32;
inline constexpr size_t kNameLen = 128;
inline constexpr size_t kExtraLen = 384;
inline constexpr size_t kFingerprintLen = 20;
inline constexpr size_t kEntityLen = 256;
inline constexpr uint32_t kGroupMask = 0xF0000000u;
// Go's zero time.Time as Unix seconds: the "unset" value deterministic images store.
inline constexpr int64_t kGoZeroTime = -62135596800;
inline constexpr std::string_view kMagic{"SIF_MAGIC\0", 10};
inline constexpr std::string_view kVersion{"01\0", 3};
inline constexpr std::string_view kApptainerLaunchScript = "#!/usr/bin/env run-singularity\n";

enum class DataType : int32_t {
  kDeffile = 0x4001,
  kEnvVar = 0x4002,
  kLabels = 0x4003,
  kPartition = 0x4004,
  kSignature = 0x4005,
  kGenericJson = 0x4006,
  kGeneric = 0x4007,
  kCryptoMessage = 0x4008,
  kSbom = 0x4009,
  kOciRootIndex = 0x400A,
  kOciBlob = 0x400B,
};

enum class FsType : int32_t {
  kSquashfs = 1,
  kExt3 = 2,
  kImmuObj = 3,
  kRaw = 4,
  kEncryptedSquashfs = 5,
  kGocryptfsSquashfs = 6,
};

enum class PartType : int32_t { kSystem = 1, kPrimSys = 2, kData = 3, kOverlay = 4 };

enum class HashType : int32_t { kSha256 = 1, kSha384 = 2, kSha512 = 3, kBlake2s = 4, kBlake2b = 5 };

enum class FormatType : int32_t { kOpenPgp = 1, kPem = 2 };

enum class MessageType : int32_t { kClearSignature = 0x100, kRsaOaep = 0x200 };

// Names as siftool prints them ("Unknown"/"unknown" for values it does not know).
std::string DataTypeName(int32_t type);
std::string FsTypeName(int32_t fs);
std::string PartTypeName(int32_t part);
std::string HashTypeName(int32_t hash);  // "SHA-256", ...
std::string FormatTypeName(int32_t format);
std::string MessageTypeName(int32_t message);
std::string SbomFormatName(int32_t format);  // "cyclonedx-json", ...
std::optional<int32_t> SbomFormatFromName(std::string_view name);

// Architecture: the header/partition store a 2-digit code ("02"); users and
// siftool speak Go's GOARCH names ("amd64").
std::string ArchName(std::string_view code);  // "unknown" when not known
std::optional<std::string> ArchCodeFromName(std::string_view name);
std::optional<std::string> ArchCodeFromNumber(int32_t number);  // siftool --partarch
// The GOARCH name of the machine berth was built for.
std::string_view HostArchName();

}  // namespace berth::sif
