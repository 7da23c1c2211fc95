#include "client/build/build_run.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/build/build_base.h"
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

void AddEnvironment(v1::BuildRequest& r) {
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string name = absl::AsciiStrToLower(kv.substr(0, kv.find('=')));
    if (absl::EndsWith(name, "_proxy") || name == "term") r.add_env(kv);
  }
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
  for (const std::string& s : flags.sections) r.add_sections(s);
  r.set_fix_perms(flags.fix_perms);
  r.set_ignore_subuid(flags.ignore_subuid);
  r.set_compressor(squash.compressor);
  r.set_compression_level(squash.level);
  r.set_processors(squash.processors);
  r.set_block_size(squash.block_size);
  r.set_tmpdir(flags.tmpdir);
  AddEnvironment(r);
  return r;
}

void Show(const v1::BuildOutput& out, bool& in_phase) {
  if (out.has_log()) {
    (void)WriteAll(STDOUT_FILENO, {reinterpret_cast<const uint8_t*>(out.log().data().data()),
                                   out.log().data().size()});
  } else if (out.has_message()) {
    if (out.message().warning()) {
      log::Warning(out.message().text());
    } else {
      log::Info(out.message().text());
    }
  } else if (out.has_phase()) {
    const v1::BuildPhase& p = out.phase();
    if (p.finished() || p.done() != 0) return;
    log::Info(absl::StrCat(p.name(), p.detail().empty() ? "" : ": ", p.detail()));
    in_phase = true;
  }
}

}  // namespace

absl::Status RunDaemonBuild(const std::string& socket_flag, const BuildFlags& flags,
                            const SquashOptions& squash, const std::string& image_arg,
                            const std::string& spec) {
  std::string image = image_arg;  // "sbx/" names the directory "sbx"
  while (image.size() > 1 && image.back() == '/') image.pop_back();
  BuildSpec read;
  ASSIGN_OR_RETURN(deffile::ParsedFile file, ParseBuildSpec(flags, spec, &read));
  RETURN_IF_ERROR(deffile::CheckBuilderSupports(file.stages, spec));
  struct stat st {};
  if (!flags.force && ::lstat(image.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("build target '", image, "' already exists; use --force to overwrite it"));
  }
  // Every stage's base, in order (a stage is built from its own).
  std::vector<UniqueFd> sources;
  bool fingerprints = false;
  for (const deffile::Definition& stage : file.stages) {
    ASSIGN_OR_RETURN(UniqueFd source, OpenBuildBase(stage, {socket_flag, image, flags.authfile,
                                                            flags.arch, flags.no_https}));
    sources.push_back(std::move(source));
    fingerprints |= !stage.Fingerprints().empty();
  }
  ASSIGN_OR_RETURN(UniqueFd cwd, OpenFile(".", O_RDONLY | O_DIRECTORY));
  ASSIGN_OR_RETURN(auto temp,
                   flags.sandbox ? CreateTempDirBeside(image) : CreateTempFileBeside(image));
  bool keep = false;
  absl::Cleanup remove_temp = [&] {
    // (a failed sandbox build's tree was emptied by berthd)
    if (!keep) flags.sandbox ? ::rmdir(temp.second.c_str()) : ::unlink(temp.second.c_str());
  };
  v1::BuildRequest request = MakeRequest(flags, squash, read);
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
  bool got_result = false, in_phase = false;
  while (reader->Read(&out)) {
    if (out.has_result()) got_result = true;
    Show(out, in_phase);
  }
  std::fflush(stdout);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!got_result) return absl::InternalError("berth build: berthd sent no result");
  if (::rename(temp.second.c_str(), image.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming the built image to ", image), errno);
  }
  keep = true;
  log::Info(absl::StrCat("Build complete: ", image));
  return absl::OkStatus();
}

}  // namespace berth::client
