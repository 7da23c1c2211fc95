#include "daemon/image/sparse_copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <vector>

#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::daemon::image {
namespace {

constexpr int64_t kChunk = 4 << 20;
constexpr int64_t kBlock = 4096;
// Holes are hashed from here: zero pages in .bss, never written.
constexpr size_t kZeroBytes = 1 << 20;
const uint8_t kZeros[kZeroBytes] = {};

struct Extent {
  int64_t begin = 0, end = 0;
  bool data = true;
};

// The extent of `fd` that starts at `pos`, clipped to `end`. A file system
// that cannot tell (or an error) makes everything data: a full copy, never a
// wrong one.
Extent ExtentAt(int fd, int64_t pos, int64_t end) {
  const off_t data = ::lseek(fd, pos, SEEK_DATA);
  if (data < 0) return {pos, end, errno != ENXIO};  // ENXIO: only a hole (or EOF) is left
  if (data > pos) return {pos, std::min<int64_t>(data, end), false};
  const off_t hole = ::lseek(fd, pos, SEEK_HOLE);
  if (hole <= pos) return {pos, end, true};
  return {pos, std::min<int64_t>(hole, end), true};
}

void HashZeros(Hasher& hasher, int64_t n) {
  while (n > 0) {
    const size_t step = static_cast<size_t>(std::min<int64_t>(n, kZeroBytes));
    hasher.Update(std::span(kZeros, step));
    n -= static_cast<int64_t>(step);
  }
}

// Copies source [from, to) to dest at (from - offset), hashing on the way.
absl::Status CopyData(int source_fd, int64_t offset, int64_t from, int64_t to, int dest_fd,
                      Hasher* hasher, std::vector<uint8_t>& buf) {
  while (from < to) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(buf.size()), to - from);
    auto span = std::span(buf.data(), static_cast<size_t>(n));
    RETURN_IF_ERROR_CTX(PreadFull(source_fd, span, from), "reading the image");
    if (hasher != nullptr) hasher->Update(span);
    RETURN_IF_ERROR_CTX(PwriteFull(dest_fd, span, from - offset), "writing the copy");
    from += n;
  }
  return absl::OkStatus();
}

}  // namespace

int64_t DataBytesOfRange(int fd, int64_t offset, int64_t size) {
  int64_t total = 0;
  for (int64_t pos = offset, end = offset + size; pos < end;) {
    const Extent e = ExtentAt(fd, pos, end);
    if (e.data) {
      const int64_t first = e.begin / kBlock * kBlock;
      const int64_t last = (e.end + kBlock - 1) / kBlock * kBlock;
      total += last - first;
    }
    pos = e.end;
  }
  return total;
}

absl::Status CopySparseRange(int source_fd, int64_t offset, int64_t done, int64_t size, int dest_fd,
                             Hasher* hasher) {
  std::vector<uint8_t> buf(static_cast<size_t>(std::clamp<int64_t>(size - done, 1, kChunk)));
  for (int64_t pos = offset + done, end = offset + size; pos < end;) {
    const Extent e = ExtentAt(source_fd, pos, end);
    if (e.data) {
      RETURN_IF_ERROR(CopyData(source_fd, offset, e.begin, e.end, dest_fd, hasher, buf));
    } else if (hasher != nullptr) {
      HashZeros(*hasher, e.end - e.begin);
    }
    pos = e.end;
  }
  // A trailing hole: the copy gets its length without allocating it.
  if (::ftruncate(dest_fd, size) != 0) return ErrnoStatus("sizing the copy", errno);
  return absl::OkStatus();
}

int64_t AllocatedBytes(const struct stat& st) {
  return static_cast<int64_t>(st.st_blocks) * 512;
}

}  // namespace berth::daemon::image
