#include "client/sif/siftool_output.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/sif/tabwriter.h"

namespace berth::client {
namespace {

using sif::DataType;
using sif::Descriptor;

std::string GroupCell(const Descriptor& d) {
  return d.GroupId() == 0 ? "NONE" : absl::StrCat(d.GroupId());
}

std::string UpperHex(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) absl::StrAppendFormat(&out, "%02X", c);
  return out;
}

// The type column of `list`: data type plus its extra metadata.
std::string ListType(const Descriptor& d) {
  std::string name = sif::DataTypeName(d.data_type);
  switch (static_cast<DataType>(d.data_type)) {
    case DataType::kPartition: {
      auto p = d.Partition();
      return absl::StrFormat("%s (%s/%s/%s)", name, sif::FsTypeName(p.fs_type),
                             sif::PartTypeName(p.part_type), sif::ArchName(p.arch_code));
    }
    case DataType::kSignature:
      return absl::StrFormat("%s (%s)", name, sif::HashTypeName(d.Signature().hash_type));
    case DataType::kCryptoMessage: {
      auto m = d.CryptoMessage();
      return absl::StrFormat("%s (%s/%s)", name, sif::FormatTypeName(m.format),
                             sif::MessageTypeName(m.message));
    }
    case DataType::kSbom:
      return absl::StrFormat("%s (%s)", name, sif::SbomFormatName(d.SbomFormat()));
    default:
      return name;
  }
}

}  // namespace

std::string ReadableSize(int64_t size) {
  if (-1024 < size && size < 1024) return absl::StrFormat("%d B", size);
  static constexpr char kUnits[] = "KMGTPE";
  double div = 1024;
  int exp = 0;
  for (int64_t n = size / 1024; n <= -1024 || n >= 1024; n /= 1024) {
    div *= 1024;
    ++exp;
  }
  // Go's math.Round rounds half away from zero, as std::round does.
  return absl::StrFormat("%.0f %ciB", std::round(static_cast<double>(size) / div), kUnits[exp]);
}

std::string GoUtcTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S +0000 UTC", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string RenderHeader(const sif::Image& image) {
  const sif::Header& h = image.header();
  TabWriter tw(1);
  std::string launch = h.LaunchScript();
  if (!launch.empty()) {
    if (launch.back() == '\n') launch.pop_back();
    tw.AddRow({"Launch Script:", launch});
  }
  tw.AddRow({"Version:", "01"});
  if (std::string arch = sif::ArchName(h.ArchCode()); arch != "unknown") {
    tw.AddRow({"Primary Architecture:", arch});
  }
  if (!h.UuidIsNil()) tw.AddRow({"ID:", h.UuidString()});
  if (h.created_at != sif::kGoZeroTime) tw.AddRow({"Created At:", GoUtcTime(h.created_at)});
  if (h.modified_at != sif::kGoZeroTime) tw.AddRow({"Modified At:", GoUtcTime(h.modified_at)});
  tw.AddRow({"Descriptors Free:", absl::StrCat(h.descriptors_free)});
  tw.AddRow({"Descriptors Total:", absl::StrCat(h.descriptors_total)});
  tw.AddRow({"Descriptors Offset:", absl::StrCat(h.descriptors_offset)});
  tw.AddRow({"Descriptors Size:", ReadableSize(h.descriptors_size)});
  tw.AddRow({"Data Offset:", absl::StrCat(h.data_offset)});
  tw.AddRow({"Data Size:", ReadableSize(h.data_size)});
  return tw.Render();
}

std::string RenderList(const sif::Image& image) {
  static constexpr std::string_view kRule =
      "------------------------------------------------------------------------------\n";
  std::string out(kRule);
  out += absl::StrFormat("%-4s %-8s %-8s %-26s %s\n", "ID", "|GROUP", "|LINK",
                         "|SIF POSITION (start-end)", "|TYPE");
  out += kRule;
  for (const Descriptor* d : image.Objects()) {
    out += absl::StrFormat("%-4d |%-7s ", d->id, GroupCell(*d));
    if (d->link_raw == 0) {
      out += absl::StrFormat("|%-7s ", "NONE");
    } else if (d->LinkIsGroup()) {
      out += absl::StrFormat("|%-3d (G) ", d->LinkedId());
    } else {
      out += absl::StrFormat("|%-7d ", d->LinkedId());
    }
    out += absl::StrFormat("%-26s ", absl::StrFormat("|%d-%d ", d->offset, d->offset + d->size));
    out += absl::StrCat("|", ListType(*d), "\n");
  }
  return out;
}

std::string RenderInfo(const Descriptor& d) {
  TabWriter tw(2);
  auto row = [&tw](std::string key, std::string value) {
    tw.AddRow({"", std::move(key), std::move(value)});
  };
  row("Data Type:", sif::DataTypeName(d.data_type));
  row("ID:", absl::StrCat(d.id));
  row("Group ID:", GroupCell(d));
  if (d.link_raw == 0) {
    row("Linked ID:", "NONE");
  } else if (d.LinkIsGroup()) {
    row("Linked ID:", absl::StrCat(d.LinkedId(), " (G)"));
  } else {
    row("Linked ID:", absl::StrCat(d.LinkedId()));
  }
  row("Offset:", absl::StrCat(d.offset));
  row("Size:", absl::StrCat(d.size));
  if (d.created_at != sif::kGoZeroTime) row("Created At:", GoUtcTime(d.created_at));
  if (d.modified_at != sif::kGoZeroTime) row("Modified At:", GoUtcTime(d.modified_at));
  if (std::string name = d.Name(); !name.empty()) row("Name:", name);
  switch (static_cast<DataType>(d.data_type)) {
    case DataType::kPartition: {
      auto p = d.Partition();
      row("Filesystem Type:", sif::FsTypeName(p.fs_type));
      row("Partition Type:", sif::PartTypeName(p.part_type));
      row("Architecture:", sif::ArchName(p.arch_code));
      break;
    }
    case DataType::kSignature: {
      auto s = d.Signature();
      row("Hash Type:", sif::HashTypeName(s.hash_type));
      if (!s.fingerprint.empty()) row("Entity:", UpperHex(s.fingerprint));
      break;
    }
    case DataType::kCryptoMessage: {
      auto m = d.CryptoMessage();
      row("Format Type:", sif::FormatTypeName(m.format));
      row("Message Type:", sif::MessageTypeName(m.message));
      break;
    }
    case DataType::kSbom:
      row("Format:", sif::SbomFormatName(d.SbomFormat()));
      break;
    case DataType::kOciBlob:
    case DataType::kOciRootIndex:
      row("Digest:", d.OciDigest());
      break;
    default:
      break;
  }
  return tw.Render();
}

}  // namespace berth::client
