#include "daemon/pull/pull_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/pull/image_resolve.h"
#include "daemon/pull/layer_fetch.h"
#include "oci/local_transport.h"
#include "oci/sif_from_oci.h"
#include "oras/reference.h"
#include "oras/registry_client.h"
#include "oras/sif_artifact.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::pull {
namespace {

constexpr char kSifMagic[] = "SIF_MAGIC";
constexpr int64_t kSifMagicOffset = 32;

oras::Credentials CredentialsOf(const v1::RegistryAuth& auth) {
  return {auth.username(), auth.password(), auth.identity_token()};
}

oras::ClientOptions ClientOptionsFor(const oras::Reference& ref, bool no_https,
                                     const v1::RegistryAuth& auth, const policy::Config& config) {
  oras::ClientOptions o;
  const auto& insecure = config.insecure_registries;
  o.plain_http =
      no_https || std::find(insecure.begin(), insecure.end(), ref.registry) != insecure.end();
  o.http.ca_file = config.registry_ca_file;
  o.http.stall_seconds = config.registry_stall_seconds;
  o.http.user_agent = "berth/" BERTH_VERSION;
  o.credentials = CredentialsOf(auth);
  o.max_manifest_bytes = static_cast<size_t>(config.max_manifest_bytes);
  o.max_attempts = config.registry_attempts;
  return o;
}

// Rate-limits progress messages to ~10 per second per item, plus the last.
class ProgressReporter {
 public:
  ProgressReporter(PullWriter& writer, std::string digest, std::string what, int64_t total)
      : writer_(writer) {
    msg_.set_digest(std::move(digest));
    msg_.set_what(std::move(what));
    msg_.set_total(total);
    // The client times each item from its first message.
    Send();
  }
  void Update(int64_t done, bool from_cache = false) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && !from_cache) return;
    last_ = now;
    msg_.set_done(done);
    msg_.set_from_cache(from_cache);
    Send();
  }
  void Finish(bool from_cache) {
    msg_.set_done(msg_.total());
    msg_.set_finished(true);
    msg_.set_from_cache(from_cache);
    Send();
  }

 private:
  void Send() {
    v1::PullOutput out;
    *out.mutable_progress() = msg_;
    writer_.Write(out);  // a vanished client is noticed by the context, not here
  }
  PullWriter& writer_;
  v1::TransferProgress msg_;
  std::chrono::steady_clock::time_point last_{};
};

// Writes a blob into a cache temp file and, for the pull that fills the
// cache, also into the caller's output (one pass over the bytes instead of a
// second copy afterwards; the client discards the output on any error).
class FdSink : public oras::BlobSink {
 public:
  explicit FdSink(int fd, int tee_fd = -1) : fd_(fd), tee_fd_(tee_fd) {}
  absl::Status Write(std::span<const uint8_t> data) override {
    absl::Status st = WriteAll(fd_, data);
    if (!st.ok()) return Annotate(st, "writing to the node cache");
    if (tee_fd_ >= 0) {
      st = WriteAll(tee_fd_, data);
      if (!st.ok()) return Annotate(st, "writing the output");
    }
    written_ += static_cast<int64_t>(data.size());
    // Start write-back as the download goes, so the fsync before the entry
    // is published has little left to do.
    if (written_ - flushed_ >= kWritebackChunk) {
      ::sync_file_range(fd_, flushed_, written_ - flushed_, SYNC_FILE_RANGE_WRITE);
      flushed_ = written_;
    }
    return absl::OkStatus();
  }
  absl::Status Restart() override {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
      return ErrnoStatus("restarting a cache download", errno);
    }
    if (tee_fd_ >= 0 && (::ftruncate(tee_fd_, 0) != 0 || ::lseek(tee_fd_, 0, SEEK_SET) != 0)) {
      return ErrnoStatus("restarting the output", errno);
    }
    written_ = flushed_ = 0;
    return absl::OkStatus();
  }

 private:
  static constexpr int64_t kWritebackChunk = 32 << 20;
  int fd_;
  int tee_fd_;
  int64_t written_ = 0;
  int64_t flushed_ = 0;
};

