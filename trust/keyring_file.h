// The node's global public keyring (`global-pgp-public` in the daemon's
// config directory): an OpenPGP keyring as `gpg --export` writes it, read by
// the ECL and `berth verify`, changed only by root through `berth key --global`.
//
// gpg works on GnuPG home directories, not keyring files, so readers import
// the file into a private, throw-away home (ScratchGnupgHome) and writers
// export the result back, replacing the file atomically.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::trust {

inline constexpr char kGlobalKeyringName[] = "global-pgp-public";

// <config_dir>/global-pgp-public.
std::string GlobalKeyringPath(const std::string& config_dir);

// The keyring bytes; empty when the file does not exist. Refuses anything
// but a regular file, and files larger than 16 MiB.
absl::StatusOr<std::string> ReadKeyringFile(const std::string& path);

// Replaces `path` with `bytes` (mode 0644) via a temporary file and rename.
absl::Status WriteKeyringFile(const std::string& path, const std::string& bytes);

// A private GnuPG home (mode 0700) created under `parent`, deleted with its
// contents when destroyed.
class ScratchGnupgHome {
 public:
  // `secret_keys`: gpg may start an agent for it (secret keys need one);
  // otherwise it never does.
  static absl::StatusOr<ScratchGnupgHome> Create(const std::string& parent,
                                                 bool secret_keys = false);
  ~ScratchGnupgHome();
  ScratchGnupgHome(ScratchGnupgHome&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  ScratchGnupgHome& operator=(ScratchGnupgHome&& other) noexcept {
    std::swap(path_, other.path_);
    return *this;
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchGnupgHome(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace berth::trust
