// The CDI specs of a list of directories, as the daemon trusts them: each
// spec file parsed once and kept until it changes (its inode, size, mtime or
// ctime), a broken or untrusted one reported by name while the others keep
// working, and devices looked up by their qualified name.
//
// Directories come lowest priority first (/etc/cdi, then /var/run/cdi, as
// the reference library orders them); a device defined again in a later
// directory replaces the earlier one, and a device defined twice in the
// same directory is a conflict, refused by name when requested. Files are
// *.json, *.yaml and *.yml, read in name order, never through a symlink.
//
// Trust: a spec decides which host devices and files a container gets and
// which programs run as root, so (system mode) every spec file, and its
// directory with all the directories above it, must belong to root and be
// writable by nobody else (trusted_path.h); an untrusted one is broken. A
// user-mode daemon has only its user's privileges, which no spec can raise,
// and there root's files show as "nobody": it checks nothing.
//
// Thread-safe: run sessions share one registry.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"
#include "daemon/gpu/cdi_spec.h"

namespace berth::daemon::gpu {

struct CdiDeviceRef {
  std::shared_ptr<const CdiSpec> spec;
  size_t device = 0;   // index into spec->devices
  std::string origin;  // the spec file
};

// What a set of directories offers.
struct CdiCatalog {
  std::vector<std::string> dirs;                            // as searched, for messages
  std::map<std::string, CdiDeviceRef> devices;              // "vendor.com/class=name"
  std::map<std::string, std::string> conflicts;             // name → why
  std::vector<std::pair<std::string, std::string>> broken;  // spec file → error
};

// A directory to search: its name and, when open already (a caller's
// --cdi-dirs, opened as the caller), its descriptor.
struct CdiDir {
  std::string path;
  UniqueFd fd;  // O_RDONLY | O_DIRECTORY; invalid: opened by the registry
};

class CdiRegistry {
 public:
  // `check_trust`: the system daemon's rule above.
  explicit CdiRegistry(bool check_trust) : check_trust_(check_trust) {}

  CdiCatalog Catalog(std::vector<CdiDir> dirs);

  // The device `qualified` names, or an error naming it (not found, in
  // conflict, or only in a broken spec).
  static absl::StatusOr<const CdiDeviceRef*> Find(const CdiCatalog& catalog,
                                                  const std::string& qualified);

 private:
  struct FileKey {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileKey&) const = default;
  };
  struct Parsed {
    FileKey key;
    std::shared_ptr<const CdiSpec> spec;  // null: broken
    std::string error;
  };

  void ReadDir(const CdiDir& dir, CdiCatalog& catalog);
  Parsed Load(int dir_fd, const std::string& name, const std::string& path, const FileKey& key);

  absl::Status Trusted(int fd, const std::string& path) const;

  bool check_trust_;
  absl::Mutex mu_;
  std::map<std::string, Parsed> files_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::daemon::gpu
