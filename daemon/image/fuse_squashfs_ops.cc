// FUSE low-level request handlers over libsquashfuse, in the shape of
// squashfuse_ll's own (ll.c) but borrowing a reader from the pool for each
// request, so requests run in parallel on libfuse's worker threads.
#include <errno.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "daemon/image/fuse_squashfs_internal.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// The image never changes under a mount: let the kernel cache forever.
constexpr double kForever = std::numeric_limits<double>::max();
constexpr fuse_ino_t kZeroInode = 2;  // stands for squashfs inode id 0

using Server = FuseSquashfsMount::Server;

Server& ServerOf(fuse_req_t req) {
  return *static_cast<Server*>(fuse_req_userdata(req));
}

// 64-bit fuse_ino_t holds the 48-bit squashfs inode id itself; 1 (FUSE's
// root) and 2 cannot be valid ids, so they stand for the root and for id 0.
sqfs_inode_id ToSqfs(sqfs* fs, fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return sqfs_inode_root(fs);
  if (ino == kZeroInode) return 0;
  return ino;
}
fuse_ino_t ToFuse(sqfs* fs, sqfs_inode_id id) {
  if (id == sqfs_inode_root(fs)) return FUSE_ROOT_ID;
  if (id == 0) return kZeroInode;
  return id;
}

bool GetInode(sqfs* fs, fuse_ino_t ino, sqfs_inode& inode) {
  return sqfs_inode_get(fs, &inode, ToSqfs(fs, ino)) == SQFS_OK;
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto fs = ServerOf(req).pool.Borrow();
  sqfs_inode inode;
  struct stat st;
  if (!GetInode(fs.get(), ino, inode) || sqfs_stat(fs.get(), &inode, &st) != SQFS_OK) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  st.st_ino = ino;
  fuse_reply_attr(req, &st, kForever);
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Server& server = ServerOf(req);
  server.lookups.fetch_add(1, std::memory_order_relaxed);
  auto fs = server.pool.Borrow();
  sqfs_inode dir;
  if (!GetInode(fs.get(), parent, dir)) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(dir.base.mode)) return (void)fuse_reply_err(req, ENOTDIR);
  sqfs_name namebuf;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, namebuf);
  bool found = false;
  if (sqfs_dir_lookup(fs.get(), &dir, name, std::strlen(name), &entry, &found) != SQFS_OK) {
    return (void)fuse_reply_err(req, EIO);
  }
  fuse_entry_param param;
  std::memset(&param, 0, sizeof(param));
  param.entry_timeout = kForever;
  param.attr_timeout = kForever;
  if (!found) return (void)fuse_reply_entry(req, &param);  // ino 0: a cached negative entry
  sqfs_inode inode;
  if (sqfs_inode_get(fs.get(), &inode, sqfs_dentry_inode(&entry)) != SQFS_OK ||
      sqfs_stat(fs.get(), &inode, &param.attr) != SQFS_OK) {
    return (void)fuse_reply_err(req, EIO);
  }
  param.ino = ToFuse(fs.get(), sqfs_dentry_inode(&entry));
  param.attr.st_ino = param.ino;
  fuse_reply_entry(req, &param);
}

