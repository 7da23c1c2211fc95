#include "daemon/service/ecl_gate.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/image_trust.h"
#include "daemon/image/sparse_copy.h"
#include "sif/image.h"
#include "spdlog/spdlog.h"
#include "trust/pgp.h"
#include "trust/verify.h"

namespace berth::daemon {

struct EclGate::Verdict {
  uint64_t generation = 0;
  bool legacy = false;
  absl::Status verify_error;  // integrity or structure: denies in every mode
  policy::EclSigners signers;
};

struct EclGate::Keyring {
  std::optional<trust::ScratchGnupgHome> home;  // none: the node has no global keyring
};

// One admission: what the verdict is looked up and decided by.
struct EclGate::Request {
  std::string display;
  std::string file_key;
  const policy::ExecGroup* group = nullptr;
  uint64_t generation = 0;
  bool legacy = false;
  uid_t uid = 0;
};

// A verdict, its key (see known_), and the bytes to mount when it allows.
struct EclGate::Checked {
  std::string key;
  std::shared_ptr<const Verdict> verdict;
  UniqueFd fd;
};

namespace {

constexpr size_t kMaxKnown = 4096;

// Identity of a config file: a change of content, owner or mode changes it.
std::string Stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "absent";
  return absl::StrFormat("%d:%d:%d:%d:%o:%d.%09d:%d.%09d", st.st_dev, st.st_ino, st.st_size,
                         st.st_uid, st.st_mode, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                         st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

// Same identity as the image cache's (mount_cache.cc): ctime cannot be set
// by users, so any write moves it.
absl::StatusOr<std::string> FileKey(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat", errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("not a regular file");
  return absl::StrFormat("%d:%d:%d:%d.%09d:%d.%09d", st.st_dev, st.st_ino, st.st_size,
                         st.st_ctim.tv_sec, st.st_ctim.tv_nsec, st.st_mtim.tv_sec,
                         st.st_mtim.tv_nsec);
}

absl::StatusOr<std::string> DirectoryOf(int fd) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
  if (n < 0) return ErrnoStatus("resolving the image path", errno);
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

absl::StatusOr<UniqueFd> Dup(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus("dup", errno);
  return UniqueFd(copy);
}

absl::Status RequireRootOwned(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return absl::OkStatus();  // absent: no keys
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": must be owned by root and not writable by group or others"));
  }
  return absl::OkStatus();
}

std::string Denied(const std::string& display, absl::string_view why) {
  return absl::StrCat("image ", display, " denied by the ECL: ", why);
}

}  // namespace

EclGate::EclGate(const DaemonOptions& options, int64_t store_max_bytes, image::MountCache* images)
    : options_(options),
      store_max_bytes_(store_max_bytes),
      images_(images),
      ecl_path_(options.config_dir + "/ecl.toml"),
      keyring_path_(trust::GlobalKeyringPath(options.config_dir)),
      trust_dir_(options.state_dir + "/trust") {}

EclGate::~EclGate() = default;

absl::StatusOr<std::shared_ptr<EclGate::Keyring>> EclGate::BuildKeyring() {
  const bool system = options_.mode == DaemonMode::kSystem;
  if (system) RETURN_IF_ERROR(RequireRootOwned(keyring_path_));
  ASSIGN_OR_RETURN(std::string bytes, trust::ReadKeyringFile(keyring_path_));
  auto keyring = std::make_shared<Keyring>();
  if (bytes.empty()) return keyring;
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home, trust::ScratchGnupgHome::Create(trust_dir_));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  auto imported = trust::ImportKeys(gpg, bytes);
  if (!imported.ok()) return Annotate(imported.status(), keyring_path_);
  keyring->home.emplace(std::move(home));
  return keyring;
}

