#include "trust/verify.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "trust/image_metadata.h"

namespace berth::trust {
namespace {

using sif::Descriptor;

// Signature objects are small; anything bigger is hostile.
constexpr int64_t kMaxSignatureSize = 1 << 20;
constexpr char kPgpSignedBegin[] = "-----BEGIN PGP SIGNED MESSAGE-----";

enum class TaskType { kGroup, kObject, kLegacyGroup, kLegacyObject };

struct Task {
  TaskType type = TaskType::kGroup;
  uint32_t group_id = 0;   // the group verified (or the object's group)
  uint32_t object_id = 0;  // object tasks
  std::vector<const Descriptor*> objects;
  bool subset_ok = false;
};

std::string Hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::string FingerprintOf(const Descriptor& sig) {
  return Hex(sig.Signature().fingerprint);
}

bool IsSignature(const Descriptor& d) {
  return d.data_type == static_cast<int32_t>(sif::DataType::kSignature);
}

// The clear-signed text starts after the armor headers' blank line; a legacy
// signature's text starts with "SIFHASH:\n" (selection only: gpg checks it).
bool IsLegacyPayload(const std::string& bytes) {
  if (!absl::StartsWith(bytes, kPgpSignedBegin)) return false;
  size_t blank = bytes.find("\n\n");
  size_t crlf = bytes.find("\r\n\r\n");
  if (blank == std::string::npos && crlf == std::string::npos) return false;
  size_t text = blank != std::string::npos && (crlf == std::string::npos || blank < crlf)
                    ? blank + 2
                    : crlf + 4;
  return bytes.compare(text, 9, "SIFHASH:\n") == 0 || bytes.compare(text, 10, "SIFHASH:\r\n") == 0;
}

absl::StatusOr<std::string> ReadSignature(const sif::Image& image, const Descriptor& sig) {
  auto bytes = image.ReadObjectToString(sig, kMaxSignatureSize);
  if (!bytes.ok()) return Annotate(bytes.status(), absl::StrCat("signature object ", sig.id));
  return bytes;
}

// Signatures that serve `task`: linked to its group (current or legacy
// format as the task wants) or, for legacy object tasks, to the object.
absl::StatusOr<std::vector<const Descriptor*>> SignaturesFor(const sif::Image& image,
                                                             const Task& task) {
  const bool legacy = task.type == TaskType::kLegacyGroup || task.type == TaskType::kLegacyObject;
  const uint32_t link =
      task.type == TaskType::kLegacyObject ? task.object_id : (task.group_id | sif::kGroupMask);
  std::vector<const Descriptor*> out;
  for (const Descriptor* d : image.Objects()) {
    if (!IsSignature(*d) || d->link_raw != link) continue;
    ASSIGN_OR_RETURN(std::string bytes, ReadSignature(image, *d));
    if (IsLegacyPayload(bytes) == legacy) out.push_back(d);
  }
  return out;
}

std::string TaskName(const Task& t) {
  switch (t.type) {
    case TaskType::kGroup:
    case TaskType::kLegacyGroup:
      return absl::StrCat("object group ", t.group_id);
    default:
      return absl::StrCat("object ", t.object_id);
  }
}

absl::StatusOr<std::vector<Task>> BuildTasks(const sif::Image& image, const VerifySelection& sel) {
  std::vector<uint32_t> groups = sel.groups, objects = sel.objects;
  if (sel.legacy && sel.all) {
    for (const Descriptor* d : image.Objects()) {
      if (!IsSignature(*d) && d->GroupId() != 0) objects.push_back(d->id);
    }
  } else if (groups.empty() && objects.empty()) {
    if (sel.legacy) {
      const Descriptor* prim = image.PrimaryPartition();
      if (prim == nullptr) {
        return absl::NotFoundError(
            "the image has no primary partition (select objects with "
            "--sif-id or --group-id)");
      }
      objects.push_back(prim->id);
    } else {
      groups = image.GroupIds();
      if (groups.empty()) return absl::NotFoundError("the image has no object groups to verify");
    }
  }
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  std::sort(objects.begin(), objects.end());
  objects.erase(std::unique(objects.begin(), objects.end()), objects.end());
  std::vector<Task> tasks;
  for (uint32_t g : groups) {
    Task t;
    t.type = sel.legacy ? TaskType::kLegacyGroup : TaskType::kGroup;
    t.group_id = g;
    t.objects = image.GroupMembers(g);
    if (g == 0 || t.objects.empty())
      return absl::NotFoundError(absl::StrCat("no object group ", g));
    tasks.push_back(std::move(t));
  }
  for (uint32_t id : objects) {
    ASSIGN_OR_RETURN(const Descriptor* d, image.FindById(id));
    Task t;
    t.type = sel.legacy ? TaskType::kLegacyObject : TaskType::kObject;
    t.group_id = d->GroupId();
    t.object_id = id;
    t.objects = {d};
    t.subset_ok = true;
    tasks.push_back(std::move(t));
  }
  return tasks;
}

// The result of one signature: either integrity was proven for some
// objects, or it failed (crypto = the signature itself did not verify).
struct Outcome {
  absl::Status status;
  bool crypto_failure = false;
};

class Checker {
 public:
  Checker(const sif::Image& image, const KeyMaterial& keys) : image_(image), keys_(keys) {}

