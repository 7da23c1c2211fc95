#include "daemon/gpu/driver_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::gpu {
namespace {

constexpr const char* kBinaryDirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin",        "/sbin",          "/bin"};

std::string BaseName(const std::string& path) {
  return path.substr(path.find_last_of('/') + 1);
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

class Resolver {
 public:
  Resolver(const std::vector<LdCacheEntry>& cache, const DriverRoot& root, const ElfIdent& native)
      : cache_(cache), root_(root), native_(native) {}

  void Add(const LibListEntry& e) {
    bool found = false;
    switch (e.kind) {
      case LibListEntry::kLibraryName:
        found = AddByName(e.value);
        break;
      case LibListEntry::kLibraryPath:
        found = AddByPath(e.value);
        break;
      case LibListEntry::kBinary:
        found = AddBinary(e.value);
        break;
      case LibListEntry::kFile:
        found = AddFile(e.value, e.value);
        break;
    }
    if (!found) out_.missing.push_back(e.value);
  }

  DriverFiles Take() { return std::move(out_); }

 private:
  // The file at `path` beneath the root when it is a regular ELF object of
  // the node's kind; also its inode, to recognise symlinks to it.
  std::optional<UniqueFd> OpenLibrary(const std::string& path, struct stat& st) {
    auto fd = root_.OpenPath(path, O_RDONLY | O_NONBLOCK);
    if (!fd.ok() || ::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    auto ident = ReadElfIdent(fd->get());
    if (!ident.ok() || !(*ident == native_)) return std::nullopt;
    return *std::move(fd);
  }

  bool AddLibrary(const std::string& host, const std::string& name, UniqueFd fd) {
    if (!lib_names_.insert(name).second) return true;  // an earlier entry bound this name
    out_.libraries.push_back(
        {root_.Display(host), absl::StrCat(kLibsDir, "/", name), std::move(fd)});
    return true;
  }

  bool AddByName(const std::string& prefix) {
    bool found = false;
    for (const LdCacheEntry& c : cache_) {
      if (!absl::StartsWith(c.name, prefix) || c.path.empty() || c.path.front() != '/') continue;
      if (cache_names_.count(c.name)) {
        found = true;
        continue;
      }
      struct stat st;
      std::optional<UniqueFd> fd = OpenLibrary(c.path, st);
      if (!fd) continue;
      cache_names_.insert(c.name);
      found = AddLibrary(c.path, BaseName(c.path), *std::move(fd));
    }
    return found;
  }

  bool AddByPath(const std::string& path) {
    struct stat target;
    std::optional<UniqueFd> fd = OpenLibrary(path, target);
    if (!fd) return false;
    AddLibrary(path, BaseName(path), *std::move(fd));
    AddLinksTo(path, target);
    return true;
  }

  // Symlinks beside `path` named like it up to ".so" that lead to it.
  void AddLinksTo(const std::string& path, const struct stat& target) {
    std::string base = BaseName(path);
    std::string stem = base.substr(0, base.find(".so") + 3);
    std::string dir = DirName(path);
    auto dir_fd = root_.OpenPath(dir, O_RDONLY | O_DIRECTORY);
    if (!dir_fd.ok()) return;
    for (const std::string& name : LinkNames(dir_fd->get(), base, stem)) {
      std::string host = absl::StrCat(dir == "/" ? "" : dir, "/", name);
      auto fd = root_.OpenPath(host, O_PATH);
      struct stat st;
      if (fd.ok() && ::fstat(fd->get(), &st) == 0 && st.st_dev == target.st_dev &&
          st.st_ino == target.st_ino) {
        AddLibrary(host, name, *std::move(fd));
      }
    }
  }

  // The symlinks of the directory `dir_fd` named `stem`*, but `base`, sorted.
  static std::vector<std::string> LinkNames(int dir_fd, const std::string& base,
                                            const std::string& stem) {
    std::vector<std::string> names;
    DIR* d = ::fdopendir(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 3));
    if (d == nullptr) return names;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      struct stat link;
      if (name != base && absl::StartsWith(name, stem) &&
          ::fstatat(::dirfd(d), name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(link.st_mode)) {
        names.push_back(std::move(name));
      }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool AddBinary(const std::string& name) {
    for (const char* dir : kBinaryDirs) {
      std::string host = absl::StrCat(dir, "/", name);
      auto fd = root_.OpenPath(host, O_PATH);
      struct stat st;
      if (!fd.ok() || ::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode) ||
          (st.st_mode & 0111) == 0) {
        continue;
      }
      return AddDestination(host, absl::StrCat("/usr/bin/", name), *std::move(fd));
    }
    return false;
  }

  bool AddFile(const std::string& host, const std::string& destination) {
    auto fd = root_.OpenPath(host, O_PATH);
    struct stat st;
    if (!fd.ok() || ::fstat(fd->get(), &st) != 0 || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      return false;
    }
    return AddDestination(host, destination, *std::move(fd));
  }

  bool AddDestination(const std::string& host, const std::string& destination, UniqueFd fd) {
    if (file_destinations_.insert(destination).second) {
      out_.files.push_back({root_.Display(host), destination, std::move(fd)});
    }
    return true;
  }

  const std::vector<LdCacheEntry>& cache_;
  const DriverRoot& root_;
  ElfIdent native_;
  DriverFiles out_;
  std::set<std::string> cache_names_, lib_names_, file_destinations_;
};

}  // namespace

DriverFiles ResolveDriverFiles(const std::vector<LibListEntry>& list,
                               const std::vector<LdCacheEntry>& cache, const DriverRoot& root,
                               const ElfIdent& native) {
  Resolver resolver(cache, root, native);
  for (const LibListEntry& e : list) resolver.Add(e);
  return resolver.Take();
}

}  // namespace berth::daemon::gpu
