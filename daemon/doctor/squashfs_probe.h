// Whether the kernel mounts squashfs images of each compressor: a tiny image
// per compressor (made at build time, embedded) is attached to a loop
// device, mounted read-only and its one file read back and compared.
// /proc/filesystems only says that squashfs exists; which decompressors the
// kernel was built with (CONFIG_SQUASHFS_XZ, ...) shows only when one is used.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace berth::daemon::doctor {

struct ProbeImage {
  const char* compressor;  // mksquashfs's name: "gzip", "xz", ...
  std::span<const uint8_t> bytes;
};

// Generated (embed_probes.cmake): the images, and the file each holds.
std::span<const ProbeImage> ProbeImages();
std::span<const uint8_t> ProbeExpectedContent();

// Mounts `image` under `scratch_dir` (an existing directory of the daemon's,
// on a filesystem with O_TMPFILE), checks its file and unmounts; nothing is
// left behind on any path (the loop device is autoclear).
// Privilege: root (loop devices, the kernel's squashfs).
absl::Status ProbeSquashfs(const std::string& scratch_dir, const ProbeImage& image);

}  // namespace berth::daemon::doctor