// Opening needs nothing from us: the inode is found from the request's
// number when the directory is read. Where the kernel can open without
// asking (FUSE_CAP_NO_OPENDIR_SUPPORT), ENOSYS tells it to stop sending
// OPENDIR and RELEASEDIR for good (two round trips per directory opened),
// and it caches listings as FOPEN_CACHE_DIR would. Otherwise every open is
// answered here, with the same caching asked for.
void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Server& server = ServerOf(req);
  server.opendirs.fetch_add(1, std::memory_order_relaxed);
  if (server.no_opendir) return (void)fuse_reply_err(req, ENOSYS);
  auto fs = server.pool.Borrow();
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(inode.base.mode)) return (void)fuse_reply_err(req, ENOTDIR);
  fi->fh = 0;
  fi->keep_cache = 1;
  fi->cache_readdir = 1;
  fuse_reply_open(req, fi);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  auto fs = ServerOf(req).pool.Borrow();
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(inode.base.mode)) return (void)fuse_reply_err(req, ENOTDIR);
  sqfs_dir dir;
  if (sqfs_dir_open(fs.get(), &inode, &dir, offset) != SQFS_OK) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  std::vector<char> buf(size);
  size_t used = 0;
  sqfs_name namebuf;
  sqfs_dir_entry entry;
  sqfs_dentry_init(&entry, namebuf);
  sqfs_err err = SQFS_OK;
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  while (sqfs_dir_next(fs.get(), &dir, &entry, &err)) {
    st.st_ino = ToFuse(fs.get(), sqfs_dentry_inode(&entry));
    st.st_mode = sqfs_dentry_mode(&entry);
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, sqfs_dentry_name(&entry),
                                    &st, sqfs_dentry_next_offset(&entry));
    if (need > size - used) break;
    used += need;
  }
  if (err != SQFS_OK) return (void)fuse_reply_err(req, EIO);
  fuse_reply_buf(req, buf.data(), used);
}

// Like OpOpendir: the kernel opens without asking where it can (no OPEN and
// RELEASE round trips per file opened; FOPEN_KEEP_CACHE is its default
// then), else every open is answered here. Writes never reach us either
// way: the mount is read-only, so the kernel refuses them (EROFS) first.
void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Server& server = ServerOf(req);
  server.opens.fetch_add(1, std::memory_order_relaxed);
  if (server.no_open) return (void)fuse_reply_err(req, ENOSYS);
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return (void)fuse_reply_err(req, EROFS);
  auto fs = server.pool.Borrow();
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISREG(inode.base.mode)) return (void)fuse_reply_err(req, EISDIR);
  fi->fh = 0;
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  // One buffer per worker thread: reads are the hot path.
  thread_local std::vector<char> buf;
  if (buf.size() < size) buf.resize(size);
  Server& server = ServerOf(req);
  server.reads.fetch_add(1, std::memory_order_relaxed);
  auto fs = server.pool.Borrow();
  // The inode is found again for each read (no file handle: see OpOpen); it
  // comes from the reader's cached inode table, and reads are block-sized.
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  size_t got = 0;
  if (!ReadFileRange(fs.get(), *server.blocks, &inode, offset, size, buf.data(), &got)) {
    return (void)fuse_reply_err(req, EIO);
  }
  fuse_reply_buf(req, buf.data(), got);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  auto fs = ServerOf(req).pool.Borrow();
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISLNK(inode.base.mode)) return (void)fuse_reply_err(req, EINVAL);
  size_t size = 0;
  if (sqfs_readlink(fs.get(), &inode, nullptr, &size) != SQFS_OK) {
    return (void)fuse_reply_err(req, EIO);
  }
  std::vector<char> target(size + 1);
  if (sqfs_readlink(fs.get(), &inode, target.data(), &size) != SQFS_OK) {
    return (void)fuse_reply_err(req, EIO);
  }
  fuse_reply_readlink(req, target.data());
}

// An image built without xattrs answers ENOSYS once: the kernel then stops
// asking (EOPNOTSUPP to callers) instead of sending a request per lookup
// that some tools (ls -l, cp -a, SELinux-aware code) make.
bool HasNoXattrTable(sqfs* fs) {
  return fs->sb.xattr_id_table_start == static_cast<uint64_t>(SQUASHFS_INVALID_BLK) ||
         fs->xattr_info.xattr_ids == 0;
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto fs = ServerOf(req).pool.Borrow();
  if (HasNoXattrTable(fs.get())) return (void)fuse_reply_err(req, ENOSYS);
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  std::vector<char> buf(size);
  if (int err = sqfs_listxattr(fs.get(), &inode, size ? buf.data() : nullptr, &size); err != 0) {
    return (void)fuse_reply_err(req, err);
  }
  if (buf.empty()) return (void)fuse_reply_xattr(req, size);
  fuse_reply_buf(req, buf.data(), size);
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto fs = ServerOf(req).pool.Borrow();
  if (HasNoXattrTable(fs.get())) return (void)fuse_reply_err(req, ENOSYS);
  sqfs_inode inode;
  if (!GetInode(fs.get(), ino, inode)) return (void)fuse_reply_err(req, ENOENT);
  std::vector<char> buf(size);
  size_t real = size;
  if (sqfs_xattr_lookup(fs.get(), &inode, name, buf.data(), &real) != SQFS_OK) {
    return (void)fuse_reply_err(req, EIO);
  }
  if (real == 0) return (void)fuse_reply_err(req, ENODATA);
  if (size == 0) return (void)fuse_reply_xattr(req, real);
  if (size < real) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, buf.data(), real);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  auto fs = ServerOf(req).pool.Borrow();
  struct statvfs st;
  if (int err = sqfs_statfs(fs.get(), &st); err != 0) return (void)fuse_reply_err(req, err);
  fuse_reply_statfs(req, &st);
}

