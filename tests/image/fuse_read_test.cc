// Byte-exact reads through every backend: random offsets and sizes across
// block boundaries, fragments, holes, the block index of large files, EOF,
// and many threads at once. The FUSE server has its own read path (shared
// block cache), so it must agree with the kernel driver and the source files.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/digest.h"
#include "common/file_io.h"
#include "daemon/image/mount_cache.h"
#include "tests/image/image_test_util.h"

namespace berth::daemon::image {
namespace {

using namespace berth::testing;
using Policy = ImagePolicy::KernelSquashfs;
namespace fs = std::filesystem;

// A tree with the shapes squashfs stores differently, packed with 4 KiB
// blocks so that a 12 MiB file has 3072 blocks (enough for a block index).
std::vector<std::string> MakeShapes(const std::string& dir) {
  fs::create_directories(dir);
  std::mt19937_64 rng(42);
  auto write = [&](const std::string& name, size_t size, bool random) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = random ? static_cast<char>(rng()) : "abc"[i % 3];
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
  };
  write("big.bin", 12 << 20, true);
  write("exact.bin", 4096 * 5, true);  // whole blocks, no fragment
  write("tail.bin", 4096 * 3 + 100, false);
  write("empty.bin", 0, false);
  for (int i = 0; i < 40; ++i) write("small-" + std::to_string(i), 10 + i * 37, true);
  {  // holes: 8 MiB with data at 1 MiB and at the end
    std::ofstream sparse(dir + "/sparse.bin", std::ios::binary);
    sparse.seekp(1 << 20);
    sparse << "data in the middle";
    sparse.seekp((8 << 20) - 5);
    sparse << "end!!";
  }
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  return names;
}

std::string Pread(const std::string& path, off_t offset, size_t size) {
  auto fd = OpenFile(path, O_RDONLY);
  if (!fd.ok()) return "open failed";
  std::string buf(size, '\0');
  ssize_t n = pread(fd->get(), buf.data(), size, offset);
  if (n < 0) return "read failed";
  buf.resize(static_cast<size_t>(n));
  return buf;
}

// Random reads from several threads; returns the number of mismatches.
int CompareRandomReads(const std::string& source, const std::string& mounted,
                       const std::vector<std::string>& names) {
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 300; ++i) {
        const std::string& name = names[rng() % names.size()];
        const auto size = static_cast<off_t>(fs::file_size(source + "/" + name));
        const off_t offset = size == 0 ? 0 : static_cast<off_t>(rng() % (size + 4097));
        const size_t length = 1 + rng() % (300 << 10);
        if (Pread(source + "/" + name, offset, length) !=
            Pread(mounted + "/" + name, offset, length)) {
          ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return bad;
}

// The shapes tree packed into a SIF in `scratch`: the tree, its names, the SIF.
struct PackedShapes {
  std::string tree;
  std::vector<std::string> names;
  std::string sif;
};
PackedShapes PackShapes(TrustedScratch& scratch) {
  PackedShapes out{scratch.File("shapes"), {}, scratch.File("shapes.sif")};
  out.names = MakeShapes(out.tree);
  MakeSquashfs(out.tree, scratch.File("shapes.sqfs"), "gzip", "-b 4096");
  MakeSif(scratch.File("shapes.sqfs"), out.sif);
  return out;
}

TEST_CASE("every backend reads back exactly what was packed", "[image][root]") {
  REQUIRE(geteuid() == 0);
  TrustedScratch scratch;
  const auto [tree, names, sif] = PackShapes(scratch);
  for (Policy policy : {Policy::kTrusted, Policy::kNever}) {
    MountCache cache(scratch.File("state-" + std::to_string(static_cast<int>(policy))),
                     DaemonMode::kSystem, ImagePolicy{.kernel_squashfs = policy});
    auto lease = cache.Acquire(*OpenFile(sif, O_RDONLY), sif, 0);
    REQUIRE(lease.ok());
    INFO(MountBackendName((*lease)->backend()));
    for (const std::string& name : names) {
      CHECK(Sha256OfFile(tree + "/" + name) == Sha256OfFile((*lease)->root() + "/" + name));
    }
    DropCaches();
    CHECK(CompareRandomReads(tree, (*lease)->root(), names) == 0);
  }
}

}  // namespace
}  // namespace berth::daemon::image

