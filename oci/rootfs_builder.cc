#include "oci/rootfs_builder.h"

#include <archive.h>
#include <archive_entry.h>
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
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::oci {
namespace {

constexpr int kGeneratedLayer = INT_MAX;
constexpr size_t kBlockSize = 128 * 1024;  // mksquashfs's default
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxName = 255;
constexpr size_t kMaxXattrValue = 64 * 1024;
constexpr size_t kMaxXattrsPerEntry = 1024;
constexpr uint32_t kNoXattr = 0xFFFFFFFF;

absl::string_view Sv(std::string_view s) {
  return {s.data(), s.size()};
}

absl::Status SqfsError(const char* what, int err) {
  return absl::InternalError(
      absl::StrCat("squashfs: ", what, " failed (libsquashfs error ", err, ")"));
}

enum class Kind { kDir, kFile, kSymlink, kCharDev, kBlockDev, kFifo, kSocket };

// A regular file's squashfs inode, shared by every hardlink to it.
struct FileData {
  sqfs_inode_generic_t* inode = nullptr;  // filled by the block processor
  uint32_t ino = 0;
  uint64_t ref = 0;
  uint32_t nlink = 0;
  bool written = false;
  ~FileData() { free(inode); }
};

struct Meta {
  uint32_t perm = 0755;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

struct Node {
  Kind kind = Kind::kDir;
  Meta meta;
  int layer = 0;
  bool explicit_meta = false;  // dirs created as a parent carry defaults until an entry names them
  std::map<std::string, std::unique_ptr<Node>> children;  // bytewise order, as squashfs needs
  std::string target;                                     // symlink
  uint32_t rdev_major = 0, rdev_minor = 0;
  std::shared_ptr<FileData> data;  // regular files
  uint32_t ino = 0;                // everything but regular files
};

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

// A tar path as components. Absolute paths and ".." are refused outright:
// no legitimate layer has them and they are how extraction escapes a root.
absl::StatusOr<std::vector<std::string>> SplitPath(std::string_view raw) {
  if (raw.size() > kMaxPath) return absl::InvalidArgumentError("path is longer than 4096 bytes");
  if (!raw.empty() && raw.front() == '/') return absl::InvalidArgumentError("absolute path");
  if (raw.find('\0') != std::string_view::npos)
    return absl::InvalidArgumentError("path contains NUL");
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(Sv(raw), '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") return absl::InvalidArgumentError("path contains '..'");
    if (c.size() > kMaxName)
      return absl::InvalidArgumentError("path component longer than 255 bytes");
    out.emplace_back(c);
  }
  return out;
}

// ---- squashfs output: a sqfs_file_t over a byte range of our descriptor ----
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

// ---- libarchive over pread, so a layer can be read more than once ----
struct LayerReader {
  int fd;
  int64_t pos = 0;
  std::vector<char> buf = std::vector<char>(1 << 20);
};

la_ssize_t ReadCallback(struct archive*, void* data, const void** out) {
  auto* r = static_cast<LayerReader*>(data);
  for (;;) {
    ssize_t n = ::pread(r->fd, r->buf.data(), r->buf.size(), r->pos);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    r->pos += n;
    *out = r->buf.data();
    return n;
  }
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

absl::StatusOr<ArchivePtr> OpenLayer(LayerReader& reader) {
  ArchivePtr a(archive_read_new());
  if (!a) return absl::ResourceExhaustedError("libarchive: out of memory");
  // Built-in decoders only (ARCHIVE_OK, not WARN = "would run an external program").
  if (archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_empty(a.get()) != ARCHIVE_OK) {
    return absl::InternalError("libarchive lacks built-in gzip/zstd/tar support");
  }
  if (archive_read_open(a.get(), &reader, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a tar stream: ", archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
  }
  return a;
}

std::string ArchiveError(struct archive* a) {
  const char* e = archive_error_string(a);
  return e ? e : "unknown libarchive error";
}

struct LayerFileRecord {
  int64_t index = 0;
  std::shared_ptr<FileData> data;  // null while the entry is shadowed and unwanted
  Meta meta;
};

}  // namespace

struct RootfsBuilder::State {
  SifBuildOptions options;
  OutFile out{};
  sqfs_super_t super{};
  sqfs_compressor_t* cmp = nullptr;
  sqfs_block_writer_t* block_writer = nullptr;
  sqfs_frag_table_t* frag_table = nullptr;
  sqfs_block_processor_t* proc = nullptr;
  sqfs_id_table_t* ids = nullptr;
  sqfs_xattr_writer_t* xattrs = nullptr;
  int64_t generated_mtime = 0;

  Node root;
  // Whiteouts and opaque directories of the layers above the current one.
  std::unordered_set<std::string> whited;
  std::unordered_set<std::string> opaque;
  // Per layer: entry index -> file waiting for that entry's data (hardlinks
  // whose target a higher layer replaced).
  std::map<int, std::map<int64_t, std::shared_ptr<FileData>>> deferred;
  std::vector<const OciLayer*> layers;  // by index, for the deferred pass
  int64_t uncompressed = 0;
  int64_t entries = 0;
  ConversionStats stats;

  ~State() {
    // Inodes must outlive the processor, which may still write into them.
    if (proc) sqfs_destroy(proc);
    if (block_writer) sqfs_destroy(block_writer);
    if (frag_table) sqfs_destroy(frag_table);
    if (ids) sqfs_destroy(ids);
    if (xattrs) sqfs_destroy(xattrs);
    if (cmp) sqfs_destroy(cmp);
  }

  absl::Status StreamFile(struct archive* a, FileData& fd, const std::string& what);
  absl::Status AppendFile(FileData& fd, std::string_view content);
  absl::StatusOr<Meta> EntryMeta(struct archive_entry* e);
  absl::Status ProcessEntry(struct archive* a, struct archive_entry* e, int layer, int64_t index,
                            std::unordered_map<std::string, LayerFileRecord>& files,
                            std::vector<std::string>& new_whiteouts,
                            std::vector<std::string>& new_opaque);
  absl::Status ResolveDeferred();
  Node* FindOrMakeDir(const std::vector<std::string>& comps, size_t count, int layer, bool create);
  absl::StatusOr<uint32_t> XattrIndex(const Meta& m);
  absl::Status SetBase(sqfs_inode_generic_t* inode, const Meta& m, Kind kind, uint32_t ino);
  void Number(Node& dir, uint32_t& next);
  absl::StatusOr<std::pair<uint32_t, uint64_t>> WriteDir(Node& dir, uint32_t parent_ino,
                                                         sqfs_meta_writer_t* im,
                                                         sqfs_dir_writer_t* dw);
  absl::StatusOr<uint64_t> WriteLeaf(Node& n, sqfs_meta_writer_t* im);
};

RootfsBuilder::RootfsBuilder(std::unique_ptr<State> state) : state_(std::move(state)) {}
RootfsBuilder::~RootfsBuilder() = default;

absl::StatusOr<std::unique_ptr<RootfsBuilder>> RootfsBuilder::Create(
    const SquashfsTarget& target, const SifBuildOptions& options) {
  auto s = std::make_unique<State>();
  s->options = options;
  s->generated_mtime = options.timestamp >= 0 ? options.timestamp : ::time(nullptr);
  s->root.kind = Kind::kDir;
  s->root.layer = -1;
  s->out.base.base.destroy = OutDestroy;
  s->out.base.read_at = OutReadAt;
  s->out.base.write_at = OutWriteAt;
  s->out.base.get_size = OutGetSize;
  s->out.base.truncate = OutTruncate;
  s->out.fd = target.fd;
  s->out.offset = target.offset;
  sqfs_file_t* file = &s->out.base;

  SQFS_COMPRESSOR id =
      options.compression == SquashfsCompression::kZstd ? SQFS_COMP_ZSTD : SQFS_COMP_GZIP;
  sqfs_compressor_config_t cfg;
  if (int err = sqfs_compressor_config_init(&cfg, id, kBlockSize, 0); err != 0) {
    return SqfsError("compressor config", err);
  }
  if (int err = sqfs_compressor_create(&cfg, &s->cmp); err != 0)
    return SqfsError("compressor", err);
  uint32_t mkfs_time =
      static_cast<uint32_t>(std::clamp<int64_t>(s->generated_mtime, 0, UINT32_MAX));
  if (int err = sqfs_super_init(&s->super, kBlockSize, mkfs_time, id); err != 0) {
    return SqfsError("super block init", err);
  }
  if (int err = sqfs_super_write(&s->super, file); err != 0)
    return SqfsError("super block write", err);
  int opt = s->cmp->write_options(s->cmp, file);
  if (opt < 0) return SqfsError("compressor options", opt);
  if (opt > 0) s->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

  s->block_writer = sqfs_block_writer_create(file, 4096, 0);
  s->frag_table = sqfs_frag_table_create(0);
  s->ids = sqfs_id_table_create(0);
  s->xattrs = sqfs_xattr_writer_create(0);
  if (!s->block_writer || !s->frag_table || !s->ids || !s->xattrs) {
    return absl::ResourceExhaustedError("squashfs: out of memory");
  }
  unsigned threads =
      options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  sqfs_block_processor_desc_t desc{};
  desc.size = sizeof(desc);
  desc.max_block_size = kBlockSize;
  desc.num_workers = threads;
  desc.max_backlog = threads * 10;
  desc.cmp = s->cmp;
  desc.wr = s->block_writer;
  desc.tbl = s->frag_table;
  if (int err = sqfs_block_processor_create_ex(&desc, &s->proc); err != 0) {
    return SqfsError("block processor", err);
  }
  return std::unique_ptr<RootfsBuilder>(new RootfsBuilder(std::move(s)));
}

absl::Status RootfsBuilder::State::AppendFile(FileData& fd, std::string_view content) {
  if (int err = sqfs_block_processor_begin_file(proc, &fd.inode, nullptr, 0); err != 0) {
    return SqfsError("begin file", err);
  }
  if (!content.empty()) {
    if (int err = sqfs_block_processor_append(proc, content.data(), content.size()); err != 0) {
      return SqfsError("append", err);
    }
  }
  if (int err = sqfs_block_processor_end_file(proc); err != 0) return SqfsError("end file", err);
  return absl::OkStatus();
}

absl::Status RootfsBuilder::State::StreamFile(struct archive* a, FileData& fd,
                                              const std::string& what) {
  if (int err = sqfs_block_processor_begin_file(proc, &fd.inode, nullptr, 0); err != 0) {
    return SqfsError("begin file", err);
  }
  std::vector<char> buf(kBlockSize);
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return absl::DataLossError(absl::StrCat("reading ", what, ": ", ArchiveError(a)));
    if (n == 0) break;
    uncompressed += n;
    if (uncompressed > options.max_uncompressed_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "layers expand beyond ", options.max_uncompressed_bytes, " bytes (decompression bomb?)"));
    }
    if (int err = sqfs_block_processor_append(proc, buf.data(), static_cast<size_t>(n)); err != 0) {
      return SqfsError("append", err);
    }
  }
  if (int err = sqfs_block_processor_end_file(proc); err != 0) return SqfsError("end file", err);
  return absl::OkStatus();
}

absl::StatusOr<Meta> RootfsBuilder::State::EntryMeta(struct archive_entry* e) {
  Meta m;
  m.perm = archive_entry_perm(e) & 07777;
  la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX) {
    return absl::InvalidArgumentError("uid/gid out of range");
  }
  m.uid = static_cast<uint32_t>(uid);
  m.gid = static_cast<uint32_t>(gid);
  // squashfs stores 32-bit unsigned times.
  m.mtime = std::clamp<int64_t>(archive_entry_mtime(e), 0, UINT32_MAX);
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view key(name);
    bool storable =
        key.starts_with("user.") || key.starts_with("trusted.") || key.starts_with("security.");
    if (!storable || key.size() > kMaxName || size > kMaxXattrValue) {
      stats.dropped_xattrs++;
      continue;
    }
    if (m.xattrs.size() >= kMaxXattrsPerEntry) return absl::InvalidArgumentError("too many xattrs");
    m.xattrs.emplace_back(std::string(key), std::string(static_cast<const char*>(value), size));
  }
  return m;
}