  Outcome Check(const Task& task, const Descriptor& sig, SignatureCheck& out) {
    out.signature_id = sig.id;
    auto bytes = ReadSignature(image_, sig);
    if (!bytes.ok()) return {bytes.status()};
    if (task.type == TaskType::kLegacyGroup || task.type == TaskType::kLegacyObject) {
      out.kind = SignatureKind::kLegacy;
      return CheckLegacy(task, sig, *bytes, out);
    }
    auto payload = LooksLikeDsse(*bytes) ? OpenDsse(*bytes, out) : OpenPgp(sig, *bytes, out);
    if (!payload.ok())
      return payload.status().code() == absl::StatusCode::kDataLoss
                 ? Outcome{payload.status()}
                 : Outcome{payload.status(), true};
    return {CheckMetadata(task, *payload, out)};
  }

 private:
  absl::StatusOr<std::string> OpenDsse(const std::string& bytes, SignatureCheck& out) {
    out.kind = SignatureKind::kDsse;
    static const std::vector<PemKey> kNone;
    ASSIGN_OR_RETURN(DsseVerified v, VerifyDsse(bytes, keys_.dsse ? *keys_.dsse : kNone));
    out.key_path = v.key_path;
    return v.payload;
  }

  absl::StatusOr<PgpVerified> OpenPgpSigned(const Descriptor& sig, const std::string& bytes,
                                            SignatureCheck& out) {
    out.fingerprint = FingerprintOf(sig);
    if (keys_.pgp == nullptr && keys_.pgp_global == nullptr) {
      return absl::FailedPreconditionError(
          "the image has a PGP signature and no keyring was given");
    }
    absl::StatusOr<PgpVerified> tried = absl::NotFoundError("no keyring");
    if (keys_.pgp != nullptr) tried = VerifyClearSigned(*keys_.pgp, bytes);
    if (absl::IsNotFound(tried.status()) && keys_.pgp_global != nullptr) {
      tried = VerifyClearSigned(*keys_.pgp_global, bytes);
      out.global_key = true;
    }
    ASSIGN_OR_RETURN(PgpVerified v, std::move(tried));
    out.entity = v.signer.entity;
    if (v.signer.fingerprint != out.fingerprint) {
      // The descriptor names someone else: a substituted or edited descriptor.
      return absl::DataLossError(absl::StrCat(
          "fingerprint in the descriptor (", out.fingerprint.empty() ? "none" : out.fingerprint,
          ") is not the signer's (", v.signer.fingerprint, ")"));
    }
    return v;
  }

  absl::StatusOr<std::string> OpenPgp(const Descriptor& sig, const std::string& bytes,
                                      SignatureCheck& out) {
    out.kind = SignatureKind::kPgp;
    ASSIGN_OR_RETURN(PgpVerified v, OpenPgpSigned(sig, bytes, out));
    return v.plaintext;
  }

