// Test-only converter: `oci_to_sif [--zstd] REF OUT.sif`, REF being
// oci:DIR[:TAG], oci-archive:PATH[:TAG] or docker-archive:PATH[:REF]. Lets the
// tests drive the oci/ library end to end before the daemon exposes it.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "oci/local_transport.h"
#include "oci/sif_from_oci.h"

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "FATAL:   %s\n", what.c_str());
  return 255;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace berth;
  oci::SifBuildOptions options;
  int arg = 1;
  if (arg < argc && std::strcmp(argv[arg], "--zstd") == 0) {
    options.compression = oci::SquashfsCompression::kZstd;
    ++arg;
  }
  if (argc - arg != 2) return Fail("usage: oci_to_sif [--zstd] REF OUT.sif");
  auto ref = oci::ParseLocalReference(argv[arg]);
  if (!ref.ok()) return Fail(std::string(ref.status().message()));
  std::string out_path = argv[arg + 1];
  std::string scratch =
      out_path.substr(0, out_path.rfind('/') == std::string::npos ? 0 : out_path.rfind('/'));
  if (scratch.empty()) scratch = ".";
  UniqueFd scratch_fd(::open(scratch.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  absl::StatusOr<oci::OciImage> image;
  if (ref->transport == oci::LocalTransport::kOciDir) {
    UniqueFd dir(::open(ref->path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return Fail(ref->path + ": " + std::strerror(errno));
    image = oci::ReadOciLayout(dir.get(), ref->tag, oci::PlatformSpec{}, oci::OpenAtWithOwnRights);
  } else {
    UniqueFd file(::open(ref->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) return Fail(ref->path + ": " + std::strerror(errno));
    image = ref->transport == oci::LocalTransport::kOciArchive
                ? oci::ReadOciArchive(file.get(), ref->tag, oci::PlatformSpec{}, scratch_fd.get())
                : oci::ReadDockerArchive(file.get(), ref->tag, scratch_fd.get());
  }
  if (!image.ok()) return Fail(std::string(image.status().message()));
  // The library's contract: an empty temp file, renamed on success.
  std::string tmp = out_path + ".tmp";
  UniqueFd out(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0755));
  if (!out) return Fail(tmp + ": " + std::strerror(errno));
  auto stats = oci::WriteSifFromOci(*image, out.get(), options);
  if (!stats.ok()) {
    ::unlink(tmp.c_str());
    return Fail(std::string(stats.status().message()));
  }
  if (::rename(tmp.c_str(), out_path.c_str()) != 0) return Fail(std::strerror(errno));
  std::printf(
      "INFO:    %lld files, %lld directories, %lld skipped entries, squashfs %lld bytes, "
      "%lld dropped xattrs\n",
      static_cast<long long>(stats->files), static_cast<long long>(stats->directories),
      static_cast<long long>(stats->skipped_entries), static_cast<long long>(stats->squashfs_bytes),
      static_cast<long long>(stats->dropped_xattrs));
  return 0;
}
