#include "oci/manifest.h"

#include <sys/utsname.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/digest.h"
#include "common/status_macros.h"

namespace berth::oci {
namespace {

using Json = nlohmann::json;

// Debian's abseil has its own string_view; StrCat needs that one.
absl::string_view Sv(std::string_view s) {
  return {s.data(), s.size()};
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

// Parses `bytes` as one JSON value. Refuses duplicate object keys (two parsers
// reading different values out of one document is how manifest confusion
// attacks work) and nesting deeper than kMaxJsonDepth. nlohmann exceptions
// stop here.
absl::StatusOr<Json> ParseStrictJson(std::string_view bytes, std::string_view what) {
  std::vector<std::set<std::string>> keys;  // one set per open object/array
  std::string problem;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth && problem.empty()) problem = "nested too deeply";
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
            problem.empty()) {
          problem = absl::StrCat("duplicate key \"", parsed.get<std::string>(), "\"");
        }
        break;
      case Json::parse_event_t::value:
        break;
    }
    return problem.empty();
  };
  try {
    Json json = Json::parse(bytes.begin(), bytes.end(), callback, /*allow_exceptions=*/true);
    if (!problem.empty()) return Invalid(absl::StrCat(Sv(what), ": ", problem));
    return json;
  } catch (const Json::exception& e) {
    if (!problem.empty()) return Invalid(absl::StrCat(Sv(what), ": ", problem));
    return Invalid(absl::StrCat(Sv(what), ": malformed JSON: ", e.what()));
  }
}

// Typed field accessors: an absent (or, where noted, null) field reads as
// empty; a field of the wrong type is an error naming it.
absl::StatusOr<const Json*> Field(const Json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end()) return nullptr;
  return &*it;
}

absl::Status GetString(const Json& obj, const char* name, std::string& out) {
  ASSIGN_OR_RETURN(const Json* v, Field(obj, name));
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return Invalid(absl::StrCat("\"", name, "\" is not a string"));
  out = v->get<std::string>();
  if (out.find('\0') != std::string::npos) {
    return Invalid(absl::StrCat("\"", name, "\" contains a NUL byte"));
  }
  return absl::OkStatus();
}

// Arrays of strings; JSON null reads as empty (Docker writes "Cmd": null).
absl::Status GetStringArray(const Json& obj, const char* name, std::vector<std::string>& out) {
  ASSIGN_OR_RETURN(const Json* v, Field(obj, name));
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  if (!v->is_array()) return Invalid(absl::StrCat("\"", name, "\" is not an array"));
  for (const Json& item : *v) {
    if (!item.is_string()) return Invalid(absl::StrCat("\"", name, "\" holds a non-string"));
    std::string s = item.get<std::string>();
    if (s.find('\0') != std::string::npos) {
      return Invalid(absl::StrCat("\"", name, "\" contains a NUL byte"));
    }
    out.push_back(std::move(s));
  }
  return absl::OkStatus();
}

absl::Status GetStringMap(const Json& obj, const char* name,
                          std::map<std::string, std::string>& out) {
  ASSIGN_OR_RETURN(const Json* v, Field(obj, name));
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  if (!v->is_object()) return Invalid(absl::StrCat("\"", name, "\" is not an object"));
  for (const auto& [key, value] : v->items()) {
    if (!value.is_string()) {
      return Invalid(absl::StrCat("\"", name, "\".\"", key, "\" is not a string"));
    }
    out[key] = value.get<std::string>();
  }
  return absl::OkStatus();
}

// RFC 6838 type/subtype with an optional +suffix: what image-spec requires.
bool ValidMediaType(std::string_view mt) {
  auto restricted = [](std::string_view part) {
    if (part.empty() || part.size() > 127 || !absl::ascii_isalnum(part[0])) return false;
    return std::all_of(part.begin(), part.end(), [](char c) {
      return absl::ascii_isalnum(c) ||
             std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
    });
  };
  size_t slash = mt.find('/');
  if (slash == std::string_view::npos) return false;
  return restricted(mt.substr(0, slash)) && restricted(mt.substr(slash + 1));
}

// The media type without parameters ("; charset=utf-8") and surrounding space.
std::string BareMediaType(std::string_view content_type) {
  std::string_view bare = content_type.substr(0, content_type.find(';'));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(bare.data(), bare.size())));
}