Node* RootfsBuilder::State::FindOrMakeDir(const std::vector<std::string>& comps, size_t count,
                                          int layer, bool create) {
  Node* dir = &root;
  for (size_t i = 0; i < count; ++i) {
    auto it = dir->children.find(comps[i]);
    if (it == dir->children.end()) {
      if (!create) return nullptr;
      auto n = std::make_unique<Node>();
      n->kind = Kind::kDir;
      n->layer = layer;
      it = dir->children.emplace(comps[i], std::move(n)).first;
    }
    if (it->second->kind != Kind::kDir) return nullptr;
    dir = it->second.get();
  }
  return dir;
}

absl::Status RootfsBuilder::State::ProcessEntry(
    struct archive* a, struct archive_entry* e, int layer, int64_t index,
    std::unordered_map<std::string, LayerFileRecord>& files,
    std::vector<std::string>& new_whiteouts, std::vector<std::string>& new_opaque) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr) return absl::InvalidArgumentError("entry without a path");
  ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitPath(raw));
  if (++entries > options.max_entries) return absl::ResourceExhaustedError("too many entries");
  std::string path = absl::StrJoin(comps, "/");

  // Whiteouts hide lower layers only: collect them, apply after this layer.
  if (!comps.empty() && comps.back().starts_with(".wh.")) {
    std::string base = comps.back();
    comps.pop_back();
    std::string parent = absl::StrJoin(comps, "/");
    if (base == ".wh..wh..opq") {
      new_opaque.push_back(parent);
    } else if (!base.starts_with(".wh..wh.")) {  // other .wh..wh. names are aufs bookkeeping
      std::string name = base.substr(4);
      if (name.empty()) return absl::InvalidArgumentError("whiteout without a name");
      new_whiteouts.push_back(parent.empty() ? name : absl::StrCat(parent, "/", name));
    }
    stats.skipped_entries++;
    return absl::OkStatus();
  }

  ASSIGN_OR_RETURN(Meta meta, EntryMeta(e));
  Kind kind;
  const char* hardlink = archive_entry_hardlink(e);
  switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
      kind = Kind::kDir;
      break;
    case AE_IFLNK:
      kind = Kind::kSymlink;
      break;
    case AE_IFCHR:
      kind = Kind::kCharDev;
      break;
    case AE_IFBLK:
      kind = Kind::kBlockDev;
      break;
    case AE_IFIFO:
      kind = Kind::kFifo;
      break;
    case AE_IFSOCK:
      kind = Kind::kSocket;
      break;
    default:
      kind = Kind::kFile;
      break;  // regular files and hardlinks
  }

  // Is the entry hidden by a higher layer?
  bool hidden = whited.count(path) > 0 || (opaque.count("") > 0 && !comps.empty());
  {
    Node* dir = &root;
    std::string prefix;
    for (size_t i = 0; i + 1 < comps.size() && !hidden && dir != nullptr; ++i) {
      absl::StrAppend(&prefix, i ? "/" : "", comps[i]);
      if (whited.count(prefix) || opaque.count(prefix)) {
        hidden = true;
        break;
      }
      auto it = dir->children.find(comps[i]);
      if (it == dir->children.end()) {
        dir = nullptr;  // nothing above; the remaining prefixes only need the sets
        for (size_t j = i + 1; j + 1 < comps.size(); ++j) {
          absl::StrAppend(&prefix, "/", comps[j]);
          if (whited.count(prefix) || opaque.count(prefix)) hidden = true;
        }
        break;
      }
      if (it->second->kind != Kind::kDir) {
        if (it->second->layer == layer) {
          return absl::InvalidArgumentError("entry below a non-directory of the same layer");
        }
        hidden = true;  // a higher layer replaced the directory
      }
      dir = it->second.get();
    }
  }

  // Hardlinks resolve against the files of this layer seen so far.
  std::shared_ptr<FileData> link_data;
  if (hardlink != nullptr) {
    ASSIGN_OR_RETURN(std::vector<std::string> tcomps, SplitPath(hardlink));
    auto rec = files.find(absl::StrJoin(tcomps, "/"));
    if (rec == files.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hardlink to \"", hardlink, "\", which the layer does not contain before it"));
    }
    meta = rec->second.meta;
    if (!hidden) {
      if (!rec->second.data) {
        // The target's data was skipped (a higher layer replaced that path);
        // read it again from this layer after the main pass.
        rec->second.data = std::make_shared<FileData>();
        deferred[layer][rec->second.index] = rec->second.data;
      }
      link_data = rec->second.data;
    }
    files[path] = rec->second;
  }

  Node* parent = nullptr;
  Node* existing = nullptr;
  if (!hidden && !comps.empty()) {
    parent = FindOrMakeDir(comps, comps.size() - 1, layer, /*create=*/true);
    if (parent == nullptr) return absl::InvalidArgumentError("entry below a non-directory");
    auto it = parent->children.find(comps.back());
    if (it != parent->children.end()) existing = it->second.get();
  } else if (!hidden) {
    existing = &root;
    if (kind != Kind::kDir) return absl::InvalidArgumentError("the image root is not a directory");
  }
  if (existing != nullptr) {
    bool both_dirs = existing->kind == Kind::kDir && kind == Kind::kDir;
    if (both_dirs) {
      // Directories merge; the highest entry naming one sets its metadata.
      if (!existing->explicit_meta || existing->layer == layer) {
        existing->meta = meta;
        existing->explicit_meta = true;
        existing->layer = std::max(existing->layer, layer);
      }
      return absl::OkStatus();
    }
    if (existing->layer != layer) hidden = true;  // a higher layer provides this path
  }
  if (hidden) {
    stats.skipped_entries++;
    if (kind == Kind::kFile && hardlink == nullptr) files[path] = {index, nullptr, meta};
    return absl::OkStatus();
  }

  // A new node (or a later duplicate in the same layer, which wins).
  auto node = std::make_unique<Node>();
  node->kind = kind;
  node->meta = meta;
  node->layer = layer;
  node->explicit_meta = true;
  switch (kind) {
    case Kind::kFile:
      if (link_data) {
        node->data = link_data;
      } else {
        node->data = std::make_shared<FileData>();
        RETURN_IF_ERROR(StreamFile(a, *node->data, path));
        files[path] = {index, node->data, meta};
      }
      break;
    case Kind::kSymlink: {
      const char* t = archive_entry_symlink(e);
      if (t == nullptr || *t == '\0') return absl::InvalidArgumentError("symlink without a target");
      node->target = t;
      if (node->target.size() > kMaxPath)
        return absl::InvalidArgumentError("symlink target too long");
      break;
    }
    case Kind::kCharDev:
    case Kind::kBlockDev:
      node->rdev_major = archive_entry_rdevmajor(e);
      node->rdev_minor = archive_entry_rdevminor(e);
      break;
    default:
      break;
  }
  if (parent == nullptr) return absl::InternalError("no parent");
  parent->children[comps.back()] = std::move(node);
  return absl::OkStatus();
}

