#include "client/inspect/squashfs_reader.h"

#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/error.h>
#include <sqfs/inode.h>
#include <sqfs/meta_reader.h>
#include <sqfs/predef.h>
#include <sqfs/super.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/inspect/squashfs_window.h"
#include "common/status_macros.h"

namespace berth::inspect {
namespace {

constexpr uint32_t kReadChunk = 1 << 20;
// Files larger than this are never loaded as inodes (see Node).
constexpr int64_t kMaxLoadedFileBytes = 64 << 20;

struct SqfsDestroyer {
  void operator()(void* object) const { sqfs_destroy(object); }
};
struct SqfsFreer {
  void operator()(void* memory) const { sqfs_free(memory); }
};
template <typename T>
using SqfsObject = std::unique_ptr<T, SqfsDestroyer>;
using InodePtr = std::unique_ptr<sqfs_inode_generic_t, SqfsFreer>;
using EntryPtr = std::unique_ptr<sqfs_dir_entry_t, SqfsFreer>;

bool IsDirectory(uint16_t type) {
  return type == SQFS_INODE_DIR || type == SQFS_INODE_EXT_DIR;
}
bool IsRegular(uint16_t type) {
  return type == SQFS_INODE_FILE || type == SQFS_INODE_EXT_FILE;
}
bool IsSymlink(uint16_t type) {
  return type == SQFS_INODE_SLINK || type == SQFS_INODE_EXT_SLINK;
}

// Little-endian field of an on-disk structure.
template <typename T>
T LoadLe(const uint8_t* p) {
  T value = 0;
  for (size_t i = sizeof(T); i-- > 0;) value = static_cast<T>((value << 8) | p[i]);
  return value;
}

std::deque<std::string> Components(absl::string_view path) {
  std::deque<std::string> out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    out.emplace_back(part);
  }
  return out;
}

}  // namespace

// An inode as the walk needs it. A regular file over kMaxLoadedFileBytes is
// kept as type and size only: its block list (one 32-bit size per block) is
// what a hostile inode would inflate into gigabytes.
struct Node {
  uint16_t type = 0;       // SQFS_INODE_*
  uint64_t file_size = 0;  // regular files only
  InodePtr inode;          // null only for such an oversized file
};

struct SquashfsReader::State {
  std::string last_error;
  RangeFile file{};
  sqfs_super_t super{};
  SqfsObject<sqfs_compressor_t> compressor;
  SqfsObject<sqfs_meta_reader_t> inodes;  // the inode table
  SqfsObject<sqfs_meta_reader_t> dirs;    // the directory table
  SqfsObject<sqfs_data_reader_t> data;
  int64_t directory_budget = kDirectoryBudgetBytes;

  sqfs_file_t* sqfs_file() { return &file.base; }

  // A libsquashfs error code as a Status naming what we were doing.
  absl::Status Fail(int code, absl::string_view what) {
    std::string why = SqfsErrorText(code);
    if (!last_error.empty()) {
      absl::StrAppend(&why, " (", last_error, ")");
      last_error.clear();
    }
    auto status_code = code == SQFS_ERROR_ALLOC ? absl::StatusCode::kResourceExhausted
                                                : absl::StatusCode::kDataLoss;
    return absl::Status(status_code, absl::StrCat(what, ": ", why));
  }

  // The inode at `ref` (metadata block << 16 | offset in the inode table).
  absl::StatusOr<Node> ReadNode(uint64_t ref) {
    uint64_t block = ref >> 16;
    size_t offset = ref & 0xFFFF;
    // Peek at the fixed part before the library reads the whole inode.
    uint8_t head[32] = {};
    int rc = sqfs_meta_reader_seek(inodes.get(), super.inode_table_start + block, offset);
    if (rc == 0) rc = sqfs_meta_reader_read(inodes.get(), head, 16);
    Node node;
    node.type = LoadLe<uint16_t>(head);
    if (rc == 0 && (node.type == SQFS_INODE_FILE || node.type == SQFS_INODE_EXT_FILE)) {
      rc = sqfs_meta_reader_read(inodes.get(), head + 16, 16);
      node.file_size =
          node.type == SQFS_INODE_FILE ? LoadLe<uint32_t>(head + 28) : LoadLe<uint64_t>(head + 24);
    }
    if (rc != 0) return Fail(rc, "reading an inode");
    if (node.file_size > static_cast<uint64_t>(kMaxLoadedFileBytes)) return node;
    sqfs_inode_generic_t* raw = nullptr;
    if (rc = sqfs_meta_reader_read_inode(inodes.get(), &super, block, offset, &raw); rc != 0) {
      return Fail(rc, "reading an inode");
    }
    node.inode.reset(raw);
    node.type = raw->base.type;
    if (node.type == SQFS_INODE_FILE) node.file_size = raw->data.file.file_size;
    if (node.type == SQFS_INODE_EXT_FILE) node.file_size = raw->data.file_ext.file_size;
    return node;
  }

