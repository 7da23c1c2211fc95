#include "oci/local_transport.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::oci {
namespace {

using Json = nlohmann::json;

absl::string_view Sv(std::string_view s) {
  return {s.data(), s.size()};
}

constexpr int64_t kMaxMembers = 100000;

// Where the layout's files come from: a directory or an unpacked archive.
class Source {
 public:
  virtual ~Source() = default;
  // `rel` is a clean relative path ("index.json", "blobs/sha256/<hex>").
  virtual absl::StatusOr<UniqueFd> Open(const std::string& rel) = 0;
};

// openat() one component at a time with O_NOFOLLOW: a symlink anywhere in a
// user's layout is an error, never a way out of it. Every open goes through
// `open_at`, whose rights the caller of ReadOciLayout chose.
class DirSource : public Source {
 public:
  DirSource(int dir_fd, const OpenAtFn& open_at) : dir_fd_(dir_fd), open_at_(open_at) {}
  absl::StatusOr<UniqueFd> Open(const std::string& rel) override {
    std::vector<std::string> parts = absl::StrSplit(rel, '/');
    UniqueFd cur;
    int at = dir_fd_;
    for (size_t i = 0; i < parts.size(); ++i) {
      bool last = i + 1 == parts.size();
      int flags = O_RDONLY | O_NOFOLLOW | O_NOCTTY | (last ? O_NONBLOCK : O_DIRECTORY);
      auto fd = open_at_(at, parts[i], flags);
      if (!fd.ok()) return Annotate(fd.status(), absl::StrCat("opening ", rel));
      cur = *std::move(fd);
      at = cur.get();
    }
    struct stat st {};
    if (::fstat(cur.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(rel, " is not a regular file"));
    }
    // Back to blocking reads now that we know it is a regular file (O_NONBLOCK
    // only kept a FIFO planted in the layout from hanging the open).
    ::fcntl(cur.get(), F_SETFL, O_RDONLY);
    return cur;
  }

 private:
  int dir_fd_;
  const OpenAtFn& open_at_;
};

class MemberSource : public Source {
 public:
  std::map<std::string, UniqueFd> members;
  absl::StatusOr<UniqueFd> Open(const std::string& rel) override {
    auto it = members.find(rel);
    if (it == members.end()) return absl::NotFoundError(absl::StrCat("archive has no ", rel));
    int fd = ::fcntl(it->second.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus("dup", errno);
    return UniqueFd(fd);
  }
};

absl::StatusOr<std::string> ReadSmall(Source& src, const std::string& rel, int64_t max) {
  ASSIGN_OR_RETURN(UniqueFd fd, src.Open(rel));
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd.get()));
  if (size > max)
    return absl::ResourceExhaustedError(absl::StrCat(rel, " is larger than ", max, " bytes"));
  std::string out(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(PreadFull(fd.get(), {reinterpret_cast<uint8_t*>(out.data()), out.size()}, 0));
  return out;
}

std::string BlobPath(const std::string& digest) {
  size_t colon = digest.find(':');
  return absl::StrCat("blobs/", digest.substr(0, colon), "/", digest.substr(colon + 1));
}

// A blob whose size and digest match its descriptor.
absl::StatusOr<UniqueFd> OpenVerifiedBlob(Source& src, const Descriptor& d) {
  ASSIGN_OR_RETURN(UniqueFd fd, src.Open(BlobPath(d.digest)));
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd.get()));
  if (size != d.size) {
    return absl::DataLossError(
        absl::StrCat("blob ", d.digest, " is ", size, " bytes, expected ", d.size));
  }
  bool sha512 = d.digest.starts_with("sha512:");
  ASSIGN_OR_RETURN(
      std::string hex,
      DigestRange(fd.get(), 0, size, sha512 ? DigestAlgorithm::kSha512 : DigestAlgorithm::kSha256));
  if (d.digest.substr(d.digest.find(':') + 1) != hex) {
    return absl::DataLossError(absl::StrCat("blob ", d.digest, " does not match its digest"));
  }
  return fd;
}

absl::StatusOr<std::string> ReadVerifiedBlob(Source& src, const Descriptor& d, int64_t max) {
  if (d.size > max)
    return absl::ResourceExhaustedError(absl::StrCat("blob ", d.digest, " is too large"));
  ASSIGN_OR_RETURN(std::string bytes, ReadSmall(src, BlobPath(d.digest), max));
  RETURN_IF_ERROR_CTX(VerifyDigest(bytes, d.digest), absl::StrCat("blob ", d.digest));
  return bytes;
}

absl::StatusOr<OciImage> ImageFromManifest(Source& src, const ImageManifest& m) {
  OciImage image;
  ASSIGN_OR_RETURN(image.config_json, ReadVerifiedBlob(src, m.config, kMaxConfigBytes));
  for (const Descriptor& layer : m.layers) {
    RETURN_IF_ERROR_CTX(LayerCompressionOf(layer.media_type).status(),
                        absl::StrCat("layer ", layer.digest));
    ASSIGN_OR_RETURN(UniqueFd fd, OpenVerifiedBlob(src, layer));
    image.layers.push_back({std::move(fd), layer.media_type, layer.digest});
  }
  return image;
}

