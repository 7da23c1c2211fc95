#include "sif/layout.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace berth::sif {
namespace {

std::string UpToNul(std::span<const uint8_t> bytes) {
  auto end = std::find(bytes.begin(), bytes.end(), uint8_t{0});
  return std::string(bytes.begin(), end);
}

// Cursor over a fixed buffer; sizes are compile-time known, so no bounds
// errors are possible for the fixed-size structures handled here.
class Reader {
 public:
  explicit Reader(const uint8_t* p) : p_(p) {}
  template <size_t N>
  void Bytes(std::array<uint8_t, N>& out) {
    std::memcpy(out.data(), p_, N);
    p_ += N;
  }
  int64_t I64() { return static_cast<int64_t>(Take64()); }
  uint32_t U32() {
    uint32_t v = GetLe32(p_);
    p_ += 4;
    return v;
  }
  uint8_t U8() { return *p_++; }

 private:
  uint64_t Take64() {
    uint64_t v = GetLe64(p_);
    p_ += 8;
    return v;
  }
  const uint8_t* p_;
};

class Writer {
 public:
  explicit Writer(uint8_t* p) : p_(p) {}
  template <size_t N>
  void Bytes(const std::array<uint8_t, N>& in) {
    std::memcpy(p_, in.data(), N);
    p_ += N;
  }
  void I64(int64_t v) {
    PutLe64(p_, static_cast<uint64_t>(v));
    p_ += 8;
  }
  void U32(uint32_t v) {
    PutLe32(p_, v);
    p_ += 4;
  }
  void U8(uint8_t v) { *p_++ = v; }

 private:
  uint8_t* p_;
};

}  // namespace

void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetLe32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string Header::LaunchScript() const {
  return UpToNul(launch_script);
}

std::string Header::ArchCode() const {
  return UpToNul(std::span(arch.data(), 2));
}

std::string Header::UuidString() const {
  const auto& u = uuid;
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
                         u[12], u[13], u[14], u[15]);
}

bool Header::UuidIsNil() const {
  return std::all_of(uuid.begin(), uuid.end(), [](uint8_t b) { return b == 0; });
}

std::string Descriptor::Name() const {
  return UpToNul(name);
}

PartitionInfo Descriptor::Partition() const {
  PartitionInfo info;
  info.fs_type = static_cast<int32_t>(GetLe32(&extra[0]));
  info.part_type = static_cast<int32_t>(GetLe32(&extra[4]));
  info.arch_code = UpToNul(std::span(&extra[8], 2));
  return info;
}

SignatureInfo Descriptor::Signature() const {
  SignatureInfo info;
  info.hash_type = static_cast<int32_t>(GetLe32(&extra[0]));
  const uint8_t* fp = &extra[4];
  if (std::any_of(fp, fp + kFingerprintLen, [](uint8_t b) { return b != 0; })) {
    info.fingerprint.assign(reinterpret_cast<const char*>(fp), kFingerprintLen);
  }
  return info;
}

CryptoMessageInfo Descriptor::CryptoMessage() const {
  return {static_cast<int32_t>(GetLe32(&extra[0])), static_cast<int32_t>(GetLe32(&extra[4]))};
}

int32_t Descriptor::SbomFormat() const {
  return static_cast<int32_t>(GetLe32(&extra[0]));
}

std::string Descriptor::OciDigest() const {
  return UpToNul(extra);
}

void Descriptor::SetName(std::string_view n) {
  name.fill(0);
  std::memcpy(name.data(), n.data(), std::min(n.size(), name.size()));
}

void Descriptor::SetPartition(const PartitionInfo& info) {
  extra.fill(0);
  PutLe32(&extra[0], static_cast<uint32_t>(info.fs_type));
  PutLe32(&extra[4], static_cast<uint32_t>(info.part_type));
  std::memcpy(&extra[8], info.arch_code.data(), std::min<size_t>(info.arch_code.size(), 2));
}

void Descriptor::SetSignature(int32_t hash_type, std::span<const uint8_t> fingerprint) {
  extra.fill(0);
  PutLe32(&extra[0], static_cast<uint32_t>(hash_type));
  std::memcpy(&extra[4], fingerprint.data(), std::min(fingerprint.size(), kEntityLen));
}

void Descriptor::SetCryptoMessage(const CryptoMessageInfo& info) {
  extra.fill(0);
  PutLe32(&extra[0], static_cast<uint32_t>(info.format));
  PutLe32(&extra[4], static_cast<uint32_t>(info.message));
}

void Descriptor::SetSbomFormat(int32_t format) {
  extra.fill(0);
  PutLe32(&extra[0], static_cast<uint32_t>(format));
}

void Descriptor::SetOciDigest(std::string_view digest) {
  extra.fill(0);
  std::memcpy(extra.data(), digest.data(), std::min(digest.size(), extra.size()));
}

void DecodeHeader(std::span<const uint8_t, kHeaderSize> in, Header& h) {
  Reader r(in.data());
  r.Bytes(h.launch_script);
  r.Bytes(h.magic);
  r.Bytes(h.version);
  r.Bytes(h.arch);
  r.Bytes(h.uuid);
  h.created_at = r.I64();
  h.modified_at = r.I64();
  h.descriptors_free = r.I64();
  h.descriptors_total = r.I64();
  h.descriptors_offset = r.I64();
  h.descriptors_size = r.I64();
  h.data_offset = r.I64();
  h.data_size = r.I64();
}

void EncodeHeader(const Header& h, std::span<uint8_t, kHeaderSize> out) {
  Writer w(out.data());
  w.Bytes(h.launch_script);
  w.Bytes(h.magic);
  w.Bytes(h.version);
  w.Bytes(h.arch);
  w.Bytes(h.uuid);
  w.I64(h.created_at);
  w.I64(h.modified_at);
  w.I64(h.descriptors_free);
  w.I64(h.descriptors_total);
  w.I64(h.descriptors_offset);
  w.I64(h.descriptors_size);
  w.I64(h.data_offset);
  w.I64(h.data_size);
}

void DecodeDescriptor(std::span<const uint8_t, kDescriptorSize> in, Descriptor& d) {
  Reader r(in.data());
  d.data_type = static_cast<int32_t>(r.U32());
  d.used = r.U8();
  d.id = r.U32();
  d.group_raw = r.U32();
  d.link_raw = r.U32();
  d.offset = r.I64();
  d.size = r.I64();
  d.size_with_padding = r.I64();
  d.created_at = r.I64();
  d.modified_at = r.I64();
  d.uid = r.I64();
  d.gid = r.I64();
  r.Bytes(d.name);
  r.Bytes(d.extra);
}

void EncodeDescriptor(const Descriptor& d, std::span<uint8_t, kDescriptorSize> out) {
  Writer w(out.data());
  w.U32(static_cast<uint32_t>(d.data_type));
  w.U8(d.used);
  w.U32(d.id);
  w.U32(d.group_raw);
  w.U32(d.link_raw);
  w.I64(d.offset);
  w.I64(d.size);
  w.I64(d.size_with_padding);
  w.I64(d.created_at);
  w.I64(d.modified_at);
  w.I64(d.uid);
  w.I64(d.gid);
  w.Bytes(d.name);
  w.Bytes(d.extra);
}

}  // namespace berth::sif
