#include "mpi/image_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "mpi/ld_cache.h"

namespace berth::mpi {
namespace {

constexpr int kMaxEntries = 50000;
constexpr int64_t kMaxCacheBytes = 64 << 20;
const char* const kLibraryDirs[] = {"/lib/x86_64-linux-gnu",
                                    "/usr/lib/x86_64-linux-gnu",
                                    "/lib/aarch64-linux-gnu",
                                    "/usr/lib/aarch64-linux-gnu",
                                    "/lib64",
                                    "/usr/lib64",
                                    "/lib",
                                    "/usr/lib"};

UniqueFd OpenInRoot(int root_fd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return UniqueFd(
      static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof(how))));
}

std::string LinkOf(int fd) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

struct Reader {
  int root_fd;
  std::string root_path;  // the root's path in the daemon's view, "/" stripped from files
  ImageView view;
  int entries = 0;

  // The container path of the regular file `path` resolves to, or "".
  std::string RealFile(const std::string& path) {
    UniqueFd fd = OpenInRoot(root_fd, path, O_PATH);
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
    std::string host = LinkOf(fd.get());
    if (!absl::StartsWith(host, root_path)) return "";
    std::string inside = host.substr(root_path == "/" ? 0 : root_path.size());
    return inside.empty() || inside[0] != '/' ? "" : inside;
  }

  void Add(const std::string& dir, const std::string& name) {
    if (++entries > kMaxEntries || view.by_soname.count(name)) return;
    auto parsed = ParseLibraryName(name);
    if (!parsed) return;
    std::string real = RealFile(absl::StrCat(dir, "/", name));
    if (real.empty()) return;
    auto real_name = ParseLibraryName(real.substr(real.rfind('/') + 1));
    ImageLibrary lib{real, real_name ? *real_name : *parsed};
    view.by_soname[name] = lib;
    auto [it, fresh] = view.by_linker.emplace(lib.name.linker_name, lib);
    if (!fresh && it->second.name.version < lib.name.version) it->second = lib;
    if (name == "libc.so.6" && view.libc_dir.empty()) view.libc_dir = dir;
  }

  void ReadDir(const std::string& dir) {
    UniqueFd fd = OpenInRoot(root_fd, dir, O_RDONLY | O_DIRECTORY);
    if (!fd) return;
    DIR* d = ::fdopendir(fd.Release());
    if (d == nullptr) return;
    while (dirent* e = ::readdir(d)) {
      if (entries > kMaxEntries) break;
      if (absl::StrContains(e->d_name, ".so")) Add(dir, e->d_name);
    }
    ::closedir(d);
  }

  // The directories the image's own loader cache names.
  std::set<std::string> CacheDirs() {
    std::set<std::string> dirs;
    UniqueFd fd = OpenInRoot(root_fd, "/etc/ld.so.cache", O_RDONLY);
    auto size = fd ? FileSize(fd.get()) : absl::StatusOr<int64_t>(-1);
    if (!size.ok() || *size <= 0 || *size > kMaxCacheBytes) return dirs;
    std::string bytes(static_cast<size_t>(*size), '\0');
    if (!PreadFull(fd.get(), {reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()}, 0).ok()) {
      return dirs;
    }
    auto cache = ParseLdCache(bytes);
    if (!cache.ok()) return dirs;
    for (const LdCacheEntry& e : *cache) {
      size_t slash = e.path.rfind('/');
      if (slash != std::string::npos && slash > 0) dirs.insert(e.path.substr(0, slash));
    }
    return dirs;
  }
};

}  // namespace

absl::StatusOr<ImageView> ReadImageView(int root_fd) {
  Reader r{root_fd, LinkOf(root_fd), {}, 0};
  if (r.root_path.empty() || r.root_path[0] != '/') {
    return absl::InternalError("reading the image's libraries: its root has no path");
  }
  if (r.root_path != "/" && r.root_path.back() == '/') r.root_path.pop_back();
  for (const char* dir : kLibraryDirs) r.ReadDir(dir);
  for (const std::string& dir : r.CacheDirs()) r.ReadDir(dir);
  if (r.entries > kMaxEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat("the image has more than ", kMaxEntries, " library directory entries"));
  }
  if (!r.view.libc_dir.empty()) {
    UniqueFd libc = OpenInRoot(root_fd, absl::StrCat(r.view.libc_dir, "/libc.so.6"), O_RDONLY);
    auto elf = libc ? ReadElfInfo(libc.get()) : absl::StatusOr<ElfInfo>(absl::NotFoundError(""));
    if (!elf.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("the image's ", r.view.libc_dir,
                                                     "/libc.so.6 is not a readable ELF library"));
    }
    r.view.glibc = elf->glibc_defined;
  }
  return r.view;
}

}  // namespace berth::mpi
