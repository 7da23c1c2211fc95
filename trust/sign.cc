#include "trust/sign.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "trust/image_metadata.h"

namespace berth::trust {
namespace {

struct Job {
  uint32_t group_id = 0;
  std::vector<const sif::Descriptor*> objects;
};

absl::StatusOr<std::vector<Job>> JobsFor(const sif::Image& image, const SignSelection& sel) {
  std::vector<Job> jobs;
  std::vector<uint32_t> groups = sel.groups;
  if (groups.empty() && sel.objects.empty()) groups = image.GroupIds();
  if (groups.empty() && sel.objects.empty()) {
    return absl::NotFoundError("the image has no object groups to sign");
  }
  for (uint32_t g : groups) {
    Job job{g, image.GroupMembers(g)};
    if (g == 0 || job.objects.empty())
      return absl::NotFoundError(absl::StrCat("no object group ", g));
    jobs.push_back(std::move(job));
  }
  for (uint32_t id : sel.objects) {
    ASSIGN_OR_RETURN(const sif::Descriptor* d, image.FindById(id));
    if (d->GroupId() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("object ", id, " is in no group, and a signature links to a group"));
    }
    jobs.push_back(Job{d->GroupId(), {d}});
  }
  return jobs;
}

std::string BinaryFingerprint(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    int v = 0;
    absl::SimpleHexAtoi(hex.substr(i, 2), &v);
    out.push_back(static_cast<char>(v));
  }
  return out;
}

absl::StatusOr<UniqueFd> MemoryFile(const std::string& bytes) {
  UniqueFd fd(memfd_create("berth-signature", MFD_CLOEXEC));
  if (!fd) return ErrnoStatus("memfd_create", errno);
  RETURN_IF_ERROR(PwriteFull(
      fd.get(), std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0));
  return fd;
}

}  // namespace

absl::StatusOr<int32_t> HashTypeOfClearSigned(const std::string& message) {
  size_t end = message.find("\n\n");
  std::string head = message.substr(0, end);
  if (absl::StrContains(head, "\nHash: SHA256")) return 1;
  if (absl::StrContains(head, "\nHash: SHA384")) return 2;
  if (absl::StrContains(head, "\nHash: SHA512")) return 3;
  return absl::InternalError("gpg signed with a hash SIF cannot record (want SHA-256/384/512)");
}

absl::StatusOr<std::vector<SignedObject>> SignImage(sif::Image& image, const SignSelection& sel,
                                                    GpgContext* pgp, const std::string& fingerprint,
                                                    const PemKey* dsse_key) {
  ASSIGN_OR_RETURN(std::vector<Job> jobs, JobsFor(image, sel));
  // Everything is computed and signed before the first write, so a failure
  // (wrong passphrase, say) leaves the image as it was.
  struct Pending {
    uint32_t group_id;
    std::string payload;
    sif::SignatureInfo info;
  };
  std::vector<Pending> pending;
  for (const Job& job : jobs) {
    ASSIGN_OR_RETURN(ImageMetadata m, ComputeMetadata(image, job.objects, "sha256"));
    const std::string json = MetadataToJson(m);
    Pending p{job.group_id, {}, {}};
    if (dsse_key != nullptr) {
      ASSIGN_OR_RETURN(p.payload, SignDsse(json, *dsse_key));
      p.info.hash_type = 1;  // the metadata digests (the reference records SHA-256)
    } else {
      ASSIGN_OR_RETURN(p.payload, ClearSign(*pgp, json, fingerprint));
      ASSIGN_OR_RETURN(p.info.hash_type, HashTypeOfClearSigned(p.payload));
      ASSIGN_OR_RETURN(PgpSigner signer, FindSecretKey(*pgp, fingerprint));
      p.info.fingerprint = BinaryFingerprint(signer.fingerprint);
    }
    pending.push_back(std::move(p));
  }
  std::vector<SignedObject> out;
  for (const Pending& p : pending) {
    ASSIGN_OR_RETURN(UniqueFd data, MemoryFile(p.payload));
    sif::ObjectInput in;
    in.type = sif::DataType::kSignature;
    in.data_fd = data.get();
    in.group_id = 0;
    in.link_raw = p.group_id | sif::kGroupMask;
    in.signature = p.info;
    std::vector<uint32_t> before;
    for (const sif::Descriptor* d : image.Objects()) before.push_back(d->id);
    RETURN_IF_ERROR_CTX(image.AddObject(in), "adding the signature object");
    for (const sif::Descriptor* d : image.Objects()) {
      if (std::find(before.begin(), before.end(), d->id) == before.end()) {
        out.push_back({d->id, p.group_id});
      }
    }
  }
  return out;
}

}  // namespace berth::trust
