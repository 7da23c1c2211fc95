// The signed "image metadata" of a SIF (formats.md §2.1): the compact JSON
// document a current-format signature covers, and the digests inside it.
//
// The trust/ module signs and verifies SIF images the way Apptainer's
// pkg/integrity does. This header is its byte-level core: which bytes of the
// global header and of each descriptor are hashed, how object data is hashed
// (streamed from the file, never loaded whole), and the JSON text itself,
// written in the reference field order and parsed strictly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sif/image.h"

namespace berth::trust {

// A digest as the JSON spells it: "<alg>:<lower-case hex>".
struct Digest {
  std::string algorithm;  // sha224, sha256, sha384, sha512, sha512_224, sha512_256
  std::string hex;
  std::string ToString() const { return algorithm + ":" + hex; }
  bool operator==(const Digest&) const = default;
};

// Parses "<alg>:<hex>"; refuses unknown algorithms and malformed hex.
absl::StatusOr<Digest> ParseDigest(const std::string& text);

// Hashes `data` with `algorithm` (a name ParseDigest accepts).
absl::StatusOr<Digest> HashBytes(const std::string& algorithm, const std::string& data);

// Hashes bytes [offset, offset+length) of `fd`, streaming in bounded chunks.
absl::StatusOr<Digest> HashRange(const std::string& algorithm, int fd, int64_t offset,
                                 int64_t length);
// Hashes several ranges of `fd` as one stream, in the order given.
struct ByteRange {
  int64_t offset = 0;
  int64_t length = 0;
};
absl::StatusOr<Digest> HashRanges(const std::string& algorithm, int fd,
                                  const std::vector<ByteRange>& ranges);

// The 61 bytes of the header that are signed (launch script, magic, version, UUID).
std::string HeaderDigestInput(const sif::Header& header);
// The 557 bytes of a descriptor that are signed, with its relative ID.
std::string DescriptorDigestInput(const sif::Descriptor& d, uint32_t relative_id);

struct ObjectMetadata {
  uint32_t relative_id = 0;
  Digest descriptor_digest;
  Digest object_digest;
};

struct ImageMetadata {
  int version = 1;
  Digest header_digest;
  std::vector<ObjectMetadata> objects;  // ascending relative ID
};

// Computes the metadata of `objects` (members of one group) with `algorithm`.
absl::StatusOr<ImageMetadata> ComputeMetadata(const sif::Image& image,
                                              const std::vector<const sif::Descriptor*>& objects,
                                              const std::string& algorithm);

// The compact JSON, fields in the reference order, no trailing newline.
std::string MetadataToJson(const ImageMetadata& metadata);
// Strict parse of signed JSON (version 1, well-formed digests, unique IDs).
absl::StatusOr<ImageMetadata> MetadataFromJson(const std::string& json);

}  // namespace berth::trust