  absl::StatusOr<Digest> ObjectDigest(const Descriptor& d, const std::string& alg) {
    auto key = std::make_pair(d.id, alg);
    if (auto it = object_digests_.find(key); it != object_digests_.end()) return it->second;
    auto digest = HashRange(alg, image_.fd(), d.offset, d.size);
    if (!digest.ok()) return Annotate(digest.status(), absl::StrCat("reading object ", d.id));
    object_digests_[key] = *digest;
    return digest;
  }

  absl::Status CheckMetadata(const Task& task, const std::string& json, SignatureCheck& out) {
    auto parsed = MetadataFromJson(json);
    if (!parsed.ok()) return absl::DataLossError(parsed.status().message());
    const ImageMetadata& m = *parsed;
    const uint32_t min_id = MinGroupId(task.group_id);
    std::map<uint32_t, const ObjectMetadata*> signed_ids;
    for (const ObjectMetadata& o : m.objects) signed_ids[o.relative_id + min_id] = &o;
    if (!task.subset_ok) RETURN_IF_ERROR(SameMembers(task, signed_ids));
    ASSIGN_OR_RETURN(Digest header,
                     HashBytes(m.header_digest.algorithm, HeaderDigestInput(image_.header())));
    if (!(header == m.header_digest)) {
      return absl::DataLossError("the SIF global header changed after signing");
    }
    for (const Descriptor* d : task.objects) {
      auto it = signed_ids.find(d->id);
      if (it == signed_ids.end()) {
        return absl::DataLossError(
            absl::StrCat("object ", d->id, " is not covered by the signature"));
      }
      const ObjectMetadata& o = *it->second;
      ASSIGN_OR_RETURN(Digest desc, HashBytes(o.descriptor_digest.algorithm,
                                              DescriptorDigestInput(*d, image_.RelativeId(*d))));
      if (!(desc == o.descriptor_digest)) {
        return absl::DataLossError(
            absl::StrCat("descriptor of object ", d->id, " changed after signing"));
      }
      ASSIGN_OR_RETURN(Digest data, ObjectDigest(*d, o.object_digest.algorithm));
      if (!(data == o.object_digest)) {
        return absl::DataLossError(
            absl::StrCat("data of object ", d->id, " changed after signing"));
      }
      out.verified.push_back(d->id);
    }
    return absl::OkStatus();
  }

  absl::Status SameMembers(const Task& task,
                           const std::map<uint32_t, const ObjectMetadata*>& signed_ids) {
    for (const Descriptor* d : task.objects) {
      if (signed_ids.count(d->id) == 0) {
        return absl::DataLossError(absl::StrCat("object ", d->id, " was added to group ",
                                                task.group_id, " after signing"));
      }
    }
    for (const auto& [id, o] : signed_ids) {
      bool present = std::any_of(task.objects.begin(), task.objects.end(),
                                 [id = id](const Descriptor* d) { return d->id == id; });
      if (!present) {
        return absl::DataLossError(absl::StrCat("signed object ", id, " of group ", task.group_id,
                                                " is missing from the image"));
      }
    }
    return absl::OkStatus();
  }

  uint32_t MinGroupId(uint32_t group_id) const {
    uint32_t min_id = UINT32_MAX;
    for (const Descriptor* d : image_.GroupMembers(group_id)) min_id = std::min(min_id, d->id);
    return min_id == UINT32_MAX ? 0 : min_id;
  }

  Outcome CheckLegacy(const Task& task, const Descriptor& sig, const std::string& bytes,
                      SignatureCheck& out) {
    auto v = OpenPgpSigned(sig, bytes, out);
    if (!v.ok()) {
      return {v.status(), v.status().code() != absl::StatusCode::kDataLoss};
    }
    // Plaintext "SIFHASH:\n<hex>\n"; the descriptor says which hash.
    std::vector<std::string> lines =
        absl::StrSplit(v->plaintext, absl::ByAnyChar("\r\n"), absl::SkipEmpty());
    if (lines.size() != 2 || lines[0] != "SIFHASH:") {
      return {absl::DataLossError("malformed legacy signature text")};
    }
    const int32_t hash_type = sig.Signature().hash_type;
    const char* alg = hash_type == 1   ? "sha256"
                      : hash_type == 2 ? "sha384"
                      : hash_type == 3 ? "sha512"
                                       : nullptr;
    if (alg == nullptr) {
      return {absl::DataLossError(absl::StrCat("unsupported legacy hash type ", hash_type))};
    }
    std::vector<ByteRange> ranges;
    for (const Descriptor* d : task.objects) ranges.push_back({d->offset, d->size});
    auto digest = HashRanges(alg, image_.fd(), ranges);
    if (!digest.ok()) return {digest.status()};
    if (digest->hex != absl::AsciiStrToLower(lines[1])) {
      return {absl::DataLossError(
          task.type == TaskType::kLegacyObject
              ? absl::StrCat("data of object ", task.object_id, " changed after signing")
              : absl::StrCat("data of object group ", task.group_id, " changed after signing"))};
    }
    for (const Descriptor* d : task.objects) out.verified.push_back(d->id);
    return {};
  }

