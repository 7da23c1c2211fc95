#include "client/registry/transfer_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "berth/v1/berth.grpc.pb.h"
#include "client/cli_log.h"
#include "client/output/temp_beside.h"
#include "client/registry/progress.h"
#include "client/rpc/daemon_channel.h"
#include "client/rpc/daemon_locator.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "oras/credentials.h"
#include "oras/reference.h"
#include "proto/status_mapping.h"

namespace berth::client {
namespace {

// Relays the stream to the display; returns the result message.
absl::StatusOr<v1::PullResult> Drain(grpc::ClientReader<v1::PullOutput>& reader,
                                     ProgressDisplay& display, const char* doing) {
  v1::PullOutput out;
  v1::PullResult result;
  bool got_result = false;
  while (reader.Read(&out)) {
    if (out.has_progress()) display.Update(out.progress());
    if (out.has_result()) {
      result = out.result();
      got_result = true;
    }
  }
  display.Done();
  grpc::Status status = reader.Finish();
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!got_result) return absl::InternalError(absl::StrCat(doing, ": berthd sent no result"));
  return result;
}

// Apptainer's uri.Split: the transport before the first ':' when a "//"
// follows it or it is one Apptainer knows; "" otherwise (a file name).
std::pair<std::string, std::string> SplitUri(const std::string& uri) {
  const size_t colon = uri.find(':');
  if (colon == std::string::npos) return {"", uri};
  std::string transport = uri.substr(0, colon);
  std::string rest = uri.substr(colon + 1);
  if (absl::StartsWith(rest, "//")) return {transport, rest};
  for (const char* known : {"library", "shub", "docker", "docker-archive", "docker-daemon", "oci",
                            "oci-archive", "http", "https", "oras"}) {
    if (transport == known) return {transport, rest};
  }
  return {"", uri};
}

}  // namespace

std::string DefaultPullName(const std::string& uri) {
  auto [transport, ref] = SplitUri(uri);
  if (transport.empty()) return "";
  ref.erase(0, ref.find_first_not_of('/'));
  std::string last = ref.substr(ref.rfind('/') == std::string::npos ? 0 : ref.rfind('/') + 1);
  if (transport == "http" || transport == "https") return last;
  std::string tag = "latest";
  if (size_t colon = last.find(':'); colon != std::string::npos) {
    tag = last.substr(colon + 1);
    tag = tag.substr(0, tag.find(':'));
    tag = tag.substr(0, tag.find(','));
    last.resize(colon);
  }
  return absl::StrCat(last, "_", tag, ".sif");
}

absl::StatusOr<v1::RegistryAuth> AuthFor(const std::string& reference,
                                         const std::string& authfile) {
  ASSIGN_OR_RETURN(oras::Reference ref, oras::ParseReference(reference));
  ASSIGN_OR_RETURN(std::optional<oras::Credentials> creds,
                   oras::FindCredentials(oras::CredentialFiles(authfile), ref.registry));
  v1::RegistryAuth auth;
  if (creds) {
    auth.set_username(creds->username);
    auth.set_password(creds->password);
    auth.set_identity_token(creds->identity_token);
  }
  return auth;
}

namespace {

bool IsLocalTransport(const std::string& ref) {
  return absl::StartsWith(ref, "oci:") || absl::StartsWith(ref, "oci-archive:") ||
         absl::StartsWith(ref, "docker-archive:");
}

// oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-archive:PATH[:REF] → PATH, opened as the user.
absl::StatusOr<UniqueFd> OpenLocalImage(const std::string& ref, std::string& display) {
  bool dir = absl::StartsWith(ref, "oci:");
  std::string rest = ref.substr(ref.find(':') + 1);
  std::string path = rest;
  if (absl::StartsWith(ref, "docker-archive:")) {
    path = rest.substr(0, rest.find(':'));
  } else if (size_t colon = rest.rfind(':');
             colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    path = rest.substr(0, colon);
  }
  display = path;
  return OpenFile(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
}

}  // namespace

absl::StatusOr<v1::PullResult> PullInto(const std::string& socket_flag, const PullOptions& options,
                                        int out_fd) {
  const bool local = IsLocalTransport(options.reference);
  UniqueFd input;
  v1::RegistryAuth auth;
  std::string display_name = options.reference;
  if (local) {
    std::string path;
    auto opened = OpenLocalImage(options.reference, path);
    if (!opened.ok()) return Annotate(opened.status(), absl::StrCat("pulling ", options.reference));
    input = *std::move(opened);
  } else {
    ASSIGN_OR_RETURN(oras::Reference ref, oras::ParseReference(options.reference));
    display_name = ref.Display();
    // The caller's own credentials, always: the daemon has none of its own.
    ASSIGN_OR_RETURN(auth, AuthFor(options.reference, options.authfile));
  }
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  std::vector<int> handed = {out_fd};
  if (local) handed.push_back(input.get());
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket, handed));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  v1::PullRequest request;
  request.set_reference(options.reference);
  *request.mutable_auth() = auth;
  request.set_no_https(options.no_https);
  request.set_arch(options.arch);
  request.set_write_output(true);
  request.set_disable_cache(options.disable_cache);
  request.set_build_base(options.build_base);
  if (!options.quiet) log::Info(absl::StrCat("Pulling ", display_name));
  ProgressDisplay display(options.quiet || log::CurrentLevel() < log::Level::kInfo,
                          ::isatty(STDERR_FILENO) == 1);
  auto reader = stub->Pull(&context, request);
  absl::StatusOr<v1::PullResult> result = Drain(*reader, display, "pulling");
  if (!result.ok()) return Annotate(result.status(), absl::StrCat("pulling ", options.reference));
  return result;
}

