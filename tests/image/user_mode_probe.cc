// A user-mode berthd in miniature, run by fuse_user_mode_test as the
// unprivileged user berthtest: enter the user-mode namespaces while still
// single-threaded, open the image as the caller, mount it through the
// in-process FUSE server, read it (also from several threads at once), and
// release it. Prints one "FAIL ..." line and exits non-zero on any problem.
//
// usage: image_user_probe IMAGE STATE_DIR MANIFEST
//   MANIFEST: lines "sha256 relative/path" of files that must read back.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/image/mount_cache.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/image/user_namespace.h"
#include "tests/image/image_test_util.h"

using namespace berth::daemon;
using namespace berth::daemon::image;

namespace {

int Fail(const std::string& what) {
  std::printf("FAIL %s\n", what.c_str());
  return 1;
}

std::map<std::string, std::string> ReadManifest(const std::string& path) {
  std::map<std::string, std::string> manifest;
  std::ifstream in(path);
  for (std::string sha, rel; in >> sha >> rel;) manifest[rel] = sha;
  return manifest;
}

// Eight readers at once: the FUSE server must serve them in parallel.
std::string ReadInParallel(const std::string& root,
                           const std::map<std::string, std::string>& manifest) {
  std::vector<std::thread> readers;
  std::atomic<int> bad{0};
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&] {
      if (!berth::testing::VerifyTree(root, manifest).empty()) ++bad;
    });
  }
  for (auto& t : readers) t.join();
  return bad == 0 ? "" : std::to_string(bad.load()) + " parallel readers saw wrong content";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return Fail("usage: image_user_probe IMAGE STATE_DIR MANIFEST");
  if (geteuid() == 0) return Fail("must run as an unprivileged user");
  // Before any thread exists (the kernel requires it for CLONE_NEWUSER).
  if (auto st = EnterUserModeNamespaces(); !st.ok()) return Fail(std::string(st.message()));
  const auto manifest = ReadManifest(argv[3]);
  const CallerCreds me{geteuid(), getegid(), {}};
  auto fd = OpenAsCaller(me, argv[1], O_RDONLY);
  if (!fd.ok()) return Fail(std::string(fd.status().message()));
  MountCache cache(argv[2], DaemonMode::kUser, {});
  auto lease = cache.Acquire(std::move(fd).value(), argv[1], geteuid());
  if (!lease.ok()) return Fail(std::string(lease.status().message()));
  const std::string root = (*lease)->root();
  if ((*lease)->backend() != MountBackend::kFuse) return Fail("backend is not FUSE");
  if (std::string bad = berth::testing::VerifyTree(root, manifest); !bad.empty()) return Fail(bad);
  if (std::string bad = ReadInParallel(root, manifest); !bad.empty()) return Fail(bad);
  // default_permissions: the image's modes hold even for the mounting user.
  if (open((root + "/secret/only-root.txt").c_str(), O_RDONLY) >= 0) {
    return Fail("a 0600 root file of the image was readable");
  }
  char target[256] = {};
  if (readlink((root + "/link-to-readme").c_str(), target, sizeof(target) - 1) < 0 ||
      std::string(target) != "usr/share/doc/readme.txt") {
    return Fail("symlink reads back wrong");
  }
  // A second lease shares the mount; releasing both unmounts it.
  auto again = cache.Acquire(*OpenAsCaller(me, argv[1], O_RDONLY), argv[1], geteuid());
  if (!again.ok() || (*again)->root() != root) return Fail("second lease did not share the mount");
  lease->reset();
  again->reset();
  if (!berth::testing::MountsUnder(cache.mounts_dir()).empty()) return Fail("mount left behind");
  std::printf("OK %s mounted at %s by uid %d, %zu files verified\n", argv[1], root.c_str(),
              geteuid(), manifest.size());
  return 0;
}
