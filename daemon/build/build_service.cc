#include "daemon/build/build_service.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/build_context.h"
#include "daemon/build/builder.h"
#include "daemon/build/stage_cache.h"
#include "daemon/fakeroot/fakeroot_ids.h"
#include "daemon/image/open_as_caller.h"
#include "daemon/service/caller_process.h"
#include "deffile/bootstrap.h"
#include "deffile/deffile.h"
#include "deffile/json_reader.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::build {
namespace {

constexpr const char* kSystemBuildDir = "/var/tmp/berth-build";

absl::StatusOr<UniqueFd> TakeFd(std::vector<UniqueFd>& fds, uint32_t index, const char* what) {
  if (index >= fds.size() || !fds[index]) {
    return absl::InvalidArgumentError(absl::StrCat("the request names no ", what));
  }
  return std::move(fds[index]);
}

absl::StatusOr<deffile::ParsedFile> Parse(const v1::BuildRequest& r, Progress& progress) {
  deffile::BuildArgs args;
  std::vector<std::string> warnings;
  deffile::AddBuildArgFile(args, r.build_arg_file(), warnings);
  for (const std::string& a : r.build_args()) RETURN_IF_ERROR(deffile::AddBuildArg(args, a));
  args.warn_unused = r.warn_unused_build_args();
  std::string name = r.definition_name().empty() ? "definition" : r.definition_name();
  // The client's parse is not trusted: the bytes are parsed here again,
  // JSON or text alike, with every check.
  ASSIGN_OR_RETURN(deffile::ParsedFile file, deffile::ParseDefinition(r.definition(), name, args));
  for (const std::string& w : warnings) progress.Warning(w);
  for (const std::string& w : file.warnings) progress.Warning(w);
  return file;
}

// The caller's fakeroot ids (their subuid range, or root-mapped with
// Apptainer's INFO line) and cgroups.
absl::Status FillCaller(const DaemonOptions& options, const PeerIdentity& peer, Caller& c,
                        Progress& progress) {
  c.uid = peer.uid;
  c.gid = peer.gid;
  c.groups = peer.groups;
  c.pid = peer.pid;
  fakeroot::Sources sources{options.subuid_path, options.subgid_path,
                            options.mode == DaemonMode::kUser};
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  if (::getpwuid_r(peer.uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    c.name = pw.pw_name;
  }
  ASSIGN_OR_RETURN(fakeroot::Ids ids, fakeroot::ResolveIds(sources, {peer.uid, peer.gid, c.name}));
  if (!ids.notice.empty()) progress.Info(ids.notice);
  c.uid_map = std::move(ids.uid_map);
  c.gid_map = std::move(ids.gid_map);
  c.ranges = ids.mode == fakeroot::Mode::kSubidRanges;
  ASSIGN_OR_RETURN(CallerProcess process, ReadCallerProcess(peer.pid, peer.pidfd->get()));
  c.cgroup_dirs = std::move(process.cgroup_dirs);
  for (const std::string& dir : c.cgroup_dirs) {
    if (::access(absl::StrCat(dir, "/cgroup.controllers").c_str(), F_OK) == 0) c.cgroup_v2 = dir;
  }
  return absl::OkStatus();
}

}  // namespace

static absl::StatusOr<std::string> ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return ErrnoStatus(path, errno);
  return std::string(buf, static_cast<size_t>(n));
}

