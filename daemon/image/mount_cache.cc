#include "daemon/image/mount_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/cache_state.h"
#include "daemon/image/directory_mount.h"
#include "daemon/image/image_trust.h"
#include "daemon/image/sparse_copy.h"
#include "daemon/image/squashfs_mount.h"
#include "sif/image.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// Forget what we learned about files beyond this many (a bound on memory).
constexpr size_t kMaxKnownFiles = 4096;

// A file's identity: any change to its bytes, owner or mode changes one of
// these (ctime cannot be set by users), so an equal key means "same image".
absl::StatusOr<std::string> FileKeyOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus("stat", errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("not a regular file");
  return absl::StrFormat("file:%d:%d:%d:%d.%09d:%d.%09d", st.st_dev, st.st_ino, st.st_size,
                         st.st_ctim.tv_sec, st.st_ctim.tv_nsec, st.st_mtim.tv_sec,
                         st.st_mtim.tv_nsec);
}

// A squashfs image file rather than a SIF (Apptainer runs both).
bool IsBareSquashfs(int fd) {
  uint8_t magic[4] = {};
  return ::pread(fd, magic, sizeof magic, 0) == sizeof magic && magic[0] == 'h' &&
         magic[1] == 's' && magic[2] == 'q' && magic[3] == 's';
}

std::string DigestKey(const std::string& digest) {
  return absl::StrCat("sha256:", digest);
}

// What a mount is made from, once the policy has been applied.
struct PreparedSource {
  KnownFile known;
  UniqueFd fd;  // the caller's file or the stored copy
};

absl::StatusOr<UniqueFd> Dup(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus("dup", errno);
  return UniqueFd(copy);
}

MountBackend ChooseBackend(const CacheState& s, int fd, const std::string& display,
                           bool& immutable) {
  const TrustVerdict verdict = JudgeImageFile(fd);
  immutable = verdict.trusted;
  MountBackend backend = MountBackend::kKernelDirect;
  if (s.mode == DaemonMode::kUser ||
      s.policy.kernel_squashfs == ImagePolicy::KernelSquashfs::kNever) {
    backend = MountBackend::kFuse;
  } else if (s.policy.kernel_squashfs == ImagePolicy::KernelSquashfs::kTrusted &&
             !verdict.trusted) {
    backend = MountBackend::kKernelCopy;
    immutable = true;
  }
  spdlog::info("{}: {}{}{}", display, MountBackendName(backend),
               verdict.trusted ? "" : " - not trusted in place: ", verdict.reason);
  return backend;
}

// Copies the partition into the store; the copy is what gets checked and mounted.
absl::StatusOr<PreparedSource> PrepareCopy(CacheState& s, int fd, const SquashfsPartition& part,
                                           uid_t caller) {
  // The copy will count against the caller once mounted: refuse before copying.
  RETURN_IF_ERROR(
      s.loops->CheckNewCopy(caller, Limited(caller), DataBytesOfRange(fd, part.offset, part.size)));
  auto copy = s.store->CopyPartition(fd, part.offset, part.size);
  if (!copy.ok()) return Annotate(copy.status(), "copying the partition to the image store");
  if (absl::Status st = CheckSquashfsSuperblock(copy->fd.get(), 0, part.size); !st.ok()) {
    s.store->Remove(copy->digest);  // the file changed under us: keep no junk
    return Annotate(st, "stored copy");
  }
  {
    absl::MutexLock lock(&s.mu);
    ++s.stats.copies;
    if (copy->reused) ++s.stats.reused_copies;
  }
  PreparedSource source;
  source.known = {copy->digest, DigestKey(copy->digest), {0, part.size}, MountBackend::kKernelCopy};
  source.fd = std::move(copy->fd);
  return source;
}

absl::StatusOr<PreparedSource> PreparePartition(CacheState& s, int fd,
                                                const SquashfsPartition& part,
                                                const std::string& display,
                                                const std::string& file_key, uid_t caller);

// The first sight of a file: validate the SIF, apply the policy, hash (or copy).
absl::StatusOr<PreparedSource> PrepareFromImageUnannotated(CacheState& s, const sif::Image& image,
                                                           const std::string& display,
                                                           const std::string& file_key,
                                                           uid_t caller, uint32_t partition_id) {
  ASSIGN_OR_RETURN(SquashfsPartition part, partition_id == 0
                                               ? FindPrimarySquashfs(image)
                                               : FindSquashfsById(image, partition_id));
  return PreparePartition(s, image.fd(), part, display, file_key, caller);
}

