// libFuzzer target for the SIF parser (sif/). Arbitrary bytes are opened the
// way berth opens a downloaded image, and whatever validates must then keep
// the promises image.h makes: every accessor works on it, and siftool-style
// edits (add, delete, setprim) never turn it into an image berth rejects.
//
// Invariant violations call abort() so libFuzzer records them like crashes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "fuzzer/FuzzedDataProvider.h"
#include "sif/format.h"
#include "sif/image.h"

namespace berth::sif {
namespace {

// Fixed so that edits are reproducible from the crashing input alone.
constexpr int64_t kNow = 1700000000;

[[noreturn]] void Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "sif_fuzz invariant violated: %s: %s\n", what,
               std::string(status.message()).c_str());
  std::abort();
}

void Require(bool ok, const char* what) {
  if (!ok) Fail(what, absl::OkStatus());
}

UniqueFd MemfdWith(std::span<const uint8_t> bytes) {
  UniqueFd fd(::memfd_create("sif_fuzz", MFD_CLOEXEC));
  if (!fd) std::abort();  // environment problem, not a finding; fail loudly
  if (!PwriteFull(fd.get(), bytes, 0).ok()) std::abort();
  return fd;
}

// The CLI prints errors as one "FATAL:" line; a message with a newline (e.g.
// raw bytes from the image) would break that contract.
void CheckError(const absl::Status& status) {
  Require(!status.ok(), "error status is OK");
  Require(!status.message().empty(), "empty error message");
  Require(status.message().find('\n') == std::string_view::npos, "multi-line error message");
}

void ExerciseObject(const Image& image, const Descriptor& d) {
  auto found = image.FindById(d.id);
  Require(found.ok() && *found == &d, "FindById does not find a listed object");
  (void)image.RelativeId(d);
  (void)image.GroupMembers(d.GroupId());
  (void)d.Name();
  (void)DataTypeName(d.data_type);
  PartitionInfo part = d.Partition();
  (void)FsTypeName(part.fs_type);
  (void)PartTypeName(part.part_type);
  (void)ArchName(part.arch_code);
  SignatureInfo sig = d.Signature();
  (void)HashTypeName(sig.hash_type);
  CryptoMessageInfo msg = d.CryptoMessage();
  (void)FormatTypeName(msg.format);
  (void)MessageTypeName(msg.message);
  (void)SbomFormatName(d.SbomFormat());
  (void)d.OciDigest();

  // Validation guarantees the object lies inside the file, so reads of any
  // in-range span must succeed and out-of-range ones must be refused.
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<int64_t>(d.size, 16)));
  if (absl::Status st = image.ReadObject(d, 0, buf); !st.ok()) Fail("reading object head", st);
  if (absl::Status st = image.ReadObject(d, d.size - static_cast<int64_t>(buf.size()), buf);
      !st.ok()) {
    Fail("reading object tail", st);
  }
  uint8_t one;
  CheckError(image.ReadObject(d, d.size, std::span(&one, 1)));
  CheckError(image.ReadObject(d, -1, std::span(&one, 1)));

  constexpr int64_t kSmallMax = 64;
  auto whole = image.ReadObjectToString(d, kSmallMax);
  if (d.size <= kSmallMax) {
    if (!whole.ok()) Fail("reading small object", whole.status());
    Require(static_cast<int64_t>(whole->size()) == d.size, "object read has the wrong size");
  } else {
    CheckError(whole.status());
  }
}

// Streams every object; /dev/null keeps sendfile's fast path in play.
void StreamObjects(const Image& image) {
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!null) std::abort();
  for (const Descriptor* d : image.Objects()) {
    if (absl::Status st = image.StreamObject(*d, null.get()); !st.ok()) Fail("streaming", st);
  }
}

void ExerciseImage(const Image& image) {
  const Header& h = image.header();
  (void)h.LaunchScript();
  (void)ArchName(h.ArchCode());
  (void)h.UuidString();
  (void)image.IsDeterministic();
  for (const Descriptor* d : image.Objects()) ExerciseObject(image, *d);
  for (uint32_t gid : image.GroupIds()) {
    Require(!image.GroupMembers(gid).empty(), "listed group has no members");
  }
  if (const Descriptor* p = image.PrimaryPartition(); p != nullptr) {
    Require(p->data_type == static_cast<int32_t>(DataType::kPartition), "primary not a partition");
  }
  CheckError(image.FindById(0).status());
}

