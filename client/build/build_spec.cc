#include "client/build/build_spec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "deffile/deffile.h"
#include "sif/format.h"

namespace berth::client {
namespace {

// Apptainer's uri.IsValid schemes.
constexpr absl::string_view kSchemes[] = {"library",       "shub", "docker",      "docker-archive",
                                          "docker-daemon", "oci",  "oci-archive", "oras"};

// Up to `limit` bytes of the file (fewer at its end).
absl::StatusOr<std::string> ReadAtMost(int fd, size_t limit, const std::string& path) {
  std::string out;
  char buf[65536];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(absl::StrCat("reading ", path), errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t limit) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(absl::StrCat("stat ", path), errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  return ReadAtMost(fd.get(), limit, path);
}

// Apptainer's populateRaw for a header-only definition.
BuildSpec FromHeader(const std::string& name, absl::string_view bootstrap, absl::string_view from) {
  return BuildSpec{name, absl::StrCat("bootstrap: ", bootstrap, "\nfrom: ", from, "\n\n"), false};
}

// A squashfs file or a SIF (its magic after the 32-byte launch script).
bool LooksLikeImage(const std::string& head) {
  if (head.compare(0, 4, "hsqs") == 0) return true;
  return head.size() >= 32 + sif::kMagic.size() &&
         head.compare(32, sif::kMagic.size(), sif::kMagic.data(), sif::kMagic.size()) == 0;
}

}  // namespace

absl::StatusOr<BuildSpec> ReadBuildSpec(const std::string& spec) {
  if (size_t colon = spec.find(':'); colon != std::string::npos) {
    absl::string_view scheme = absl::string_view(spec).substr(0, colon);
    if (std::find(std::begin(kSchemes), std::end(kSchemes), scheme) != std::end(kSchemes)) {
      absl::string_view rest = absl::string_view(spec).substr(colon + 1);
      absl::ConsumePrefix(&rest, "//");
      return FromHeader(spec, scheme, rest);
    }
  }
  struct stat st;
  if (::stat(spec.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FromHeader(spec, "localimage", spec);  // a sandbox
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(spec, deffile::kMaxFileBytes + 1));
  if (LooksLikeImage(bytes)) return FromHeader(spec, "localimage", spec);
  return BuildSpec{spec, std::move(bytes), true};
}

absl::StatusOr<std::string> ReadBuildArgFile(const std::string& path) {
  constexpr size_t kLimit = 1 << 20;
  ASSIGN_OR_RETURN(std::string contents, ReadRegularFile(path, kLimit + 1));
  if (contents.size() > kLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("--build-arg-file ", path, ": larger than 1 MiB"));
  }
  return contents;
}

}  // namespace berth::client