absl::Status ParsePlatform(const Json& j, Platform& p) {
  if (!j.is_object()) return Invalid("\"platform\" is not an object");
  RETURN_IF_ERROR(GetString(j, "os", p.os));
  RETURN_IF_ERROR(GetString(j, "architecture", p.architecture));
  RETURN_IF_ERROR(GetString(j, "variant", p.variant));
  RETURN_IF_ERROR(GetString(j, "os.version", p.os_version));
  RETURN_IF_ERROR(GetStringArray(j, "os.features", p.os_features));
  if (p.os.empty() || p.architecture.empty()) {
    return Invalid("\"platform\" lacks \"os\" or \"architecture\"");
  }
  return absl::OkStatus();
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& j) {
  if (!j.is_object()) return Invalid("descriptor is not an object");
  Descriptor d;
  RETURN_IF_ERROR(GetString(j, "mediaType", d.media_type));
  if (!ValidMediaType(d.media_type)) {
    return Invalid(
        absl::StrCat("descriptor has an invalid mediaType \"", d.media_type.substr(0, 80), "\""));
  }
  RETURN_IF_ERROR(GetString(j, "digest", d.digest));
  RETURN_IF_ERROR_CTX(ValidateDigest(d.digest), "descriptor");
  ASSIGN_OR_RETURN(const Json* size, Field(j, "size"));
  if (size == nullptr || !size->is_number_integer()) {
    return Invalid("descriptor \"size\" is missing or not an integer");
  }
  // is_number_integer covers both signed and unsigned; an unsigned value
  // beyond int64 reads negative here and is refused below.
  d.size = size->is_number_unsigned() && size->get<uint64_t>() > uint64_t{INT64_MAX}
               ? -1
               : size->get<int64_t>();
  if (d.size < 0) return Invalid("descriptor \"size\" is negative");
  RETURN_IF_ERROR(GetStringMap(j, "annotations", d.annotations));
  RETURN_IF_ERROR(GetStringArray(j, "urls", d.urls));
  RETURN_IF_ERROR(GetString(j, "artifactType", d.artifact_type));
  ASSIGN_OR_RETURN(const Json* platform, Field(j, "platform"));
  if (platform != nullptr) {
    d.platform.emplace();
    RETURN_IF_ERROR(ParsePlatform(*platform, *d.platform));
  }
  std::string data;
  RETURN_IF_ERROR(GetString(j, "data", data));
  if (j.contains("data")) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) return Invalid("descriptor \"data\" is not base64");
    if (static_cast<int64_t>(decoded.size()) != d.size) {
      return Invalid("descriptor \"data\" length differs from \"size\"");
    }
    RETURN_IF_ERROR_CTX(VerifyDigest(decoded, d.digest), "descriptor \"data\"");
    d.data = std::move(decoded);
  }
  return d;
}

absl::StatusOr<std::vector<Descriptor>> ParseDescriptorArray(const Json& obj, const char* name,
                                                             size_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_array()) {
    return Invalid(absl::StrCat("\"", name, "\" is missing or not an array"));
  }
  if (it->size() > max) {
    return Invalid(absl::StrCat("\"", name, "\" has ", it->size(), " entries (at most ", max, ")"));
  }
  std::vector<Descriptor> out;
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = ParseDescriptor((*it)[i]);
    if (!d.ok()) return Annotate(d.status(), absl::StrCat(name, "[", i, "]"));
    out.push_back(*std::move(d));
  }
  return out;
}

// Decides what the document is from its mediaType, the type it was served
// as, and its shape, refusing every ambiguous combination.
absl::StatusOr<std::string> EffectiveMediaType(const Json& doc, std::string_view content_type) {
  std::string declared;
  RETURN_IF_ERROR(GetString(doc, "mediaType", declared));
  std::string served = BareMediaType(content_type);
  bool has_manifests = doc.contains("manifests");
  bool has_layers = doc.contains("layers") || doc.contains("config");
  if (has_manifests && has_layers) {
    return Invalid("document has both \"manifests\" and \"layers\"/\"config\" (ambiguous)");
  }
  // A generic type ("application/json", "application/octet-stream") says nothing.
  bool served_known = IsManifestMediaType(served) || IsIndexMediaType(served);
  if (!declared.empty() && served_known && declared != served) {
    return Invalid(absl::StrCat("document mediaType \"", declared.substr(0, 80),
                                "\" differs from the type it was served as \"", served, "\""));
  }
  std::string effective = !declared.empty() ? declared : served_known ? served : "";
  if (effective.empty()) {
    // OCI allows omitting mediaType; the shape decides.
    effective = has_manifests ? std::string(kMediaTypeOciIndex)
                : has_layers  ? std::string(kMediaTypeOciManifest)
                              : "";
  }
  if (IsManifestMediaType(effective) && has_manifests) {
    return Invalid("image manifest carries \"manifests\"");
  }
  if (IsIndexMediaType(effective) && has_layers) return Invalid("index carries \"layers\"");
  if (!IsManifestMediaType(effective) && !IsIndexMediaType(effective)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported manifest type \"", effective.substr(0, 80),
        "\" (expected an OCI image manifest or index, or a Docker schema 2 manifest or list)"));
  }
  return effective;
}

