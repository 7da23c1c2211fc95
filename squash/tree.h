// squash/: writing squashfs images in-process with libsquashfs, for every
// part of berth that makes one: the OCI converter (oci/rootfs_builder.cc,
// layers streamed from tar) and the builder (a staged directory tree,
// dir_squasher.h). Nothing here mounts, clones or touches a path given by a
// user; the callers decide what goes in.
//
// This file is the in-memory tree both feed: names and metadata only (file
// data goes straight into the block processor, writer.h), in the order
// squashfs needs (directory entries sorted bytewise).
#pragma once

#include <sqfs/predef.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace berth::squash {

enum class Kind { kDir, kFile, kSymlink, kCharDev, kBlockDev, kFifo, kSocket };

// The S_IF* bits of `kind`.
uint16_t TypeBits(Kind kind);

struct Meta {
  uint32_t perm = 0755;  // the low 12 bits of st_mode
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;  // clamped to squashfs's unsigned 32 bits when written
  // Only user., trusted. and security. names exist in squashfs.
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// A regular file's data and inode, shared by every hardlink to it. The block
// processor fills `inode` (data block list) when the file is written.
struct FileData {
  sqfs_inode_generic_t* inode = nullptr;
  uint32_t ino = 0;
  uint64_t ref = 0;
  uint32_t nlink = 0;
  bool written = false;
  FileData() = default;
  FileData(const FileData&) = delete;
  FileData& operator=(const FileData&) = delete;
  ~FileData();
};

struct Node {
  Kind kind = Kind::kDir;
  Meta meta;
  // Free for the feeder's use (the OCI converter: which layer set it).
  int layer = 0;
  // A directory made only as the parent of something carries default
  // metadata (0755 root, the build time) until an entry names it.
  bool explicit_meta = false;
  std::map<std::string, std::unique_ptr<Node>> children;  // bytewise order
  std::string target;                                     // symlinks
  uint32_t rdev_major = 0, rdev_minor = 0;                // devices
  std::shared_ptr<FileData> data;                         // regular files
  uint32_t ino = 0;                                       // all but regular files
};

}  // namespace berth::squash
