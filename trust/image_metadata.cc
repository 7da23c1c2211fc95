#include "trust/image_metadata.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "sif/layout.h"

namespace berth::trust {
namespace {

// The reference's names (Go crypto.Hash) mapped to OpenSSL's.
const EVP_MD* MdOf(const std::string& algorithm) {
  if (algorithm == "sha224") return EVP_sha224();
  if (algorithm == "sha256") return EVP_sha256();
  if (algorithm == "sha384") return EVP_sha384();
  if (algorithm == "sha512") return EVP_sha512();
  if (algorithm == "sha512_224") return EVP_sha512_224();
  if (algorithm == "sha512_256") return EVP_sha512_256();
  return nullptr;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

absl::StatusOr<MdCtx> NewContext(const std::string& algorithm) {
  const EVP_MD* md = MdOf(algorithm);
  if (md == nullptr) return absl::InvalidArgumentError("unsupported digest " + algorithm);
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return absl::InternalError("OpenSSL digest initialisation failed");
  }
  return ctx;
}

Digest Finish(const std::string& algorithm, EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  Digest d{algorithm, {}};
  for (unsigned int i = 0; i < len; ++i) {
    d.hex.push_back(kHex[md[i] >> 4]);
    d.hex.push_back(kHex[md[i] & 0xF]);
  }
  return d;
}

size_t HexLength(const std::string& algorithm) {
  return static_cast<size_t>(EVP_MD_get_size(MdOf(algorithm))) * 2;
}

absl::StatusOr<Digest> DigestField(const nlohmann::json& parent, const char* key) {
  auto it = parent.find(key);
  if (it == parent.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("missing digest '", key, "'"));
  }
  return ParseDigest(it->get<std::string>());
}

}  // namespace

absl::StatusOr<Digest> ParseDigest(const std::string& text) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("malformed digest");
  Digest d{text.substr(0, colon), text.substr(colon + 1)};
  if (MdOf(d.algorithm) == nullptr) {
    return absl::InvalidArgumentError("unsupported digest algorithm '" + d.algorithm + "'");
  }
  bool hex = std::all_of(d.hex.begin(), d.hex.end(),
                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex || d.hex.size() != HexLength(d.algorithm)) {
    return absl::InvalidArgumentError("malformed " + d.algorithm + " digest");
  }
  return d;
}

absl::StatusOr<Digest> HashBytes(const std::string& algorithm, const std::string& data) {
  ASSIGN_OR_RETURN(MdCtx ctx, NewContext(algorithm));
  EVP_DigestUpdate(ctx.get(), data.data(), data.size());
  return Finish(algorithm, ctx.get());
}

absl::StatusOr<Digest> HashRange(const std::string& algorithm, int fd, int64_t offset,
                                 int64_t length) {
  return HashRanges(algorithm, fd, {{offset, length}});
}

absl::StatusOr<Digest> HashRanges(const std::string& algorithm, int fd,
                                  const std::vector<ByteRange>& ranges) {
  ASSIGN_OR_RETURN(MdCtx ctx, NewContext(algorithm));
  // 64 KiB: the copy out of the page cache lands in L2 and the hash reads it
  // from there; 1 MiB chunks spill to L3/RAM and cost ~2.5x the system time
  // (bench/verify.sh), while syscalls are still negligible next to hashing.
  constexpr size_t kChunk = 64 << 10;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kChunk]);
  for (const ByteRange& r : ranges) {
    for (int64_t done = 0; done < r.length;) {
      size_t n = static_cast<size_t>(std::min<int64_t>(r.length - done, kChunk));
      RETURN_IF_ERROR(PreadFull(fd, std::span(buf.get(), n), r.offset + done));
      EVP_DigestUpdate(ctx.get(), buf.get(), n);
      done += static_cast<int64_t>(n);
    }
  }
  return Finish(algorithm, ctx.get());
}

std::string HeaderDigestInput(const sif::Header& header) {
  std::array<uint8_t, sif::kHeaderSize> raw{};
  sif::EncodeHeader(header, raw);
  std::string out(reinterpret_cast<const char*>(raw.data()), 45);  // launch, magic, version
  out.append(reinterpret_cast<const char*>(raw.data()) + 48, 16);  // UUID
  return out;
}

