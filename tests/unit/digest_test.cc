// Streaming digests against known vectors.
#include "common/digest.h"

#include <fcntl.h>

#include <catch2/catch.hpp>

#include "common/file_io.h"
#include "tests/unit/test_util.h"

namespace berth {
namespace {

TEST_CASE("sha256 of a byte range streams from the file", "[digest]") {
  testing::ScratchDir dir;
  std::string path = testing::WriteFile(dir.File("f"), "xxabcxx");
  auto fd = OpenFile(path, O_RDONLY);
  REQUIRE(fd.ok());
  auto hex = DigestRange(fd->get(), 2, 3, DigestAlgorithm::kSha256);
  REQUIRE(hex.ok());
  CHECK(*hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(DigestRange(fd->get(), 5, 10, DigestAlgorithm::kSha256).status().code() ==
        absl::StatusCode::kOutOfRange);
}

TEST_CASE("sha384 of a stream", "[digest]") {
  testing::ScratchDir dir;
  std::string path = testing::WriteFile(dir.File("f"), "abc");
  auto fd = OpenFile(path, O_RDONLY);
  REQUIRE(fd.ok());
  auto hex = DigestStream(fd->get(), DigestAlgorithm::kSha384);
  REQUIRE(hex.ok());
  CHECK(hex->substr(0, 16) == "cb00753f45a35e8b");
}

}  // namespace
}  // namespace berth