absl::StatusOr<OciImage> ReadLayout(Source& src, std::string_view tag,
                                    const PlatformSpec& platform) {
  ASSIGN_OR_RETURN(std::string index_bytes, ReadSmall(src, "index.json", kMaxManifestBytes));
  ASSIGN_OR_RETURN(ImageIndex index, ParseImageIndex(index_bytes, kMediaTypeOciIndex));
  const Descriptor* chosen = nullptr;
  std::vector<std::string> names;
  for (const Descriptor& d : index.manifests) {
    auto it = d.annotations.find("org.opencontainers.image.ref.name");
    std::string name = it == d.annotations.end() ? "" : it->second;
    if (!name.empty()) names.push_back(name);
    if (tag.empty() ? index.manifests.size() == 1 : name == tag) {
      chosen = &d;
      break;
    }
  }
  if (chosen == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(tag.empty() ? "the layout holds several images; name one with :TAG"
                                 : absl::StrCat("no image tagged \"", Sv(tag), "\""),
                     " (tags: ", names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
  }
  Descriptor manifest_desc = *chosen;
  if (IsIndexMediaType(manifest_desc.media_type)) {
    ASSIGN_OR_RETURN(std::string nested, ReadVerifiedBlob(src, manifest_desc, kMaxManifestBytes));
    ASSIGN_OR_RETURN(ImageIndex sub, ParseImageIndex(nested, manifest_desc.media_type));
    ASSIGN_OR_RETURN(manifest_desc, SelectPlatform(sub, platform));
  }
  ASSIGN_OR_RETURN(std::string manifest_bytes,
                   ReadVerifiedBlob(src, manifest_desc, kMaxManifestBytes));
  ASSIGN_OR_RETURN(ImageManifest manifest,
                   ParseImageManifest(manifest_bytes, manifest_desc.media_type));
  return ImageFromManifest(src, manifest);
}

// ---- archives ----
la_ssize_t ReadFd(struct archive*, void* data, const void** out) {
  auto* st = static_cast<std::pair<int, std::vector<char>>*>(data);
  for (;;) {
    ssize_t n = ::read(st->first, st->second.data(), st->second.size());
    if (n < 0 && errno == EINTR) continue;
    *out = st->second.data();
    return n;
  }
}

// Copies every regular member of the tar into an unnamed file.
absl::Status Unpack(int archive_fd, int scratch_dir_fd, MemberSource& out) {
  if (::lseek(archive_fd, 0, SEEK_SET) < 0) return ErrnoStatus("seeking archive", errno);
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  std::pair<int, std::vector<char>> state{archive_fd, std::vector<char>(1 << 20)};
  if (archive_read_open(a.get(), &state, nullptr, ReadFd, nullptr) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a tar archive: ", archive_error_string(a.get())));
  }
  struct archive_entry* e = nullptr;
  for (int64_t n = 0;; ++n) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat("reading archive: ", archive_error_string(a.get())));
    }
    if (n >= kMaxMembers) return absl::ResourceExhaustedError("archive has too many members");
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr) continue;
    std::string raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    std::vector<std::string> parts;
    for (absl::string_view c : absl::StrSplit(raw, '/')) {
      if (c.empty() || c == ".") continue;
      if (c == "..")
        return absl::InvalidArgumentError(
            absl::StrCat("archive member \"", raw, "\" contains '..'"));
      parts.emplace_back(c);
    }
    if (parts.empty()) continue;
    int fd = ::openat(scratch_dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("creating a scratch file", errno);
    UniqueFd tmp(fd);
    int64_t off = 0;
    std::vector<char> buf(1 << 20);
    for (;;) {
      la_ssize_t got = archive_read_data(a.get(), buf.data(), buf.size());
      if (got < 0)
        return absl::DataLossError(
            absl::StrCat("reading ", raw, ": ", archive_error_string(a.get())));
      if (got == 0) break;
      RETURN_IF_ERROR(PwriteFull(
          tmp.get(), {reinterpret_cast<uint8_t*>(buf.data()), static_cast<size_t>(got)}, off));
      off += got;
    }
    out.members[absl::StrJoin(parts, "/")] = std::move(tmp);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LocalReference> ParseLocalReference(std::string_view text) {
  LocalReference ref;
  std::string_view rest;
  if (text.starts_with("oci:")) {
    ref.transport = LocalTransport::kOciDir;
    rest = text.substr(4);
  } else if (text.starts_with("oci-archive:")) {
    ref.transport = LocalTransport::kOciArchive;
    rest = text.substr(12);
  } else if (text.starts_with("docker-archive:")) {
    ref.transport = LocalTransport::kDockerArchive;
    rest = text.substr(15);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Sv(text.substr(0, 80)), "\" is no local image reference"));
  }
  size_t colon = ref.transport == LocalTransport::kDockerArchive ? rest.find(':') : rest.rfind(':');
  size_t slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash ||
                                          ref.transport == LocalTransport::kDockerArchive)) {
    ref.path = std::string(rest.substr(0, colon));
    ref.tag = std::string(rest.substr(colon + 1));
  } else {
    ref.path = std::string(rest);
  }
  if (ref.path.empty()) return absl::InvalidArgumentError("local image reference without a path");
  return ref;
}

