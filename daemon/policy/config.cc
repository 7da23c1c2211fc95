#include "daemon/policy/config.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/policy/build_config_toml.h"
#include "daemon/policy/config_file.h"
#include "daemon/policy/toml_fields.h"
#include "mpi/stack.h"

namespace berth::daemon::policy {
namespace {

absl::Status CheckConfigKeys(const toml::table& table, const std::set<std::string>& known,
                             const std::string& section, const std::string& origin) {
  return CheckKeys(table, known, section, origin, " (see docs/config.md)");
}

template <typename Int>
absl::Status ReadInt(const toml::table& t, const char* key, int64_t min, int64_t max,
                     const std::string& origin, Int& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  if (!n->is_integer()) return Bad(origin, *n, absl::StrCat(key, " must be an integer"));
  int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    return Bad(origin, *n, absl::StrFormat("%s = %d is out of range (%d..%d)", key, v, min, max));
  }
  out = static_cast<Int>(v);
  return absl::OkStatus();
}

absl::Status ReadPaths(const toml::table& t, const char* key, const std::string& origin,
                       std::vector<std::string>& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  const toml::array* arr = n->as_array();
  if (arr == nullptr) return Bad(origin, *n, absl::StrCat(key, " must be a list of paths"));
  out.clear();
  for (const toml::node& item : *arr) {
    if (!item.is_string() || item.as_string()->get().empty() ||
        item.as_string()->get().front() != '/') {
      return Bad(origin, item, absl::StrCat(key, " entries must be absolute paths"));
    }
    out.push_back(item.as_string()->get());
  }
  return absl::OkStatus();
}

absl::Status ReadEnum(const toml::table& t, const char* key, const std::string& origin,
                      const std::vector<std::string>& allowed, int& index) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return absl::OkStatus();
  std::string joined;
  for (const auto& a : allowed) absl::StrAppend(&joined, joined.empty() ? "" : ", ", a);
  if (n->is_string()) {
    for (size_t i = 0; i < allowed.size(); ++i) {
      if (n->as_string()->get() == allowed[i]) {
        index = static_cast<int>(i);
        return absl::OkStatus();
      }
    }
  }
  return Bad(origin, *n, absl::StrCat(key, " must be one of: ", joined));
}

const toml::table* Section(const toml::table& root, const char* name) {
  const toml::node* n = root.get(name);
  return n == nullptr ? nullptr : n->as_table();
}

absl::Status ParseBinds(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(CheckConfigKeys(t,
                                  {"user_bind_control", "default_binds", "mount_home", "mount_tmp",
                                   "mount_proc", "mount_sys", "mount_dev"},
                                  "binds", o));
  RETURN_IF_ERROR(ReadBool(t, "user_bind_control", o, c.user_bind_control));
  RETURN_IF_ERROR(ReadPaths(t, "default_binds", o, c.default_binds));
  RETURN_IF_ERROR(ReadBool(t, "mount_home", o, c.mount_home));
  RETURN_IF_ERROR(ReadBool(t, "mount_tmp", o, c.mount_tmp));
  RETURN_IF_ERROR(ReadBool(t, "mount_proc", o, c.mount_proc));
  RETURN_IF_ERROR(ReadBool(t, "mount_sys", o, c.mount_sys));
  int dev = static_cast<int>(c.mount_dev);
  RETURN_IF_ERROR(ReadEnum(t, "mount_dev", o, {"yes", "minimal", "no"}, dev));
  c.mount_dev = static_cast<DevMode>(dev);
  return absl::OkStatus();
}

absl::Status ParseImages(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(
      CheckConfigKeys(t,
                      {"allowed_dirs", "allowed_owners", "kernel_squashfs", "idle_unmount_seconds",
                       "copy_store_max_mib", "allow_container_dir", "allow_container_squashfs"},
                      "images", o));
  RETURN_IF_ERROR(ReadInt(t, "idle_unmount_seconds", 0, 86400, o, c.idle_unmount_seconds));
  RETURN_IF_ERROR(ReadInt(t, "copy_store_max_mib", 0, 16777216, o, c.copy_store_max_mib));
  RETURN_IF_ERROR(ReadPaths(t, "allowed_dirs", o, c.allowed_image_dirs));
  RETURN_IF_ERROR(ReadBool(t, "allow_container_dir", o, c.allow_container_dir));
  RETURN_IF_ERROR(ReadBool(t, "allow_container_squashfs", o, c.allow_container_squashfs));
  if (const toml::node* n = t.get("allowed_owners")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return Bad(o, *n, "allowed_owners must be a list of uids");
    for (const toml::node& item : *arr) {
      if (!item.is_integer() || item.as_integer()->get() < 0 ||
          item.as_integer()->get() > UINT32_MAX) {
        return Bad(o, item, "allowed_owners entries must be numeric uids");
      }
      c.allowed_image_owners.push_back(static_cast<uint32_t>(item.as_integer()->get()));
    }
  }
  int mode = static_cast<int>(c.kernel_squashfs);
  RETURN_IF_ERROR(ReadEnum(t, "kernel_squashfs", o, {"always", "trusted", "never"}, mode));
  c.kernel_squashfs = static_cast<KernelSquashfs>(mode);
  return absl::OkStatus();
}