std::string DescriptorDigestInput(const sif::Descriptor& d, uint32_t relative_id) {
  std::string out(557, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  sif::PutLe32(p, static_cast<uint32_t>(d.data_type));
  p[4] = d.used;
  sif::PutLe32(p + 5, relative_id);
  sif::PutLe32(p + 9, d.link_raw);
  sif::PutLe64(p + 13, static_cast<uint64_t>(d.size));
  sif::PutLe64(p + 21, static_cast<uint64_t>(d.created_at));
  sif::PutLe64(p + 29, static_cast<uint64_t>(d.uid));
  sif::PutLe64(p + 37, static_cast<uint64_t>(d.gid));
  std::copy(d.name.begin(), d.name.end(), p + 45);
  std::copy(d.extra.begin(), d.extra.end(), p + 45 + sif::kNameLen);
  return out;
}

absl::StatusOr<ImageMetadata> ComputeMetadata(const sif::Image& image,
                                              const std::vector<const sif::Descriptor*>& objects,
                                              const std::string& algorithm) {
  ImageMetadata m;
  ASSIGN_OR_RETURN(m.header_digest, HashBytes(algorithm, HeaderDigestInput(image.header())));
  std::vector<const sif::Descriptor*> sorted = objects;
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (const sif::Descriptor* d : sorted) {
    ObjectMetadata o;
    o.relative_id = image.RelativeId(*d);
    ASSIGN_OR_RETURN(o.descriptor_digest,
                     HashBytes(algorithm, DescriptorDigestInput(*d, o.relative_id)));
    auto data = HashRange(algorithm, image.fd(), d->offset, d->size);
    if (!data.ok()) return Annotate(data.status(), absl::StrCat("hashing object ", d->id));
    o.object_digest = *std::move(data);
    m.objects.push_back(std::move(o));
  }
  return m;
}

std::string MetadataToJson(const ImageMetadata& m) {
  std::string out = absl::StrCat("{\"version\":", m.version, ",\"header\":{\"digest\":\"",
                                 m.header_digest.ToString(), "\"},\"objects\":[");
  for (size_t i = 0; i < m.objects.size(); ++i) {
    const ObjectMetadata& o = m.objects[i];
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"relativeId\":", o.relative_id,
                    ",\"descriptorDigest\":\"", o.descriptor_digest.ToString(),
                    "\",\"objectDigest\":\"", o.object_digest.ToString(), "\"}");
  }
  out += "]}";
  return out;
}

absl::StatusOr<ImageMetadata> MetadataFromJson(const std::string& json) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("signed image metadata is not JSON");
  }
  ImageMetadata m;
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != 1) {
    return absl::InvalidArgumentError("signed image metadata has an unknown version");
  }
  auto header = doc.find("header");
  if (header == doc.end() || !header->is_object()) {
    return absl::InvalidArgumentError("signed image metadata has no header");
  }
  ASSIGN_OR_RETURN(m.header_digest, DigestField(*header, "digest"));
  auto objects = doc.find("objects");
  if (objects == doc.end() || !objects->is_array()) {
    return absl::InvalidArgumentError("signed image metadata has no object list");
  }
  std::set<uint32_t> seen;
  for (const nlohmann::json& o : *objects) {
    if (!o.is_object()) return absl::InvalidArgumentError("malformed object in signed metadata");
    auto rid = o.find("relativeId");
    if (rid == o.end() || !rid->is_number_unsigned() || rid->get<uint64_t>() > 0xFFFFFFFFu) {
      return absl::InvalidArgumentError("malformed relativeId in signed metadata");
    }
    ObjectMetadata om;
    om.relative_id = static_cast<uint32_t>(rid->get<uint64_t>());
    if (!seen.insert(om.relative_id).second) {
      return absl::InvalidArgumentError("duplicate relativeId in signed metadata");
    }
    ASSIGN_OR_RETURN(om.descriptor_digest, DigestField(o, "descriptorDigest"));
    ASSIGN_OR_RETURN(om.object_digest, DigestField(o, "objectDigest"));
    m.objects.push_back(std::move(om));
  }
  return m;
}

}  // namespace berth::trust