absl::StatusOr<ImageManifest> ParseManifestBody(const Json& doc, std::string media_type) {
  ImageManifest m;
  m.media_type = std::move(media_type);
  auto config = doc.find("config");
  if (config == doc.end()) return Invalid("manifest has no \"config\"");
  auto parsed_config = ParseDescriptor(*config);
  if (!parsed_config.ok()) return Annotate(parsed_config.status(), "config");
  m.config = *std::move(parsed_config);
  ASSIGN_OR_RETURN(m.layers, ParseDescriptorArray(doc, "layers", kMaxLayers));
  RETURN_IF_ERROR(GetStringMap(doc, "annotations", m.annotations));
  RETURN_IF_ERROR(GetString(doc, "artifactType", m.artifact_type));
  auto subject = doc.find("subject");
  if (subject != doc.end()) {
    auto parsed = ParseDescriptor(*subject);
    if (!parsed.ok()) return Annotate(parsed.status(), "subject");
    m.subject = *std::move(parsed);
  }
  return m;
}

absl::StatusOr<ImageIndex> ParseIndexBody(const Json& doc, std::string media_type) {
  ImageIndex index;
  index.media_type = std::move(media_type);
  ASSIGN_OR_RETURN(index.manifests, ParseDescriptorArray(doc, "manifests", kMaxIndexEntries));
  RETURN_IF_ERROR(GetStringMap(doc, "annotations", index.annotations));
  return index;
}

absl::StatusOr<ManifestDocument> ParseDocument(std::string_view bytes,
                                               std::string_view content_type) {
  if (static_cast<int64_t>(bytes.size()) > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("document is ", bytes.size(), " bytes (at most ", kMaxManifestBytes, ")"));
  }
  ASSIGN_OR_RETURN(Json doc, ParseStrictJson(bytes, "document"));
  if (!doc.is_object()) return Invalid("document is not a JSON object");
  auto version = doc.find("schemaVersion");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != 2) {
    return Invalid("\"schemaVersion\" is not 2 (schema 1 manifests are not supported)");
  }
  ASSIGN_OR_RETURN(std::string media_type, EffectiveMediaType(doc, content_type));
  if (IsIndexMediaType(media_type)) {
    ASSIGN_OR_RETURN(ImageIndex index, ParseIndexBody(doc, std::move(media_type)));
    return ManifestDocument(std::move(index));
  }
  ASSIGN_OR_RETURN(ImageManifest m, ParseManifestBody(doc, std::move(media_type)));
  return ManifestDocument(std::move(m));
}

// GOARCH spelling of the architectures people type.
std::string NormalizeArch(std::string arch, std::string& variant) {
  arch = absl::AsciiStrToLower(arch);
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64" || arch == "arm64") {
    if (variant.empty()) variant = "v8";
    return "arm64";
  }
  if (arch == "armhf" || arch == "armv7l" || arch == "armv7") {
    if (variant.empty()) variant = "v7";
    return "arm";
  }
  if (arch == "armel" || arch == "armv6l") {
    if (variant.empty()) variant = "v6";
    return "arm";
  }
  if (arch == "i386" || arch == "i686" || arch == "x86") return "386";
  if (arch == "ppc64el") return "ppc64le";
  return arch;
}

// The variant an entry without one stands for.
std::string DefaultVariant(const std::string& arch) {
  if (arch == "arm64") return "v8";
  if (arch == "arm") return "v7";
  return "";
}

}  // namespace

bool IsManifestMediaType(std::string_view mt) {
  return mt == kMediaTypeOciManifest || mt == kMediaTypeDockerManifest;
}
bool IsIndexMediaType(std::string_view mt) {
  return mt == kMediaTypeOciIndex || mt == kMediaTypeDockerManifestList;
}

absl::StatusOr<ManifestDocument> ParseManifestDocument(std::string_view bytes,
                                                       std::string_view content_type) {
  return ParseDocument(bytes, content_type);
}

absl::StatusOr<ImageManifest> ParseImageManifest(std::string_view bytes,
                                                 std::string_view content_type) {
  ASSIGN_OR_RETURN(ManifestDocument doc, ParseDocument(bytes, content_type));
  if (auto* m = std::get_if<ImageManifest>(&doc)) return std::move(*m);
  return Invalid("expected an image manifest, got an index");
}

absl::StatusOr<ImageIndex> ParseImageIndex(std::string_view bytes, std::string_view content_type) {
  ASSIGN_OR_RETURN(ManifestDocument doc, ParseDocument(bytes, content_type));
  if (auto* i = std::get_if<ImageIndex>(&doc)) return std::move(*i);
  return Invalid("expected an image index, got an image manifest");
}

PlatformSpec HostPlatform() {
  PlatformSpec spec;
  struct utsname u {};
  std::string machine = ::uname(&u) == 0 ? u.machine : "x86_64";
  spec.architecture = NormalizeArch(machine, spec.variant);
  return spec;
}

absl::StatusOr<PlatformSpec> ParsePlatformSpec(std::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(absl::string_view(text.data(), text.size()), '/');
  PlatformSpec spec;
  auto bad = [&] {
    return Invalid(absl::StrCat("invalid platform \"", Sv(text.substr(0, 80)),
                                "\": expected ARCH, OS/ARCH or OS/ARCH/VARIANT"));
  };
  if (parts.size() > 3) return bad();
  for (const auto& p : parts) {
    if (p.empty() || p.size() > 32 || !std::all_of(p.begin(), p.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
        })) {
      return bad();
    }
  }
  if (parts.size() == 1) {
    spec.architecture = parts[0];
  } else {
    spec.os = absl::AsciiStrToLower(parts[0]);
    spec.architecture = parts[1];
    if (parts.size() == 3) spec.variant = absl::AsciiStrToLower(parts[2]);
  }
  spec.architecture = NormalizeArch(spec.architecture, spec.variant);
  return spec;
}

std::string PlatformString(const Platform& p) {
  std::string s = absl::StrCat(p.os, "/", p.architecture);
  if (!p.variant.empty()) absl::StrAppend(&s, "/", p.variant);
  return s;
}

absl::StatusOr<Descriptor> SelectPlatform(const ImageIndex& index, const PlatformSpec& requested) {
  PlatformSpec want = requested;
  if (want.architecture.empty()) want = HostPlatform();
  std::string want_variant = want.variant;
  want.architecture = NormalizeArch(want.architecture, want_variant);
  const Descriptor* exact = nullptr;
  const Descriptor* any_variant = nullptr;
  std::vector<std::string> offered;
  for (const Descriptor& d : index.manifests) {
    if (!IsManifestMediaType(d.media_type) || !d.platform) continue;
    const Platform& p = *d.platform;
    offered.push_back(PlatformString(p));
    std::string variant = p.variant;
    std::string arch = NormalizeArch(p.architecture, variant);
    if (variant.empty()) variant = DefaultVariant(arch);
    if (p.os != want.os || arch != want.architecture) continue;
    if (variant == want_variant) {
      if (exact == nullptr) exact = &d;
    } else if (requested.variant.empty() && any_variant == nullptr) {
      // No variant asked for: the default one wins, any other will do.
      any_variant = &d;
    }
  }
  if (exact != nullptr) return *exact;
  if (any_variant != nullptr) return *any_variant;
  std::string wanted = absl::StrCat(want.os, "/", want.architecture);
  if (!want_variant.empty()) absl::StrAppend(&wanted, "/", want_variant);
  return absl::NotFoundError(absl::StrCat(
      "no image for platform ", wanted,
      " in the index (it offers: ", offered.empty() ? "none" : absl::StrJoin(offered, ", "), ")"));
}

