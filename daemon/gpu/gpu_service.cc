#include "daemon/gpu/gpu_service.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/gpu/cdi_edits.h"
#include "daemon/gpu/elf_ident.h"
#include "daemon/gpu/ld_cache.h"
#include "daemon/gpu/liblist.h"
#include "daemon/gpu/libs_tree.h"
#include "daemon/policy/config_file.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::gpu {
namespace {

constexpr size_t kMaxLdCacheBytes = 16 << 20;
constexpr size_t kMaxDevicesPerRequest = 256;

const char* ListName(Vendor vendor) {
  return vendor == Vendor::kNvidia ? "nvliblist.conf" : "rocmliblist.conf";
}

absl::StatusOr<std::string> ReadLdCache(const DriverRoot& root) {
  ASSIGN_OR_RETURN(UniqueFd fd, root.OpenPath("/etc/ld.so.cache", O_RDONLY | O_NONBLOCK));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(root.Display("/etc/ld.so.cache"), errno);
  if (!S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > kMaxLdCacheBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(root.Display("/etc/ld.so.cache"), ": not a regular file of at most 16 MiB"));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadFull(fd.get(), std::span(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0));
  return bytes;
}

}  // namespace

GpuService::GpuService(const DaemonOptions& options, const policy::Config& config)
    : options_(options), config_(config), cdi_(options.mode == DaemonMode::kSystem) {}

absl::StatusOr<const DriverRoot*> GpuService::Root() {
  absl::MutexLock lock(&mu_);
  if (!root_) {
    root_ =
        DriverRoot::Open(config_.gpu_test_driver_root.empty() ? "/" : config_.gpu_test_driver_root);
  }
  if (!root_->ok()) return root_->status();
  return &**root_;
}