// The descriptors the client handed over: exactly one per item, each
// checked for the access the item needs (never O_PATH).
absl::StatusOr<std::vector<UniqueFd>> TakeHandedFds(const PeerIdentity& peer,
                                                    std::span<const HandedItem> items) {
  ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, peer.handed_fds->Take(items));
  if (fds.size() != items.size()) {
    std::vector<std::string> names;
    for (const HandedItem& item : items) names.push_back(item.what);
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", items.size(), " handed descriptors (", absl::StrJoin(names, ", "),
                     "), got ", fds.size()));
  }
  return fds;
}

absl::Status CheckRegularFile(int fd, const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus(what, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a regular file"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> TakeOneHandedFd(const PeerIdentity& peer, HandedItem item) {
  ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, TakeHandedFds(peer, {&item, 1}));
  RETURN_IF_ERROR(CheckRegularFile(fds[0].get(), item.what));
  return std::move(fds[0]);
}

// Root and the daemon's own user (user mode) own the cache; others have a share.
CacheCaller CallerOf(const PeerIdentity& peer) {
  return {peer.uid, peer.uid == 0 || peer.uid == ::geteuid()};
}

bool IsLocalTransport(const std::string& ref) {
  return absl::StartsWith(ref, "oci:") || absl::StartsWith(ref, "oci-archive:") ||
         absl::StartsWith(ref, "docker-archive:");
}

absl::Status CheckSifMagic(int fd, const std::string& what) {
  char magic[sizeof(kSifMagic)] = {0};
  ssize_t n = ::pread(fd, magic, sizeof(magic) - 1, kSifMagicOffset);
  if (n != static_cast<ssize_t>(sizeof(magic) - 1) || std::memcmp(magic, kSifMagic, n) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a SIF image"));
  }
  return absl::OkStatus();
}

// Empties the caller's output descriptor (its access was checked when it
// was taken); positioned writes need it without O_APPEND.
absl::Status PrepareOutput(int out_fd) {
  if ((::fcntl(out_fd, F_GETFL) & O_APPEND) != 0) {
    return absl::InvalidArgumentError("the output descriptor is open for appending only");
  }
  if (::ftruncate(out_fd, 0) != 0 || ::lseek(out_fd, 0, SEEK_SET) != 0) {
    return ErrnoStatus("truncating the output", errno);
  }
  return absl::OkStatus();
}

// Copies the whole cache entry into the caller's (prepared) output file.
absl::Status WriteOutput(int cache_fd, int64_t size, int out_fd) {
  loff_t in_off = 0, out_off = 0;
  while (in_off < size) {
    // In-kernel copy (a reflink on filesystems that share extents).
    ssize_t n =
        ::copy_file_range(cache_fd, &in_off, out_fd, &out_off,
                          static_cast<size_t>(std::min<int64_t>(size - in_off, 1 << 30)), 0);
    if (n > 0) continue;
    if (n == 0) return absl::DataLossError("the cache entry is shorter than expected");
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS) {
      if (::lseek(out_fd, out_off, SEEK_SET) != out_off)
        return ErrnoStatus("seeking the output", errno);
      return CopyRangeToStream(cache_fd, in_off, size - in_off, out_fd);
    }
    return ErrnoStatus("writing the output", errno);
  }
  return absl::OkStatus();
}

}  // namespace

PullService::PullService(const DaemonOptions& options, const policy::Config& config,
                         BlobCache& cache)
    : options_(options), config_(config), cache_(cache) {}

absl::Status PullService::Pull(grpc::ServerContext& context, const v1::PullRequest& request,
                               PullWriter& writer, const PeerIdentity& peer) {
  if (IsLocalTransport(request.reference())) return PullLocal(request, writer, peer);
  ASSIGN_OR_RETURN(oras::Reference ref, oras::ParseReference(request.reference()));
  UniqueFd out;
  if (request.write_output()) {
    ASSIGN_OR_RETURN(out, TakeOneHandedFd(peer, {"the output file", HandedAccess::kWrite}));
    RETURN_IF_ERROR(PrepareOutput(out.get()));
  }
  std::unique_ptr<BlobCache::Transfer> cache =
      cache_.Begin(CallerOf(peer), request.disable_cache());
  absl::Status status =
      PullThrough(context, request, ref, out.valid() ? out.get() : -1, *cache, writer, peer);
  // A failed pull (a conversion that failed included) keeps nothing it alone brought.
  if (!status.ok()) cache->DropFilled();
  return status;
}