absl::Status EclGate::Init() {
  const bool system = options_.mode == DaemonMode::kSystem;
  RETURN_IF_ERROR_CTX(image::OpenPrivateDirectory(options_.state_dir, 0700).status(),
                      "state directory");
  RETURN_IF_ERROR_CTX(image::OpenPrivateDirectory(trust_dir_, 0700).status(), "ECL keyring");
  image::ImageStore::Options store_options{.max_bytes = store_max_bytes_};
  if (images_ != nullptr) store_options.held = [images = images_] { return images->HeldFiles(); };
  // A verdict dies with its copy.
  store_options.on_delete = [this](const std::string& digest) { Forget(digest); };
  auto store = image::ImageStore::Open(options_.state_dir + "/verified", std::move(store_options));
  if (!store.ok()) return Annotate(store.status(), "ECL image store");
  store_.emplace(*std::move(store));
  const std::string ecl_stamp = Stamp(ecl_path_), keyring_stamp = Stamp(keyring_path_);
  ASSIGN_OR_RETURN(policy::Ecl ecl, policy::LoadEcl(options_.config_dir, system));
  ASSIGN_OR_RETURN(std::shared_ptr<Keyring> keyring, BuildKeyring());
  if (ecl.activated) {
    spdlog::info("ECL activated: {} execgroup(s){}", ecl.groups.size(),
                 options_.mode == DaemonMode::kUser ? " (advisory in user mode)" : "");
  }
  absl::MutexLock lock(&mu_);
  ecl_ = std::make_shared<const policy::Ecl>(std::move(ecl));
  keyring_ = std::move(keyring);
  ecl_stamp_ = ecl_stamp;
  keyring_stamp_ = keyring_stamp;
  return absl::OkStatus();
}

void EclGate::Refresh() {
  const std::string ecl_stamp = Stamp(ecl_path_), keyring_stamp = Stamp(keyring_path_);
  {
    absl::MutexLock lock(&mu_);
    if (ecl_stamp == ecl_stamp_ && keyring_stamp == keyring_stamp_) return;
  }
  absl::MutexLock reload(&reload_mu_);
  std::string old_ecl, old_keyring;
  {
    absl::MutexLock lock(&mu_);
    old_ecl = ecl_stamp_;
    old_keyring = keyring_stamp_;
  }
  std::shared_ptr<const policy::Ecl> ecl;
  std::shared_ptr<Keyring> keyring;
  if (ecl_stamp != old_ecl) {
    auto loaded = policy::LoadEcl(options_.config_dir, options_.mode == DaemonMode::kSystem);
    if (loaded.ok()) {
      ecl = std::make_shared<const policy::Ecl>(*std::move(loaded));
      spdlog::info("ECL reloaded ({})", ecl->activated ? "activated" : "not activated");
    } else {
      spdlog::error("ECL not reloaded, keeping the last good policy: {}",
                    std::string(loaded.status().message()));
    }
  }
  if (keyring_stamp != old_keyring) {
    auto built = BuildKeyring();
    if (built.ok()) {
      keyring = *std::move(built);
      spdlog::info("global keyring reloaded");
    } else {
      spdlog::error("global keyring not reloaded, keeping the last good one: {}",
                    std::string(built.status().message()));
    }
  }
  absl::MutexLock lock(&mu_);
  ecl_stamp_ = ecl_stamp;
  keyring_stamp_ = keyring_stamp;
  if (ecl != nullptr) ecl_ = std::move(ecl);
  if (keyring != nullptr) keyring_ = std::move(keyring);
  // A changed file invalidates every verdict, even when it failed to load:
  // simpler to reason about than deciding which edits matter.
  ++generation_;
  verdicts_.clear();
}

absl::StatusOr<std::shared_ptr<const EclGate::Verdict>> EclGate::VerifyBytes(
    UniqueFd source, const Request& request) {
  std::shared_ptr<Keyring> keyring;
  {
    absl::MutexLock lock(&mu_);
    keyring = keyring_;
  }
  auto verdict = std::make_shared<Verdict>();
  verdict->generation = request.generation;
  verdict->legacy = request.legacy;
  auto image = sif::Image::FromFd(std::move(source), sif::OpenMode::kReadOnly, request.display);
  if (!image.ok()) {
    verdict->verify_error = image.status();
    return verdict;
  }
  trust::VerifySelection sel;
  sel.legacy = request.legacy;
  std::optional<trust::GpgContext> gpg;
  if (keyring->home.has_value()) {
    ASSIGN_OR_RETURN(trust::GpgContext ctx, trust::GpgContext::Open(keyring->home->path()));
    gpg.emplace(std::move(ctx));
  }
  trust::KeyMaterial keys;
  keys.pgp = gpg.has_value() ? &*gpg : nullptr;
  keys.tolerate_invalid_signatures = true;
  auto report = trust::VerifyImage(*image, sel, keys);
  if (!report.ok()) {
    verdict->verify_error = report.status();
    return verdict;
  }
  auto signers = trust::SignersOf(*image, sel);
  if (!signers.ok()) {
    verdict->verify_error = signers.status();
    return verdict;
  }
  verdict->signers.all_signed_by = std::move(signers->all);
  verdict->signers.any_signed_by = std::move(signers->any);
  verdict->signers.unvalidated = std::move(report->unvalidated);
  // Without a keyring nothing validates: every signer counts as unvalidated.
  if (!gpg.has_value()) verdict->signers.unvalidated = verdict->signers.any_signed_by;
  return verdict;
}

