#include "daemon/build/fingerprints.h"

#include <fcntl.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/immutable_copy.h"
#include "deffile/bootstrap.h"
#include "sif/image.h"
#include "trust/keyring_file.h"
#include "trust/verify.h"

namespace berth::daemon::build {
namespace {

constexpr absl::string_view kNoGroupSignature = "no signature found for object group ";

bool HasSignatures(const sif::Image& image) {
  for (const sif::Descriptor* d : image.Objects()) {
    if (d->data_type == static_cast<int32_t>(sif::DataType::kSignature)) return true;
  }
  return false;
}

// Apptainer's wording for each way the check fails (build.md §3).
absl::Status Refusal(std::string why) {
  return absl::PermissionDeniedError(std::move(why));
}

absl::Status CheckSigners(const sif::Image& image, trust::GpgContext& gpg,
                          const std::vector<std::string>& want) {
  if (!HasSignatures(image)) return Refusal("signature not found");
  trust::KeyMaterial keys;
  keys.pgp = &gpg;
  auto report = trust::VerifyImage(image, {}, keys);
  if (!report.ok()) {
    absl::string_view message = report.status().message();
    if (absl::IsNotFound(report.status()) && absl::StartsWith(message, kNoGroupSignature)) {
      return Refusal(absl::StrCat("signature not found for object group ",
                                  message.substr(kNoGroupSignature.size())));
    }
    return Refusal("image not signed by required entities");
  }
  ASSIGN_OR_RETURN(trust::SignedBy signers, trust::SignersOf(image, {}));
  for (const std::string& fp : want) {
    auto normal = trust::NormalizeFingerprint(fp);
    if (!normal.ok() || signers.all.count(*normal) == 0) {
      return Refusal("image not signed by required entities");
    }
  }
  return absl::OkStatus();
}

absl::Status Check(BuildContext& ctx, int source_fd, const std::vector<std::string>& want) {
  int dup = ::fcntl(source_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoStatus("the bootstrap image", errno);
  ASSIGN_OR_RETURN(sif::Image image, sif::Image::FromFd(UniqueFd(dup), sif::OpenMode::kReadOnly,
                                                        "the bootstrap image"));
  const std::string parent = ctx.options->state_dir + "/trust";
  RETURN_IF_ERROR_CTX(image::OpenPrivateDirectory(parent, 0700).status(), "the keyring directory");
  ASSIGN_OR_RETURN(trust::ScratchGnupgHome home, trust::ScratchGnupgHome::Create(parent));
  ASSIGN_OR_RETURN(trust::GpgContext gpg, trust::GpgContext::Open(home.path()));
  if (!ctx.request->keyring().empty()) {
    auto imported = trust::ImportKeys(gpg, ctx.request->keyring());
    if (!imported.ok()) return Annotate(imported.status(), "your public keys");
  }
  return CheckSigners(image, gpg, want);
}

// A sandbox directory or a bare squashfs file has no SIF signatures to
// check (build.md §3 ignores Fingerprints: for them). "Not a SIF" is what
// the SIF reader says, the same reader that unpacks the base: whatever is
// unpacked as a SIF has been checked.
bool IsSif(int fd) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return dup >= 0 &&
         sif::Image::FromFd(UniqueFd(dup), sif::OpenMode::kReadOnly, "the bootstrap image").ok();
}

}  // namespace

absl::Status CheckBaseFingerprints(BuildContext& ctx, const deffile::Definition& stage,
                                   int source_fd) {
  const std::vector<std::string> want = stage.Fingerprints();
  const deffile::Agent agent = deffile::AgentOf(stage);
  if (want.empty()) return absl::OkStatus();
  // SIF sources only; docker and OCI bases carry no SIF signatures.
  if ((agent != deffile::Agent::kLocalImage && agent != deffile::Agent::kOras) ||
      !IsSif(source_fd)) {
    return absl::OkStatus();
  }
  ctx.progress->Info(absl::StrCat("Checking bootstrap image verifies with fingerprint(s): [",
                                  absl::StrJoin(want, " "), "]"));
  return Annotate(Check(ctx, source_fd, want),
                  "conveyor failed to get: while checking fingerprint");
}

}  // namespace berth::daemon::build
