#include "client/build/build_base.h"

#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/output/temp_beside.h"
#include "client/registry/transfer_command.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "deffile/bootstrap.h"
#include "oras/http.h"
#include "trust/pgp.h"

namespace berth::client {

std::string BaseReference(const deffile::Definition& stage) {
  std::string bootstrap = absl::AsciiStrToLower(stage.Bootstrap());
  std::string from(stage.From());
  if (bootstrap == "docker" || bootstrap == "oras") {
    // From: may carry the scheme already (Apptainer accepts both).
    const std::string scheme = bootstrap + "://";
    if (absl::StartsWith(from, scheme)) from.erase(0, scheme.size());
    // docker's Registry: and Namespace: go in front of From: (formats.md §5.2).
    if (bootstrap == "docker") {
      for (absl::string_view key : {"namespace", "registry"}) {
        absl::string_view prefix = stage.header.Get(key);
        if (!prefix.empty()) from = absl::StrCat(prefix, "/", from);
      }
    }
    return scheme + from;
  }
  if (bootstrap == "oci" || bootstrap == "oci-archive" || bootstrap == "docker-archive") {
    return absl::StrCat(bootstrap, ":", from);
  }
  return "";
}

namespace {

constexpr size_t kMaxBusybox = 256 << 20;

// Bootstrap: busybox's MirrorURL, fetched as the user: a file:// path is
// opened with their rights; http(s):// is downloaded into an unnamed file
// beside the output (Apptainer fetches with Go's http client, which has no
// file://; berth takes both).
absl::StatusOr<UniqueFd> FetchBusybox(const deffile::Definition& stage, const BaseOptions& o) {
  const std::string url(stage.header.Get("mirrorurl"));
  if (absl::StartsWith(url, "file://")) {
    auto f = OpenFile(url.substr(7), O_RDONLY | O_CLOEXEC);
    if (!f.ok()) return Annotate(f.status(), "while inserting busybox: MirrorURL");
    return f;
  }
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("while inserting busybox: MirrorURL ", url,
                                                   ": use an http://, https:// or file:// URL"));
  }
  ASSIGN_OR_RETURN(auto temp, CreateTempFileBeside(o.output));
  ::unlink(temp.second.c_str());
  const int fd = temp.first.get();
  oras::HttpSession http({});
  oras::HttpRequest request;
  request.url = url;
  int64_t received = 0;
  request.sink = [fd, &received](std::span<const uint8_t> data) -> absl::Status {
    received += static_cast<int64_t>(data.size());
    if (static_cast<size_t>(received) > kMaxBusybox) {
      return absl::ResourceExhaustedError("more than 256 MiB: not a busybox binary");
    }
    return WriteAll(fd, data);
  };
  auto reply = http.Perform(request);
  if (!reply.ok()) {
    return Annotate(reply.status(), absl::StrCat("while inserting busybox: fetching ", url));
  }
  if (reply->status / 100 != 2) {
    return absl::NotFoundError(
        absl::StrCat("while inserting busybox: fetching ", url, ": HTTP status ", reply->status));
  }
  // Apptainer's check that the whole file came.
  const std::string length = reply->Header("content-length");
  if (!length.empty() && length != absl::StrCat(received)) {
    return absl::DataLossError(absl::StrCat(
        "while inserting busybox: file received is not the right size. supposed to be: ", length,
        " actually: ", received));
  }
  return std::move(temp.first);
}

}  // namespace

absl::StatusOr<UniqueFd> OpenBuildBase(const deffile::Definition& stage, const BaseOptions& o) {
  const deffile::Agent agent = deffile::AgentOf(stage);
  // The daemon makes these bases itself, with the host's package tools.
  if (agent == deffile::Agent::kScratch || deffile::BuiltByHostTool(agent)) return UniqueFd();
  if (agent == deffile::Agent::kBusybox) return FetchBusybox(stage, o);
  if (agent == deffile::Agent::kLocalImage) {
    // Relative to the working directory, as in Apptainer.
    auto source = OpenFile(std::string(stage.From()), O_RDONLY | O_CLOEXEC);
    if (!source.ok()) return Annotate(source.status(), "opening the bootstrap image");
    return source;
  }
  PullOptions pull;
  pull.reference = BaseReference(stage);
  pull.authfile = o.authfile;
  pull.arch = o.arch;
  pull.no_https = o.no_https;
  pull.disable_cache = o.disable_cache;
  pull.build_base = true;
  // Unnamed from the start: nothing is left beside the output whatever
  // happens to this process.
  ASSIGN_OR_RETURN(auto temp, CreateTempFileBeside(o.output));
  ::unlink(temp.second.c_str());
  auto pulled = PullInto(o.socket_flag, pull, temp.first.get());
  if (!pulled.ok())
    return Annotate(pulled.status(), "While performing build: conveyor failed to get");
  return std::move(temp.first);
}

absl::StatusOr<std::string> PublicKeysForFingerprints() {
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(""));
  auto keys = trust::ExportKeys(gpg, "", false, false);
  if (!keys.ok() && absl::IsNotFound(keys.status())) return std::string();
  if (!keys.ok()) return Annotate(keys.status(), "reading your public keys for Fingerprints:");
  return keys;
}

}  // namespace berth::client