  // Iterates over directory `dir`, calling `visit(name, inode ref)` until it
  // returns false. Every listing is charged to the reader's budget, so no
  // image can make a run decode more than kDirectoryBudgetBytes of listings.
  template <typename Visit>
  absl::Status ForEachEntry(const Node& dir, Visit visit) {
    sqfs_readdir_state_t it;
    if (int rc = sqfs_readdir_state_init(&it, &super, dir.inode.get()); rc != 0) {
      return Fail(rc, "opening a directory");
    }
    directory_budget -= static_cast<int64_t>(it.init.size);
    if (it.init.size > kMaxDirectoryBytes || directory_budget < 0) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("the image's directory listings are larger than the %d bytes berth reads",
                          std::min(kMaxDirectoryBytes, kDirectoryBudgetBytes)));
    }
    for (;;) {
      sqfs_dir_entry_t* raw = nullptr;
      sqfs_u64 ref = 0;
      int rc = sqfs_meta_reader_readdir(dirs.get(), &it, &raw, nullptr, &ref);
      if (rc > 0) return absl::OkStatus();
      if (rc < 0) return Fail(rc, "reading a directory");
      EntryPtr entry(raw);
      const char* text = reinterpret_cast<const char*>(entry->name);
      std::string name(text, strnlen(text, size_t{entry->size} + 1));
      // Names a real directory cannot hold are skipped, never resolved.
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        continue;
      }
      if (!visit(std::move(name), ref)) return absl::OkStatus();
    }
  }

  // The entry `name` of directory `dir`; nullopt when there is none. The
  // whole listing is searched: a hostile one need not be sorted.
  absl::StatusOr<std::optional<Node>> Lookup(const Node& dir, const std::string& name) {
    std::optional<uint64_t> found;
    RETURN_IF_ERROR(ForEachEntry(dir, [&](std::string entry, uint64_t ref) {
      if (entry == name) found = ref;
      return !found;
    }));
    if (!found) return std::nullopt;
    ASSIGN_OR_RETURN(Node node, ReadNode(*found));
    return std::optional<Node>(std::move(node));
  }

  absl::StatusOr<std::string> SymlinkTarget(const Node& link) {
    // Both symlink layouts start with nlink, target_size.
    uint32_t size = link.inode->data.slink.target_size;
    if (size > kMaxSymlinkTarget || size > link.inode->payload_bytes_used) {
      return absl::DataLossError(absl::StrFormat("a symlink target of %d bytes", size));
    }
    std::string target(reinterpret_cast<const char*>(link.inode->extra), size);
    if (target.find('\0') != std::string::npos) {
      return absl::DataLossError("a symlink target contains a NUL byte");
    }
    return target;
  }

  // Walks `path` from the image root, following every symlink (the final
  // one included) inside the image. Nullopt when nothing is there, as
  // `test -e` would find: a missing entry, a dangling link, a file used as a
  // directory.
  absl::StatusOr<std::optional<Node>> Resolve(absl::string_view path) {
    std::vector<Node> walk;  // walk.front() is the root, walk.back() where we are
    ASSIGN_OR_RETURN(Node root, ReadNode(super.root_inode_ref));
    if (!IsDirectory(root.type)) return absl::DataLossError("the root inode is not a directory");
    walk.push_back(std::move(root));
    std::deque<std::string> pending = Components(path);
    int follows = 0;
    int lookups = 0;
    while (!pending.empty()) {
      if (!IsDirectory(walk.back().type)) return std::nullopt;  // ENOTDIR
      std::string name = std::move(pending.front());
      pending.pop_front();
      if (name == ".") continue;
      if (name == "..") {
        if (walk.size() > 1) walk.pop_back();  // ".." of the root is the root
        continue;
      }
      if (++lookups > kMaxPathLookups) {
        return absl::ResourceExhaustedError(
            absl::StrFormat("resolving the path takes more than %d lookups", kMaxPathLookups));
      }
      ASSIGN_OR_RETURN(std::optional<Node> child, Lookup(walk.back(), name));
      if (!child) return std::nullopt;
      if (!IsSymlink(child->type)) {
        walk.push_back(*std::move(child));
        continue;
      }
      if (++follows > kMaxSymlinkFollows) {
        return absl::FailedPreconditionError("too many levels of symbolic links");
      }
      ASSIGN_OR_RETURN(std::string target, SymlinkTarget(*child));
      if (target.empty()) return std::nullopt;  // the kernel answers ENOENT
      std::deque<std::string> spliced = Components(target);
      pending.insert(pending.begin(), spliced.begin(), spliced.end());
      if (target.front() == '/') walk.resize(1);  // absolute: from the image root
    }
    return std::optional<Node>(std::move(walk.back()));
  }
};