absl::Status ParseNamespaces(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(CheckConfigKeys(
      t, {"allow_pid", "allow_ipc", "allow_uts", "allow_user", "allow_net"}, "namespaces", o));
  RETURN_IF_ERROR(ReadBool(t, "allow_pid", o, c.allow_pid_ns));
  RETURN_IF_ERROR(ReadBool(t, "allow_ipc", o, c.allow_ipc_ns));
  RETURN_IF_ERROR(ReadBool(t, "allow_uts", o, c.allow_uts_ns));
  RETURN_IF_ERROR(ReadBool(t, "allow_user", o, c.allow_user_ns));
  RETURN_IF_ERROR(ReadBool(t, "allow_net", o, c.allow_net_ns));
  return absl::OkStatus();
}

// What a user's connections may hold. Sessions default to one per
// container plus a few awaiting their request, and connections to room for
// every session and some gRPC calls beside them.
absl::Status ParseConnectionLimits(const toml::table& t, const std::string& o, Config& c) {
  c.max_sessions_per_user = c.max_containers_per_user + 16;
  RETURN_IF_ERROR(ReadInt(t, "max_sessions_per_user", 1, 1 << 20, o, c.max_sessions_per_user));
  c.max_connections_per_user = std::max(512, c.max_sessions_per_user + 64);
  RETURN_IF_ERROR(
      ReadInt(t, "max_connections_per_user", 1, 1 << 20, o, c.max_connections_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_pending_connections_per_user", 1, 1024, o,
                          c.max_pending_connections_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_handed_fds_per_user", 64, 1 << 20, o, c.max_handed_fds_per_user));
  if (c.max_connections_per_user < c.max_sessions_per_user) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: max_connections_per_user (%d) is lower than max_sessions_per_user (%d): every run "
        "session is a connection",
        o, c.max_connections_per_user, c.max_sessions_per_user));
  }
  return absl::OkStatus();
}