absl::StatusOr<std::shared_ptr<const DriverFiles>> GpuService::Files(Vendor vendor,
                                                                     const DriverRoot& root) {
  auto key_of = [](int dirfd, const std::string& path) {
    struct stat st;
    FileKey k;
    if (::fstatat(dirfd, path.c_str(), &st, 0) != 0) return k;
    return FileKey{true,
                   st.st_dev,
                   st.st_ino,
                   st.st_size,
                   st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                   st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
  };
  std::string list_path = absl::StrCat(options_.config_dir, "/", ListName(vendor));
  FileKey list = key_of(AT_FDCWD, list_path), cache = key_of(root.fd(), "etc/ld.so.cache");
  Resolved& slot = resolved_[static_cast<int>(vendor)];
  {
    absl::MutexLock lock(&mu_);
    if (slot.files && slot.list == list && slot.ld_cache == cache) return slot.files;
  }
  ASSIGN_OR_RETURN(auto files, Resolve(vendor, root, list_path));
  absl::MutexLock lock(&mu_);
  slot = Resolved{list, cache, files};
  return files;
}

// Once per change of the list or the loader cache (GpuService's header).
absl::StatusOr<std::shared_ptr<const DriverFiles>> GpuService::Resolve(
    Vendor vendor, const DriverRoot& root, const std::string& list_path) {
  ASSIGN_OR_RETURN(std::optional<std::string> text,
                   policy::ReadPolicyFile(list_path, options_.mode == DaemonMode::kSystem));
  if (!text) {
    return absl::FailedPreconditionError(
        absl::StrCat(list_path, ": missing (install packaging/", ListName(vendor), " there)"));
  }
  ASSIGN_OR_RETURN(std::vector<LibListEntry> list, ParseLibList(*text, list_path));
  std::vector<LdCacheEntry> cache;
  if (auto bytes = ReadLdCache(root); bytes.ok()) {
    auto parsed = ParseLdCache(*bytes);
    if (!parsed.ok()) return Annotate(parsed.status(), root.Display("/etc/ld.so.cache"));
    cache = *std::move(parsed);
  } else if (!absl::IsNotFound(bytes.status())) {
    return bytes.status();
  }
  ASSIGN_OR_RETURN(ElfIdent native, NativeElfIdent());
  auto files = std::make_shared<DriverFiles>(ResolveDriverFiles(list, cache, root, native));
  if (auto tree = BuildLibsTree(files->libraries); tree.ok()) {
    files->libs_tree = *std::move(tree);
  } else {
    spdlog::info("{}: binding the libraries one by one ({})", ListName(vendor),
                 std::string(tree.status().message()));
  }
  spdlog::info("{}: {} libraries and {} other files from {}{}{}", ListName(vendor),
               files->libraries.size(), files->files.size(), root.path(),
               files->missing.empty() ? "" : "; not found: ", absl::StrJoin(files->missing, ", "));
  return std::shared_ptr<const DriverFiles>(std::move(files));
}

absl::StatusOr<std::vector<CdiDir>> GpuService::Dirs(const std::vector<std::string>& requested,
                                                     const image::CallerCreds& caller) const {
  std::vector<CdiDir> dirs;
  if (requested.empty()) {
    for (const std::string& d : config_.cdi_dirs) dirs.push_back({d, UniqueFd()});
    return dirs;
  }
  if (requested.size() > 64)
    return absl::InvalidArgumentError("--cdi-dirs: more than 64 directories");
  for (const std::string& d : requested) {
    RETURN_IF_ERROR(image::ValidateCallerPath(d, "--cdi-dirs"));
    auto fd = image::OpenAsCaller(caller, d, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) return Annotate(fd.status(), "--cdi-dirs");
    dirs.push_back({d, *std::move(fd)});
  }
  return dirs;
}

absl::Status GpuService::AddCdi(const GpuRequest& request, const image::CallerCreds& caller,
                                GpuGrant& grant) {
  std::vector<std::string> names;
  for (const std::string& list : request.devices) {
    for (absl::string_view n : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      names.emplace_back(absl::StripAsciiWhitespace(n));
    }
  }
  if (names.empty()) return absl::OkStatus();
  if (names.size() > kMaxDevicesPerRequest) {
    return absl::InvalidArgumentError("--device: more than 256 devices");
  }
  ASSIGN_OR_RETURN(std::vector<CdiDir> dirs, Dirs(request.cdi_dirs, caller));
  CdiCatalog catalog = cdi_.Catalog(std::move(dirs));
  EditContext ctx{options_.mode == DaemonMode::kSystem, caller.gid, caller.groups};
  std::set<const CdiSpec*> specs_applied;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(const CdiDeviceRef* ref, CdiRegistry::Find(catalog, name));
    std::string who = absl::StrCat("CDI device ", name, " (", ref->origin, ")");
    if (specs_applied.insert(ref->spec.get()).second) {
      RETURN_IF_ERROR(ApplyCdiEdits(ref->spec->edits, who, ctx, grant));
    }
    RETURN_IF_ERROR(ApplyCdiEdits(ref->spec->devices[ref->device].edits, who, ctx, grant));
  }
  return absl::OkStatus();
}

absl::StatusOr<GpuGrant> GpuService::Prepare(const GpuRequest& request,
                                             const image::CallerCreds& caller) {
  GpuGrant grant;
  bool nv = (request.nv || config_.always_use_nv) && !request.no_nv;
  bool rocm = (request.rocm || config_.always_use_rocm) && !request.no_rocm;
  if (nv) RETURN_IF_ERROR_CTX(AddVendor(Vendor::kNvidia, request, grant), "--nv");
  if (rocm) RETURN_IF_ERROR_CTX(AddVendor(Vendor::kAmd, request, grant), "--rocm");
  RETURN_IF_ERROR(AddCdi(request, caller, grant));
  return grant;
}

absl::StatusOr<CdiCatalog> GpuService::ListCdi(const std::vector<std::string>& cdi_dirs,
                                               const image::CallerCreds& caller) {
  ASSIGN_OR_RETURN(std::vector<CdiDir> dirs, Dirs(cdi_dirs, caller));
  return cdi_.Catalog(std::move(dirs));
}

}  // namespace berth::daemon::gpu