// A bare squashfs file: the whole file is the partition.
absl::StatusOr<PreparedSource> PrepareFromSquashfs(CacheState& s, UniqueFd fd,
                                                   const std::string& display,
                                                   const std::string& file_key, uid_t caller,
                                                   const std::string& context) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Annotate(ErrnoStatus("stat", errno), context);
  const SquashfsPartition part{0, st.st_size};
  RETURN_IF_ERROR_CTX(CheckSquashfsSuperblock(fd.get(), 0, part.size), context);
  auto source = PreparePartition(s, fd.get(), part, display, file_key, caller);
  if (!source.ok()) return Annotate(source.status(), context);
  return source;
}

absl::StatusOr<PreparedSource> PreparePartition(CacheState& s, int fd,
                                                const SquashfsPartition& part,
                                                const std::string& display,
                                                const std::string& file_key, uid_t caller) {
  bool immutable = false;
  const MountBackend backend = ChooseBackend(s, fd, display, immutable);
  if (backend == MountBackend::kKernelCopy) return PrepareCopy(s, fd, part, caller);
  auto digest = DigestRange(fd, part.offset, part.size, DigestAlgorithm::kSha256);
  if (!digest.ok()) return Annotate(digest.status(), "hashing the partition");
  {
    absl::MutexLock lock(&s.mu);
    ++s.stats.hashes;
  }
  PreparedSource source;
  source.known = {*digest, immutable ? DigestKey(*digest) : file_key, part, backend};
  ASSIGN_OR_RETURN(source.fd, Dup(fd));
  return source;
}

absl::StatusOr<PreparedSource> PrepareFromImage(CacheState& s, UniqueFd fd,
                                                const std::string& display,
                                                const std::string& file_key, uid_t caller,
                                                uint32_t partition_id, const std::string& context) {
  // The SIF library prefixes its own errors with the name we give it.
  ASSIGN_OR_RETURN(sif::Image image,
                   sif::Image::FromFd(std::move(fd), sif::OpenMode::kReadOnly, context));
  auto source = PrepareFromImageUnannotated(s, image, display, file_key, caller, partition_id);
  if (!source.ok()) return Annotate(source.status(), context);
  return source;
}

// A file we have seen before: reuse what we learned; nothing is re-hashed.
absl::StatusOr<PreparedSource> PrepareFromKnown(CacheState& s, int fd, const KnownFile& known) {
  PreparedSource source{known, {}};
  if (known.backend == MountBackend::kKernelCopy) {
    ASSIGN_OR_RETURN(source.fd, s.store->OpenCopy(known.digest));
  } else {
    ASSIGN_OR_RETURN(source.fd, Dup(fd));
  }
  RETURN_IF_ERROR(
      CheckSquashfsSuperblock(source.fd.get(), known.partition.offset, known.partition.size));
  return source;
}

void Remember(CacheState& s, const std::string& file_key, const KnownFile& known) {
  absl::MutexLock lock(&s.mu);
  if (s.known.size() >= kMaxKnownFiles) s.known.clear();
  s.known[file_key] = known;
}

EntryOrError MountSource(const std::shared_ptr<CacheState>& s, PreparedSource& source,
                         uid_t caller) {
  const bool kernel = source.known.backend != MountBackend::kFuse;
  LoopLedger::Ticket loop;
  if (kernel) {
    ASSIGN_OR_RETURN(loop, s->loops->Reserve(caller, Limited(caller), source.fd.get()));
  }
  std::string mount_point;
  {
    absl::MutexLock lock(&s->mu);
    mount_point = absl::StrFormat("%s/%s-%d", s->mounts_dir, source.known.digest.substr(0, 16),
                                  s->next_mount_number++);
  }
  MountedImage::Source from{source.fd.get(), source.known.partition.offset,
                            source.known.partition.size, source.known.backend, loop.tag};
  auto mounted = MountedImage::Mount(from, mount_point, s->policy.fuse_threads);
  if (!mounted.ok()) {
    if (kernel) s->loops->Cancel(loop.id);
    return mounted.status();
  }
  auto entry = std::make_shared<CacheEntry>();
  entry->mounted = std::move(mounted).value();
  entry->digest = source.known.digest;
  entry->key = source.known.mount_key;
  if (kernel) s->loops->Bind(loop.id, entry->mounted->loop_number());
  entry->loop_ticket = loop.id;
  entry->state = s;
  absl::MutexLock lock(&s->mu);
  s->live[entry->key] = entry;
  ++s->stats.mounts;
  ++s->stats.live_mounts;
  return entry;
}