absl::Status PullService::PullThrough(grpc::ServerContext& context, const v1::PullRequest& request,
                                      const oras::Reference& ref, int out_fd,
                                      BlobCache::Transfer& cache, PullWriter& writer,
                                      const PeerIdentity& peer) {
  oras::RegistryClient client(ref.ApiHost(), ref.repository,
                              ClientOptionsFor(ref, request.no_https(), request.auth(), config_));
  // Step 2: the caller's own authorisation, every time.
  ASSIGN_OR_RETURN(ResolvedImage image, ResolveImage(client, ref, request.arch()));
  spdlog::info("pull {} for uid {}: manifest {}", ref.Display(), peer.uid, image.digest);
  std::string digest = image.digest;
  bool output_written = false;
  absl::StatusOr<UniqueFd> sif =
      ref.transport == oras::Transport::kOras
          ? FetchSif(client, image, cache, writer, out_fd, digest, output_written)
          : BuildSifFromImage(client, image, cache, writer, request.build_base());
  if (!sif.ok()) return sif.status();
  if (context.IsCancelled()) return absl::CancelledError("the client went away");
  if (ref.transport == oras::Transport::kOras) {
    RememberRepository(peer.uid, ref.ApiHost(), digest, ref.repository);
  }

  ASSIGN_OR_RETURN(int64_t size, FileSize(sif->get()));
  RETURN_IF_ERROR(CheckSifMagic(sif->get(), "the pulled image"));
  v1::PullOutput result;
  result.mutable_result()->set_manifest_digest(image.digest);
  result.mutable_result()->set_digest(digest);
  if (out_fd >= 0) {
    if (!output_written) RETURN_IF_ERROR(WriteOutput(sif->get(), size, out_fd));
    result.mutable_result()->set_size(size);
  }
  writer.Write(result);
  return absl::OkStatus();
}

