#include "squash/writer.h"

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "squash/cgroup_budget.h"

namespace berth::squash {
namespace {

constexpr uint32_t kNoXattr = 0xFFFFFFFF;

absl::Status SqfsError(const char* what, int err) {
  return absl::InternalError(
      absl::StrCat("squashfs: ", what, " failed (libsquashfs error ", err, ")"));
}

uint32_t Clamp32(int64_t t) {
  return static_cast<uint32_t>(std::clamp<int64_t>(t, 0, UINT32_MAX));
}

// A sqfs_file_t over a byte range of our descriptor.
struct OutFile {
  sqfs_file_t base;
  int fd;
  int64_t offset;
  uint64_t size;
};

int OutReadAt(sqfs_file_t* f, sqfs_u64 off, void* buf, size_t size) {
  auto* o = reinterpret_cast<OutFile*>(f);
  if (off + size > o->size) return SQFS_ERROR_OUT_OF_BOUNDS;
  absl::Status st =
      PreadFull(o->fd, {static_cast<uint8_t*>(buf), size}, o->offset + static_cast<int64_t>(off));
  return st.ok() ? 0 : SQFS_ERROR_IO;
}
int OutWriteAt(sqfs_file_t* f, sqfs_u64 off, const void* buf, size_t size) {
  auto* o = reinterpret_cast<OutFile*>(f);
  absl::Status st = PwriteFull(o->fd, {static_cast<const uint8_t*>(buf), size},
                               o->offset + static_cast<int64_t>(off));
  if (!st.ok()) return SQFS_ERROR_IO;
  o->size = std::max<uint64_t>(o->size, off + size);
  return 0;
}
sqfs_u64 OutGetSize(const sqfs_file_t* f) {
  return reinterpret_cast<const OutFile*>(f)->size;
}
int OutTruncate(sqfs_file_t* f, sqfs_u64 size) {
  auto* o = reinterpret_cast<OutFile*>(f);
  if (::ftruncate(o->fd, o->offset + static_cast<int64_t>(size)) != 0) return SQFS_ERROR_IO;
  o->size = size;
  return 0;
}
void OutDestroy(sqfs_object_t*) {}

SQFS_COMPRESSOR IdOf(Compressor c) {
  switch (c) {
    case Compressor::kGzip:
      return SQFS_COMP_GZIP;
    case Compressor::kZstd:
      return SQFS_COMP_ZSTD;
    case Compressor::kLz4:
      return SQFS_COMP_LZ4;
    case Compressor::kXz:
      return SQFS_COMP_XZ;
  }
  return SQFS_COMP_GZIP;
}

}  // namespace

FileData::~FileData() {
  free(inode);
}

uint16_t TypeBits(Kind k) {
  switch (k) {
    case Kind::kDir:
      return S_IFDIR;
    case Kind::kFile:
      return S_IFREG;
    case Kind::kSymlink:
      return S_IFLNK;
    case Kind::kCharDev:
      return S_IFCHR;
    case Kind::kBlockDev:
      return S_IFBLK;
    case Kind::kFifo:
      return S_IFIFO;
    case Kind::kSocket:
      return S_IFSOCK;
  }
  return 0;
}

struct Writer::State {
  Options options;
  unsigned threads = 1;
  int64_t timestamp = 0;
  OutFile out{};
  sqfs_super_t super{};
  sqfs_compressor_t* cmp = nullptr;
  sqfs_block_writer_t* block_writer = nullptr;
  sqfs_frag_table_t* frag_table = nullptr;
  sqfs_block_processor_t* proc = nullptr;
  sqfs_id_table_t* ids = nullptr;
  sqfs_xattr_writer_t* xattrs = nullptr;
  Stats stats;

  ~State() {
    // Inodes must outlive the processor, which may still write into them.
    if (proc) sqfs_destroy(proc);
    if (block_writer) sqfs_destroy(block_writer);
    if (frag_table) sqfs_destroy(frag_table);
    if (ids) sqfs_destroy(ids);
    if (xattrs) sqfs_destroy(xattrs);
    if (cmp) sqfs_destroy(cmp);
  }

