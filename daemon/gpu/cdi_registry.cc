#include "daemon/gpu/cdi_registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <span>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/gpu/trusted_path.h"

namespace berth::daemon::gpu {
namespace {

constexpr int64_t kMaxSpecBytes = 1 << 20;
constexpr size_t kMaxSpecsPerDir = 1024;

bool IsSpecName(const std::string& name) {
  return absl::EndsWith(name, ".json") || absl::EndsWith(name, ".yaml") ||
         absl::EndsWith(name, ".yml");
}

std::vector<std::string> SpecNames(int dir_fd) {
  std::vector<std::string> names;
  int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (d == nullptr) {
    if (fd >= 0) ::close(fd);
    return names;
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (IsSpecName(name) && names.size() < kMaxSpecsPerDir) names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadSpecText(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(path, errno);
  if (st.st_size > kMaxSpecBytes) return absl::InvalidArgumentError(path + ": larger than 1 MiB");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadFull(fd, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size()), 0));
  return text;
}

}  // namespace

absl::Status CdiRegistry::Trusted(int fd, const std::string& path) const {
  return check_trust_ ? CheckTrusted(fd, path, 0) : absl::OkStatus();
}

CdiRegistry::Parsed CdiRegistry::Load(int dir_fd, const std::string& name, const std::string& path,
                                      const FileKey& key) {
  Parsed out;
  out.key = key;
  auto fail = [&](const absl::Status& st) {
    out.error = std::string(st.message());
    return out;
  };
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return fail(ErrnoStatus(path, errno));
  if (absl::Status st = Trusted(fd.get(), path); !st.ok()) return fail(st);
  auto text = ReadSpecText(fd.get(), path);
  if (!text.ok()) return fail(text.status());
  auto spec = ParseCdiSpec(*text, path);
  if (!spec.ok()) return fail(spec.status());
  out.spec = std::make_shared<const CdiSpec>(*std::move(spec));
  return out;
}

void CdiRegistry::ReadDir(const CdiDir& dir, CdiCatalog& catalog) {
  UniqueFd own;
  int dir_fd = dir.fd.get();
  if (dir_fd < 0) {
    own.Reset(::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!own) return;  // a missing directory offers nothing
    dir_fd = own.get();
  }
  if (absl::Status st = Trusted(dir_fd, dir.path); !st.ok()) {
    catalog.broken.emplace_back(dir.path, std::string(st.message()));
    return;
  }
  std::map<std::string, CdiDeviceRef> here;
  std::map<std::string, std::string> clashes;
  for (const std::string& name : SpecNames(dir_fd)) {
    std::string path = absl::StrCat(dir.path, dir.path == "/" ? "" : "/", name);
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) {
      catalog.broken.emplace_back(
          path, absl::StrCat(path, ": not a regular file (symlinks are not followed)"));
      continue;
    }
    FileKey key{st.st_dev, st.st_ino, st.st_size,
                st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
    Parsed parsed;
    {
      absl::MutexLock lock(&mu_);
      auto it = files_.find(path);
      if (it != files_.end() && it->second.key == key) parsed = it->second;
    }
    if (!(parsed.key == key) || (!parsed.spec && parsed.error.empty())) {
      parsed = Load(dir_fd, name, path, key);
      absl::MutexLock lock(&mu_);
      files_[path] = parsed;
    }
    if (!parsed.spec) {
      catalog.broken.emplace_back(path, parsed.error);
      continue;
    }
    for (size_t i = 0; i < parsed.spec->devices.size(); ++i) {
      std::string qualified = absl::StrCat(parsed.spec->kind, "=", parsed.spec->devices[i].name);
      auto [it, fresh] = here.emplace(qualified, CdiDeviceRef{parsed.spec, i, path});
      if (!fresh)
        clashes[qualified] = absl::StrCat("defined in both ", it->second.origin, " and ", path);
    }
  }
  for (auto& [name, ref] : here) {
    catalog.conflicts.erase(name);
    catalog.devices[name] = std::move(ref);
  }
  for (auto& [name, why] : clashes) {
    catalog.devices.erase(name);
    catalog.conflicts[name] = std::move(why);
  }
}

CdiCatalog CdiRegistry::Catalog(std::vector<CdiDir> dirs) {
  CdiCatalog catalog;
  for (const CdiDir& dir : dirs) {
    catalog.dirs.push_back(dir.path);
    ReadDir(dir, catalog);
  }
  return catalog;
}

absl::StatusOr<const CdiDeviceRef*> CdiRegistry::Find(const CdiCatalog& catalog,
                                                      const std::string& qualified) {
  ASSIGN_OR_RETURN(CdiName name, ParseCdiName(qualified));
  std::string key = name.Qualified();
  if (auto it = catalog.devices.find(key); it != catalog.devices.end()) return &it->second;
  if (auto it = catalog.conflicts.find(key); it != catalog.conflicts.end()) {
    return absl::FailedPreconditionError(absl::StrCat("CDI device ", key, " is ", it->second));
  }
  std::string where =
      catalog.dirs.empty() ? "no spec directory" : absl::StrJoin(catalog.dirs, ", ");
  std::string broken;
  if (!catalog.broken.empty()) {
    broken = absl::StrCat("; ", catalog.broken.size() == 1 ? "a spec is" : "specs are",
                          " broken: ", catalog.broken.front().second);
  }
  return absl::NotFoundError(absl::StrCat("CDI device ", key, ": no such device in ", where, broken,
                                          " (berth cdi list shows the devices)"));
}

}  // namespace berth::daemon::gpu
