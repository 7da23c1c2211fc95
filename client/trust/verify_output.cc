#include "client/trust/verify_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace berth::client {
namespace {

std::string GroupText(const sif::Descriptor& d) {
  return d.GroupId() == 0 ? "NONE" : absl::StrCat(d.GroupId());
}

std::string LinkText(const sif::Descriptor& d) {
  if (d.LinkedId() == 0) return "NONE";
  return d.LinkIsGroup() ? absl::StrCat(d.LinkedId(), " (G)") : absl::StrCat(d.LinkedId());
}

std::string KeyTag(const trust::SignatureCheck& c) {
  return c.global_key ? "[GLOBAL]" : "[LOCAL]";
}

}  // namespace

std::string RenderVerifyText(const sif::Image& image, const trust::VerifyReport& report) {
  std::string out;
  for (const trust::SignatureCheck& c : report.signatures) {
    if (c.kind == trust::SignatureKind::kDsse) {
      absl::StrAppend(&out, "[LOCAL]   Key: ", c.key_path, "\n");
    } else {
      absl::StrAppendFormat(&out, "%-9s Signing entity: %s\n", KeyTag(c), c.entity);
      absl::StrAppendFormat(&out, "%-9s Fingerprint: %s\n", KeyTag(c), c.fingerprint);
    }
    out += "Objects verified:\n";
    absl::StrAppendFormat(&out, "%-4s|%-8s|%-8s|%s\n", "ID", "GROUP", "LINK", "TYPE");
    out += "------------------------------------------------\n";
    for (uint32_t id : c.verified) {
      auto d = image.FindById(id);
      if (!d.ok()) continue;
      absl::StrAppendFormat(&out, "%-4d|%-8s|%-8s|%s\n", id, GroupText(**d), LinkText(**d),
                            sif::DataTypeName((*d)->data_type));
    }
  }
  return out;
}

std::string RenderVerifyJson(const sif::Image& image, const trust::VerifyReport& report,
                             const absl::Status& failure) {
  nlohmann::ordered_json doc;
  doc["Signatures"] = report.signatures.size();
  nlohmann::ordered_json keys = nlohmann::ordered_json::array();
  for (const trust::SignatureCheck& c : report.signatures) {
    for (uint32_t id : c.verified) {
      auto d = image.FindById(id);
      nlohmann::ordered_json signer;
      signer["Partition"] = d.ok() ? sif::DataTypeName((*d)->data_type) : "unknown";
      signer["ObjectID"] = id;
      signer["Name"] = c.kind == trust::SignatureKind::kDsse ? c.key_path : c.entity;
      signer["Fingerprint"] = c.fingerprint;
      signer["KeyLocal"] = !c.global_key;
      signer["KeyCheck"] = true;
      signer["DataCheck"] = true;
      keys.push_back(nlohmann::ordered_json{{"Signer", signer}});
    }
  }
  doc["SignerKeys"] = keys;
  if (!failure.ok()) doc["Reason"] = std::string(failure.message());
  return doc.dump() + "\n";
}

}  // namespace berth::client
