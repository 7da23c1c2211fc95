#include "daemon/service/ecl_gate.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/image_trust.h"
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

EclGate::EclGate(const DaemonOptions& options, int64_t store_max_bytes)
    : options_(options),
      store_max_bytes_(store_max_bytes),
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
  auto store = image::ImageStore::Open(options_.state_dir + "/verified", store_max_bytes_);
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

absl::StatusOr<std::shared_ptr<const EclGate::Verdict>> EclGate::VerifySlow(
    int fd, const std::string& display, const std::string& file_key, uint64_t generation,
    bool legacy, std::string& digest) {
  std::shared_ptr<Keyring> keyring;
  {
    absl::MutexLock lock(&mu_);
    keyring = keyring_;
  }
  // The bytes to verify and later mount: the caller's file only when no
  // user can change it; otherwise a private copy.
  UniqueFd source;
  const image::TrustVerdict trusted = image::JudgeImageFile(fd);
  if (trusted.trusted) {
    ASSIGN_OR_RETURN(source, Dup(fd));
    digest = "inplace:" + file_key;
  } else {
    ASSIGN_OR_RETURN(int64_t size, FileSize(fd));
    auto copy = store_->CopyPartition(fd, 0, size);
    if (!copy.ok()) return Annotate(copy.status(), "copying the image for verification");
    source = std::move(copy->fd);
    digest = copy->digest;
  }
  auto verdict = std::make_shared<Verdict>();
  verdict->generation = generation;
  verdict->legacy = legacy;
  auto image = sif::Image::FromFd(std::move(source), sif::OpenMode::kReadOnly, display);
  if (!image.ok()) {
    verdict->verify_error = image.status();
    return verdict;
  }
  trust::VerifySelection sel;
  sel.legacy = legacy;
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

absl::StatusOr<UniqueFd> EclGate::Admit(UniqueFd fd, const std::string& display) {
  const absl::Time start = absl::Now();
  Refresh();
  std::shared_ptr<const policy::Ecl> ecl;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    ecl = ecl_;
    generation = generation_;
  }
  if (ecl == nullptr || !ecl->activated) return fd;
  ASSIGN_OR_RETURN(std::string dir, DirectoryOf(fd.get()));
  const policy::ExecGroup* group = policy::SelectExecGroup(*ecl, dir);
  if (group == nullptr) {
    return absl::PermissionDeniedError(
        Denied(display, absl::StrCat("its directory ", dir, " is not part of any execgroup")));
  }
  ASSIGN_OR_RETURN(std::string file_key, FileKey(fd.get()));
  std::string digest;
  std::shared_ptr<const Verdict> verdict;
  bool cached = false;
  // A file seen before, under the current generation and legacy setting.
  auto look_up = [&]() {
    absl::MutexLock lock(&mu_);
    auto k = known_.find(file_key);
    if (k == known_.end()) return;
    auto v = verdicts_.find(k->second);
    if (v == verdicts_.end() || v->second->generation != generation ||
        v->second->legacy != ecl->legacy_insecure) {
      return;
    }
    digest = k->second;
    verdict = v->second;
    cached = true;
    ++stats_.cache_hits;
  };
  look_up();
  if (verdict == nullptr) {
    absl::MutexLock slow(&slow_mu_);
    look_up();  // 64 ranks starting at once: the first one verifies for all
    if (verdict == nullptr) {
      auto fresh =
          VerifySlow(fd.get(), display, file_key, generation, ecl->legacy_insecure, digest);
      if (!fresh.ok()) return Annotate(fresh.status(), absl::StrCat("ECL check of ", display));
      verdict = *std::move(fresh);
      auto key_after = FileKey(fd.get());
      absl::MutexLock lock(&mu_);
      ++stats_.verifications;
      // Remember the file only if it did not change while we copied it.
      if (key_after.ok() && *key_after == file_key) {
        if (known_.size() >= kMaxKnown) known_.clear();
        known_[file_key] = digest;
      }
      if (verdict->generation == generation_) verdicts_[digest] = verdict;
    }
  }
  std::string why = verdict->verify_error.ok() ? policy::EclDenial(*group, verdict->signers)
                                               : std::string(verdict->verify_error.message());
  const double micros = absl::ToDoubleMicroseconds(absl::Now() - start);
  if (!why.empty()) {
    absl::MutexLock lock(&mu_);
    ++stats_.denials;
    spdlog::info("ECL: {} denied ({} us{}): {}", display, micros, cached ? ", cached" : "", why);
    return absl::PermissionDeniedError(Denied(display, why));
  }
  if (cached) {
    spdlog::debug("ECL: {} allowed by execgroup '{}' ({} us, cached)", display, group->tagname,
                  micros);
  } else {
    spdlog::info("ECL: {} allowed by execgroup '{}' ({} us)", display, group->tagname, micros);
  }
  if (digest.rfind("inplace:", 0) == 0) return fd;
  return store_->OpenCopy(digest);
}

EclGateStats EclGate::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace berth::daemon