namespace {

// Why the verdict denies the image in `group`; empty when it is allowed.
std::string DenialOf(const policy::ExecGroup& group, const absl::Status& verify_error,
                     const policy::EclSigners& signers) {
  return verify_error.ok() ? policy::EclDenial(group, signers)
                           : std::string(verify_error.message());
}

bool IsCopyKey(const std::string& key) {
  return image::IsSha256Hex(key);
}

}  // namespace

// A verdict for the file under the current generation and legacy setting.
bool EclGate::LookUp(const Request& request, Checked& out) {
  absl::MutexLock lock(&mu_);
  auto k = known_.find(request.file_key);
  if (k == known_.end()) return false;
  auto v = verdicts_.find(k->second);
  if (v == verdicts_.end() || v->second->generation != request.generation ||
      v->second->legacy != request.legacy) {
    return false;
  }
  out.key = k->second;
  out.verdict = v->second;
  ++stats_.cache_hits;
  return true;
}

// The bytes a cached verdict allows: the trusted file itself or the copy.
// False when there are none (a denied file's verdict has no copy; a copy
// deleted behind the store's back takes its verdict with it).
bool EclGate::OpenCached(int fd, Checked& checked) {
  if (absl::StartsWith(checked.key, "inplace:")) {
    auto dup = Dup(fd);
    if (dup.ok()) checked.fd = *std::move(dup);
    return dup.ok();
  }
  if (!IsCopyKey(checked.key)) return false;
  auto copy = store_->OpenCopy(checked.key);
  if (copy.ok()) {
    checked.fd = *std::move(copy);
    return true;
  }
  spdlog::warn("ECL: the verified copy {} is gone ({}); verifying again", checked.key.substr(0, 16),
               std::string(copy.status().message()));
  Forget(checked.key);
  return false;
}

// Copies the caller's untrusted file into the store and verifies the copy.
absl::StatusOr<EclGate::Checked> EclGate::CopyAndVerify(int fd, const Request& request) {
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd));
  if (images_ != nullptr) {
    RETURN_IF_ERROR(images_->CheckNewCopy(request.uid, image::DataBytesOfRange(fd, 0, size)));
  }
  auto copy = store_->CopyPartition(fd, 0, size, /*may_evict=*/false);
  if (!copy.ok() && absl::IsResourceExhausted(copy.status())) {
    // The store is full of other images' copies: only an image this check
    // admits may push one out, so the caller's own bytes are judged first.
    ASSIGN_OR_RETURN(UniqueFd own, Dup(fd));
    ASSIGN_OR_RETURN(auto first, VerifyBytes(std::move(own), request));
    if (!DenialOf(*request.group, first->verify_error, first->signers).empty()) {
      return Checked{"file:" + request.file_key, first, UniqueFd()};
    }
    copy = store_->CopyPartition(fd, 0, size, /*may_evict=*/true);
  }
  if (!copy.ok()) return Annotate(copy.status(), "copying the image for verification");
  ASSIGN_OR_RETURN(UniqueFd bytes, Dup(copy->fd.get()));
  ASSIGN_OR_RETURN(auto verdict, VerifyBytes(std::move(bytes), request));
  if (!DenialOf(*request.group, verdict->verify_error, verdict->signers).empty() && !copy->reused) {
    store_->Remove(copy->digest);  // denied: kept by no one
    return Checked{"file:" + request.file_key, verdict, UniqueFd()};
  }
  return Checked{copy->digest, verdict, std::move(copy->fd)};
}