absl::Status RunPull(const std::string& socket_flag, const PullOptions& options) {
  // Apptainer's order: --name, else the positional name, else the name
  // the URI gives; then --dir in front of it.
  std::string output = !options.name.empty() ? options.name : options.output;
  if (output.empty()) {
    output = DefaultPullName(options.reference);
    if (output.empty()) return absl::InvalidArgumentError("No transport type URI supplied");
  }
  if (!options.dir.empty()) output = absl::StrCat(options.dir, "/", output);
  struct stat st {};
  if (!options.force && ::lstat(output.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("Image file already exists: \"", output, "\" - will not overwrite"));
  }
  // The output is created by us, as the user, next to its final name; the
  // daemon only writes through the descriptor. Renamed into place on success.
  auto temp = CreateTempFileBeside(output);
  if (!temp.ok()) return Annotate(temp.status(), absl::StrCat("pulling ", options.reference));
  auto& [fd, tmp] = *temp;
  bool keep = false;
  absl::Cleanup remove_tmp = [&] {
    if (!keep) ::unlink(tmp.c_str());
  };
  ASSIGN_OR_RETURN(v1::PullResult result, PullInto(socket_flag, options, fd.get()));
  if (::rename(tmp.c_str(), output.c_str()) != 0) {
    return ErrnoStatus(absl::StrCat("renaming the pulled image to ", output), errno);
  }
  keep = true;
  if (!options.quiet) {
    log::Info(absl::StrCat("Wrote ", output, " (", HumanBytes(result.size()), ", ", result.digest(),
                           ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PullForRun(const std::string& socket_flag, const PullOptions& how) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = tmpdir != nullptr && *tmpdir == '/' ? tmpdir : "/tmp";
  std::string dir = base + "/berth-run-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr)
    return ErrnoStatus("creating a directory in " + base, errno);
  PullOptions options;
  options.reference = how.reference;
  options.authfile = how.authfile;
  options.no_https = how.no_https;
  options.output = dir + "/image.sif";
  options.quiet = ::isatty(STDERR_FILENO) != 1;
  absl::Status pulled = RunPull(socket_flag, options);
  if (!pulled.ok()) {
    ::rmdir(dir.c_str());
    return pulled;
  }
  return options.output;
}

void RemovePulledImage(const std::string& path) {
  ::unlink(path.c_str());
  ::rmdir(DirOf(path).c_str());
}

absl::Status RunPush(const std::string& socket_flag, const PushOptions& options) {
  std::string what = absl::StrCat("pushing ", options.image);
  auto opened = OpenFile(options.image, O_RDONLY | O_CLOEXEC);
  if (!opened.ok()) return Annotate(opened.status(), what);
  UniqueFd fd = *std::move(opened);
  ASSIGN_OR_RETURN(v1::RegistryAuth auth, AuthFor(options.reference, options.authfile));
  ASSIGN_OR_RETURN(std::string socket, LocateDaemon(socket_flag, false));
  int handed[] = {fd.get()};
  ASSIGN_OR_RETURN(auto channel, ConnectToDaemon(socket, handed));
  auto stub = v1::Berth::NewStub(channel);
  grpc::ClientContext context;
  v1::PushRequest request;
  request.set_reference(options.reference);
  *request.mutable_auth() = auth;
  request.set_no_https(options.no_https);
  request.set_title(BaseOf(options.image));
  request.set_chunk_size(options.chunk_size);
  for (const std::string& kv : options.annotations) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": --annotation '", kv, "' is not key=value"));
    }
    (*request.mutable_annotations())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!options.description.empty()) {
    (*request.mutable_annotations())["org.opencontainers.image.description"] = options.description;
  }
  ProgressDisplay display(options.quiet || log::CurrentLevel() < log::Level::kInfo,
                          ::isatty(STDERR_FILENO) == 1);
  auto reader = stub->Push(&context, request);
  absl::StatusOr<v1::PullResult> result = Drain(*reader, display, "pushing");
  if (!result.ok()) return Annotate(result.status(), what);
  if (!options.quiet) {
    log::Info(absl::StrCat("Pushed ", options.image, " to ", options.reference, " (manifest ",
                           result->manifest_digest(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace berth::client
