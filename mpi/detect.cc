#include "mpi/detect.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <deque>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "mpi/bind_plan.h"
#include "mpi/host_stack.h"
#include "mpi/ld_cache.h"

namespace berth::mpi {
namespace {

const LdCacheEntry* Find(const std::vector<LdCacheEntry>& cache, const std::string& soname) {
  for (const LdCacheEntry& e : cache) {
    if (e.soname == soname) return &e;
  }
  return nullptr;
}

// DT_NEEDED of `roots`, transitively, through the cache; glibc's loader and
// libc are left to the image.
absl::StatusOr<std::vector<std::string>> Closure(const std::vector<LdCacheEntry>& cache,
                                                 const std::vector<std::string>& roots) {
  std::set<std::string> seen(roots.begin(), roots.end());
  std::deque<std::string> todo(roots.begin(), roots.end());
  std::vector<std::string> deps;
  while (!todo.empty()) {
    std::string soname = todo.front();
    todo.pop_front();
    const LdCacheEntry* e = Find(cache, soname);
    if (e == nullptr)
      return absl::NotFoundError(absl::StrCat(soname, " is not in the host's loader cache"));
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(e->path, O_RDONLY));
    auto elf = ReadElfInfo(fd.get());
    if (!elf.ok()) return Annotate(elf.status(), e->path);
    for (const std::string& n : elf->needed) {
      if (n == "libc.so.6" || absl::StartsWith(n, "ld-linux") || !seen.insert(n).second) continue;
      deps.push_back(n);
      todo.push_back(n);
    }
  }
  return deps;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Quoted(const std::vector<std::string>& v) {
  return absl::StrCat("[",
                      absl::StrJoin(v, ", ",
                                    [](std::string* out, const std::string& s) {
                                      absl::StrAppend(out, "\"", s, "\"");
                                    }),
                      "]");
}

}  // namespace

absl::StatusOr<Stack> DetectHostStack(MpiFamily family, const std::string& name,
                                      const std::string& ld_cache) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(ld_cache, O_RDONLY));
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd.get()));
  if (size > (64 << 20)) return absl::InvalidArgumentError(absl::StrCat(ld_cache, " is too big"));
  std::string bytes(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(PreadFull(fd.get(), {reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()}, 0));
  auto cache = ParseLdCache(bytes);
  if (!cache.ok()) return Annotate(cache.status(), ld_cache);
  Stack stack;
  stack.name = name;
  std::string mpi = family == MpiFamily::kOpenMpi ? "libmpi.so.40" : "libmpich.so.12";
  const LdCacheEntry* lib = Find(*cache, mpi);
  if (lib == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no ", FamilyName(family), " library (", mpi, ") in ", ld_cache));
  }
  stack.libraries = {mpi};
  ASSIGN_OR_RETURN(stack.dependencies, Closure(*cache, stack.libraries));
  std::string libdir = lib->path.substr(0, lib->path.rfind('/'));
  std::vector<std::string> dirs = {"/etc/libibverbs.d", absl::StrCat(libdir, "/libibverbs"),
                                   absl::StrCat(libdir, "/ucx"),
                                   absl::StrCat(libdir, "/libfabric")};
  if (family == MpiFamily::kOpenMpi) {
    dirs.push_back(absl::StrCat(libdir, "/openmpi/lib/openmpi3"));
    dirs.push_back(absl::StrCat(libdir, "/pmix2/lib/pmix"));
  }
  for (const std::string& d : dirs) {
    if (IsDir(d)) stack.binds.push_back(d);
  }
  stack.devices = {"/dev/infiniband/*", "/dev/cxi*", "/dev/hfi1*", "/dev/xpmem"};
  return stack;
}

std::string StackToToml(const Stack& stack) {
  std::string out =
      absl::StrCat("# MPI stack '", stack.name, "', written by berth mpi detect (docs/mpi.md)\n");
  absl::StrAppend(&out, "libraries = ", Quoted(stack.libraries), "\n");
  absl::StrAppend(&out, "dependencies = ", Quoted(stack.dependencies), "\n");
  absl::StrAppend(&out, "binds = ", Quoted(stack.binds), "\n");
  absl::StrAppend(&out, "devices = ", Quoted(stack.devices), "\n");
  absl::StrAppend(&out, "abi = \"", AbiRuleName(stack.abi), "\"\n");
  return out;
}

}  // namespace berth::mpi
