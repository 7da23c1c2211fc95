// What the kernel keeps from reaching the FUSE server, and that keeping it
// changes no answer: files and directories open without a request (no-open),
// misses are cached negative entries, listings and pages stay cached, while
// every read, listing, miss and refused write is still exactly right.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/file_io.h"
#include "daemon/image/fuse_squashfs.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using namespace berth::testing;
namespace fs = std::filesystem;

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return {"opendir failed"};
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  closedir(d);
  return names;
}

std::set<std::string> ListSource(const std::string& dir) {
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename());
  return names;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("a FUSE mount opens without asking the server, caches misses, and stays exact",
          "[image][root]") {
  REQUIRE(geteuid() == 0);
  TrustedScratch scratch;
  const std::string tree = scratch.File("tree");
  fs::create_directories(tree + "/dir/sub");
  std::ofstream(tree + "/a.txt") << "alpha";
  std::ofstream(tree + "/dir/b.txt") << "bravo";
  std::ofstream(tree + "/dir/sub/c.txt") << "charlie";
  {
    std::ofstream big(tree + "/big.bin", std::ios::binary);
    for (int i = 0; i < (1 << 20); ++i) big.put(static_cast<char>(i * 7 + (i >> 9)));
  }
  fs::create_symlink("dir/b.txt", tree + "/link");
  MakeSquashfs(tree, scratch.File("t.sqfs"), "gzip", "-b 4096");
  const std::string target = scratch.File("mnt");
  fs::create_directory(target);
  auto image = OpenFile(scratch.File("t.sqfs"), O_RDONLY);
  REQUIRE(image.ok());
  auto mount = FuseSquashfsMount::Mount(image->get(), 0, target, 4);
  REQUIRE(mount.ok());
  const std::string m = (*mount)->path();

  // First pass: whatever the kernel has to ask once.
  for (int pass = 0; pass < 3; ++pass) {
    INFO("pass " << pass);
    CHECK(ReadAll(m + "/a.txt") == "alpha");
    CHECK(ReadAll(m + "/dir/b.txt") == "bravo");
    CHECK(ReadAll(m + "/link") == "bravo");
    CHECK(ReadAll(m + "/dir/sub/c.txt") == "charlie");
    CHECK(Sha256OfFile(m + "/big.bin") == Sha256OfFile(tree + "/big.bin"));
    CHECK(List(m) == ListSource(tree));
    CHECK(List(m + "/dir") == ListSource(tree + "/dir"));
    CHECK(List(m + "/dir/sub") == ListSource(tree + "/dir/sub"));
    struct stat st;
    CHECK(stat((m + "/missing").c_str(), &st) == -1);
    CHECK(errno == ENOENT);
    CHECK(stat((m + "/dir/missing/deeper").c_str(), &st) == -1);
    CHECK(errno == ENOENT);
    CHECK(open((m + "/a.txt").c_str(), O_WRONLY | O_CLOEXEC) == -1);
    CHECK(errno == EROFS);
    CHECK(open((m + "/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644) == -1);
    CHECK(errno == EROFS);
    CHECK(open((m + "/a.txt/x").c_str(), O_RDONLY | O_CLOEXEC) == -1);
    CHECK(errno == ENOTDIR);
  }
  // The later passes reached the server not at all: opens and listings
  // without a request (only the first OPEN/OPENDIR, declined, was asked),
  // hits and misses from the dentry cache, data from the page cache.
  const FuseSquashfsMount::RequestCounts warm = (*mount)->request_counts();
  CHECK(warm.opens == 1);
  CHECK(warm.opendirs == 1);
  CHECK(warm.lookups > 0);
  CHECK(warm.reads > 0);
  CHECK(ReadAll(m + "/dir/b.txt") == "bravo");
  struct stat st;
  CHECK(stat((m + "/missing").c_str(), &st) == -1);
  CHECK(List(m + "/dir") == ListSource(tree + "/dir"));
  const FuseSquashfsMount::RequestCounts again = (*mount)->request_counts();
  CHECK(again.lookups == warm.lookups);
  CHECK(again.opens == warm.opens);
  CHECK(again.opendirs == warm.opendirs);
  CHECK(again.reads == warm.reads);

  // Without the page cache, data comes from the server again, exactly.
  DropCaches();
  CHECK(Sha256OfFile(m + "/big.bin") == Sha256OfFile(tree + "/big.bin"));
  CHECK(ReadAll(m + "/dir/sub/c.txt") == "charlie");
  CHECK(List(m + "/dir/sub") == ListSource(tree + "/dir/sub"));
  CHECK((*mount)->request_counts().reads > again.reads);
  CHECK((*mount)->request_counts().opens == 1);
}

}  // namespace
}  // namespace berth::daemon::image
