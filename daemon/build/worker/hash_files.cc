#include "daemon/build/worker/hash_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::build_worker {
namespace {

constexpr int kMaxDepth = 256;

// Length-prefixed, so no two different walks feed the same bytes.
void Field(Hasher& h, absl::string_view s) {
  const uint64_t n = s.size();
  h.Update({reinterpret_cast<const uint8_t*>(&n), sizeof(n)});
  h.Update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

absl::Status HashContent(int fd, const std::string& shown, Hasher& h) {
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus(shown, errno);
    if (r == 0) return absl::OkStatus();
    h.Update({buf.data(), static_cast<size_t>(r)});
  }
}

// As copy_files.cc's CopyEntry walks: symlinks followed, directories in
// name order (the copy's order does not matter; the hash's does).
absl::Status HashEntry(int dir, const std::string& name, const std::string& shown, int depth,
                       Hasher& h) {
  if (depth > kMaxDepth) return absl::InvalidArgumentError(absl::StrCat(shown, ": too deep"));
  UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return ErrnoStatus(shown, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(shown, errno);
  Field(h, shown);
  if (S_ISDIR(st.st_mode)) {
    Field(h, absl::StrCat("d", st.st_mode & 07777));
    int listing = ::dup(fd.get());
    DIR* d = listing >= 0 ? ::fdopendir(listing) : nullptr;
    if (d == nullptr) return ErrnoStatus(shown, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.emplace_back(e->d_name);
      }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      RETURN_IF_ERROR(HashEntry(fd.get(), n, absl::StrCat(shown, "/", n), depth + 1, h));
    }
    return absl::OkStatus();
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(shown, ": not a regular file or directory"));
  }
  ::fcntl(fd.get(), F_SETFL, 0);
  Field(h, absl::StrCat("f", st.st_mode & 0777, " ", st.st_size));
  return HashContent(fd.get(), shown, h);
}

// The glob as CopyFiles expands it, sorted (it lists GLOB_NOSORT).
std::vector<std::string> Glob(const std::string& pattern) {
  glob_t g{};
  int rc = ::glob(pattern.c_str(), GLOB_NOESCAPE, nullptr, &g);
  std::vector<std::string> out;
  for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  if (out.empty()) out.push_back(pattern);
  return out;
}

}  // namespace

absl::Status HashFiles(const v1::HashFiles& job, v1::WorkerResult& result) {
  Hasher h(DigestAlgorithm::kSha256);
  for (const v1::CopyFiles& section : job.sections()) {
    Field(h, "section");
    for (const v1::FileCopy& line : section.files()) {
      Field(h, line.source());
      Field(h, line.destination());
      for (const std::string& src : Glob(line.source())) {
        absl::Status st = HashEntry(AT_FDCWD, src, src, 0, h);
        if (!st.ok()) {
          return absl::Status(st.code(), absl::StrCat("line ", line.line(), ": reading ",
                                                      line.source(), ": ", st.message()));
        }
      }
    }
  }
  result.set_digest(h.FinishHex());
  return absl::OkStatus();
}

}  // namespace berth::build_worker
