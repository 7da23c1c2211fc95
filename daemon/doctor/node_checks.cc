#include "daemon/doctor/node_checks.h"

#include <pwd.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/fakeroot/fakeroot_ids.h"
#include "daemon/policy/config.h"
#include "daemon/policy/ecl.h"
#include "proto/doctor_check.h"

namespace berth::daemon::doctor {
namespace {

using rpc::MakeCheck;

constexpr int64_t kMiB = int64_t{1} << 20;
// Below this a pull or a copy fails mid-way; every image needs some room.
constexpr int64_t kMinFreeBytes = 512 * kMiB;

bool IsSystem(const DaemonOptions& options) {
  return options.mode == DaemonMode::kSystem;
}

template <typename LoadFn>
v1::DoctorCheck PolicyFileCheck(const DaemonOptions& options, const char* file, LoadFn load) {
  std::string path = absl::StrCat(options.config_dir, "/", file);
  auto loaded = load(options.config_dir, IsSystem(options));
  if (loaded.ok()) return MakeCheck("config", file, v1::DOCTOR_OK, path + " is valid (or absent)");
  return MakeCheck("config", file, v1::DOCTOR_ERROR, std::string(loaded.status().message()),
                   absl::StrCat("correct ", path,
                                " (docs/config.md): the running berthd keeps "
                                "the policy it started with, and a restart refuses this file"));
}

// Bytes of the regular files below `dir` (0 when it does not exist yet).
int64_t BytesBelow(const std::string& dir) {
  std::error_code ec;
  int64_t total = 0;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uintmax_t size = it->file_size(size_ec);
      if (!size_ec) total += static_cast<int64_t>(size);
    }
  }
  return total;
}

std::string MiB(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", double(bytes) / kMiB);
}

v1::DoctorCheck StoreCheck(const std::string& state_dir, const char* store, int64_t budget) {
  std::string dir = absl::StrCat(state_dir, "/", store);
  int64_t used = BytesBelow(dir);
  std::string detail = absl::StrCat(
      dir, ": ", MiB(used),
      budget > 0 ? absl::StrCat(" of a ", MiB(budget), " budget") : std::string(" (no budget)"));
  if (budget > 0 && used > budget) {
    return MakeCheck("cache", store, v1::DOCTOR_WARNING, detail + ", over budget",
                     "copies in use stay until their containers exit; raise "
                     "[images] copy_store_max_mib if this persists");
  }
  return MakeCheck("cache", store, v1::DOCTOR_OK, detail);
}

v1::DoctorCheck DiskCheck(const std::string& state_dir) {
  struct statvfs fs {};
  if (::statvfs(state_dir.c_str(), &fs) != 0) {
    return MakeCheck("cache", "disk", v1::DOCTOR_ERROR,
                     absl::StrCat("statvfs ", state_dir, ": ", std::strerror(errno)),
                     "create the state directory or start berthd with --state-dir");
  }
  int64_t free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  std::string detail = absl::StrCat(MiB(free_bytes), " free under ", state_dir);
  if (free_bytes < kMinFreeBytes) {
    return MakeCheck("cache", "disk", v1::DOCTOR_ERROR, detail,
                     "free space there (berth cache clean) or move --state-dir to a larger disk");
  }
  return MakeCheck("cache", "disk", v1::DOCTOR_OK, detail);
}

std::string UserName(uid_t uid) {
  struct passwd pw {
  }, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || found == nullptr) return "";
  return pw.pw_name;
}

}  // namespace

std::vector<v1::DoctorCheck> PolicyFileChecks(const DaemonOptions& options) {
  return {PolicyFileCheck(options, "berth.conf", policy::LoadConfig),
          PolicyFileCheck(options, "ecl.toml", policy::LoadEcl)};
}

std::vector<v1::DoctorCheck> StoreChecks(const DaemonOptions& options) {
  auto config = policy::LoadConfig(options.config_dir, IsSystem(options));
  int64_t budget = config.ok() ? int64_t{config->copy_store_max_mib} * kMiB : 0;
  return {DiskCheck(options.state_dir), StoreCheck(options.state_dir, "cache", 0),
          StoreCheck(options.state_dir, "images", budget),
          StoreCheck(options.state_dir, "verified", budget)};
}

v1::DoctorCheck FakerootCheck(const DaemonOptions& options, uid_t uid, gid_t gid) {
  fakeroot::Sources sources{options.subuid_path, options.subgid_path, !IsSystem(options)};
  fakeroot::Caller caller{uid, gid, UserName(uid)};
  absl::StatusOr<fakeroot::Ids> ids = fakeroot::ResolveIds(sources, caller);
  if (!ids.ok()) {
    return MakeCheck("fakeroot", "subuid/subgid", v1::DOCTOR_ERROR,
                     std::string(ids.status().message()),
                     "root: correct the entry, or berth config fakeroot --add USER");
  }
  if (ids->mode == fakeroot::Mode::kSubidRanges) {
    const launch::IdMapping& range = ids->uid_map.back();
    return MakeCheck("fakeroot", "subuid/subgid", v1::DOCTOR_OK,
                     absl::StrCat("--fakeroot maps ", range.count, " subordinate ids from ",
                                  range.outside, " (", options.subuid_path, ")"));
  }
  if (uid == 0 || !IsSystem(options)) {
    return MakeCheck("fakeroot", "subuid/subgid", v1::DOCTOR_OK,
                     "--fakeroot maps only your own id (root-mapped), as "
                     "expected for root and user-mode daemons");
  }
  return MakeCheck("fakeroot", "subuid/subgid", v1::DOCTOR_WARNING,
                   absl::StrCat("no entry for ", caller.name.empty() ? "you" : caller.name, " in ",
                                options.subuid_path, ": --fakeroot maps only your own id"),
                   absl::StrCat("root: berth config fakeroot --add ",
                                caller.name.empty() ? absl::StrCat(uid) : caller.name));
}

v1::DoctorCheck IdmapCheck(const DaemonOptions& options) {
  const char* name = "idmapped image mounts";
  if (!IsSystem(options)) {
    return MakeCheck("kernel", name, v1::DOCTOR_OK,
                     "a user-mode berthd does not idmap images: under --fakeroot and writable "
                     "layers the image's root files show as nobody (Apptainer's user-namespace "
                     "mode)");
  }
  utsname u{};
  int major = 0, minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) {
    return MakeCheck("kernel", name, v1::DOCTOR_WARNING, "the kernel's release is unreadable",
                     "berthd's log says whether the kernel refused an idmapped mount");
  }
  if (major > 6 || (major == 6 && minor >= 2)) {
    return MakeCheck("kernel", name, v1::DOCTOR_OK,
                     absl::StrCat("Linux ", major, ".", minor,
                                  " idmaps squashfs: --fakeroot and writable layers see the "
                                  "image's files owned as Apptainer shows them"));
  }
  return MakeCheck(
      "kernel", name, v1::DOCTOR_WARNING,
      absl::StrCat("Linux ", major, ".", minor,
                   " refuses idmapped squashfs mounts (MOUNT_ATTR_IDMAP needs 6.2): under "
                   "--fakeroot the image's root files show as nobody, and writable layers "
                   "cannot change them"),
      "a kernel of 6.2 or later");
}

}  // namespace berth::daemon::doctor
