// The siftool renderings against the reference's own golden files.
#include "client/sif/siftool_output.h"

#include <catch2/catch.hpp>

#include "tests/unit/test_util.h"

namespace berth::client {
namespace {

using berth::testing::ReadFile;
using berth::testing::TestData;

std::string Golden(const std::string& kind, const std::string& name) {
  return ReadFile(std::string(BERTH_TESTDATA) + "/sif/golden/" + kind + "/" + name + ".golden");
}

TEST_CASE("readable sizes match Go's siftool", "[siftool]") {
  CHECK(ReadableSize(0) == "0 B");
  CHECK(ReadableSize(1023) == "1023 B");
  CHECK(ReadableSize(28080) == "27 KiB");
  CHECK(ReadableSize(1536) == "2 KiB");  // rounds half away from zero
  CHECK(ReadableSize(8LL << 30) == "8 GiB");
}

TEST_CASE("times print like Go's time.Time in UTC", "[siftool]") {
  CHECK(GoUtcTime(1593475316) == "2020-06-30 00:01:56 +0000 UTC");
}

TEST_CASE("golden list/header/info outputs", "[siftool][golden]") {
  struct Case {
    const char* golden;
    const char* image;
  };
  for (Case c :
       {Case{"OneGroup", "one-group.sif"}, Case{"TwoGroupsSignedPGP", "two-groups-signed-pgp.sif"},
        Case{"OneObjectOCIBlob", "one-object-oci-blob.sif"},
        Case{"OneObjectOCIRootIndex", "one-object-oci-root-index.sif"},
        Case{"OneObjectTime", "one-object-time.sif"}, Case{"Empty", "empty.sif"}}) {
    auto img = sif::Image::Open(TestData(c.image), sif::OpenMode::kReadOnly);
    REQUIRE(img.ok());
    INFO(c.image);
    CHECK(RenderList(*img) == Golden("list", c.golden));
    CHECK(RenderHeader(*img) == Golden("header", c.golden));
  }
  auto blob = sif::Image::Open(TestData("one-object-oci-blob.sif"), sif::OpenMode::kReadOnly);
  REQUIRE(blob.ok());
  CHECK(RenderInfo(**blob->FindById(1)) == Golden("info", "OCIBlob"));
  auto two = sif::Image::Open(TestData("two-groups.sif"), sif::OpenMode::kReadOnly);
  REQUIRE(two.ok());
  CHECK(RenderInfo(**two->FindById(3)) == Golden("info", "DataPartitionEXT3"));
}

}  // namespace
}  // namespace berth::client