absl::Status ParseLimits(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(CheckConfigKeys(
      t,
      {"max_containers_per_user", "max_images_per_user", "max_loop_devices_per_user",
       "writable_tmpfs_default_mib", "writable_tmpfs_max_mib", "max_sessions_per_user",
       "max_connections_per_user", "max_pending_connections_per_user", "max_handed_fds_per_user",
       "max_store_mib_per_user", "max_cache_mib_per_user", "max_instances_per_user"},
      "limits", o));
  RETURN_IF_ERROR(ReadInt(t, "max_containers_per_user", 1, 100000, o, c.max_containers_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_instances_per_user", 0, 100000, o, c.max_instances_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_images_per_user", 1, 10000, o, c.max_images_per_user));
  RETURN_IF_ERROR(
      ReadInt(t, "max_loop_devices_per_user", 0, 10000, o, c.max_loop_devices_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_store_mib_per_user", 0, 16777216, o, c.max_store_mib_per_user));
  RETURN_IF_ERROR(ReadInt(t, "max_cache_mib_per_user", 0, 16777216, o, c.max_cache_mib_per_user));
  RETURN_IF_ERROR(
      ReadInt(t, "writable_tmpfs_default_mib", 1, 1 << 24, o, c.writable_tmpfs_default_mib));
  RETURN_IF_ERROR(ReadInt(t, "writable_tmpfs_max_mib", 1, 1 << 24, o, c.writable_tmpfs_max_mib));
  if (c.writable_tmpfs_default_mib > c.writable_tmpfs_max_mib) {
    return absl::InvalidArgumentError(
        absl::StrCat(o, ": writable_tmpfs_default_mib is larger than writable_tmpfs_max_mib"));
  }
  return ParseConnectionLimits(t, o, c);
}

absl::Status ParseBuild(const toml::table& t, const std::string& o, Config& c) {
  return ParseBuildTable(t, o, c.build);
}

absl::Status ParseRegistry(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(
      CheckConfigKeys(t,
                      {"insecure", "ca_file", "max_manifest_bytes", "max_blob_bytes",
                       "parallel_downloads", "stall_timeout_seconds", "attempts", "cache_max_mib"},
                      "registry", o));
  if (const toml::node* n = t.get("insecure")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return Bad(o, *n, "insecure must be a list of host[:port]");
    for (const toml::node& item : *arr) {
      if (!item.is_string() || item.as_string()->get().empty() ||
          item.as_string()->get().find_first_of("/ @") != std::string::npos) {
        return Bad(o, item, "insecure entries must be host[:port]");
      }
      c.insecure_registries.push_back(item.as_string()->get());
    }
  }
  if (const toml::node* n = t.get("ca_file")) {
    if (!n->is_string() || n->as_string()->get().empty() || n->as_string()->get()[0] != '/') {
      return Bad(o, *n, "ca_file must be an absolute path");
    }
    c.registry_ca_file = n->as_string()->get();
  }
  RETURN_IF_ERROR(ReadInt(t, "max_manifest_bytes", 1024, 64 << 20, o, c.max_manifest_bytes));
  RETURN_IF_ERROR(ReadInt(t, "max_blob_bytes", 1, int64_t{1} << 50, o, c.max_blob_bytes));
  RETURN_IF_ERROR(ReadInt(t, "parallel_downloads", 1, 64, o, c.parallel_downloads));
  RETURN_IF_ERROR(ReadInt(t, "stall_timeout_seconds", 1, 3600, o, c.registry_stall_seconds));
  RETURN_IF_ERROR(ReadInt(t, "attempts", 1, 20, o, c.registry_attempts));
  RETURN_IF_ERROR(ReadInt(t, "cache_max_mib", 0, 16777216, o, c.cache_max_mib));
  return absl::OkStatus();
}

absl::Status ParseMpi(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(CheckConfigKeys(t, {"share_slurm_steps", "default_stack"}, "mpi", o));
  RETURN_IF_ERROR(ReadBool(t, "share_slurm_steps", o, c.share_slurm_steps));
  if (const toml::node* n = t.get("default_stack")) {
    const std::string* v = n->is_string() ? &n->as_string()->get() : nullptr;
    if (v == nullptr || !mpi::IsValidStackName(*v)) {
      return Bad(o, *n, "default_stack must name a stack of mpi.d (letters, digits, '_', '-')");
    }
    c.default_mpi_stack = *v;
  }
  return absl::OkStatus();
}

absl::Status ParseGpu(const toml::table& t, const std::string& o, Config& c) {
  RETURN_IF_ERROR(CheckConfigKeys(
      t, {"always_use_nv", "always_use_rocm", "cdi_dirs", "test_driver_root"}, "gpu", o));
  RETURN_IF_ERROR(ReadBool(t, "always_use_nv", o, c.always_use_nv));
  RETURN_IF_ERROR(ReadBool(t, "always_use_rocm", o, c.always_use_rocm));
  RETURN_IF_ERROR(ReadPaths(t, "cdi_dirs", o, c.cdi_dirs));
  RETURN_IF_ERROR(ReadString(t, "test_driver_root", o, c.gpu_test_driver_root));
  if (!c.gpu_test_driver_root.empty() && c.gpu_test_driver_root.front() != '/') {
    return Bad(o, *t.get("test_driver_root"), "test_driver_root must be an absolute path");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::string& text, const std::string& origin) {
  ASSIGN_OR_RETURN(const toml::table root, ParseTomlFile(text, origin));
  RETURN_IF_ERROR(CheckConfigKeys(
      root, {"binds", "images", "namespaces", "limits", "registry", "gpu", "build", "mpi"}, "",
      origin));
  Config config;
  struct SectionParser {
    const char* name;
    absl::Status (*parse)(const toml::table&, const std::string&, Config&);
  };
  for (SectionParser s :
       {SectionParser{"binds", ParseBinds}, SectionParser{"images", ParseImages},
        SectionParser{"namespaces", ParseNamespaces}, SectionParser{"limits", ParseLimits},
        SectionParser{"registry", ParseRegistry}, SectionParser{"gpu", ParseGpu},
        SectionParser{"build", ParseBuild}, SectionParser{"mpi", ParseMpi}}) {
    const toml::node* node = root.get(s.name);
    if (node == nullptr) continue;
    const toml::table* table = Section(root, s.name);
    if (table == nullptr) return Bad(origin, *node, absl::StrCat("[", s.name, "] must be a table"));
    RETURN_IF_ERROR(s.parse(*table, origin, config));
  }
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& config_dir, bool require_root_owned) {
  std::string path = absl::StrCat(config_dir, "/berth.conf");
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadPolicyFile(path, require_root_owned));
  if (!text) return Config{};
  return ParseConfig(*text, path);
}

bool PathWithinDir(const std::string& path, const std::string& dir) {
  if (dir == "/") return absl::StartsWith(path, "/");
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return path == d || absl::StartsWith(path, d + "/");
}

}  // namespace berth::daemon::policy
