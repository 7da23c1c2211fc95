#include "mpi/host_stack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "mpi/ld_cache.h"

namespace berth::mpi {
namespace {

constexpr int64_t kMaxCacheBytes = 64 << 20;

absl::StatusOr<std::string> ReadCapped(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd.get()));
  if (size > kMaxCacheBytes) return absl::InvalidArgumentError(absl::StrCat(path, " is too big"));
  std::string bytes(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(PreadFull(fd.get(), {reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()}, 0));
  return bytes;
}

std::string RealPathOf(int fd) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<HostLibrary> ReadHostLibrary(const LdCacheEntry& entry, bool checked) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(entry.path, O_RDONLY));
  HostLibrary lib;
  lib.soname = entry.soname;
  lib.path = RealPathOf(fd.get());
  lib.checked = checked;
  RETURN_IF_ERROR(CheckRootOnly(fd.get(), lib.path));
  std::string base = lib.path.substr(lib.path.rfind('/') + 1);
  auto name = ParseLibraryName(base);
  if (!name) name = ParseLibraryName(entry.soname);
  if (!name) return absl::InvalidArgumentError(absl::StrCat(lib.path, ": not a library name"));
  lib.name = *name;
  auto elf = ReadElfInfo(fd.get());
  if (!elf.ok()) return Annotate(elf.status(), lib.path);
  lib.elf = *std::move(elf);
  return lib;
}

// Every cache entry matching one of `patterns`, the first per soname.
absl::Status AddMatches(const std::vector<std::string>& patterns, bool checked,
                        const std::vector<LdCacheEntry>& cache, const Stack& stack,
                        const std::string& ld_cache, std::set<std::string>& seen, HostStack& out) {
  for (const std::string& pattern : patterns) {
    bool any = false;
    for (const LdCacheEntry& e : cache) {
      if (!LibraryPatternMatches(pattern, e.soname)) continue;
      any = true;
      if (!seen.insert(e.soname).second) continue;
      ASSIGN_OR_RETURN(HostLibrary lib, ReadHostLibrary(e, checked));
      out.libraries.push_back(std::move(lib));
    }
    if (!any) {
      return absl::NotFoundError(absl::StrCat("MPI stack '", stack.name, "': no host library ",
                                              pattern, " in ", ld_cache,
                                              " (install it and run ldconfig, or fix the stack)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckRootOnly(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(path, errno);
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, " is owned by uid ", st.st_uid, " or writable by others: a stack binds ",
                     "only files root alone can change into containers"));
  }
  return absl::OkStatus();
}

absl::StatusOr<HostStack> ReadHostStack(const Stack& stack, const std::string& ld_cache) {
  ASSIGN_OR_RETURN(std::string bytes, ReadCapped(ld_cache));
  auto cache = ParseLdCache(bytes);
  if (!cache.ok()) return Annotate(cache.status(), ld_cache);
  HostStack out;
  std::set<std::string> seen;
  RETURN_IF_ERROR(AddMatches(stack.libraries, true, *cache, stack, ld_cache, seen, out));
  RETURN_IF_ERROR(AddMatches(stack.dependencies, false, *cache, stack, ld_cache, seen, out));
  for (const LdCacheEntry& e : *cache) {
    if (e.soname != "libc.so.6") continue;
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(e.path, O_RDONLY));
    auto elf = ReadElfInfo(fd.get());
    if (!elf.ok()) return Annotate(elf.status(), e.path);
    out.glibc = elf->glibc_defined;
    break;
  }
  return out;
}

}  // namespace berth::mpi