std::string DefaultWorkerPath() {
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "berth-build-worker";
  std::string dir(self, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  std::string beside = absl::StrCat(dir, "/berth-build-worker");
  if (::access(beside.c_str(), X_OK) == 0) return beside;
  return absl::StrCat(dir, "/../libexec/berth/berth-build-worker");
}

BuildService::BuildService(const DaemonOptions& options, const policy::Config& config,
                           gpu::GpuService* gpus, pull::BlobCache* cache)
    : options_(options), config_(config), gpus_(gpus), cache_(cache), records_(options.state_dir) {}

absl::Status BuildService::Init(const std::string& worker_path) {
  // Without the worker the daemon still serves everything but builds.
  auto worker = OpenFile(worker_path, O_PATH);
  if (worker.ok()) {
    worker_ = *std::move(worker);
  } else {
    worker_error_ = std::string(worker.status().message());
    spdlog::warn("builds are unavailable: {}", worker_error_);
  }
  default_base_ = DefaultBase();
  RETURN_IF_ERROR(records_.Init());
  ASSIGN_OR_RETURN(int swept, records_.SweepStaleBuilds());
  if (swept > 0) spdlog::info("removed {} stale build staging trees", swept);
  return absl::OkStatus();
}

std::string BuildService::DefaultBase() const {
  if (!config_.build.build_dir.empty()) return config_.build.build_dir;
  // The state directory is the daemon's alone (0700); %setup must reach
  // the root by its path as the caller, so a system daemon stages beside.
  if (options_.mode == DaemonMode::kUser) return absl::StrCat(options_.state_dir, "/build");
  return kSystemBuildDir;
}

// The base the daemon stages in: created 0711 (searchable by the fakeroot
// users who write beneath it, listable by none) and, in system mode, root's
// and writable by nobody else, or a user who made it first (/var/tmp is
// world-writable) would own every build's staging.
static absl::StatusOr<UniqueFd> OpenDefaultBase(const std::string& path) {
  if (::mkdir(path.c_str(), 0711) != 0 && errno != EEXIST) return ErrnoStatus(path, errno);
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(path, errno);
  if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "build_dir ", path, " must be the daemon's and writable by nobody else (mode 0711)"));
  }
  return fd;
}

absl::StatusOr<UniqueFd> BuildService::StagingBase(const v1::BuildRequest& request,
                                                   const PeerIdentity& peer,
                                                   std::string& path) const {
  if (request.tmpdir().empty()) {
    path = default_base_;
    return OpenDefaultBase(default_base_);
  }
  if (!config_.build.allow_user_tmpdir) {
    return absl::PermissionDeniedError(
        "--tmpdir: the administrator does not allow user staging directories (berth.conf "
        "build.allow_user_tmpdir)");
  }
  path = request.tmpdir();
  RETURN_IF_ERROR(image::ValidateCallerPath(path, "--tmpdir"));
  image::CallerCreds creds{peer.uid, peer.gid, peer.groups};
  // The caller's own right to create entries there, checked as the caller.
  auto dir = image::OpenPathAsCaller(creds, path, W_OK | X_OK);
  if (!dir.ok()) return Annotate(dir.status(), "--tmpdir");
  struct stat st {};
  if (::fstat(dir->get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("--tmpdir ", path, ": not a directory"));
  }
  return dir;
}

namespace {

// One base per stage, in stage order: scratch stages and those a host tool
// makes (debootstrap, yum, zypper) have none, every
// other stage exactly one, handed over.
absl::StatusOr<std::vector<UniqueFd>> TakeSources(const v1::BuildRequest& request,
                                                  const deffile::ParsedFile& file,
                                                  std::vector<UniqueFd>& fds) {
  std::vector<UniqueFd> sources(file.stages.size());
  if (request.update()) {
    // --update runs the sections over the sandbox as it is: no base.
    if (!request.sandbox()) {
      return absl::InvalidArgumentError(
          "only sandbox update is supported: --sandbox flag is missing");
    }
    if (file.stages.size() != 1 || request.sources_size() != 0) {
      return absl::InvalidArgumentError(
          "--update runs one stage over the sandbox and takes no bootstrap source");
    }
    return sources;
  }
  for (const v1::BuildSource& s : request.sources()) {
    if (s.stage() >= file.stages.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a bootstrap source for stage ", s.stage(), ", which does not exist"));
    }
    if (sources[s.stage()].valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("two bootstrap sources for stage ", s.stage() + 1));
    }
    ASSIGN_OR_RETURN(sources[s.stage()], TakeFd(fds, s.handoff_index(), "bootstrap source"));
  }
  for (size_t i = 0; i < file.stages.size(); ++i) {
    const deffile::Agent agent = deffile::AgentOf(file.stages[i]);
    const bool none = agent == deffile::Agent::kScratch || deffile::BuiltByHostTool(agent);
    if (none && sources[i].valid()) {
      return absl::InvalidArgumentError(absl::StrCat("Bootstrap: ", file.stages[i].Bootstrap(),
                                                     " takes no bootstrap source (stage ", i + 1,
                                                     ")"));
    }
    if (!none && !sources[i].valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the request must hand over the bootstrap source of stage ", i + 1));
    }
  }
  return sources;
}

}  // namespace