  absl::Status Init(const Target& target);
  absl::Status CreateProcessor();
  absl::StatusOr<uint32_t> XattrIndex(const Meta& m);
  absl::Status SetBase(sqfs_inode_generic_t* inode, const Meta& m, Kind kind, uint32_t ino);
  void Number(Node& dir, uint32_t& next);
  absl::StatusOr<uint64_t> WriteLeaf(Node& n, sqfs_meta_writer_t* im);
  absl::StatusOr<std::pair<uint32_t, uint64_t>> WriteDir(Node& dir, uint32_t parent_ino,
                                                         sqfs_meta_writer_t* im,
                                                         sqfs_dir_writer_t* dw);
  absl::Status WriteTables(Node& root);
};

absl::Status Writer::State::Init(const Target& target) {
  out.base.base.destroy = OutDestroy;
  out.base.read_at = OutReadAt;
  out.base.write_at = OutWriteAt;
  out.base.get_size = OutGetSize;
  out.base.truncate = OutTruncate;
  out.fd = target.fd;
  out.offset = target.offset;
  sqfs_file_t* file = &out.base;
  SQFS_COMPRESSOR id = IdOf(options.compressor);
  sqfs_compressor_config_t cfg;
  if (int err = sqfs_compressor_config_init(&cfg, id, options.block_size, 0); err != 0) {
    return SqfsError("compressor config", err);
  }
  if (options.level > 0) cfg.level = static_cast<sqfs_u32>(options.level);
  if (int err = sqfs_compressor_create(&cfg, &cmp); err != 0) {
    return SqfsError(absl::StrCat(CompressorName(options.compressor), " compressor").c_str(), err);
  }
  if (int err = sqfs_super_init(&super, options.block_size, Clamp32(timestamp), id); err != 0) {
    return SqfsError("super block init", err);
  }
  if (int err = sqfs_super_write(&super, file); err != 0)
    return SqfsError("super block write", err);
  int opt = cmp->write_options(cmp, file);
  if (opt < 0) return SqfsError("compressor options", opt);
  if (opt > 0) super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
  block_writer = sqfs_block_writer_create(file, 4096, 0);
  frag_table = sqfs_frag_table_create(0);
  ids = sqfs_id_table_create(0);
  xattrs = sqfs_xattr_writer_create(0);
  if (!block_writer || !frag_table || !ids || !xattrs) {
    return absl::ResourceExhaustedError("squashfs: out of memory");
  }
  return CreateProcessor();
}

// Threads and queue depth: what was asked, else what this process's cgroup
// and CPU affinity allow (a build runs in the caller's cgroup).
absl::Status Writer::State::CreateProcessor() {
  Budget budget = ReadBudget();
  threads = options.threads ? options.threads : budget.cpus;
  threads = std::max(1u, threads);
  int64_t queued = options.max_queued_bytes;
  if (queued <= 0) queued = int64_t{threads} * 10 * options.block_size;
  // The processor holds about twice its backlog; leave half the memory
  // limit to the rest of the process and the page cache.
  if (budget.memory_bytes > 0) queued = std::min(queued, budget.memory_bytes / 4);
  size_t backlog = std::max<int64_t>(threads * 2, queued / options.block_size);
  sqfs_block_processor_desc_t desc{};
  desc.size = sizeof(desc);
  desc.max_block_size = options.block_size;
  desc.num_workers = threads;
  desc.max_backlog = backlog;
  desc.cmp = cmp;
  desc.wr = block_writer;
  desc.tbl = frag_table;
  if (int err = sqfs_block_processor_create_ex(&desc, &proc); err != 0) {
    return SqfsError("block processor", err);
  }
  return absl::OkStatus();
}

Writer::Writer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Writer::~Writer() = default;

absl::StatusOr<std::unique_ptr<Writer>> Writer::Create(const Target& target,
                                                       const Options& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  auto s = std::make_unique<State>();
  s->options = options;
  s->timestamp = options.timestamp >= 0 ? options.timestamp : ::time(nullptr);
  RETURN_IF_ERROR(s->Init(target));
  return std::unique_ptr<Writer>(new Writer(std::move(s)));
}

unsigned Writer::threads() const {
  return state_->threads;
}

absl::Status Writer::BeginFile(FileData& data) {
  if (int err = sqfs_block_processor_begin_file(state_->proc, &data.inode, nullptr, 0); err != 0) {
    return SqfsError("begin file", err);
  }
  return absl::OkStatus();
}

absl::Status Writer::Append(const void* bytes, size_t size) {
  if (size == 0) return absl::OkStatus();
  if (int err = sqfs_block_processor_append(state_->proc, bytes, size); err != 0) {
    return SqfsError(err == SQFS_ERROR_IO ? "writing the image" : "append", err);
  }
  return absl::OkStatus();
}

absl::Status Writer::EndFile() {
  if (int err = sqfs_block_processor_end_file(state_->proc); err != 0) {
    return SqfsError(err == SQFS_ERROR_IO ? "writing the image" : "end file", err);
  }
  return absl::OkStatus();
}

absl::Status Writer::AddFile(FileData& data, std::string_view content) {
  RETURN_IF_ERROR(BeginFile(data));
  RETURN_IF_ERROR(Append(content.data(), content.size()));
  return EndFile();
}

absl::StatusOr<uint32_t> Writer::State::XattrIndex(const Meta& m) {
  if (m.xattrs.empty()) return kNoXattr;
  if (int err = sqfs_xattr_writer_begin(xattrs, 0); err != 0) return SqfsError("xattr begin", err);
  for (const auto& [k, v] : m.xattrs) {
    if (int err = sqfs_xattr_writer_add(xattrs, k.c_str(), v.data(), v.size()); err != 0) {
      return SqfsError("xattr add", err);
    }
  }
  uint32_t idx = kNoXattr;
  if (int err = sqfs_xattr_writer_end(xattrs, &idx); err != 0) return SqfsError("xattr end", err);
  return idx;
}

absl::Status Writer::State::SetBase(sqfs_inode_generic_t* inode, const Meta& m, Kind kind,
                                    uint32_t ino) {
  inode->base.mode = static_cast<uint16_t>(TypeBits(kind) | (m.perm & 07777));
  if (int err = sqfs_id_table_id_to_index(ids, m.uid, &inode->base.uid_idx); err != 0) {
    return SqfsError("uid table", err);
  }
  if (int err = sqfs_id_table_id_to_index(ids, m.gid, &inode->base.gid_idx); err != 0) {
    return SqfsError("gid table", err);
  }
  inode->base.mod_time = Clamp32(m.mtime);
  inode->base.inode_number = ino;
  ASSIGN_OR_RETURN(uint32_t x, XattrIndex(m));
  if (x != kNoXattr) {
    if (int err = sqfs_inode_set_xattr_index(inode, x); err != 0) {
      return SqfsError("xattr index", err);
    }
  }
  return absl::OkStatus();
}

// Inode numbers in write order (children before their directory, the root
// last), and the link count of each shared file.
void Writer::State::Number(Node& dir, uint32_t& next) {
  for (auto& [name, child] : dir.children) {
    if (child->kind == Kind::kDir) {
      Number(*child, next);
    } else if (child->kind == Kind::kFile) {
      if (child->data->nlink++ == 0) child->data->ino = next++;
    } else {
      child->ino = next++;
    }
  }
  dir.ino = next++;
}

absl::StatusOr<uint64_t> Writer::State::WriteLeaf(Node& n, sqfs_meta_writer_t* im) {
  sqfs_u64 block;
  sqfs_u32 offset;
  if (n.kind == Kind::kFile) {
    FileData& fd = *n.data;
    if (fd.written) return fd.ref;
    if (fd.inode == nullptr) return absl::InternalError("squashfs: a file without data");
    if (fd.nlink > 1) {
      if (int err = sqfs_inode_make_extended(fd.inode); err != 0) {
        return SqfsError("extend inode", err);
      }
      fd.inode->data.file_ext.nlink = fd.nlink;
    }
    RETURN_IF_ERROR(SetBase(fd.inode, n.meta, Kind::kFile, fd.ino));
    sqfs_meta_writer_get_position(im, &block, &offset);
    if (int err = sqfs_meta_writer_write_inode(im, fd.inode); err != 0) {
      return SqfsError("write inode", err);
    }
    fd.ref = (block << 16) | offset;
    fd.written = true;
    stats.files++;
    return fd.ref;
  }
  size_t extra = n.kind == Kind::kSymlink ? n.target.size() : 0;
  std::unique_ptr<sqfs_inode_generic_t, decltype(&free)> inode(
      static_cast<sqfs_inode_generic_t*>(calloc(1, sizeof(sqfs_inode_generic_t) + extra)), &free);
  if (!inode) return absl::ResourceExhaustedError("out of memory");
  switch (n.kind) {
    case Kind::kSymlink:
      inode->base.type = SQFS_INODE_SLINK;
      inode->data.slink.nlink = 1;
      inode->data.slink.target_size = static_cast<uint32_t>(n.target.size());
      inode->payload_bytes_available = inode->payload_bytes_used = static_cast<uint32_t>(extra);
      memcpy(inode->extra, n.target.data(), extra);
      break;
    case Kind::kCharDev:
    case Kind::kBlockDev:
      inode->base.type = n.kind == Kind::kCharDev ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
      inode->data.dev.nlink = 1;
      // The kernel's new_encode_dev(), which squashfs stores.
      inode->data.dev.devno =
          (n.rdev_minor & 0xff) | (n.rdev_major << 8) | ((n.rdev_minor & ~0xffu) << 12);
      break;
    case Kind::kFifo:
    case Kind::kSocket:
      inode->base.type = n.kind == Kind::kFifo ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
      inode->data.ipc.nlink = 1;
      break;
    default:
      return absl::InternalError("unexpected node kind");
  }
  RETURN_IF_ERROR(SetBase(inode.get(), n.meta, n.kind, n.ino));
  sqfs_meta_writer_get_position(im, &block, &offset);
  if (int err = sqfs_meta_writer_write_inode(im, inode.get()); err != 0) {
    return SqfsError("write inode", err);
  }
  stats.files++;
  return (block << 16) | offset;
}

absl::StatusOr<std::pair<uint32_t, uint64_t>> Writer::State::WriteDir(Node& dir,
                                                                      uint32_t parent_ino,
                                                                      sqfs_meta_writer_t* im,
                                                                      sqfs_dir_writer_t* dw) {
  std::vector<uint64_t> refs;
  refs.reserve(dir.children.size());
  size_t subdirs = 0;
  for (auto& [name, child] : dir.children) {
    if (child->kind == Kind::kDir) {
      ASSIGN_OR_RETURN(auto sub, WriteDir(*child, dir.ino, im, dw));
      refs.push_back(sub.second);
      subdirs++;
    } else {
      ASSIGN_OR_RETURN(uint64_t ref, WriteLeaf(*child, im));
      refs.push_back(ref);
    }
  }
  if (int err = sqfs_dir_writer_begin(dw, 0); err != 0) return SqfsError("dir begin", err);
  size_t i = 0;
  for (auto& [name, child] : dir.children) {
    uint32_t ino = child->kind == Kind::kFile ? child->data->ino : child->ino;
    uint16_t mode = static_cast<uint16_t>(TypeBits(child->kind) | (child->meta.perm & 07777));
    if (int err = sqfs_dir_writer_add_entry(dw, name.c_str(), ino, refs[i++], mode); err != 0) {
      return SqfsError("dir entry", err);
    }
  }
  if (int err = sqfs_dir_writer_end(dw); err != 0) return SqfsError("dir end", err);
  Meta meta = dir.explicit_meta ? dir.meta : Meta{0755, 0, 0, timestamp, {}};
  ASSIGN_OR_RETURN(uint32_t x, XattrIndex(meta));
  sqfs_inode_generic_t* inode = sqfs_dir_writer_create_inode(dw, 2 + subdirs, x, parent_ino);
  if (inode == nullptr) return absl::ResourceExhaustedError("squashfs: directory inode");
  std::unique_ptr<sqfs_inode_generic_t, decltype(&free)> owned(inode, &free);
  meta.xattrs.clear();  // already attached by create_inode
  RETURN_IF_ERROR(SetBase(inode, meta, Kind::kDir, dir.ino));
  sqfs_u64 block;
  sqfs_u32 offset;
  sqfs_meta_writer_get_position(im, &block, &offset);
  if (int err = sqfs_meta_writer_write_inode(im, inode); err != 0) {
    return SqfsError("write dir inode", err);
  }
  stats.directories++;
  return std::make_pair(dir.ino, (block << 16) | offset);
}

absl::Status Writer::State::WriteTables(Node& root) {
  sqfs_file_t* file = &out.base;
  uint32_t next = 1;
  Number(root, next);
  uint32_t inode_count = next - 1;
  sqfs_meta_writer_t* im = sqfs_meta_writer_create(file, cmp, 0);
  sqfs_meta_writer_t* dm = sqfs_meta_writer_create(file, cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
  sqfs_dir_writer_t* dw = dm ? sqfs_dir_writer_create(dm, 0) : nullptr;
  auto cleanup = [&] {
    if (dw) sqfs_destroy(dw);
    if (dm) sqfs_destroy(dm);
    if (im) sqfs_destroy(im);
  };
  if (!im || !dm || !dw) {
    cleanup();
    return absl::ResourceExhaustedError("squashfs: out of memory");
  }
  super.inode_table_start = file->get_size(file);
  auto written = WriteDir(root, inode_count + 1, im, dw);
  absl::Status st = written.status();
  if (st.ok()) {
    if (int err = sqfs_meta_writer_flush(im); err != 0) st = SqfsError("inode table", err);
  }
  if (st.ok()) {
    if (int err = sqfs_meta_writer_flush(dm); err != 0) st = SqfsError("directory table", err);
  }
  if (st.ok()) {
    super.directory_table_start = file->get_size(file);
    if (int err = sqfs_meta_write_write_to_file(dm); err != 0) {
      st = SqfsError("directory table", err);
    }
  }
  cleanup();
  RETURN_IF_ERROR(st);
  super.root_inode_ref = written->second;
  super.inode_count = inode_count;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Writer::Finish(Node& root, Stats& out_stats) {
  State& s = *state_;
  sqfs_file_t* file = &s.out.base;
  if (int err = sqfs_block_processor_finish(s.proc); err != 0) {
    return SqfsError(err == SQFS_ERROR_IO ? "writing the image" : "finishing data", err);
  }
  RETURN_IF_ERROR(s.WriteTables(root));
  if (int err = sqfs_frag_table_write(s.frag_table, file, &s.super, s.cmp); err != 0) {
    return SqfsError("fragment table", err);
  }
  if (int err = sqfs_id_table_write(s.ids, file, &s.super, s.cmp); err != 0) {
    return SqfsError("id table", err);
  }
  if (int err = sqfs_xattr_writer_flush(s.xattrs, file, &s.super, s.cmp); err != 0) {
    return SqfsError("xattr table", err);
  }
  s.super.bytes_used = file->get_size(file);
  if (int err = sqfs_super_write(&s.super, file); err != 0) return SqfsError("super block", err);
  uint64_t padded = (s.super.bytes_used + 4095) & ~uint64_t{4095};
  if (padded > s.super.bytes_used) {
    std::vector<uint8_t> zeros(padded - s.super.bytes_used, 0);
    if (int err = file->write_at(file, s.super.bytes_used, zeros.data(), zeros.size()); err != 0) {
      return SqfsError("padding", err);
    }
  }
  s.stats.bytes = static_cast<int64_t>(padded);
  out_stats = s.stats;
  return static_cast<int64_t>(padded);
}

}  // namespace berth::squash
