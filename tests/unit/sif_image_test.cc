// Unit tests of the SIF library: creation, placement, edits and validation.
#include <fcntl.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "common/file_io.h"
#include "sif/image.h"
#include "tests/unit/test_util.h"

namespace berth::sif {
namespace {

using berth::testing::ReadFile;
using berth::testing::ScratchDir;
using berth::testing::TestData;
using berth::testing::WriteFile;

absl::Status AddFile(Image& img, const std::string& path, ObjectInput in) {
  auto fd = OpenFile(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  in.data_fd = fd->get();
  return img.AddObject(in);
}

TEST_CASE("a new image has the reference layout", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {});
  REQUIRE(img.ok());
  const Header& h = img->header();
  CHECK(h.descriptors_total == 48);
  CHECK(h.descriptors_free == 48);
  CHECK(h.descriptors_offset == 4096);
  CHECK(h.descriptors_size == 48 * 585);
  CHECK(h.data_offset == 32176);
  CHECK(h.data_size == 0);
  CHECK(ReadFile(dir.File("a.sif")).size() == 32176);
  CHECK_FALSE(h.UuidIsNil());
  // Random v4 UUID.
  CHECK((h.uuid[6] >> 4) == 4);
  struct stat st;
  REQUIRE(::stat(dir.File("a.sif").c_str(), &st) == 0);
  CHECK((st.st_mode & 0100) != 0);
}

TEST_CASE("objects are placed and aligned like siftool places them", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {.deterministic = true});
  REQUIRE(img.ok());
  std::string def = WriteFile(dir.File("a.def"), std::string(31, 'd'));
  std::string fs = WriteFile(dir.File("root.sqfs"), std::string(4096, 's'));
  REQUIRE(AddFile(*img, def, {.type = DataType::kDeffile, .group_id = 1}).ok());
  REQUIRE(AddFile(*img, fs,
                  {.type = DataType::kPartition,
                   .name = "rootfs",
                   .group_id = 1,
                   .partition = PartitionInfo{1, 2, "02"}})
              .ok());

  auto reopened = Image::Open(dir.File("a.sif"), OpenMode::kReadOnly);
  REQUIRE(reopened.ok());
  auto objects = reopened->Objects();
  REQUIRE(objects.size() == 2);
  CHECK(objects[0]->offset == 32176);
  CHECK(objects[0]->size == 31);
  CHECK(objects[1]->offset == 32768);  // 4096-aligned
  CHECK(objects[1]->size_with_padding == 561 + 4096);
  CHECK(objects[1]->group_raw == 0xF0000001u);
  CHECK(reopened->header().data_size == 4688);
  CHECK(reopened->header().ArchCode() == "02");
  CHECK(reopened->PrimaryPartition() == objects[1]);
  CHECK(reopened->IsDeterministic());
  CHECK(objects[0]->created_at == kGoZeroTime);
}

TEST_CASE("a second primary partition is refused", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {});
  std::string fs = WriteFile(dir.File("p"), "x");
  ObjectInput in{.type = DataType::kPartition, .partition = PartitionInfo{1, 2, "02"}};
  REQUIRE(AddFile(*img, fs, in).ok());
  auto st = AddFile(*img, fs, in);
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(st.message()).find("primary partition") != std::string::npos);
}

TEST_CASE("delete with compact gives the space back, only for the last object", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {});
  std::string a = WriteFile(dir.File("a"), "aaaa");
  std::string b = WriteFile(dir.File("b"), "bbbbbbbb");
  REQUIRE(AddFile(*img, a, {.type = DataType::kGeneric}).ok());
  REQUIRE(AddFile(*img, b, {.type = DataType::kGeneric, .alignment = 64}).ok());

  auto refused = img->DeleteObject(1, {.compact = true});
  CHECK(refused.code() == absl::StatusCode::kFailedPrecondition);

  REQUIRE(img->DeleteObject(2, {.zero = true, .compact = true}).ok());
  CHECK(ReadFile(dir.File("a.sif")).size() == 32176 + 4);
  auto reopened = Image::Open(dir.File("a.sif"), OpenMode::kReadOnly);
  REQUIRE(reopened.ok());
  CHECK(reopened->Objects().size() == 1);
  CHECK(reopened->header().descriptors_free == 47);

  // The freed slot's ID is reused.
  REQUIRE(AddFile(*reopened, b, {.type = DataType::kGeneric}).code() ==
          absl::StatusCode::kFailedPrecondition);  // opened read-only
}

TEST_CASE("delete with zero overwrites the data but keeps the layout", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {});
  std::string a = WriteFile(dir.File("a"), "secret");
  std::string b = WriteFile(dir.File("b"), "tail");
  REQUIRE(AddFile(*img, a, {.type = DataType::kGeneric}).ok());
  REQUIRE(AddFile(*img, b, {.type = DataType::kGeneric}).ok());
  REQUIRE(img->DeleteObject(1, {.zero = true}).ok());
  std::string bytes = ReadFile(dir.File("a.sif"));
  CHECK(bytes.substr(32176, 6) == std::string(6, '\0'));
  CHECK(bytes.substr(32182, 4) == "tail");
  REQUIRE(AddFile(*img, b, {.type = DataType::kGeneric}).ok());
  CHECK(img->Objects().front()->id == 1);
}