// An edit, successful or refused, must leave a file that still validates.
void RequireStillValid(int fd, const char* after) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup) std::abort();
  auto reopened = Image::FromFd(std::move(dup), OpenMode::kReadOnly, "fuzz-edited");
  if (!reopened.ok()) Fail(after, reopened.status());
  ExerciseImage(*reopened);
}

void ExerciseEdits(std::span<const uint8_t> bytes, FuzzedDataProvider& choices) {
  UniqueFd copy = MemfdWith(bytes);
  int fd = copy.get();
  auto image = Image::FromFd(std::move(copy), OpenMode::kReadWrite, "fuzz-copy");
  if (!image.ok()) Fail("re-opening a valid image read-write", image.status());

  // AddObject, with parameters steered by the input so that partitions,
  // groups, links and alignments all get exercised.
  std::string payload = choices.ConsumeRandomLengthString(64);
  UniqueFd data =
      MemfdWith(std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  if (::lseek(data.get(), 0, SEEK_SET) != 0) std::abort();
  ObjectInput in;
  in.type = static_cast<DataType>(0x4001 + choices.ConsumeIntegralInRange<int32_t>(0, 10));
  in.data_fd = data.get();
  in.name = choices.ConsumeRandomLengthString(16);
  in.group_id = choices.ConsumeIntegralInRange<uint32_t>(0, 3);
  std::vector<const Descriptor*> objects = image->Objects();
  switch (choices.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      break;
    case 1:
      if (!objects.empty()) {
        in.link_raw = objects[choices.ConsumeIntegralInRange<size_t>(0, objects.size() - 1)]->id;
      }
      break;
    case 2:
      in.link_raw = choices.ConsumeIntegralInRange<uint32_t>(0, 3) | kGroupMask;
      break;
    default:
      in.link_raw = choices.ConsumeIntegral<uint32_t>();
      break;
  }
  in.alignment = choices.ConsumeIntegralInRange<int64_t>(-1, 8192);
  in.partition = PartitionInfo{choices.ConsumeIntegralInRange<int32_t>(1, 6),
                               choices.ConsumeIntegralInRange<int32_t>(1, 4), "02"};
  in.signature = SignatureInfo{1, std::string(kFingerprintLen, '\x42')};
  in.crypto_message = CryptoMessageInfo{2, 0x200};
  in.sbom_format = 1;
  in.oci_digest = std::string("sha256:") + std::string(64, 'a');
  (void)image->AddObject(in, kNow);
  RequireStillValid(fd, "AddObject left an invalid image");

  // DeleteObject of a chosen object; compacting only makes sense for the last.
  objects = image->Objects();
  if (!objects.empty()) {
    const Descriptor* victim =
        objects[choices.ConsumeIntegralInRange<size_t>(0, objects.size() - 1)];
    bool is_last = true;
    for (const Descriptor* o : objects) {
      if (o->offset + o->size > victim->offset + victim->size) is_last = false;
    }
    DeleteOptions options{.zero = choices.ConsumeBool(), .compact = is_last};
    (void)image->DeleteObject(victim->id, options, kNow);
    RequireStillValid(fd, "DeleteObject left an invalid image");
  }

  // SetPrimaryPartition, preferring partitions so the swap logic runs.
  objects = image->Objects();
  if (!objects.empty()) {
    std::vector<const Descriptor*> partitions;
    for (const Descriptor* d : objects) {
      if (d->data_type == static_cast<int32_t>(DataType::kPartition)) partitions.push_back(d);
    }
    const auto& pool = partitions.empty() || choices.ConsumeBool() ? objects : partitions;
    uint32_t id = pool[choices.ConsumeIntegralInRange<size_t>(0, pool.size() - 1)]->id;
    (void)image->SetPrimaryPartition(id, kNow);
    RequireStillValid(fd, "SetPrimaryPartition left an invalid image");
  }
}

}  // namespace
}  // namespace berth::sif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::sif;
  std::span<const uint8_t> bytes(data, size);
  auto image = Image::FromFd(MemfdWith(bytes), OpenMode::kReadOnly, "fuzz");
  if (!image.ok()) {
    CheckError(image.status());
    return 0;
  }
  ExerciseImage(*image);
  StreamObjects(*image);
  // Edit choices come from the input's tail (FuzzedDataProvider consumes
  // integers from the end), so the same bytes also steer the parser.
  FuzzedDataProvider choices(data, size);
  ExerciseEdits(bytes, choices);
  return 0;
}
