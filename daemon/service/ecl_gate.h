// The ECL at the door of every container start: when ecl.toml is activated,
// an image runs only if its signatures satisfy its execgroup, checked
// against the node's global keyring (formats.md §4).
//
// What was verified is exactly what is mounted: an image a user could modify
// is first copied into the daemon's content-addressed store
// (<state>/verified, root 0700, files 0400; image/immutable_copy.h), the copy
// is verified, and the descriptor handed on to the mount cache is the copy's,
// so rewriting the original between check and mount (or while it runs)
// changes nothing the kernel reads. Files no user can modify
// (image/image_trust.h) are verified and mounted in place through the same
// descriptor. Verdicts are cached per content digest and per generation of
// ecl.toml + global keyring, and a file's identity (device, inode, size,
// ctime, mtime) maps to its verified digest, so a repeated start of an
// unchanged image costs a stat and two hash-map lookups.
//
// The store serves every user, so no user may use it against another:
//   - a copy whose image the ECL denies is deleted at once, and never pushes
//     another copy out: a copy is first made only into free room; when the
//     store is full, the caller's own file is verified first and only an
//     image that passes may evict (the copy is then verified again);
//   - a verdict and its copy live and die together: the store's eviction
//     drops the verdict, a denial keeps none, and a cached verdict whose copy
//     is gone anyway (deleted by hand) is made again, never an error;
//   - copies loop devices read are never evicted, and a user's copies count
//     against their share of the stores (image/loop_ledger.h).
//
// Keys: the global keyring file is imported into a daemon-private GnuPG home
// (<state>/trust/berth-gnupg-*, 0700), rebuilt when the file changes.
// ecl.toml is re-read when it changes; an invalid file is an error at start
// (the daemon refuses to start) and is ignored, logged, on reload (the last
// good policy stays). In user mode the same checks run, but the user owns the
// daemon, so there the ECL is advisory (docs/security.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "daemon/daemon_options.h"
#include "daemon/image/immutable_copy.h"
#include "daemon/image/mount_cache.h"
#include "daemon/policy/ecl.h"
#include "trust/keyring_file.h"

namespace berth::daemon {

struct EclGateStats {
  int64_t verifications = 0;  // images verified (slow path)
  int64_t cache_hits = 0;     // starts answered from the verdict cache
  int64_t denials = 0;
};

class EclGate {
 public:
  // `store_max_bytes`: the budget of <state>/verified (immutable_copy.h).
  // `images` (may be null) tells which copies loop devices read and each
  // user's share of the stores.
  explicit EclGate(const DaemonOptions& options, int64_t store_max_bytes = 0,
                   image::MountCache* images = nullptr);
  ~EclGate();

  // Loads ecl.toml and the global keyring. An invalid ecl.toml (or a
  // keyring that cannot be loaded) is an error naming the file and line.
  // Privilege: reads the config directory, writes <state>/{trust,verified}.
  absl::Status Init();

  // `image_fd` was opened as the caller `uid`. With the ECL inactive, returns
  // it unchanged. Otherwise returns a descriptor of verified bytes no user
  // can change (the caller's own file only if no user can modify it), or a
  // PermissionDenied naming the image, execgroup, mode and fingerprints.
  absl::StatusOr<UniqueFd> Admit(UniqueFd image_fd, const std::string& display, uid_t uid = 0);

  // Whether ecl.toml is activated now (re-read if it changed).
  bool Activated();

  EclGateStats stats() const;

 private:
  struct Verdict;
  struct Keyring;
  struct Request;
  struct Checked;
  void Refresh();
  absl::StatusOr<std::shared_ptr<Keyring>> BuildKeyring();
  absl::StatusOr<std::shared_ptr<const Verdict>> VerifyBytes(UniqueFd source,
                                                             const Request& request);
  bool LookUp(const Request& request, Checked& out);
  bool OpenCached(int fd, Checked& checked);
  absl::StatusOr<Checked> CheckSlow(int fd, const Request& request);
  absl::StatusOr<Checked> CopyAndVerify(int fd, const Request& request);
  void Remember(int fd, const Request& request, const Checked& checked);
  void Forget(const std::string& key);

  DaemonOptions options_;
  int64_t store_max_bytes_;
  image::MountCache* images_;
  std::string ecl_path_, keyring_path_, trust_dir_;
  std::optional<image::ImageStore> store_;

  absl::Mutex reload_mu_;  // one reload at a time
  absl::Mutex slow_mu_;    // one verification at a time: copies are big
  mutable absl::Mutex mu_;
  std::shared_ptr<const policy::Ecl> ecl_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<Keyring> keyring_ ABSL_GUARDED_BY(mu_);
  std::string ecl_stamp_ ABSL_GUARDED_BY(mu_), keyring_stamp_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // file identity -> key of its verdict: the digest of the verified copy,
  // "inplace:<file key>" for trusted files, "file:<file key>" for a denied
  // file that has no copy
  absl::flat_hash_map<std::string, std::string> known_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<const Verdict>> verdicts_ ABSL_GUARDED_BY(mu_);
  EclGateStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon
