#include "oras/sif_artifact.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/go_json.h"
#include "nlohmann/json.hpp"
#include "oras/reference.h"

namespace berth::oras {

std::string BuildSifManifest(const SifLayer& layer,
                             const std::map<std::string, std::string>& annotations) {
  std::string json = absl::StrCat(
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"config\":{\"mediaType\":\"",
      kSifConfigType, "\",\"size\":2,\"digest\":\"", kSifConfigDigest,
      "\",\"data\":\"e30=\"},\"layers\":[{\"mediaType\":\"", kSifLayerType,
      "\",\"size\":", layer.size, ",\"digest\":\"", layer.digest,
      "\",\"annotations\":{\"org.opencontainers.image.title\":", GoJsonQuote(layer.title), "}}]");
  if (!annotations.empty()) {
    json += ",\"annotations\":{";
    bool first = true;
    for (const auto& [k, v] : annotations) {
      absl::StrAppend(&json, first ? "" : ",", GoJsonQuote(k), ":", GoJsonQuote(v));
      first = false;
    }
    json += "}";
  }
  return json + "}";
}

absl::StatusOr<SifLayer> SifLayerOf(const std::string& manifest_json, int64_t max_size) {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("not a SIF artifact: ", why));
  };
  nlohmann::json doc = nlohmann::json::parse(manifest_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad("the manifest is not a JSON object");
  if (!doc.contains("schemaVersion") || doc["schemaVersion"] != 2) {
    return bad("schemaVersion is not 2");
  }
  if (!doc.contains("layers") || !doc["layers"].is_array()) return bad("no layers");
  if (doc["layers"].size() != 1) {
    return bad(absl::StrCat(doc["layers"].size(), " layers (expected exactly one)"));
  }
  const nlohmann::json& l = doc["layers"][0];
  if (!l.is_object() || !l.contains("mediaType") || !l["mediaType"].is_string()) {
    return bad("the layer has no mediaType");
  }
  std::string type = l["mediaType"].get<std::string>();
  if (type != kSifLayerType && type != kLegacySifLayerType) {
    return bad(absl::StrCat("the layer's type is ", type.substr(0, 100)));
  }
  SifLayer layer;
  if (!l.contains("digest") || !l["digest"].is_string() ||
      !IsValidDigest(layer.digest = l["digest"].get<std::string>())) {
    return bad("the layer's digest is not sha256:<64 hex>");
  }
  if (!l.contains("size") || !l["size"].is_number_integer() ||
      (layer.size = l["size"].get<int64_t>()) <= 0 || layer.size > max_size) {
    return bad(absl::StrCat("the layer's size is missing or outside 1..", max_size));
  }
  if (l.contains("annotations") && l["annotations"].is_object() &&
      l["annotations"].contains("org.opencontainers.image.title") &&
      l["annotations"]["org.opencontainers.image.title"].is_string()) {
    layer.title = l["annotations"]["org.opencontainers.image.title"].get<std::string>();
  }
  return layer;
}

}  // namespace berth::oras