std::shared_ptr<CacheEntry> LookUpLive(CacheState& s, const std::string& mount_key)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
  auto it = s.live.find(mount_key);
  return it == s.live.end() ? nullptr : it->second.lock();
}

// Slow path for one file (run once per file key at a time): learn or recall
// the source, then mount it unless an identical immutable image already is.
EntryOrError MountFile(const std::shared_ptr<CacheState>& s, UniqueFd fd,
                       const std::string& display, const std::string& file_key, uid_t caller,
                       uint32_t partition_id, const std::string& context) {
  std::optional<KnownFile> known;
  {
    absl::MutexLock lock(&s->mu);
    if (auto it = s->known.find(file_key); it != s->known.end()) known = it->second;
  }
  absl::StatusOr<PreparedSource> source = absl::NotFoundError("a file we have not seen");
  if (known.has_value()) {
    source = PrepareFromKnown(*s, fd.get(), *known);
    // E.g. its copy was pruned: learn the file again.
    if (!source.ok())
      spdlog::info("{}: {}; reading it again", display, std::string(source.status().message()));
  }
  if (!source.ok()) {
    const bool bare = IsBareSquashfs(fd.get());
    if (bare && partition_id != 0) {
      return absl::InvalidArgumentError(absl::StrCat(context, ": id=", partition_id,
                                                     " names a SIF partition; ", display,
                                                     " is a squashfs file (leave id out)"));
    }
    source = bare ? PrepareFromSquashfs(*s, std::move(fd), display, file_key, caller, context)
                  : PrepareFromImage(*s, std::move(fd), display, file_key, caller, partition_id,
                                     context);
    if (!source.ok()) return source.status();
    Remember(*s, file_key, source->known);
  }
  const std::string mount_key = source->known.mount_key;
  // Flight keys are namespaced: a mount key may equal a file key.
  EntryOrError entry = SingleFlight(
      *s, "mount " + mount_key,
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return LookUpLive(*s, mount_key); },
      [&] { return MountSource(s, *source, caller); });
  if (!entry.ok()) {
    // A copy the kernel refused is junk: a user must not fill the store with it.
    if (source->known.backend == MountBackend::kKernelCopy) {
      s->store->Remove(source->known.digest);
      absl::MutexLock lock(&s->mu);
      s->known.erase(file_key);
    }
    return Annotate(entry.status(), context);
  }
  return entry;
}

}  // namespace

MountCache::MountCache(std::string state_dir, DaemonMode mode, ImagePolicy policy)
    : state_(std::make_shared<CacheState>()) {
  state_->state_dir = std::move(state_dir);
  state_->mounts_dir = state_->state_dir + "/mounts";
  state_->images_dir = state_->state_dir + "/images";
  state_->mode = mode;
  state_->policy = policy;
  state_->loops = std::make_unique<LoopLedger>(
      std::vector<std::string>{state_->images_dir, state_->state_dir + "/verified"},
      LoopLimits{policy.max_loop_devices_per_uid,
                 UserShareOf(policy.store_max_bytes_per_uid, policy.copy_store_max_bytes)});
}

MountCache::~MountCache() = default;