absl::Status BuildService::Build(grpc::ServerContext& context, const v1::BuildRequest& request,
                                 BuildWriter& writer, const PeerIdentity& peer) {
  // The client's preamble: output, working directory, then the stages'
  // bases, each checked for the access the build needs through it (never
  // O_PATH).
  std::vector<HandedItem> items = {{request.sandbox() ? "the sandbox directory" : "the output file",
                                    request.sandbox() ? HandedAccess::kRead : HandedAccess::kWrite},
                                   {"the working directory", HandedAccess::kRead}};
  while (items.size() < kMaxHandoffFds) items.push_back({"a bootstrap image", HandedAccess::kRead});
  ASSIGN_OR_RETURN(std::vector<UniqueFd> fds, peer.handed_fds->Take(items));
  absl::Cleanup done = [&peer] { peer.handed_fds->Done(); };
  if (!worker_) {
    return absl::UnavailableError(absl::StrCat("berthd cannot build: ", worker_error_));
  }
  Progress progress([&writer](const v1::BuildOutput& out) { return writer.Write(out); });
  ASSIGN_OR_RETURN(deffile::ParsedFile file, Parse(request, progress));
  RETURN_IF_ERROR(deffile::CheckBuilderSupports(
      file.stages, request.definition_name().empty() ? "definition" : request.definition_name()));
  ASSIGN_OR_RETURN(UniqueFd output, TakeFd(fds, request.output_index(), "output file"));
  ASSIGN_OR_RETURN(std::vector<UniqueFd> sources, TakeSources(request, file, fds));
  std::vector<int> source_fds;
  for (const UniqueFd& s : sources) source_fds.push_back(s.get());
  BuildContext ctx;
  ctx.options = &options_;
  ctx.config = &config_;
  ctx.request = &request;
  ctx.gpus = gpus_;
  ctx.progress = &progress;
  ctx.worker_fd = worker_.get();
  ctx.definition_name = request.definition_name();
  ctx.cancelled = [&context] { return context.IsCancelled(); };
  ASSIGN_OR_RETURN(ctx.cwd, TakeFd(fds, request.cwd_index(), "working directory"));
  RETURN_IF_ERROR(FillCaller(options_, peer, ctx.caller, progress));
  std::string base_path;
  ASSIGN_OR_RETURN(UniqueFd base, StagingBase(request, peer, base_path));
  ASSIGN_OR_RETURN(std::unique_ptr<BuildStaging> staging,
                   BuildStaging::Create(records_, base.get(), base_path, peer.uid, peer.gid));
  ctx.staging = staging.get();
  // The stage cache's entries are pinned while this build runs. Root and
  // the daemon's own user own the node cache, as for pulls.
  std::unique_ptr<pull::BlobCache::Transfer> cache;
  if (cache_ != nullptr && StageCacheWanted(ctx)) {
    cache = cache_->Begin({peer.uid, peer.uid == 0 || peer.uid == ::geteuid()});
    ctx.stage_cache = cache.get();
  }
  spdlog::info("build for uid {} in {}", peer.uid, staging->path());
  v1::BuildOutput out;
  if (request.sandbox()) {
    // Its name as the daemon sees it: only the caller's own %setup uses it.
    ASSIGN_OR_RETURN(std::string path, ReadLink(absl::StrCat("/proc/self/fd/", output.get())));
    RETURN_IF_ERROR_CTX(BuildSandbox(ctx, {&file, output.get(), source_fds}, path),
                        "While performing build");
  } else {
    auto size = BuildSif(ctx, {&file, output.get(), source_fds});
    if (!size.ok()) {
      (void)::ftruncate(output.get(), 0);
      return Annotate(size.status(), "While performing build");
    }
    out.mutable_result()->set_size(*size);
  }
  for (const v1::BuildPhase& p : progress.phases()) *out.mutable_result()->add_phases() = p;
  writer.Write(out);
  return absl::OkStatus();
}

}  // namespace berth::daemon::build