// The bytes to verify and later mount: the caller's file only when no user
// can change it; otherwise a private copy.
absl::StatusOr<EclGate::Checked> EclGate::CheckSlow(int fd, const Request& request) {
  if (!image::JudgeImageFile(fd).trusted) return CopyAndVerify(fd, request);
  ASSIGN_OR_RETURN(UniqueFd source, Dup(fd));
  ASSIGN_OR_RETURN(UniqueFd bytes, Dup(fd));
  ASSIGN_OR_RETURN(auto verdict, VerifyBytes(std::move(source), request));
  return Checked{"inplace:" + request.file_key, verdict, std::move(bytes)};
}

void EclGate::Remember(int fd, const Request& request, const Checked& checked) {
  auto key_after = FileKey(fd);
  absl::MutexLock lock(&mu_);
  ++stats_.verifications;
  // Remember the file only if it did not change while we copied it.
  if (key_after.ok() && *key_after == request.file_key) {
    if (known_.size() >= kMaxKnown) known_.clear();
    known_[request.file_key] = checked.key;
  }
  if (checked.verdict->generation == generation_) verdicts_[checked.key] = checked.verdict;
}

void EclGate::Forget(const std::string& key) {
  absl::MutexLock lock(&mu_);
  verdicts_.erase(key);
}

bool EclGate::Activated() {
  Refresh();
  absl::MutexLock lock(&mu_);
  return ecl_ != nullptr && ecl_->activated;
}

absl::StatusOr<UniqueFd> EclGate::Admit(UniqueFd fd, const std::string& display, uid_t uid) {
  const absl::Time start = absl::Now();
  Refresh();
  std::shared_ptr<const policy::Ecl> ecl;
  Request request{display, "", nullptr, 0, false, uid};
  {
    absl::MutexLock lock(&mu_);
    ecl = ecl_;
    request.generation = generation_;
  }
  if (ecl == nullptr || !ecl->activated) return fd;
  request.legacy = ecl->legacy_insecure;
  ASSIGN_OR_RETURN(std::string dir, DirectoryOf(fd.get()));
  request.group = policy::SelectExecGroup(*ecl, dir);
  if (request.group == nullptr) {
    return absl::PermissionDeniedError(
        Denied(display, absl::StrCat("its directory ", dir, " is not part of any execgroup")));
  }
  ASSIGN_OR_RETURN(request.file_key, FileKey(fd.get()));
  const policy::ExecGroup& group = *request.group;
  Checked checked;
  // A cached verdict serves when it denies, or when its bytes are still there.
  auto cached = [&] {
    return LookUp(request, checked) &&
           (!DenialOf(group, checked.verdict->verify_error, checked.verdict->signers).empty() ||
            OpenCached(fd.get(), checked));
  };
  bool hit = cached();
  if (!hit) {
    absl::MutexLock slow(&slow_mu_);
    hit = cached();  // 64 ranks starting at once: the first one verifies for all
    if (!hit) {
      auto fresh = CheckSlow(fd.get(), request);
      if (!fresh.ok()) return Annotate(fresh.status(), absl::StrCat("ECL check of ", display));
      checked = *std::move(fresh);
      Remember(fd.get(), request, checked);
    }
  }
  const std::string why = DenialOf(group, checked.verdict->verify_error, checked.verdict->signers);
  const double micros = absl::ToDoubleMicroseconds(absl::Now() - start);
  if (!why.empty()) {
    absl::MutexLock lock(&mu_);
    ++stats_.denials;
    spdlog::info("ECL: {} denied ({} us{}): {}", display, micros, hit ? ", cached" : "", why);
    return absl::PermissionDeniedError(Denied(display, why));
  }
  if (hit) {
    spdlog::debug("ECL: {} allowed by execgroup '{}' ({} us, cached)", display, group.tagname,
                  micros);
  } else {
    spdlog::info("ECL: {} allowed by execgroup '{}' ({} us)", display, group.tagname, micros);
  }
  return std::move(checked.fd);
}

EclGateStats EclGate::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace berth::daemon