absl::Status PullService::PullLocal(const v1::PullRequest& request, PullWriter& writer,
                                    const PeerIdentity& peer) {
  // The path in the reference is only for messages: the client opened it as
  // the user and handed the descriptor over (output first, then the input).
  ASSIGN_OR_RETURN(oci::LocalReference local, oci::ParseLocalReference(request.reference()));
  if (!request.write_output()) {
    return absl::InvalidArgumentError("local image transports need an output file");
  }
  const HandedItem items[] = {{"the output file", HandedAccess::kWrite},
                              {absl::StrCat("the image ", local.path), HandedAccess::kRead}};
  ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, TakeHandedFds(peer, items));
  RETURN_IF_ERROR(CheckRegularFile(fds[0].get(), "the output file"));
  RETURN_IF_ERROR(PrepareOutput(fds[0].get()));
  struct stat st {};
  if (::fstat(fds[1].get(), &st) != 0) return ErrnoStatus("the image", errno);
  bool want_dir = local.transport == oci::LocalTransport::kOciDir;
  if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(local.path, want_dir ? " is not a directory" : " is not a regular file"));
  }
  // Files below a layout directory are opened as the caller: the kernel
  // judges their permissions, not the daemon's (the handed directory proves
  // only that the caller could read its listing).
  image::CallerCreds creds{peer.uid, peer.gid, peer.groups};
  auto open_as_caller = [&creds](int dir_fd, const std::string& name, int flags) {
    return image::OpenAtAsCaller(creds, dir_fd, name, flags);
  };
  oci::PlatformSpec platform = oci::HostPlatform();
  if (!request.arch().empty()) {
    ASSIGN_OR_RETURN(platform, oci::ParsePlatformSpec(request.arch()));
  }
  spdlog::info("pull {} for uid {}", request.reference().substr(0, 200), peer.uid);
  // Archive members are copied into unnamed files in the cache's tmp
  // directory (same filesystem as the cache, root-only).
  ASSIGN_OR_RETURN(UniqueFd scratch,
                   OpenFile(cache_.root() + "/tmp", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  absl::StatusOr<oci::OciImage> image =
      local.transport == oci::LocalTransport::kOciDir
          ? oci::ReadOciLayout(fds[1].get(), local.tag, platform, open_as_caller)
      : local.transport == oci::LocalTransport::kOciArchive
          ? oci::ReadOciArchive(fds[1].get(), local.tag, platform, scratch.get())
          : oci::ReadDockerArchive(fds[1].get(), local.tag, scratch.get());
  if (!image.ok()) return Annotate(image.status(), "reading the image");
  ProgressReporter convert(writer, "sha256:" + std::string(64, '0'), "sif", 0);
  auto stats = oci::WriteSifFromOci(*image, fds[0].get(), oci::SifBuildOptions{});
  if (!stats.ok()) return Annotate(stats.status(), "converting to SIF");
  convert.Finish(false);
  ASSIGN_OR_RETURN(int64_t size, FileSize(fds[0].get()));
  v1::PullOutput result;
  result.mutable_result()->set_size(size);
  writer.Write(result);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> PullService::FetchSif(oras::RegistryClient& client,
                                               const ResolvedImage& image,
                                               BlobCache::Transfer& cache, PullWriter& writer,
                                               int out_fd, std::string& digest,
                                               bool& output_written) {
  ASSIGN_OR_RETURN(oras::SifLayer layer, oras::SifLayerOf(image.bytes, config_.max_blob_bytes));
  digest = layer.digest;
  ProgressReporter progress(writer, layer.digest, "sif", layer.size);
  bool from_cache = true;
  ASSIGN_OR_RETURN(UniqueFd blob,
                   cache.GetOrFill(
                       "oras", layer.digest, layer.size,
                       [&](int fd, const std::function<void(int64_t)>& note) -> absl::Status {
                         from_cache = false;
                         output_written = out_fd >= 0;
                         FdSink sink(fd, out_fd);
                         return client.FetchBlob(layer.digest, layer.size, sink, [&](int64_t done) {
                           note(done);
                           progress.Update(done);
                         });
                       },
                       [&](int64_t done, bool cached) {
                         if (!cached) {
                           from_cache = false;
                           progress.Update(done);
                         }
                       }));
  progress.Finish(from_cache);
  ASSIGN_OR_RETURN(int64_t size, FileSize(blob.get()));
  if (size != layer.size) return absl::DataLossError("the cache entry has the wrong size");
  return blob;
}

absl::StatusOr<UniqueFd> PullService::BuildSifFromImage(oras::RegistryClient& client,
                                                        const ResolvedImage& image,
                                                        BlobCache::Transfer& cache,
                                                        PullWriter& writer, bool build_base) {
  const oci::ImageManifest& m = image.manifest;
  std::vector<BlobRef> blobs;
  blobs.push_back({m.config.digest, m.config.size, "config"});
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const oci::Descriptor& l = m.layers[i];
    if (!oras::IsValidDigest(l.digest) || l.size < 0 || l.size > config_.max_blob_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", i + 1, " has an unusable digest or size"));
    }
    blobs.push_back({l.digest, l.size, absl::StrCat("layer ", i + 1, "/", m.layers.size())});
  }
  if (!oras::IsValidDigest(m.config.digest) || m.config.size > oci::kMaxConfigBytes) {
    return absl::InvalidArgumentError("the image config has an unusable digest or size");
  }
  // Blobs (fetched in parallel, each once per node) first, so that the
  // caller has been authorised for every one of them before anything cached
  // from an earlier conversion is served.
  absl::Mutex write_mu;
  std::map<std::string, std::unique_ptr<ProgressReporter>> reporters;
  ASSIGN_OR_RETURN(std::vector<UniqueFd> fds,
                   FetchBlobs(client, cache, "blob", blobs, config_.parallel_downloads,
                              [&](const BlobRef& b, int64_t done, bool finished, bool from_cache) {
                                absl::MutexLock lock(&write_mu);
                                auto& r = reporters[b.digest];
                                if (r == nullptr)
                                  r = std::make_unique<ProgressReporter>(writer, b.digest, "layer",
                                                                         b.size);
                                if (finished) {
                                  r->Finish(from_cache);
                                } else {
                                  r->Update(done);
                                }
                              }));
  ProgressReporter convert(writer, image.digest, "sif", 0);
  bool from_cache = true;
  ASSIGN_OR_RETURN(
      UniqueFd sif,
      cache.GetOrFill(
          build_base ? "sif-build" : "sif", image.digest, /*size=*/-1,
          [&](int fd, const std::function<void(int64_t)>&) -> absl::Status {
            from_cache = false;
            oci::OciImage oci_image;
            ASSIGN_OR_RETURN(int64_t config_size, FileSize(fds[0].get()));
            oci_image.config_json.resize(static_cast<size_t>(config_size));
            RETURN_IF_ERROR(PreadFull(fds[0].get(),
                                      {reinterpret_cast<uint8_t*>(oci_image.config_json.data()),
                                       oci_image.config_json.size()},
                                      0));
            for (size_t i = 1; i < fds.size(); ++i) {
              int dup = ::fcntl(fds[i].get(), F_DUPFD_CLOEXEC, 0);
              if (dup < 0) return ErrnoStatus("dup", errno);
              oci_image.layers.push_back(
                  {UniqueFd(dup), m.layers[i - 1].media_type, m.layers[i - 1].digest});
            }
            oci::SifBuildOptions options;
            if (build_base) {
              options.compression = oci::SquashfsCompression::kZstd;
              options.level = 1;
            }
            auto stats = oci::WriteSifFromOci(oci_image, fd, options);
            if (!stats.ok()) return Annotate(stats.status(), "converting to SIF");
            return absl::OkStatus();
          },
          nullptr));
  convert.Finish(from_cache);
  return sif;
}

absl::Status PullService::Push(grpc::ServerContext& context, const v1::PushRequest& request,
                               PullWriter& writer, const PeerIdentity& peer) {
  ASSIGN_OR_RETURN(oras::Reference ref, oras::ParseReference(request.reference()));
  if (ref.transport != oras::Transport::kOras) {
    return absl::InvalidArgumentError("push supports oras:// references only");
  }
  if (!ref.digest.empty()) return absl::InvalidArgumentError("push needs a tag, not a digest");
  if (request.title().empty() || request.title().size() > 255 ||
      request.title().find('/') != std::string::npos) {
    return absl::InvalidArgumentError("the layer title must be a file name");
  }
  if (request.chunk_size() < 0) return absl::InvalidArgumentError("negative chunk size");
  std::map<std::string, std::string> annotations(request.annotations().begin(),
                                                 request.annotations().end());
  for (const auto& [k, v] : annotations) {
    if (k.empty() || k.size() > 256 || v.size() > 4096) {
      return absl::InvalidArgumentError("annotation keys must be 1-256 bytes, values up to 4 KiB");
    }
  }
  ASSIGN_OR_RETURN(UniqueFd sif, TakeOneHandedFd(peer, {"the image to push", HandedAccess::kRead}));
  ASSIGN_OR_RETURN(int64_t size, FileSize(sif.get()));
  RETURN_IF_ERROR(CheckSifMagic(sif.get(), "the image to push"));
  ASSIGN_OR_RETURN(std::string hex, DigestRange(sif.get(), 0, size, DigestAlgorithm::kSha256));
  oras::SifLayer layer{"sha256:" + hex, size, request.title()};

  oras::RegistryClient client(ref.ApiHost(), ref.repository,
                              ClientOptionsFor(ref, request.no_https(), request.auth(), config_));
  spdlog::info("push {} for uid {}: {} ({} bytes)", ref.Display(), peer.uid, layer.digest, size);
  RETURN_IF_ERROR_CTX(client.PushSmallBlob(oras::kSifConfigDigest, oras::kSifConfigBytes),
                      "uploading the config");
  ProgressReporter progress(writer, layer.digest, "sif", size);
  const std::string mount_from =
      MountSourceFor(peer.uid, ref.ApiHost(), layer.digest, ref.repository);
  if (!mount_from.empty())
    spdlog::info("push: asking to mount {} from {}", layer.digest, mount_from);
  RETURN_IF_ERROR_CTX(client.PushBlob(layer.digest, sif.get(), size, request.chunk_size(),
                                      mount_from, [&](int64_t done) { progress.Update(done); }),
                      "uploading the image");
  RememberRepository(peer.uid, ref.ApiHost(), layer.digest, ref.repository);
  progress.Finish(false);
  ASSIGN_OR_RETURN(
      std::string manifest_digest,
      client.PutManifest(ref.tag, oras::kOciManifest, oras::BuildSifManifest(layer, annotations)));
  v1::PullOutput result;
  result.mutable_result()->set_digest(layer.digest);
  result.mutable_result()->set_size(size);
  result.mutable_result()->set_manifest_digest(manifest_digest);
  writer.Write(result);
  return absl::OkStatus();
}

void PullService::RememberRepository(uid_t uid, const std::string& host, const std::string& digest,
                                     const std::string& repository) {
  constexpr size_t kMaxRemembered = 4096;
  absl::MutexLock lock(&seen_mu_);
  if (seen_.size() >= kMaxRemembered) seen_.erase(seen_.begin());
  seen_[{uid, host, digest}] = repository;
}

std::string PullService::MountSourceFor(uid_t uid, const std::string& host,
                                        const std::string& digest,
                                        const std::string& target_repository) {
  absl::MutexLock lock(&seen_mu_);
  auto it = seen_.find({uid, host, digest});
  if (it == seen_.end() || it->second == target_repository) return "";
  return it->second;
}

absl::Status PullService::CheckLogin(const v1::CheckLoginRequest& request,
                                     const PeerIdentity& peer) {
  // Named like a reference's registry, so the same parser checks it.
  auto parsed = oras::ParseReference(absl::StrCat("oras://", request.registry(), "/x"));
  if (!parsed.ok() || parsed->registry != request.registry()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", request.registry().substr(0, 256), "' is not a registry host[:port]"));
  }
  const oras::Reference& ref = *parsed;
  oras::RegistryClient client(ref.ApiHost(), "",
                              ClientOptionsFor(ref, request.no_https(), request.auth(), config_));
  absl::Status ping = client.Ping();
  spdlog::info("login check of {} for uid {}: {}", ref.registry, peer.uid,
               ping.ok() ? "accepted" : std::string(ping.message()));
  // A refusal already names the registry; anything else (no answer, TLS)
  // gets it said.
  if (ping.ok() || absl::IsPermissionDenied(ping) || absl::IsUnauthenticated(ping)) return ping;
  return Annotate(ping, absl::StrCat("checking the credentials with ", ref.registry));
}

namespace {

void ToProto(const CacheEntryInfo& e, v1::CacheEntry* out) {
  out->set_type(e.type);
  out->set_digest(e.digest);
  out->set_size(e.size);
  out->set_mtime_unix(e.mtime_unix);
  for (uid_t uid : e.users) out->add_users(uid);
}

}  // namespace

absl::Status PullService::CacheList(const PeerIdentity& peer, v1::CacheListReply& reply) {
  ASSIGN_OR_RETURN(std::vector<CacheEntryInfo> entries, cache_.List(CallerOf(peer)));
  for (const CacheEntryInfo& e : entries) ToProto(e, reply.add_entries());
  return absl::OkStatus();
}

absl::Status PullService::CacheClean(const v1::CacheCleanRequest& request, const PeerIdentity& peer,
                                     v1::CacheCleanReply& reply) {
  // The cache is the node's: root cleans it for everyone, a user what only
  // they referenced (and drops their reference to what others share).
  if (request.days() < 0) return absl::InvalidArgumentError("--days must not be negative");
  std::vector<std::string> types(request.types().begin(), request.types().end());
  std::vector<CacheEntryInfo> released, in_use;
  ASSIGN_OR_RETURN(
      std::vector<CacheEntryInfo> removed,
      cache_.Clean(CallerOf(peer), request.days(), types, request.dry_run(), &released, &in_use));
  for (const CacheEntryInfo& e : removed) ToProto(e, reply.add_removed());
  for (const CacheEntryInfo& e : released) ToProto(e, reply.add_released());
  for (const CacheEntryInfo& e : in_use) ToProto(e, reply.add_in_use());
  spdlog::info("cache clean for uid {}: {} entries removed, {} shared kept", peer.uid,
               removed.size(), released.size());
  return absl::OkStatus();
}

}  // namespace berth::daemon::pull
