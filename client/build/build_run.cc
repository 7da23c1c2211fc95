#include "client/build/build_run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/action/bind_spec.h"
#include "client/build/build_base.h"
#include "client/build/build_metadata.h"
#include "client/build/build_spec.h"
#include "client/build/dry_run.h"
#include "client/cli_log.h"
#include "client/output/temp_beside.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/fd_handoff.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "deffile/bootstrap.h"
#include "proto/status_mapping.h"

extern char** environ;

namespace berth::client {
namespace {

// Proxies and TERM reach %post; the GPU choice only tells the daemon which
// GPUs --nv/--rocm give (it never enters the build's environment); INCLUDE
// adds packages to a debootstrap, yum or zypper base, as in Apptainer.
void AddEnvironment(v1::BuildRequest& r) {
  static constexpr const char* kGpuChoice[] = {"cuda_visible_devices", "nvidia_visible_devices",
                                               "rocr_visible_devices", "slurm_step_gpus",
                                               "slurm_job_gpus"};
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string name = absl::AsciiStrToLower(kv.substr(0, kv.find('=')));
    bool gpu =
        std::find(std::begin(kGpuChoice), std::end(kGpuChoice), name) != std::end(kGpuChoice);
    const bool include = absl::StartsWith(kv, "INCLUDE=");
    if (absl::EndsWith(name, "_proxy") || name == "term" || gpu || include) r.add_env(kv);
  }
}

// -B and --mount as a run parses them (relative sources from the working
// directory); berthd opens each source with the caller's rights.
absl::Status AddBinds(const BuildFlags& flags, v1::BuildRequest& r) {
  if (flags.binds.empty() && flags.mounts.empty()) return absl::OkStatus();
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return ErrnoStatus("the working directory", errno);
  std::vector<BindEntry> entries;
  for (const std::string& value : flags.binds) {
    ASSIGN_OR_RETURN(std::vector<BindEntry> parsed, ParseBinds(value, cwd));
    entries.insert(entries.end(), parsed.begin(), parsed.end());
  }
  for (const std::string& value : flags.mounts) {
    ASSIGN_OR_RETURN(BindEntry parsed, ParseMount(value, cwd));
    entries.push_back(std::move(parsed));
  }
  for (const BindEntry& b : entries) {
    if (!b.image_src.empty()) {
      return absl::UnimplementedError(
          absl::StrCat("--bind ", b.source, ": image-src is not supported by build"));
    }
    v1::BuildBind* bind = r.add_binds();
    bind->set_source(b.source);
    bind->set_destination(b.destination);
    bind->set_read_only(b.read_only);
  }
  return absl::OkStatus();
}

v1::BuildRequest MakeRequest(const BuildFlags& flags, const SquashOptions& squash,
                             const BuildSpec& spec) {
  v1::BuildRequest r;
  r.set_definition(spec.bytes);
  r.set_definition_name(BaseOf(spec.name));
  for (const std::string& a : flags.build_args) r.add_build_args(a);
  r.set_warn_unused_build_args(flags.warn_unused_build_args);
  r.set_sandbox(flags.sandbox);
  r.set_update(flags.update);
  r.set_notest(flags.notest);
  r.set_writable_tmpfs(flags.writable_tmpfs);
  for (const std::string& s : flags.sections) r.add_sections(s);
  r.set_fix_perms(flags.fix_perms);
  r.set_cache(flags.cache);
  r.set_nv(flags.nv);
  r.set_rocm(flags.rocm);
  r.set_ignore_subuid(flags.ignore_subuid);
  r.set_compressor(squash.compressor);
  r.set_compression_level(squash.level);
  r.set_processors(squash.processors);
  r.set_block_size(squash.block_size);
  r.set_tmpdir(flags.tmpdir);
  AddEnvironment(r);
  return r;
}

// What the user sees of a build's phases: on a terminal, the current
// phase's line is redrawn with its percent and the time left; elsewhere
// (job logs) one plain INFO line per phase.
class PhaseDisplay {
 public:
  PhaseDisplay() : tty_(::isatty(STDERR_FILENO) != 0) {}

  void Show(const v1::BuildOutput& out) {
    if (out.has_log()) {
      Break();
      (void)WriteAll(STDOUT_FILENO, {reinterpret_cast<const uint8_t*>(out.log().data().data()),
                                     out.log().data().size()});
    } else if (out.has_message()) {
      Break();
      out.message().warning() ? log::Warning(out.message().text())
                              : log::Info(out.message().text());
    } else if (out.has_phase()) {
      ShowPhase(out.phase());
    }
  }

  // The closing summary: each phase's time, then the total.
  void Summary(const v1::BuildResult& result) {
    Break();
    if (result.phases().empty()) return;
    std::string line = "Build phases:";
    double total = 0;
    for (const v1::BuildPhase& p : result.phases()) {
      absl::StrAppend(&line, " ", p.name(), " ", absl::StrFormat("%.1fs", p.seconds()), ",");
      total += p.seconds();
    }
    absl::StrAppend(&line, absl::StrFormat(" total %.1fs", total));
    log::Info(line);
  }

 private:
  static std::string Title(const v1::BuildPhase& p) {
    return absl::StrCat(p.name(), p.detail().empty() ? "" : ": ", p.detail());
  }