absl::StatusOr<ImageConfig> ParseImageConfig(std::string_view bytes) {
  if (static_cast<int64_t>(bytes.size()) > kMaxConfigBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("image config is ", bytes.size(), " bytes (at most ", kMaxConfigBytes, ")"));
  }
  ASSIGN_OR_RETURN(Json doc, ParseStrictJson(bytes, "image config"));
  if (!doc.is_object()) return Invalid("image config is not a JSON object");
  ImageConfig c;
  auto step = [](absl::Status s) { return Annotate(s, "image config"); };
  RETURN_IF_ERROR(step(GetString(doc, "architecture", c.architecture)));
  RETURN_IF_ERROR(step(GetString(doc, "os", c.os)));
  RETURN_IF_ERROR(step(GetString(doc, "variant", c.variant)));
  RETURN_IF_ERROR(step(GetString(doc, "created", c.created)));
  auto config = doc.find("config");
  if (config != doc.end() && !config->is_null()) {
    if (!config->is_object()) return Invalid("image config: \"config\" is not an object");
    RETURN_IF_ERROR(step(GetString(*config, "User", c.user)));
    RETURN_IF_ERROR(step(GetStringArray(*config, "Env", c.env)));
    RETURN_IF_ERROR(step(GetStringArray(*config, "Entrypoint", c.entrypoint)));
    RETURN_IF_ERROR(step(GetStringArray(*config, "Cmd", c.cmd)));
    RETURN_IF_ERROR(step(GetString(*config, "WorkingDir", c.working_dir)));
    RETURN_IF_ERROR(step(GetStringMap(*config, "Labels", c.labels)));
    RETURN_IF_ERROR(step(GetString(*config, "StopSignal", c.stop_signal)));
  }
  for (const std::string& e : c.env) {
    size_t eq = e.find('=');
    if (eq == 0 || eq == std::string::npos) {
      return Invalid(
          absl::StrCat("image config: Env entry \"", e.substr(0, 80), "\" is not NAME=value"));
    }
  }
  auto rootfs = doc.find("rootfs");
  if (rootfs != doc.end()) {
    if (!rootfs->is_object()) return Invalid("image config: \"rootfs\" is not an object");
    RETURN_IF_ERROR(step(GetStringArray(*rootfs, "diff_ids", c.diff_ids)));
    for (const std::string& id : c.diff_ids) RETURN_IF_ERROR(step(ValidateDigest(id)));
  }
  return c;
}

absl::Status ValidateDigest(std::string_view digest) {
  size_t colon = digest.find(':');
  std::string_view alg = digest.substr(0, colon == std::string_view::npos ? 0 : colon);
  std::string_view hex = colon == std::string_view::npos ? "" : digest.substr(colon + 1);
  size_t want = alg == "sha256" ? 64 : alg == "sha512" ? 128 : 0;
  if (want == 0) {
    return Invalid(
        absl::StrCat("digest \"", Sv(digest.substr(0, 80)), "\" does not use sha256 or sha512"));
  }
  bool lower_hex = std::all_of(hex.begin(), hex.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
  if (hex.size() != want || !lower_hex) {
    return Invalid(absl::StrCat("digest \"", Sv(digest.substr(0, 150)), "\" is not ", Sv(alg), ":<",
                                want, " lower-case hex digits>"));
  }
  return absl::OkStatus();
}

std::string Sha256Digest(std::string_view bytes) {
  Hasher h(DigestAlgorithm::kSha256);
  h.Update({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  return "sha256:" + h.FinishHex();
}

absl::Status VerifyDigest(std::string_view bytes, std::string_view digest) {
  RETURN_IF_ERROR(ValidateDigest(digest));
  Hasher h(digest.substr(0, 6) == "sha256" ? DigestAlgorithm::kSha256 : DigestAlgorithm::kSha512);
  h.Update({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  std::string got = absl::StrCat(Sv(digest.substr(0, 6)), ":", h.FinishHex());
  if (got != digest) {
    return absl::DataLossError(
        absl::StrCat("digest mismatch: expected ", Sv(digest), ", got ", got));
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerCompression> LayerCompressionOf(std::string_view mt) {
  static const std::pair<std::string_view, LayerCompression> kTypes[] = {
      {"application/vnd.oci.image.layer.v1.tar", LayerCompression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", LayerCompression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", LayerCompression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", LayerCompression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LayerCompression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LayerCompression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar", LayerCompression::kNone},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", LayerCompression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", LayerCompression::kZstd},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LayerCompression::kGzip},
  };
  for (const auto& [type, compression] : kTypes) {
    if (mt == type) return compression;
  }
  if (mt.find("encrypted") != std::string_view::npos) {
    return absl::UnimplementedError(
        absl::StrCat("encrypted layers (", Sv(mt.substr(0, 80)), ") are not supported"));
  }
  return Invalid(absl::StrCat("unsupported layer media type \"", Sv(mt.substr(0, 80)), "\""));
}

}  // namespace berth::oci