SquashfsReader::SquashfsReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
SquashfsReader::~SquashfsReader() = default;

absl::StatusOr<std::unique_ptr<SquashfsReader>> SquashfsReader::Open(int fd, int64_t offset,
                                                                     int64_t size) {
  if (offset < 0 || size < 0) return absl::InvalidArgumentError("negative squashfs range");
  auto state = std::make_unique<State>();
  InitRangeFile(state->file, fd, static_cast<uint64_t>(offset), static_cast<uint64_t>(size),
                &state->last_error);

  sqfs_super_t& super = state->super;
  if (int rc = sqfs_super_read(&super, state->sqfs_file()); rc != 0) {
    return state->Fail(rc, "reading the super block");
  }
  RETURN_IF_ERROR(CheckSuperBlock(super, state->file.size));

  const char* name =
      sqfs_compressor_name_from_id(static_cast<SQFS_COMPRESSOR>(super.compression_id));
  std::string what = absl::StrCat("setting up the ", name ? name : "unknown", " decompressor");
  sqfs_compressor_config_t config;
  int rc = sqfs_compressor_config_init(&config, static_cast<SQFS_COMPRESSOR>(super.compression_id),
                                       super.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
  if (rc != 0) return state->Fail(rc, what);
  sqfs_compressor_t* compressor = nullptr;
  if (rc = sqfs_compressor_create(&config, &compressor); rc != 0) return state->Fail(rc, what);
  state->compressor.reset(compressor);
  if (super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS) {
    if (rc = compressor->read_options(compressor, state->sqfs_file()); rc != 0) {
      return state->Fail(rc, "reading the compressor options");
    }
  }

  // The directory table ends where the first table after it starts.
  uint64_t directory_end = std::min({super.id_table_start, super.fragment_table_start,
                                     super.export_table_start, super.bytes_used});
  state->inodes.reset(sqfs_meta_reader_create(
      state->sqfs_file(), compressor, super.inode_table_start, super.directory_table_start));
  state->dirs.reset(sqfs_meta_reader_create(state->sqfs_file(), compressor,
                                            super.directory_table_start, directory_end));
  state->data.reset(sqfs_data_reader_create(state->sqfs_file(), super.block_size, compressor, 0));
  if (!state->inodes || !state->dirs || !state->data) {
    return absl::ResourceExhaustedError("out of memory creating the squashfs readers");
  }
  if (rc = sqfs_data_reader_load_fragment_table(state->data.get(), &super); rc != 0) {
    return state->Fail(rc, "reading the fragment table");
  }
  return std::unique_ptr<SquashfsReader>(new SquashfsReader(std::move(state)));
}

absl::StatusOr<EntryType> SquashfsReader::Stat(absl::string_view path) {
  auto node = state_->Resolve(path);
  if (!node.ok()) return Annotate(node.status(), path);
  if (!*node) return EntryType::kMissing;
  if (IsDirectory((*node)->type)) return EntryType::kDirectory;
  if (IsRegular((*node)->type)) return EntryType::kRegular;
  return EntryType::kOther;
}

absl::StatusOr<std::string> SquashfsReader::ReadFile(absl::string_view path, int64_t max_size) {
  auto resolved = state_->Resolve(path);
  if (!resolved.ok()) return Annotate(resolved.status(), path);
  std::optional<Node> node = *std::move(resolved);
  if (!node || !IsRegular(node->type)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such regular file"));
  }
  uint64_t size = node->file_size;
  int64_t limit = std::min<int64_t>(max_size, kMaxLoadedFileBytes);
  if (limit < 0 || size > static_cast<uint64_t>(limit) || !node->inode) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s is %d bytes, more than the %d-byte limit for this file", path, size, limit));
  }
  std::string content(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    auto chunk = static_cast<sqfs_u32>(std::min<uint64_t>(size - done, kReadChunk));
    sqfs_s32 n = sqfs_data_reader_read(state_->data.get(), node->inode.get(), done,
                                       content.data() + done, chunk);
    if (n < 0) return state_->Fail(n, absl::StrCat("reading ", path));
    if (n == 0) return absl::DataLossError(absl::StrCat(path, ": data ends before the file does"));
    done += static_cast<uint64_t>(n);
  }
  return content;
}

absl::StatusOr<std::vector<std::string>> SquashfsReader::ListDirectory(absl::string_view path) {
  auto resolved = state_->Resolve(path);
  if (!resolved.ok()) return Annotate(resolved.status(), path);
  std::optional<Node> dir = *std::move(resolved);
  if (!dir || !IsDirectory(dir->type)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such directory"));
  }
  std::vector<std::string> names;
  RETURN_IF_ERROR_CTX(state_->ForEachEntry(*dir,
                                           [&](std::string name, uint64_t) {
                                             names.push_back(std::move(name));
                                             return true;
                                           }),
                      path);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace berth::inspect