  void ShowPhase(const v1::BuildPhase& p) {
    if (!tty_) {
      // Plain lines: the phase's start only.
      if (!p.finished() && p.done() == 0) log::Info(Title(p));
      return;
    }
    if (!p.finished() && p.done() == 0 && p.total() == 0) {
      Break();
      started_ = absl::Now();
      Redraw(absl::StrCat("INFO:    ", Title(p)));
      return;
    }
    if (p.finished()) {
      Redraw(absl::StrCat("INFO:    ", Title(p), absl::StrFormat(" (%.1fs)", p.seconds())));
      Break();
      return;
    }
    std::string line = absl::StrCat("INFO:    ", Title(p));
    if (p.total() > 0) {
      const double fraction = static_cast<double>(p.done()) / static_cast<double>(p.total());
      absl::StrAppend(&line, absl::StrFormat(" %3.0f%%", 100 * fraction));
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - started_);
      if (fraction > 0.02 && elapsed > 1) {
        absl::StrAppend(&line,
                        absl::StrFormat(", %.0fs left", elapsed * (1 - fraction) / fraction));
      }
    }
    Redraw(line);
  }

  void Redraw(const std::string& line) {
    std::string text = absl::StrCat("\r", line, "\x1b[K");
    (void)WriteAll(STDERR_FILENO, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    open_ = true;
  }

  // Ends the redrawn line, before anything else is written.
  void Break() {
    if (!open_) return;
    (void)WriteAll(STDERR_FILENO, {reinterpret_cast<const uint8_t*>("\n"), 1});
    open_ = false;
  }

  bool tty_;
  bool open_ = false;
  absl::Time started_ = absl::Now();
};

}  // namespace

absl::Status RunDaemonBuild(const std::string& socket_flag, const BuildFlags& flags,
                            const SquashOptions& squash, const std::string& image_arg,
                            const std::string& spec) {
  std::string image = image_arg;  // "sbx/" names the directory "sbx"
  while (image.size() > 1 && image.back() == '/') image.pop_back();
  BuildSpec read;
  ASSIGN_OR_RETURN(deffile::ParsedFile file, ParseBuildSpec(flags, spec, &read));
  RETURN_IF_ERROR(deffile::CheckBuilderSupports(file.stages, spec));
  v1::BuildRequest binds;  // parsed before any pull: a bad bind fails at once
  RETURN_IF_ERROR(AddBinds(flags, binds));
  struct stat st {};
  // --update over an existing sandbox: its sections run in it, no base.
  const bool exists = ::lstat(image.c_str(), &st) == 0;
  const bool update = flags.update && exists && S_ISDIR(st.st_mode);
  if (!flags.force && !update && exists) {
    return absl::AlreadyExistsError(
        absl::StrCat("build target '", image, "' already exists; use --force to overwrite it"));
  }
  // Every stage's base, in order (a stage is built from its own).
  std::vector<UniqueFd> sources;
  bool fingerprints = false;
  for (const deffile::Definition& stage : file.stages) {
    if (update) break;
    ASSIGN_OR_RETURN(UniqueFd source,
                     OpenBuildBase(stage, {socket_flag, image, flags.authfile, flags.arch,
                                           flags.no_https, flags.disable_cache}));
    sources.push_back(std::move(source));
    fingerprints |= !stage.Fingerprints().empty();
  }
  ASSIGN_OR_RETURN(UniqueFd cwd, OpenFile(".", O_RDONLY | O_DIRECTORY));
  std::pair<UniqueFd, std::string> temp;
  if (update) {
    ASSIGN_OR_RETURN(temp.first, OpenFile(image, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  } else {
    ASSIGN_OR_RETURN(temp,
                     flags.sandbox ? CreateTempDirBeside(image) : CreateTempFileBeside(image));
  }
  bool keep = update;
  absl::Cleanup remove_temp = [&] {
    // (a failed sandbox build's tree was emptied by berthd)
    if (!keep) flags.sandbox ? ::rmdir(temp.second.c_str()) : ::unlink(temp.second.c_str());
  };
  v1::BuildRequest request = MakeRequest(flags, squash, read);
  request.mutable_binds()->Swap(binds.mutable_binds());
  request.set_update(update);
  request.set_output_index(0);
  request.set_cwd_index(1);
  std::vector<int> handed = {temp.first.get(), cwd.get()};
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!sources[i].valid()) continue;
    v1::BuildSource* src = request.add_sources();
    src->set_stage(static_cast<uint32_t>(i));
    src->set_handoff_index(static_cast<uint32_t>(handed.size()));
    handed.push_back(sources[i].get());
  }
  if (handed.size() > kMaxHandoffFds) {
    return absl::InvalidArgumentError(absl::StrCat("the definition has ", handed.size() - 2,
                                                   " stages with a base; berth build ",
                                                   "takes at most ", kMaxHandoffFds - 2));
  }
  if (fingerprints) {
    ASSIGN_OR_RETURN(*request.mutable_keyring(), PublicKeysForFingerprints());
  }
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket, handed));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  log::Info("Starting build...");
  auto reader = stub->Build(&context, request);
  v1::BuildOutput out;
  PhaseDisplay display;
  std::optional<v1::BuildResult> result;
  while (reader->Read(&out)) {
    if (out.has_result()) result = out.result();
    display.Show(out);
  }
  std::fflush(stdout);
  if (result) display.Summary(*result);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!result) return absl::InternalError("berth build: berthd sent no result");
  if (!flags.sandbox) {
    RETURN_IF_ERROR_CTX(AddInspectMetadata(temp.second), "adding inspect-metadata.json");
  }
  if (!update && ::rename(temp.second.c_str(), image.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming the built image to ", image), errno);
  }
  keep = true;
  log::Info(absl::StrCat("Build complete: ", image));
  return absl::OkStatus();
}

}  // namespace berth::client
