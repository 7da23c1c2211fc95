// Small, retrying wrappers around the POSIX I/O calls berth uses everywhere.
//
// They turn short reads/writes and EINTR into complete operations and errno
// into absl::Status, so callers can treat a file as a byte range without
// re-implementing the loops (and their bugs) each time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"

namespace berth {

// Status for the current errno, e.g. ErrnoStatus("open") -> "open: No such file".
absl::Status ErrnoStatus(absl::string_view what, int err);

// Opens `path` with open(2) flags; O_CLOEXEC is always added.
absl::StatusOr<UniqueFd> OpenFile(const std::string& path, int flags, mode_t mode = 0);

// Reads exactly buf.size() bytes at `offset`; a short file is an error.
absl::Status PreadFull(int fd, std::span<uint8_t> buf, int64_t offset);

// Writes all of `buf` at `offset`.
absl::Status PwriteFull(int fd, std::span<const uint8_t> buf, int64_t offset);

// Writes all of `buf` to a stream descriptor (pipe, tty, socket).
absl::Status WriteAll(int fd, std::span<const uint8_t> buf);

// Size of the file behind `fd` (fstat).
absl::StatusOr<int64_t> FileSize(int fd);

// Copies `length` bytes starting at `offset` of `in_fd` to the stream `out_fd`
// without loading them into memory at once (sendfile, falling back to a
// bounded buffer). Used to stream multi-GB objects.
absl::Status CopyRangeToStream(int in_fd, int64_t offset, int64_t length, int out_fd);

// Copies everything from the stream/file `in_fd` (from its current position)
// to `out_fd` at `out_offset`; returns the number of bytes copied.
absl::StatusOr<int64_t> CopyStreamToOffset(int in_fd, int out_fd, int64_t out_offset);

}  // namespace berth