absl::StatusOr<UniqueFd> OpenAtWithOwnRights(int dir_fd, const std::string& name, int flags) {
  int fd = ::openat(dir_fd, name.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(name, errno);
  return UniqueFd(fd);
}

absl::StatusOr<OciImage> ReadOciLayout(int dir_fd, std::string_view tag,
                                       const PlatformSpec& platform, const OpenAtFn& open_at) {
  DirSource src(dir_fd, open_at);
  auto image = ReadLayout(src, tag, platform);
  if (!image.ok()) return Annotate(image.status(), "OCI layout");
  return image;
}

absl::StatusOr<OciImage> ReadOciArchive(int archive_fd, std::string_view tag,
                                        const PlatformSpec& platform, int scratch_dir_fd) {
  MemberSource src;
  RETURN_IF_ERROR_CTX(Unpack(archive_fd, scratch_dir_fd, src), "oci-archive");
  auto image = ReadLayout(src, tag, platform);
  if (!image.ok()) return Annotate(image.status(), "oci-archive");
  return image;
}

absl::StatusOr<OciImage> ReadDockerArchive(int archive_fd, std::string_view ref,
                                           int scratch_dir_fd) {
  MemberSource src;
  RETURN_IF_ERROR_CTX(Unpack(archive_fd, scratch_dir_fd, src), "docker-archive");
  ASSIGN_OR_RETURN(std::string manifest_bytes, ReadSmall(src, "manifest.json", kMaxManifestBytes));
  Json manifest = Json::parse(manifest_bytes, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_array() || manifest.empty()) {
    return absl::InvalidArgumentError("docker-archive: manifest.json is not a non-empty array");
  }
  const Json* chosen = nullptr;
  for (const Json& entry : manifest) {
    if (!entry.is_object())
      return absl::InvalidArgumentError("docker-archive: bad manifest.json entry");
    bool match = ref.empty();
    if (auto tags = entry.find("RepoTags"); !match && tags != entry.end() && tags->is_array()) {
      for (const Json& t : *tags) match |= t.is_string() && t.get<std::string>() == ref;
    }
    if (match) {
      if (chosen != nullptr) {
        return absl::InvalidArgumentError(
            "docker-archive: several images; name one with :REPO:TAG");
      }
      chosen = &entry;
    }
  }
  if (chosen == nullptr) {
    return absl::NotFoundError(absl::StrCat("docker-archive: no image tagged \"", Sv(ref), "\""));
  }
  auto config_it = chosen->find("Config");
  auto layers_it = chosen->find("Layers");
  if (config_it == chosen->end() || !config_it->is_string() || layers_it == chosen->end() ||
      !layers_it->is_array()) {
    return absl::InvalidArgumentError("docker-archive: manifest.json lacks Config/Layers");
  }
  // The config's name is its sha256 ("<hex>.json", or blobs/sha256/<hex>).
  std::string config_name = config_it->get<std::string>();
  OciImage image;
  ASSIGN_OR_RETURN(image.config_json, ReadSmall(src, config_name, kMaxConfigBytes));
  std::string hex = Sha256Digest(image.config_json).substr(7);
  if (config_name != hex + ".json" && config_name != "blobs/sha256/" + hex) {
    return absl::DataLossError(
        absl::StrCat("docker-archive: config ", config_name, " does not match its digest"));
  }
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(image.config_json));
  if (config.diff_ids.size() != layers_it->size()) {
    return absl::InvalidArgumentError(
        "docker-archive: layer count differs from the config's diff_ids");
  }
  for (size_t i = 0; i < layers_it->size(); ++i) {
    const Json& l = (*layers_it)[i];
    if (!l.is_string()) return absl::InvalidArgumentError("docker-archive: bad layer name");
    std::string name = l.get<std::string>();
    ASSIGN_OR_RETURN(UniqueFd fd, src.Open(name));
    ASSIGN_OR_RETURN(int64_t size, FileSize(fd.get()));
    ASSIGN_OR_RETURN(std::string digest, DigestRange(fd.get(), 0, size, DigestAlgorithm::kSha256));
    // Plain tar layers hash to their diff_id; compressed OCI blobs to their name.
    if ("sha256:" + digest != config.diff_ids[i] && name != "blobs/sha256/" + digest) {
      return absl::DataLossError(
          absl::StrCat("docker-archive: layer ", name, " does not match its digest"));
    }
    image.layers.push_back(
        {std::move(fd), "application/vnd.docker.image.rootfs.diff.tar", "sha256:" + digest});
  }
  return image;
}

}  // namespace berth::oci
