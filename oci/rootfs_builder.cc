#include "oci/rootfs_builder.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "squash/tree.h"
#include "squash/writer.h"

namespace berth::oci {
namespace {

constexpr int kGeneratedLayer = INT_MAX;
constexpr size_t kBlockSize = 128 * 1024;  // mksquashfs's default
constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxName = 255;
constexpr size_t kMaxXattrValue = 64 * 1024;
constexpr size_t kMaxXattrsPerEntry = 1024;

using squash::FileData;
using squash::Kind;
using squash::Meta;
using squash::Node;

absl::string_view Sv(std::string_view s) {
  return {s.data(), s.size()};
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
  std::unique_ptr<squash::Writer> writer;
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

  absl::Status StreamFile(struct archive* a, FileData& fd, const std::string& what);
  absl::StatusOr<Meta> EntryMeta(struct archive_entry* e);
  absl::Status ProcessEntry(struct archive* a, struct archive_entry* e, int layer, int64_t index,
                            std::unordered_map<std::string, LayerFileRecord>& files,
                            std::vector<std::string>& new_whiteouts,
                            std::vector<std::string>& new_opaque);
  absl::Status ResolveDeferred();
  Node* FindOrMakeDir(const std::vector<std::string>& comps, size_t count, int layer, bool create);
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
  squash::Options squash;
  squash.compressor = options.compression == SquashfsCompression::kZstd ? squash::Compressor::kZstd
                                                                        : squash::Compressor::kGzip;
  squash.level = options.level;
  squash.threads = options.threads;
  squash.timestamp = s->generated_mtime;
  ASSIGN_OR_RETURN(s->writer, squash::Writer::Create({target.fd, target.offset}, squash));
  return std::unique_ptr<RootfsBuilder>(new RootfsBuilder(std::move(s)));
}

absl::Status RootfsBuilder::State::StreamFile(struct archive* a, FileData& fd,
                                              const std::string& what) {
  RETURN_IF_ERROR(writer->BeginFile(fd));
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
    RETURN_IF_ERROR(writer->Append(buf.data(), static_cast<size_t>(n)));
  }
  return writer->EndFile();
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
    RETURN_IF_ERROR(s.writer->AddFile(*node->data, f.content));
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

absl::StatusOr<int64_t> RootfsBuilder::Finish(ConversionStats& stats) {
  State& s = *state_;
  RETURN_IF_ERROR(s.ResolveDeferred());
  squash::Stats written;
  ASSIGN_OR_RETURN(int64_t size, s.writer->Finish(s.root, written));
  stats.files = written.files;
  stats.directories = written.directories;
  stats.skipped_entries = s.stats.skipped_entries;
  stats.squashfs_bytes = written.bytes;
  stats.dropped_xattrs = s.stats.dropped_xattrs;
  return size;
}

}  // namespace berth::oci