void OpForget(fuse_req_t req, fuse_ino_t, uint64_t) {
  fuse_reply_none(req);
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  // Cache symlink targets and directory listings in the kernel; let lookups
  // in one directory run in parallel.
  conn->want |=
      conn->capable & (FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ);
  // Kernels that can open without asking the server say so here (Linux
  // 3.14 for files, 5.1 for directories); OpOpen/OpOpendir then decline.
  auto* server = static_cast<Server*>(userdata);
  server->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
  server->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.getattr = OpGetattr;
  ops.readlink = OpReadlink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.statfs = OpStatfs;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& SquashfsOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

SqfsPool::~SqfsPool() {
  absl::MutexLock lock(&mu_);
  for (sqfs* fs : all_) {
    sqfs_destroy(fs);
    delete fs;
  }
}

absl::StatusOr<sqfs*> SqfsPool::OpenReader() {
  auto fs = std::make_unique<sqfs>();
  std::memset(fs.get(), 0, sizeof(sqfs));
  if (sqfs_err err = sqfs_init(fs.get(), fd_, static_cast<size_t>(offset_)); err != SQFS_OK) {
    sqfs_destroy(fs.get());
    return absl::InvalidArgumentError(
        err == SQFS_BADCOMP      ? "libsquashfuse does not support this squashfs compression"
        : err == SQFS_BADVERSION ? "libsquashfuse does not support this squashfs version"
                                 : "libsquashfuse cannot read this squashfs");
  }
  return fs.release();
}

absl::Status SqfsPool::Init() {
  absl::StatusOr<sqfs*> first = OpenReader();
  if (!first.ok()) return first.status();
  absl::MutexLock lock(&mu_);
  all_.push_back(*first);
  idle_.push_back(*first);
  return absl::OkStatus();
}

SqfsPool::Lease SqfsPool::Borrow() {
  mu_.Lock();
  if (idle_.empty() && static_cast<int>(all_.size()) + opening_ < max_) {
    // Open outside the lock (it reads the image's tables); the slot is ours.
    ++opening_;
    mu_.Unlock();
    absl::StatusOr<sqfs*> fresh = OpenReader();
    mu_.Lock();
    --opening_;
    if (fresh.ok()) {
      all_.push_back(*fresh);
      mu_.Unlock();
      return Lease(this, *fresh);
    }
    spdlog::warn("opening another squashfs reader: {}", std::string(fresh.status().message()));
  }
  mu_.Await(absl::Condition(
      +[](std::vector<sqfs*>* idle) { return !idle->empty(); }, &idle_));
  sqfs* fs = idle_.back();
  idle_.pop_back();
  mu_.Unlock();
  return Lease(this, fs);
}

void SqfsPool::Return(sqfs* fs) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(fs);
}

void SqfsPool::ShrinkIdle() {
  absl::MutexLock lock(&mu_);
  while (idle_.size() > 1) {
    sqfs* fs = idle_.back();
    idle_.pop_back();
    all_.erase(std::find(all_.begin(), all_.end(), fs));
    sqfs_destroy(fs);
    delete fs;
  }
}

uint32_t SqfsPool::block_size() const {
  absl::MutexLock lock(&mu_);
  return all_.empty() ? 0 : all_.front()->sb.block_size;
}

int SqfsPool::created() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(all_.size());
}

}  // namespace berth::daemon::image