absl::Status MountCache::Init() {
  absl::MutexLock lock(&state_->init_mu);
  if (state_->initialized) return absl::OkStatus();
  RETURN_IF_ERROR_CTX(OpenPrivateDirectory(state_->state_dir, 0700).status(), "state directory");
  RETURN_IF_ERROR_CTX(OpenPrivateDirectory(state_->mounts_dir, 0700).status(), "image mounts");
  RETURN_IF_ERROR(CleanStaleMounts(state_->mounts_dir));
  if (state_->mode == DaemonMode::kSystem) {
    LoopLedger* loops = state_->loops.get();
    ASSIGN_OR_RETURN(
        ImageStore store,
        ImageStore::Open(state_->images_dir, {.max_bytes = state_->policy.copy_store_max_bytes,
                                              .held = [loops] { return loops->Held(); }}));
    state_->store.emplace(std::move(store));
  }
  state_->initialized = true;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<MountLease>> MountCache::Acquire(UniqueFd image_fd,
                                                                const std::string& display_path,
                                                                uid_t caller,
                                                                uint32_t partition_id) {
  RETURN_IF_ERROR_CTX(Init(), "image cache");
  const std::string context = absl::StrCat("mounting image ", display_path);
  auto file_key = FileKeyOf(image_fd.get());
  if (!file_key.ok()) return Annotate(file_key.status(), context);
  // Each partition of a file is a source of its own (and, for a file that
  // may change, a mount of its own).
  if (partition_id != 0) *file_key = absl::StrCat(*file_key, "#", partition_id);
  RETURN_IF_ERROR_CTX(PrecheckImageLimit(*state_, *file_key, caller), context);
  std::shared_ptr<CacheState> s = state_;
  // The fast path: a file we know, mounted now.
  auto lookup = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> std::shared_ptr<CacheEntry> {
    auto known = s->known.find(*file_key);
    if (known == s->known.end()) return nullptr;
    std::shared_ptr<CacheEntry> entry = LookUpLive(*s, known->second.mount_key);
    if (entry != nullptr) ++s->stats.identity_hits;
    return entry;
  };
  EntryOrError entry = SingleFlight(*s, "open " + *file_key, lookup, [&] {
    return MountFile(s, std::move(image_fd), display_path, *file_key, caller, partition_id,
                     context);
  });
  if (!entry.ok()) return entry.status();
  auto lease = NewLease(s, *std::move(entry), caller);
  if (!lease.ok()) return Annotate(lease.status(), context);
  return lease;
}

absl::StatusOr<std::shared_ptr<MountLease>> MountCache::AcquireDirectory(
    UniqueFd dir_fd, const std::string& display_path, uid_t caller, bool writable) {
  RETURN_IF_ERROR_CTX(Init(), "image cache");
  const std::string context = absl::StrCat("mounting sandbox ", display_path);
  RETURN_IF_ERROR_CTX(CheckReadableDirectory(dir_fd.get()), context);
  struct stat st;
  if (::fstat(dir_fd.get(), &st) != 0) return Annotate(ErrnoStatus("stat", errno), context);
  std::shared_ptr<CacheState> s = state_;
  auto entry = std::make_shared<CacheEntry>();
  entry->digest = absl::StrFormat("dir:%d:%d", st.st_dev, st.st_ino);
  std::string mount_point;
  {
    absl::MutexLock lock(&s->mu);
    const uint64_t number = s->next_mount_number++;
    mount_point = absl::StrFormat("%s/dir-%d", s->mounts_dir, number);
    // Never in `live`: each start gets its own bind.
    entry->key = absl::StrFormat("%s:%d", entry->digest, number);
  }
  auto mounted = BindDirectory(dir_fd.get(), mount_point, writable);
  if (!mounted.ok()) return Annotate(mounted.status(), context);
  entry->directory = *std::move(mounted);
  entry->state = s;
  {
    absl::MutexLock lock(&s->mu);
    ++s->stats.mounts;
    ++s->stats.live_mounts;
  }
  auto lease = NewLease(s, std::move(entry), caller);
  if (!lease.ok()) return Annotate(lease.status(), context);
  return lease;
}

std::shared_ptr<MountLease> MountCache::HoldForDaemon(const MountLease& lease) {
  // uid 0 is never limited, so this cannot fail.
  return *NewLease(state_, lease.entry_, 0);
}

absl::StatusOr<int> MountCache::PruneCopies() {
  RETURN_IF_ERROR(Init());
  if (!state_->store.has_value()) return 0;
  return state_->store->Prune();
}

std::vector<HeldFile> MountCache::HeldFiles() {
  return state_->loops->Held();
}

absl::Status MountCache::CheckNewCopy(uid_t uid, int64_t bytes) {
  return state_->loops->CheckNewCopy(uid, Limited(uid), bytes);
}

MountCacheStats MountCache::stats() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stats;
}

std::string MountCache::mounts_dir() const {
  return state_->mounts_dir;
}
std::string MountCache::images_dir() const {
  return state_->images_dir;
}

}  // namespace berth::daemon::image