absl::Status RootfsBuilder::AddGeneratedFiles(const SingularityLayout& layout, int64_t mtime) {
  State& s = *state_;
  for (const GeneratedFile& f : layout.files) {
    ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitPath(f.path));
    Node* parent = s.FindOrMakeDir(comps, comps.size() - 1, kGeneratedLayer, true);
    if (parent == nullptr) return absl::InternalError("generated file below a non-directory");
    auto node = std::make_unique<Node>();
    node->kind = Kind::kFile;
    node->meta.perm = f.mode;
    node->meta.mtime = std::clamp<int64_t>(mtime, 0, UINT32_MAX);
    node->layer = kGeneratedLayer;
    node->explicit_meta = true;
    node->data = std::make_shared<FileData>();
    RETURN_IF_ERROR(s.AppendFile(*node->data, f.content));
    parent->children[comps.back()] = std::move(node);
  }
  return absl::OkStatus();
}

absl::Status RootfsBuilder::AddLayer(const OciLayer& layer, int index) {
  State& s = *state_;
  if (static_cast<int>(s.layers.size()) <= index) s.layers.resize(index + 1);
  s.layers[index] = &layer;
  std::string name = absl::StrCat("layer ", index + 1, " (", layer.digest.substr(0, 19), ")");
  LayerReader reader{layer.fd.get()};
  auto opened = OpenLayer(reader);
  if (!opened.ok()) return Annotate(opened.status(), name);
  ArchivePtr a = *std::move(opened);
  std::unordered_map<std::string, LayerFileRecord> files;
  std::vector<std::string> whiteouts, opaque;
  struct archive_entry* e = nullptr;
  for (int64_t i = 0;; ++i) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat(name, ": ", ArchiveError(a.get())));
    }
    const char* p = archive_entry_pathname(e);
    absl::Status st = s.ProcessEntry(a.get(), e, index, i, files, whiteouts, opaque);
    if (!st.ok()) {
      std::string shown = p ? std::string(p).substr(0, 200) : "?";
      return Annotate(st, absl::StrCat(name, ": entry \"", shown, "\""));
    }
  }
  s.whited.insert(whiteouts.begin(), whiteouts.end());
  s.opaque.insert(opaque.begin(), opaque.end());
  return absl::OkStatus();
}

