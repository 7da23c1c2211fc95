// Structural validation of SIF metadata. Every check names the field and the
// values involved, so a user (or an admin reading the daemon log) can tell a
// truncated download from a crafted image without a hex editor.
#include <algorithm>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sif/image.h"

namespace berth::sif {
namespace {

bool AddOverflows(int64_t a, int64_t b, int64_t* out) {
  return __builtin_add_overflow(a, b, out);
}

}  // namespace

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

absl::Status Invalid(std::string msg) {
  return absl::InvalidArgumentError(std::move(msg));
}

}  // namespace

absl::Status ValidateHeader(const Header& h, int64_t file_size) {
  if (std::string_view(reinterpret_cast<const char*>(h.magic.data()), 10) != kMagic) {
    return Invalid("not a SIF image: no SIF_MAGIC at offset 32");
  }
  if (std::string_view(reinterpret_cast<const char*>(h.version.data()), 3) != kVersion) {
    std::string v(h.version.begin(), std::find(h.version.begin(), h.version.end(), 0));
    return Invalid(absl::StrFormat("unsupported SIF version \"%s\" (only version 01 is defined)",
                                   absl::CHexEscape(v)));
  }
  if (h.descriptors_total < 0 || h.descriptors_total > kMaxDescriptorCapacity) {
    return Invalid(absl::StrFormat("descriptor capacity %d is out of range (0..%d)",
                                   h.descriptors_total, kMaxDescriptorCapacity));
  }
  if (h.descriptors_size != h.descriptors_total * kDescriptorSize) {
    return Invalid(
        absl::StrFormat("descriptor table size %d does not match %d descriptors of %d bytes",
                        h.descriptors_size, h.descriptors_total, kDescriptorSize));
  }
  if (h.descriptors_free < 0 || h.descriptors_free > h.descriptors_total) {
    return Invalid(absl::StrFormat("free descriptor count %d is out of range (0..%d)",
                                   h.descriptors_free, h.descriptors_total));
  }
  int64_t table_end;
  if (h.descriptors_offset < kHeaderSize) {
    return Invalid(absl::StrFormat("descriptor table offset %d overlaps the 128-byte header",
                                   h.descriptors_offset));
  }
  if (AddOverflows(h.descriptors_offset, h.descriptors_size, &table_end)) {
    return Invalid(absl::StrFormat("descriptor table offset %d plus size %d overflows",
                                   h.descriptors_offset, h.descriptors_size));
  }
  if (table_end > file_size) {
    return absl::OutOfRangeError(absl::StrFormat(
        "descriptor table (offset %d, %d bytes) extends beyond the end of the file (%d bytes): "
        "the image is truncated",
        h.descriptors_offset, h.descriptors_size, file_size));
  }
  int64_t data_end;
  if (h.data_offset < kHeaderSize || h.data_size < 0 ||
      AddOverflows(h.data_offset, h.data_size, &data_end)) {
    return Invalid(
        absl::StrFormat("data area (offset %d, size %d) is malformed", h.data_offset, h.data_size));
  }
  if (data_end > file_size) {
    return absl::OutOfRangeError(absl::StrFormat(
        "data area (offset %d, %d bytes) extends beyond the end of the file (%d bytes): "
        "the image is truncated",
        h.data_offset, h.data_size, file_size));
  }
  if (h.data_size > 0 && h.data_offset < table_end && h.descriptors_offset < data_end) {
    return Invalid(
        absl::StrFormat("data area (offset %d) overlaps the descriptor table (ends at %d)",
                        h.data_offset, table_end));
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateObject(const Descriptor& d, const Header& h) {
  const std::string what = absl::StrCat("object ", d.id);
  if (d.id == 0) return Invalid("a used descriptor has object ID 0");
  if (d.offset < 0 || d.size < 0 || d.size_with_padding < d.size) {
    return Invalid(
        absl::StrFormat("%s: negative offset/size or padding smaller than size "
                        "(offset %d, size %d, padded %d)",
                        what, d.offset, d.size, d.size_with_padding));
  }
  int64_t end;
  if (AddOverflows(d.offset, d.size, &end) || d.offset < h.data_offset ||
      end > h.data_offset + h.data_size) {
    return absl::OutOfRangeError(
        absl::StrFormat("%s (offset %d, size %d) lies outside the data area [%d, %d)", what,
                        d.offset, d.size, h.data_offset, h.data_offset + h.data_size));
  }
  if (!ValidUtf8(d.Name())) return Invalid(absl::StrCat(what, ": name is not valid UTF-8"));
  auto type = static_cast<DataType>(d.data_type);
  if (type == DataType::kOciBlob || type == DataType::kOciRootIndex) {
    std::string digest = d.OciDigest();
    if (!std::all_of(digest.begin(), digest.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return Invalid(absl::StrCat(what, ": OCI digest is not printable ASCII"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateObjectSet(const std::vector<const Descriptor*>& used) {
  std::map<uint32_t, const Descriptor*> by_id;
  std::map<uint32_t, int> group_sizes;
  const Descriptor* primary = nullptr;
  for (const Descriptor* d : used) {
    if (!by_id.emplace(d->id, d).second) {
      return Invalid(absl::StrFormat("object ID %d is used by two descriptors", d->id));
    }
    if (d->GroupId() != 0) ++group_sizes[d->GroupId()];
    if (d->data_type == static_cast<int32_t>(DataType::kPartition) &&
        d->Partition().part_type == static_cast<int32_t>(PartType::kPrimSys)) {
      if (primary != nullptr) {
        return Invalid(absl::StrFormat("objects %d and %d are both the primary system partition",
                                       primary->id, d->id));
      }
      primary = d;
    }
  }
  for (const Descriptor* d : used) {
    if (d->link_raw == 0) continue;
    if (d->LinkIsGroup()) {
      if (group_sizes.count(d->LinkedId()) == 0) {
        return Invalid(absl::StrFormat("object %d links to group %d, which has no objects", d->id,
                                       d->LinkedId()));
      }
    } else if (by_id.count(d->link_raw) == 0 || d->link_raw == d->id) {
      return Invalid(absl::StrFormat("object %d links to object %d, which does not exist", d->id,
                                     d->link_raw));
    }
  }
  std::vector<const Descriptor*> sorted;
  for (const Descriptor* d : used) {
    if (d->size > 0) sorted.push_back(d);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Descriptor* a, const Descriptor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const Descriptor* prev = sorted[i - 1];
    if (prev->offset + prev->size > sorted[i]->offset) {
      return Invalid(absl::StrFormat("objects %d and %d overlap (%d ends at %d, %d starts at %d)",
                                     prev->id, sorted[i]->id, prev->id, prev->offset + prev->size,
                                     sorted[i]->id, sorted[i]->offset));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Validate(const Header& header, const std::vector<Descriptor>& slots,
                      int64_t file_size) {
  if (absl::Status st = ValidateHeader(header, file_size); !st.ok()) return st;
  std::vector<const Descriptor*> used;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Descriptor& d = slots[i];
    if (d.used > 1) {
      return Invalid(
          absl::StrFormat("descriptor %d: 'used' flag is %d (must be 0 or 1)", i + 1, d.used));
    }
    if (!d.IsUsed()) continue;
    if (absl::Status st = ValidateObject(d, header); !st.ok()) return st;
    used.push_back(&d);
  }
  int64_t unused = header.descriptors_total - static_cast<int64_t>(used.size());
  if (unused != header.descriptors_free) {
    return Invalid(absl::StrFormat("header counts %d free descriptors but %d are unused",
                                   header.descriptors_free, unused));
  }
  return ValidateObjectSet(used);
}

}  // namespace berth::sif