  const sif::Image& image_;
  const KeyMaterial& keys_;
  std::map<std::pair<uint32_t, std::string>, Digest> object_digests_;
};

// CVE-2020-13846: an object outside every group is covered by no signature.
absl::Status CheckNoUngroupedObjects(const sif::Image& image) {
  for (const Descriptor* d : image.Objects()) {
    if (!IsSignature(*d) && d->GroupId() == 0) {
      return absl::DataLossError(
          absl::StrCat("object ", d->id, " is in no object group, so no signature covers it"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyImage(const sif::Image& image, const VerifySelection& selection,
                                         const KeyMaterial& keys) {
  RETURN_IF_ERROR(CheckNoUngroupedObjects(image));
  ASSIGN_OR_RETURN(std::vector<Task> tasks, BuildTasks(image, selection));
  VerifyReport report;
  Checker checker(image, keys);
  for (const Task& task : tasks) {
    ASSIGN_OR_RETURN(std::vector<const Descriptor*> sigs, SignaturesFor(image, task));
    if (sigs.empty()) {
      return absl::NotFoundError(absl::StrCat("no ", selection.legacy ? "legacy " : "",
                                              "signature found for ", TaskName(task)));
    }
    for (const Descriptor* sig : sigs) {
      SignatureCheck check;
      Outcome outcome = checker.Check(task, *sig, check);
      if (!outcome.status.ok()) {
        if (keys.tolerate_invalid_signatures && outcome.crypto_failure) {
          report.unvalidated.insert(FingerprintOf(*sig));
          continue;
        }
        return Annotate(outcome.status, absl::StrCat("signature object ", sig->id));
      }
      report.signatures.push_back(std::move(check));
    }
  }
  return report;
}

absl::StatusOr<SignedBy> SignersOf(const sif::Image& image, const VerifySelection& selection) {
  ASSIGN_OR_RETURN(std::vector<Task> tasks, BuildTasks(image, selection));
  std::map<std::string, size_t> count;
  for (const Task& task : tasks) {
    ASSIGN_OR_RETURN(std::vector<const Descriptor*> sigs, SignaturesFor(image, task));
    std::set<std::string> here;
    for (const Descriptor* sig : sigs) {
      std::string fp = FingerprintOf(*sig);
      if (!fp.empty()) here.insert(fp);
    }
    for (const std::string& fp : here) ++count[fp];
  }
  SignedBy out;
  for (const auto& [fp, n] : count) {
    out.any.insert(fp);
    if (n == tasks.size()) out.all.insert(fp);
  }
  return out;
}

absl::Status VerifySignedByAll(const sif::Image& image, GpgContext& pgp,
                               const std::vector<std::string>& required) {
  KeyMaterial keys;
  keys.pgp = &pgp;
  auto report = VerifyImage(image, {}, keys);
  if (!report.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("image not signed by required entities: ", report.status().message()));
  }
  ASSIGN_OR_RETURN(SignedBy signers, SignersOf(image, {}));
  std::vector<std::string> missing;
  for (const std::string& want : required) {
    auto fp = NormalizeFingerprint(want);
    if (!fp.ok()) return fp.status();
    if (signers.all.count(*fp) == 0) missing.push_back(*fp);
  }
  if (!missing.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("image not signed by required entities (", absl::StrJoin(missing, ", "), ")"));
  }
  return absl::OkStatus();
}

}  // namespace berth::trust
