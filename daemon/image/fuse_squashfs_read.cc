// File reads for the FUSE server: libsquashfuse's sqfs_read_range, but with
// decompressed data and fragment blocks kept in one cache shared by every
// reader of the pool. Per-reader caches would decompress the same block once
// per thread that touches it (small files share fragment blocks, readahead
// requests straddle blocks), which costs more than threads gain.
#include <cstring>

#include "daemon/image/fuse_squashfs_internal.h"

namespace berth::daemon::image {

SharedBlockCache::SharedBlockCache(size_t capacity) : capacity_(capacity < 8 ? 8 : capacity) {}

absl::StatusOr<SharedBlockCache::Block> SharedBlockCache::Get(sqfs* fs, sqfs_off_t pos,
                                                              uint32_t header) {
  {
    absl::MutexLock lock(&mu_);
    if (auto it = index_.find(pos); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
      ++hits_;
      return it->second->second;
    }
  }
  // Decompress outside the lock: that is the work threads should share.
  sqfs_block* raw = nullptr;
  if (sqfs_data_block_read(fs, pos, header, &raw) != SQFS_OK) {
    return absl::DataLossError("cannot read a squashfs data block");
  }
  Block block(raw, sqfs_block_dispose);
  absl::MutexLock lock(&mu_);
  ++misses_;
  if (index_.contains(pos)) return block;  // another thread got there first
  lru_.emplace_front(pos, block);
  index_[pos] = lru_.begin();
  if (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return block;
}

void SharedBlockCache::Clear() {
  absl::MutexLock lock(&mu_);
  index_.clear();
  lru_.clear();
}

std::pair<uint64_t, uint64_t> SharedBlockCache::HitsAndMisses() const {
  absl::MutexLock lock(&mu_);
  return {hits_, misses_};
}

// One block of the file: where its bytes are, or none for a hole.
struct FileBlock {
  SharedBlockCache::Block block;  // null: a hole (reads as zeros)
  size_t offset = 0;              // of the file's bytes within the block
  size_t size = 0;                // file bytes in this block
};

static absl::StatusOr<FileBlock> FragmentOf(sqfs* fs, SharedBlockCache& cache,
                                            const sqfs_inode& inode) {
  squashfs_fragment_entry frag;
  if (sqfs_frag_entry(fs, &frag, inode.xtra.reg.frag_idx) != SQFS_OK) {
    return absl::DataLossError("cannot read a squashfs fragment entry");
  }
  FileBlock out;
  auto block = cache.Get(fs, static_cast<sqfs_off_t>(frag.start_block), frag.size);
  if (!block.ok()) return block.status();
  out.block = *std::move(block);
  out.offset = inode.xtra.reg.frag_off;
  out.size = inode.xtra.reg.file_size % fs->sb.block_size;
  if (out.offset + out.size > out.block->size) {
    return absl::DataLossError("squashfs fragment out of range");
  }
  return out;
}

static absl::StatusOr<FileBlock> DataBlockOf(sqfs* fs, SharedBlockCache& cache,
                                             const sqfs_blocklist& list, uint64_t file_size) {
  FileBlock out;
  if (list.input_size == 0) {  // sparse: no bytes stored
    out.size = static_cast<size_t>(std::min<uint64_t>(file_size - list.pos, fs->sb.block_size));
    return out;
  }
  auto block = cache.Get(fs, static_cast<sqfs_off_t>(list.block), list.header);
  if (!block.ok()) return block.status();
  out.block = *std::move(block);
  out.size = out.block->size;
  return out;
}

bool ReadFileRange(sqfs* fs, SharedBlockCache& cache, sqfs_inode* inode, sqfs_off_t start,
                   size_t size, char* buf, size_t* got) {
  *got = 0;
  const uint64_t file_size = inode->xtra.reg.file_size;
  const size_t block_size = fs->sb.block_size;
  if (!S_ISREG(inode->base.mode) || start < 0) return false;
  if (static_cast<uint64_t>(start) >= file_size) return true;  // EOF
  sqfs_blocklist list;
  if (sqfs_blockidx_blocklist(fs, inode, &list, start) != SQFS_OK) return false;
  size_t skip = static_cast<size_t>(start % block_size);  // into the first block
  while (*got < size) {
    const bool tail = list.remain == 0;
    absl::StatusOr<FileBlock> part = absl::UnknownError("");
    if (tail) {
      if (inode->xtra.reg.frag_idx == SQUASHFS_INVALID_FRAG) break;
      part = FragmentOf(fs, cache, *inode);
    } else {
      if (sqfs_blocklist_next(&list) != SQFS_OK) return false;
      if (list.pos + block_size <= static_cast<uint64_t>(start)) continue;
      part = DataBlockOf(fs, cache, list, file_size);
    }
    if (!part.ok() || part->size < skip) return false;
    const size_t take = std::min(part->size - skip, size - *got);
    if (part->block) {
      std::memcpy(buf + *got, static_cast<char*>(part->block->data) + part->offset + skip, take);
    } else {
      std::memset(buf + *got, 0, take);
    }
    *got += take;
    skip = 0;
    if (tail) break;
  }
  return true;
}

}  // namespace berth::daemon::image