namespace berth::daemon::image {
namespace {

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

TEST_CASE("a FUSE mount released while a file is open serves it until closed, then stops",
          "[image][root]") {
  TrustedScratch scratch;
  const std::string sif = scratch.File("img.sif");
  auto manifest = MakeImage(scratch.path(), sif, "busy");
  const int threads_before = ThreadCount();
  MountCache cache(scratch.File("state"), DaemonMode::kSystem,
                   ImagePolicy{.kernel_squashfs = Policy::kNever});
  auto lease = cache.Acquire(*OpenFile(sif, O_RDONLY), sif, 0);
  REQUIRE(lease.ok());
  auto open_file = OpenFile((*lease)->root() + "/data/blob.bin", O_RDONLY);
  REQUIRE(open_file.ok());
  lease->reset();  // waits a few seconds for the server, then lets it run on
  CHECK(MountsUnder(cache.mounts_dir()).empty());
  DropCaches();
  auto digest = DigestStream(open_file->get(), DigestAlgorithm::kSha256);
  REQUIRE(digest.ok());
  CHECK(*digest == manifest["data/blob.bin"]);
  open_file->Reset();
  for (int i = 0; i < 50 && ThreadCount() > threads_before; ++i) usleep(100 * 1000);
  CHECK(ThreadCount() == threads_before);
}

}  // namespace
}  // namespace berth::daemon::image

namespace berth::daemon::image {
namespace {

using namespace berth::testing;
using Policy = ImagePolicy::KernelSquashfs;

// xattrs (trusted.*: tmpfs, where the scratch lives, has user.* only since
// Linux 6.6) are served from the image's table; an image without one answers
// "not supported" (the FUSE server's ENOSYS) so the kernel stops asking.
TEST_CASE("FUSE serves image xattrs, and reports none for an image without a table",
          "[image][root]") {
  REQUIRE(geteuid() == 0);
  TrustedScratch scratch;
  const std::string tree = scratch.File("x");
  fs::create_directories(tree);
  std::ofstream(tree + "/f") << "data";
  REQUIRE(setxattr((tree + "/f").c_str(), "trusted.berth", "yes", 3, 0) == 0);
  MakeSquashfs(tree, scratch.File("with.sqfs"), "gzip", "");
  MakeSquashfs(tree, scratch.File("without.sqfs"), "gzip", "-no-xattrs");
  MakeSif(scratch.File("with.sqfs"), scratch.File("with.sif"));
  MakeSif(scratch.File("without.sqfs"), scratch.File("without.sif"));
  MountCache cache(scratch.File("state"), DaemonMode::kSystem,
                   ImagePolicy{.kernel_squashfs = Policy::kNever});

  auto with = cache.Acquire(*OpenFile(scratch.File("with.sif"), O_RDONLY), "with.sif", 0);
  REQUIRE(with.ok());
  char value[16] = {};
  CHECK(getxattr(((*with)->root() + "/f").c_str(), "trusted.berth", value, sizeof(value)) == 3);
  CHECK(std::string(value, 3) == "yes");
  CHECK(getxattr(((*with)->root() + "/f").c_str(), "trusted.none", value, sizeof(value)) == -1);
  CHECK(errno == ENODATA);

  auto without = cache.Acquire(*OpenFile(scratch.File("without.sif"), O_RDONLY), "without.sif", 0);
  REQUIRE(without.ok());
  const std::string f = (*without)->root() + "/f";
  for (int i = 0; i < 2; ++i) {  // the first answer, then the kernel's own
    CHECK(getxattr(f.c_str(), "trusted.berth", value, sizeof(value)) == -1);
    CHECK(errno == EOPNOTSUPP);
    CHECK(listxattr(f.c_str(), value, sizeof(value)) == -1);
    CHECK(errno == EOPNOTSUPP);
  }
  CHECK(Pread(f, 0, 10) == "data");
}

// When the last container ends, the daemon's hold keeps the mount but the
// server gives its caches back; reads afterwards must still be exact.
TEST_CASE("a FUSE mount trimmed after its last user still reads exactly", "[image][root]") {
  REQUIRE(geteuid() == 0);
  TrustedScratch scratch;
  const auto [tree, names, sif] = PackShapes(scratch);
  MountCache cache(scratch.File("state"), DaemonMode::kSystem,
                   ImagePolicy{.kernel_squashfs = Policy::kNever});
  auto lease = cache.Acquire(*OpenFile(sif, O_RDONLY), sif, 0);
  REQUIRE(lease.ok());
  std::shared_ptr<MountLease> hold = cache.HoldForDaemon(**lease);
  const std::string root = (*lease)->root();
  CHECK(CompareRandomReads(tree, root, names) == 0);
  lease->reset();  // the last user: the server trims
  DropCaches();
  CHECK(CompareRandomReads(tree, root, names) == 0);
}

}  // namespace
}  // namespace berth::daemon::image