TEST_CASE("setprim moves the primary flag and the header arch", "[sif]") {
  ScratchDir dir;
  auto img = Image::Create(dir.File("a.sif"), {});
  std::string p = WriteFile(dir.File("p"), "x");
  REQUIRE(AddFile(*img, p, {.type = DataType::kPartition, .partition = PartitionInfo{1, 2, "02"}})
              .ok());
  REQUIRE(AddFile(*img, p, {.type = DataType::kPartition, .partition = PartitionInfo{1, 1, "04"}})
              .ok());
  REQUIRE(img->SetPrimaryPartition(2).ok());
  CHECK(img->header().ArchCode() == "04");
  auto reopened = Image::Open(dir.File("a.sif"), OpenMode::kReadOnly);
  REQUIRE(reopened.ok());
  CHECK(reopened->PrimaryPartition()->id == 2);
  CHECK((*reopened->FindById(1))->Partition().part_type == 1);

  REQUIRE(AddFile(*img, p, {.type = DataType::kGeneric}).ok());
  CHECK(img->SetPrimaryPartition(3).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(img->SetPrimaryPartition(9).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("reference images load with their groups and links", "[sif][golden]") {
  auto img = Image::Open(TestData("two-groups-signed-pgp.sif"), OpenMode::kReadOnly);
  REQUIRE(img.ok());
  CHECK(img->GroupIds() == std::vector<uint32_t>{1, 2});
  auto sig = img->FindById(4);
  REQUIRE(sig.ok());
  CHECK((*sig)->LinkIsGroup());
  CHECK((*sig)->LinkedId() == 1);
  CHECK((*sig)->Signature().fingerprint.size() == 20);
  CHECK(img->RelativeId(**img->FindById(2)) == 1);
  CHECK(img->GroupMembers(2).size() == 1);
}

TEST_CASE("object reads are bounded by the object", "[sif]") {
  auto img = Image::Open(TestData("one-object-time.sif"), OpenMode::kReadOnly);
  REQUIRE(img.ok());
  const Descriptor* d = img->Objects().at(0);
  std::array<uint8_t, 3> buf;
  CHECK(img->ReadObject(*d, 0, buf).code() == absl::StatusCode::kOutOfRange);
  CHECK(img->ReadObject(*d, -1, std::span(buf.data(), 1)).code() == absl::StatusCode::kOutOfRange);
  auto s = img->ReadObjectToString(*d, 2);
  REQUIRE(s.ok());
  CHECK(*s == "{}");
  CHECK(img->ReadObjectToString(*d, 1).status().code() == absl::StatusCode::kResourceExhausted);
}

TEST_CASE("validation rejects hostile headers with one clear message", "[sif][hostile]") {
  ScratchDir dir;
  std::string good = ReadFile(TestData("one-group.sif"));
  auto check = [&](std::string bytes, const std::string& expect) {
    std::string path = WriteFile(dir.File("bad.sif"), bytes);
    auto img = Image::Open(path, OpenMode::kReadOnly);
    REQUIRE_FALSE(img.ok());
    INFO(img.status().message());
    CHECK(std::string(img.status().message()).find(expect) != std::string::npos);
    CHECK(std::string(img.status().message()).find('\n') == std::string::npos);
  };
  check("", "smaller than the 128-byte SIF header");
  check(good.substr(0, 5000), "truncated");
  std::string bad_magic = good;
  bad_magic[32] = 'X';
  check(bad_magic, "SIF_MAGIC");
  std::string bad_version = good;
  bad_version[43] = '2';
  check(bad_version, "unsupported SIF version");
  std::string huge_count = good;
  PutLe64(reinterpret_cast<uint8_t*>(&huge_count[88]), 1ull << 40);
  check(huge_count, "descriptor capacity");
  std::string overflow = good;  // object 1's size set to INT64_MAX
  PutLe64(reinterpret_cast<uint8_t*>(&overflow[4096 + 25]), 0x7fffffffffffffffull);
  PutLe64(reinterpret_cast<uint8_t*>(&overflow[4096 + 33]), 0x7fffffffffffffffull);
  check(overflow, "outside the data area");
}

// The object's end, not only its start, must lie in the data area: an object
// that starts inside and runs one byte past the end is refused, and one that
// ends exactly at the end is accepted.
TEST_CASE("validation checks where an object ends, not only where it starts", "[sif][hostile]") {
  ScratchDir dir;
  const std::string good = ReadFile(TestData("one-group.sif"));
  auto le64 = [&](size_t at) {
    return static_cast<int64_t>(GetLe64(reinterpret_cast<const uint8_t*>(good.data() + at)));
  };
  const int64_t data_end = le64(112) + le64(120);  // header: data offset + data size
  // The last object in the data area (objects never overlap).
  size_t last = 0;
  for (size_t d = 4096; d < 4096 + 48 * 585; d += 585) {
    if (good[d + 4] != 0 && (last == 0 || le64(d + 17) > le64(last + 17))) last = d;
  }
  REQUIRE(last != 0);
  auto with_size = [&](int64_t size) {
    std::string bytes = good;
    PutLe64(reinterpret_cast<uint8_t*>(&bytes[last + 25]), static_cast<uint64_t>(size));
    PutLe64(reinterpret_cast<uint8_t*>(&bytes[last + 33]), static_cast<uint64_t>(size));
    return Image::Open(WriteFile(dir.File("end.sif"), bytes), OpenMode::kReadOnly).status();
  };
  const int64_t fits = data_end - le64(last + 17);
  CHECK(with_size(fits).ok());
  absl::Status past = with_size(fits + 1);
  INFO(past.message());
  CHECK(std::string(past.message()).find("lies outside the data area") != std::string::npos);
}

}  // namespace
}  // namespace berth::sif
