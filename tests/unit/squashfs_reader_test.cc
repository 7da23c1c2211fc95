// Unit tests of the squashfs reader behind `berth inspect`: path resolution
// inside the image, the byte-range window, caps, and survival of corrupt
// input. Images are built with mksquashfs (squashfs-tools, a build dependency)
// and, for the in-process writer's own case, with squash::SquashDirectory.
#include "client/inspect/squashfs_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "common/file_io.h"
#include "squash/dir_squasher.h"
#include "tests/unit/test_util.h"

namespace berth::inspect {
namespace {

using berth::testing::ReadFile;
using berth::testing::ScratchDir;
using berth::testing::WriteFile;
namespace fs = std::filesystem;

// A squashfs with files, links that stay inside, links that try to leave,
// a loop and a big file; returns its bytes.
std::string BuildImage(const ScratchDir& dir) {
  std::string root = dir.File("root");
  fs::create_directories(root + "/.singularity.d/env");
  fs::create_directories(root + "/opt/deep/er");
  WriteFile(root + "/.singularity.d/labels.json", "{\"a\": \"b\"}");
  WriteFile(root + "/.singularity.d/env/90-environment.sh", "export A=1\n");
  WriteFile(root + "/opt/deep/er/file", "deep\n");
  WriteFile(root + "/big", std::string(300000, 'x'));
  WriteFile(root + "/huge", "");
  fs::resize_file(root + "/huge", 100 << 20);  // sparse: cheap to squash
  fs::create_symlink("../opt/deep/er/file", root + "/.singularity.d/relative");
  fs::create_symlink("/opt/deep", root + "/.singularity.d/absolute");
  fs::create_symlink("../../../../../../opt/deep/er/file", root + "/.singularity.d/escape");
  fs::create_symlink("/etc/passwd", root + "/.singularity.d/host");
  fs::create_symlink("loop2", root + "/loop1");
  fs::create_symlink("loop1", root + "/loop2");
  std::string image = dir.File("image.sqfs");
  std::string cmd =
      "mksquashfs '" + root + "' '" + image + "' -noappend -all-root -quiet >/dev/null";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return ReadFile(image);
}

std::unique_ptr<SquashfsReader> OpenBytes(const ScratchDir& dir, const std::string& prefix,
                                          const std::string& image, const std::string& suffix,
                                          absl::Status* status = nullptr) {
  std::string path = WriteFile(dir.File("wrapped"), prefix + image + suffix);
  static std::vector<UniqueFd> keep;  // the reader needs the descriptor alive
  auto fd = OpenFile(path, O_RDONLY);
  REQUIRE(fd.ok());
  keep.push_back(*std::move(fd));
  auto reader = SquashfsReader::Open(keep.back().get(), prefix.size(), image.size());
  if (status != nullptr) *status = reader.status();
  return reader.ok() ? *std::move(reader) : nullptr;
}

TEST_CASE("files are read through a byte-range window", "[squashfs]") {
  ScratchDir dir;
  std::string image = BuildImage(dir);
  // Garbage on both sides must never be read.
  auto reader = OpenBytes(dir, std::string(4096, '\xff'), image, std::string(4096, '\xee'));
  REQUIRE(reader);
  auto labels = reader->ReadFile("/.singularity.d/labels.json", 1 << 20);
  REQUIRE(labels.ok());
  CHECK(*labels == "{\"a\": \"b\"}");
  CHECK(reader->ReadFile("/big", 1 << 20).value() == std::string(300000, 'x'));
  CHECK(*reader->Stat("/.singularity.d") == EntryType::kDirectory);
  CHECK(*reader->Stat("/.singularity.d/labels.json") == EntryType::kRegular);
  CHECK(*reader->Stat("/nothing/here") == EntryType::kMissing);
  CHECK(*reader->Stat("/big/under-a-file") == EntryType::kMissing);
  auto names = reader->ListDirectory("/.singularity.d");
  REQUIRE(names.ok());
  CHECK(*names ==
        std::vector<std::string>{"absolute", "env", "escape", "host", "labels.json", "relative"});
}

TEST_CASE("symlinks resolve inside the image only", "[squashfs]") {
  ScratchDir dir;
  auto reader = OpenBytes(dir, "", BuildImage(dir), "");
  REQUIRE(reader);
  CHECK(reader->ReadFile("/.singularity.d/relative", 100).value() == "deep\n");
  CHECK(reader->ReadFile("/.singularity.d/absolute/er/file", 100).value() == "deep\n");
  CHECK(reader->ReadFile("/.singularity.d/absolute/../deep/./er//file", 100).value() == "deep\n");
  // ".." of the root is the root, as in a chroot.
  CHECK(reader->ReadFile("/.singularity.d/escape", 100).value() == "deep\n");
  CHECK(reader->ReadFile("/../../opt/deep/er/file", 100).value() == "deep\n");
  // The host's /etc/passwd is not the image's.
  CHECK(absl::IsNotFound(reader->ReadFile("/.singularity.d/host", 100).status()));
  CHECK(*reader->Stat("/.singularity.d/host") == EntryType::kMissing);
  auto loop = reader->ReadFile("/loop1", 100);
  CHECK(absl::IsFailedPrecondition(loop.status()));
  CHECK(loop.status().message() == "/loop1: too many levels of symbolic links");
}

TEST_CASE("reads are capped and non-files are not found", "[squashfs]") {
  ScratchDir dir;
  auto reader = OpenBytes(dir, "", BuildImage(dir), "");
  REQUIRE(reader);
  auto big = reader->ReadFile("/big", 1000);
  CHECK(absl::IsResourceExhausted(big.status()));
  CHECK(big.status().message() ==
        "/big is 300000 bytes, more than the 1000-byte limit for this file");
  // Not even the inode of a file over 64 MiB is loaded, whatever the cap.
  CHECK(*reader->Stat("/huge") == EntryType::kRegular);
  auto huge = reader->ReadFile("/huge", int64_t{1} << 40);
  CHECK(huge.status().message() ==
        "/huge is 104857600 bytes, more than the 67108864-byte limit for this file");
  CHECK(absl::IsNotFound(reader->ReadFile("/.singularity.d", 100).status()));
  CHECK(absl::IsNotFound(reader->ReadFile("/missing", 100).status()));
  CHECK(absl::IsNotFound(reader->ListDirectory("/big").status()));
}

TEST_CASE("a truncated or garbage filesystem is an error, never a crash", "[squashfs]") {
  ScratchDir dir;
  std::string image = BuildImage(dir);
  absl::Status status;
  CHECK_FALSE(OpenBytes(dir, "", std::string(image.size(), '\0'), "", &status));
  CHECK(status.message() == "reading the super block: not a squashfs filesystem (bad magic)");
  CHECK_FALSE(OpenBytes(dir, "", image.substr(0, 50), "", &status));
  // bytes_used sits at offset 40 of the super block; mksquashfs pads after it.
  uint64_t used = 0;
  for (int i = 7; i >= 0; --i) used = (used << 8) | static_cast<uint8_t>(image[40 + i]);
  REQUIRE(used <= image.size());
  CHECK_FALSE(OpenBytes(dir, "", image.substr(0, used - 1), "", &status));
  CHECK(absl::IsDataLoss(status));
  CHECK(status.message().find("truncated image?") != absl::string_view::npos);

  // Random damage: any outcome but a crash or a hang is fine.
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::string damaged = image;
    for (int k = 0; k < 4; ++k) {
      size_t at = round % 2 ? rng() % damaged.size() : damaged.size() - 1 - rng() % 2048;
      damaged[at] = static_cast<char>(rng());
    }
    auto reader = OpenBytes(dir, "", damaged, "");
    if (!reader) continue;
    (void)reader->ReadFile("/.singularity.d/labels.json", 1 << 20);
    (void)reader->ReadFile("/.singularity.d/relative", 1 << 20);
    (void)reader->ListDirectory("/.singularity.d/env");
    (void)reader->Stat("/loop1");
  }
}

// The builder squashes one root twice (the stage cache's copy, then the
// image) through the same descriptor: the second walk must see every entry.
TEST_CASE("a root squashed twice through one descriptor holds its files both times", "[squashfs]") {
  ScratchDir dir;
  std::string root = dir.File("root");
  fs::create_directories(root + "/etc");
  WriteFile(root + "/etc/hostname", "twice\n");
  auto root_fd = OpenFile(root, O_RDONLY | O_DIRECTORY);
  REQUIRE(root_fd.ok());
  for (int round = 0; round < 2; ++round) {
    auto out = OpenFile(dir.File("out.sqfs"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(out.ok());
    squash::Options options;
    options.threads = 1;
    auto stats = squash::SquashDirectory(root_fd->get(), {out->get(), 0}, options);
    REQUIRE(stats.ok());
    auto reader = SquashfsReader::Open(out->get(), 0, stats->bytes);
    REQUIRE(reader.ok());
    CHECK((*reader)->ReadFile("/etc/hostname", 100).value_or("") == "twice\n");
  }
}

}  // namespace
}  // namespace berth::inspect