absl::Status RootfsBuilder::AddMissing(const SingularityLayout& layout, int64_t mtime) {
  State& s = *state_;
  for (const std::string& d : layout.dirs_if_missing) {
    ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitPath(d));
    // MkdirAll: existing components stay as they are; a non-directory on
    // the way means there is nothing to create.
    s.FindOrMakeDir(comps, comps.size(), kGeneratedLayer, true);
  }
  for (const auto& [path, target] : layout.symlinks_if_missing) {
    ASSIGN_OR_RETURN(std::vector<std::string> comps, SplitPath(path));
    Node* parent = s.FindOrMakeDir(comps, comps.size() - 1, kGeneratedLayer, false);
    if (parent == nullptr || parent->children.count(comps.back())) continue;
    auto node = std::make_unique<Node>();
    node->kind = Kind::kSymlink;
    node->target = target;
    node->meta.perm = 0777;
    node->meta.mtime = std::clamp<int64_t>(mtime, 0, UINT32_MAX);
    node->layer = kGeneratedLayer;
    node->explicit_meta = true;
    parent->children[comps.back()] = std::move(node);
  }
  return absl::OkStatus();
}

absl::Status RootfsBuilder::State::ResolveDeferred() {
  for (auto& [index, wanted] : deferred) {
    const OciLayer& layer = *layers[index];
    LayerReader reader{layer.fd.get()};
    ASSIGN_OR_RETURN(ArchivePtr a, OpenLayer(reader));
    struct archive_entry* e = nullptr;
    for (int64_t i = 0; !wanted.empty(); ++i) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return absl::DataLossError(absl::StrCat("layer ", index + 1, ": ", ArchiveError(a.get())));
      }
      auto it = wanted.find(i);
      if (it == wanted.end()) continue;
      RETURN_IF_ERROR(StreamFile(a.get(), *it->second, archive_entry_pathname(e)));
      wanted.erase(it);
    }
    if (!wanted.empty()) {
      return absl::DataLossError(absl::StrCat("layer ", index + 1, " changed while it was read"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> RootfsBuilder::State::XattrIndex(const Meta& m) {
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

absl::Status RootfsBuilder::State::SetBase(sqfs_inode_generic_t* inode, const Meta& m, Kind kind,
                                           uint32_t ino) {
  inode->base.mode = static_cast<uint16_t>(TypeBits(kind) | (m.perm & 07777));
  if (int err = sqfs_id_table_id_to_index(ids, m.uid, &inode->base.uid_idx); err != 0) {
    return SqfsError("uid table", err);
  }
  if (int err = sqfs_id_table_id_to_index(ids, m.gid, &inode->base.gid_idx); err != 0) {
    return SqfsError("gid table", err);
  }
  inode->base.mod_time = static_cast<uint32_t>(m.mtime);
  inode->base.inode_number = ino;
  ASSIGN_OR_RETURN(uint32_t x, XattrIndex(m));
  if (x != kNoXattr) {
    if (int err = sqfs_inode_set_xattr_index(inode, x); err != 0)
      return SqfsError("xattr index", err);
  }
  return absl::OkStatus();
}

// Inode numbers in write order (children before their directory, the root
// last), and the link count of each shared file.
void RootfsBuilder::State::Number(Node& dir, uint32_t& next) {
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

absl::StatusOr<uint64_t> RootfsBuilder::State::WriteLeaf(Node& n, sqfs_meta_writer_t* im) {
  sqfs_u64 block;
  sqfs_u32 offset;
  if (n.kind == Kind::kFile) {
    FileData& fd = *n.data;
    if (fd.written) return fd.ref;
    if (fd.inode == nullptr) return absl::InternalError("file without data");
    if (fd.nlink > 1) {
      if (int err = sqfs_inode_make_extended(fd.inode); err != 0)
        return SqfsError("extend inode", err);
      fd.inode->data.file_ext.nlink = fd.nlink;
    }
    RETURN_IF_ERROR(SetBase(fd.inode, n.meta, Kind::kFile, fd.ino));
    sqfs_meta_writer_get_position(im, &block, &offset);
    if (int err = sqfs_meta_writer_write_inode(im, fd.inode); err != 0)
      return SqfsError("write inode", err);
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
  if (int err = sqfs_meta_writer_write_inode(im, inode.get()); err != 0)
    return SqfsError("write inode", err);
  stats.files++;
  return (block << 16) | offset;
}

absl::StatusOr<std::pair<uint32_t, uint64_t>> RootfsBuilder::State::WriteDir(
    Node& dir, uint32_t parent_ino, sqfs_meta_writer_t* im, sqfs_dir_writer_t* dw) {
  std::vector<uint64_t> refs;
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
  ASSIGN_OR_RETURN(uint32_t x, XattrIndex(dir.meta));
  sqfs_inode_generic_t* inode = sqfs_dir_writer_create_inode(dw, 2 + subdirs, x, parent_ino);
  if (inode == nullptr) return absl::ResourceExhaustedError("squashfs: directory inode");
  std::unique_ptr<sqfs_inode_generic_t, decltype(&free)> owned(inode, &free);
  Meta meta = dir.meta;
  meta.xattrs.clear();  // already attached by create_inode
  if (!dir.explicit_meta) meta = Meta{0755, 0, 0, generated_mtime, {}};
  RETURN_IF_ERROR(SetBase(inode, meta, Kind::kDir, dir.ino));
  sqfs_u64 block;
  sqfs_u32 offset;
  sqfs_meta_writer_get_position(im, &block, &offset);
  if (int err = sqfs_meta_writer_write_inode(im, inode); err != 0)
    return SqfsError("write dir inode", err);
  stats.directories++;
  return std::make_pair(dir.ino, (block << 16) | offset);
}

absl::StatusOr<int64_t> RootfsBuilder::Finish(ConversionStats& stats) {
  State& s = *state_;
  sqfs_file_t* file = &s.out.base;
  RETURN_IF_ERROR(s.ResolveDeferred());
  if (int err = sqfs_block_processor_finish(s.proc); err != 0)
    return SqfsError("finishing data", err);

  uint32_t next = 1;
  s.Number(s.root, next);
  uint32_t inode_count = next - 1;

  sqfs_meta_writer_t* im = sqfs_meta_writer_create(file, s.cmp, 0);
  sqfs_meta_writer_t* dm = sqfs_meta_writer_create(file, s.cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
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
  s.super.inode_table_start = file->get_size(file);
  auto root = s.WriteDir(s.root, inode_count + 1, im, dw);
  absl::Status st = root.status();
  if (st.ok()) {
    if (int err = sqfs_meta_writer_flush(im); err != 0) st = SqfsError("inode table", err);
  }
  if (st.ok()) {
    if (int err = sqfs_meta_writer_flush(dm); err != 0) st = SqfsError("directory table", err);
  }
  if (st.ok()) {
    s.super.directory_table_start = file->get_size(file);
    if (int err = sqfs_meta_write_write_to_file(dm); err != 0)
      st = SqfsError("directory table", err);
  }
  cleanup();
  RETURN_IF_ERROR(st);
  s.super.root_inode_ref = root->second;
  s.super.inode_count = inode_count;
  if (int err = sqfs_frag_table_write(s.frag_table, file, &s.super, s.cmp); err != 0) {
    return SqfsError("fragment table", err);
  }
  if (int err = sqfs_id_table_write(s.ids, file, &s.super, s.cmp); err != 0)
    return SqfsError("id table", err);
  if (int err = sqfs_xattr_writer_flush(s.xattrs, file, &s.super, s.cmp); err != 0) {
    return SqfsError("xattr table", err);
  }
  s.super.bytes_used = file->get_size(file);
  if (int err = sqfs_super_write(&s.super, file); err != 0) return SqfsError("super block", err);
  // mksquashfs pads the image to 4 KiB, which loop devices need.
  uint64_t padded = (s.super.bytes_used + 4095) & ~uint64_t{4095};
  if (padded > s.super.bytes_used) {
    std::vector<uint8_t> zeros(padded - s.super.bytes_used, 0);
    if (int err = file->write_at(file, s.super.bytes_used, zeros.data(), zeros.size()); err != 0) {
      return SqfsError("padding", err);
    }
  }
  s.stats.squashfs_bytes = static_cast<int64_t>(padded);
  stats.files = s.stats.files;
  stats.directories = s.stats.directories;
  stats.skipped_entries = s.stats.skipped_entries;
  stats.squashfs_bytes = s.stats.squashfs_bytes;
  stats.dropped_xattrs = s.stats.dropped_xattrs;
  return static_cast<int64_t>(padded);
}

}  // namespace berth::oci
