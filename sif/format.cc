#include "sif/format.h"

#include <array>
#include <utility>

#include "absl/strings/str_format.h"

namespace berth::sif {
namespace {

// Index + 1 is the numeric code ("01" = 386). loong64 is Apptainer's addition.
constexpr std::array<std::string_view, 13> kArchNames = {
    "386",    "amd64",  "arm",      "arm64", "ppc64",   "ppc64le", "mips",
    "mipsle", "mips64", "mips64le", "s390x", "riscv64", "loong64"};

constexpr std::array<std::string_view, 8> kSbomNames = {
    "cyclonedx-json", "cyclonedx-xml",  "github-json", "spdx-json",
    "spdx-rdf",       "spdx-tag-value", "spdx-yaml",   "syft-json"};

}  // namespace

std::string DataTypeName(int32_t type) {
  switch (static_cast<DataType>(type)) {
    case DataType::kDeffile:
      return "Def.FILE";
    case DataType::kEnvVar:
      return "Env.Vars";
    case DataType::kLabels:
      return "JSON.Labels";
    case DataType::kPartition:
      return "FS";
    case DataType::kSignature:
      return "Signature";
    case DataType::kGenericJson:
      return "JSON.Generic";
    case DataType::kGeneric:
      return "Generic/Raw";
    case DataType::kCryptoMessage:
      return "Cryptographic Message";
    case DataType::kSbom:
      return "SBOM";
    case DataType::kOciRootIndex:
      return "OCI.RootIndex";
    case DataType::kOciBlob:
      return "OCI.Blob";
  }
  return "Unknown";
}

std::string FsTypeName(int32_t fs) {
  switch (static_cast<FsType>(fs)) {
    case FsType::kSquashfs:
      return "Squashfs";
    case FsType::kExt3:
      return "Ext3";
    case FsType::kImmuObj:
      return "Archive";
    case FsType::kRaw:
      return "Raw";
    case FsType::kEncryptedSquashfs:
      return "Encrypted squashfs";
    case FsType::kGocryptfsSquashfs:
      return "Gocryptfs squashfs";
  }
  return "Unknown";
}

std::string PartTypeName(int32_t part) {
  switch (static_cast<PartType>(part)) {
    case PartType::kSystem:
      return "System";
    case PartType::kPrimSys:
      return "*System";
    case PartType::kData:
      return "Data";
    case PartType::kOverlay:
      return "Overlay";
  }
  return "Unknown";
}

std::string HashTypeName(int32_t hash) {
  switch (static_cast<HashType>(hash)) {
    case HashType::kSha256:
      return "SHA-256";
    case HashType::kSha384:
      return "SHA-384";
    case HashType::kSha512:
      return "SHA-512";
    case HashType::kBlake2s:
      return "BLAKE2s-256";
    case HashType::kBlake2b:
      return "BLAKE2b-256";
  }
  return "Unknown";
}

std::string FormatTypeName(int32_t format) {
  switch (static_cast<FormatType>(format)) {
    case FormatType::kOpenPgp:
      return "OpenPGP";
    case FormatType::kPem:
      return "PEM";
  }
  return "Unknown";
}

std::string MessageTypeName(int32_t message) {
  switch (static_cast<MessageType>(message)) {
    case MessageType::kClearSignature:
      return "Clear Signature";
    case MessageType::kRsaOaep:
      return "RSA-OAEP";
  }
  return "Unknown";
}

std::string SbomFormatName(int32_t format) {
  if (format >= 1 && format <= static_cast<int32_t>(kSbomNames.size())) {
    return std::string(kSbomNames[format - 1]);
  }
  return "unknown";
}

std::optional<int32_t> SbomFormatFromName(std::string_view name) {
  for (size_t i = 0; i < kSbomNames.size(); ++i) {
    if (kSbomNames[i] == name) return static_cast<int32_t>(i + 1);
  }
  return std::nullopt;
}

std::string ArchName(std::string_view code) {
  if (code.size() == 2 && code[0] >= '0' && code[0] <= '9' && code[1] >= '0' && code[1] <= '9') {
    int n = (code[0] - '0') * 10 + (code[1] - '0');
    if (n >= 1 && n <= static_cast<int>(kArchNames.size())) {
      return std::string(kArchNames[n - 1]);
    }
  }
  return "unknown";
}

std::optional<std::string> ArchCodeFromNumber(int32_t number) {
  if (number < 1 || number > static_cast<int32_t>(kArchNames.size())) return std::nullopt;
  return absl::StrFormat("%02d", number);
}

std::optional<std::string> ArchCodeFromName(std::string_view name) {
  for (size_t i = 0; i < kArchNames.size(); ++i) {
    if (kArchNames[i] == name) return ArchCodeFromNumber(static_cast<int32_t>(i + 1));
  }
  return std::nullopt;
}

std::string_view HostArchName() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

}  // namespace berth::sif
