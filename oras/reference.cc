#include "oras/reference.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace berth::oras {
namespace {

constexpr const char* kDockerHub = "index.docker.io";
constexpr size_t kMaxReferenceLength = 4096;

// The distribution spec's grammars (reference.go), anchored.
const std::regex& HostPattern() {
  static const std::regex re(
      R"(^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?$)");
  return re;
}
const std::regex& PathComponentPattern() {
  static const std::regex re(R"(^[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*$)");
  return re;
}
const std::regex& TagPattern() {
  static const std::regex re(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  return re;
}

// A first component names a registry when it looks like a host (Docker's rule).
bool LooksLikeRegistry(const std::string& component) {
  return absl::StrContains(component, '.') || absl::StrContains(component, ':') ||
         component == "localhost" || (!component.empty() && component.front() == '[');
}

absl::Status Invalid(const std::string& uri, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid image reference '", uri, "': ", why));
}

}  // namespace

bool IsValidDigest(const std::string& digest) {
  if (digest.size() != 7 + 64 || !absl::StartsWith(digest, "sha256:")) return false;
  for (size_t i = 7; i < digest.size(); ++i) {
    char c = digest[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Reference::ApiHost() const {
  return registry == kDockerHub || registry == "docker.io" ? "registry-1.docker.io" : registry;
}

std::string Reference::Display() const {
  return digest.empty() ? absl::StrCat(registry, "/", repository, ":", tag)
                        : absl::StrCat(registry, "/", repository, "@", digest);
}

absl::StatusOr<Reference> ParseReference(const std::string& uri) {
  if (uri.size() > kMaxReferenceLength) return Invalid(uri.substr(0, 64), "too long");
  Reference ref;
  std::string rest;
  if (absl::StartsWith(uri, "oras://")) {
    ref.transport = Transport::kOras;
    rest = uri.substr(7);
  } else if (absl::StartsWith(uri, "docker://")) {
    ref.transport = Transport::kDocker;
    rest = uri.substr(9);
  } else {
    return Invalid(uri, "expected oras:// or docker://");
  }
  // Apptainer tolerates "oras:///reg/repo" and "docker:///repo".
  while (absl::StartsWith(rest, "/")) rest.erase(0, 1);
  if (rest.empty()) return Invalid(uri, "no repository");

  if (size_t at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest.resize(at);
    if (!IsValidDigest(ref.digest)) return Invalid(uri, "the digest must be sha256:<64 hex>");
  }
  // A tag is after the last ':' that follows the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    ref.tag = rest.substr(colon + 1);
    rest.resize(colon);
    if (!std::regex_match(ref.tag, TagPattern())) return Invalid(uri, "bad tag");
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";

  std::vector<std::string> parts = absl::StrSplit(rest, '/');
  if (parts.size() > 1 && LooksLikeRegistry(parts.front())) {
    ref.registry = parts.front();
    parts.erase(parts.begin());
    if (!std::regex_match(ref.registry, HostPattern())) return Invalid(uri, "bad registry host");
  } else {
    ref.registry = kDockerHub;
  }
  if (ref.registry == "docker.io") ref.registry = kDockerHub;
  if (ref.registry == kDockerHub && parts.size() == 1) parts.insert(parts.begin(), "library");
  for (const std::string& part : parts) {
    if (!std::regex_match(part, PathComponentPattern())) {
      return Invalid(uri, absl::StrCat("bad repository component '", part, "'"));
    }
  }
  ref.repository = absl::StrJoin(parts, "/");
  if (ref.repository.size() > 255) return Invalid(uri, "repository name too long");
  return ref;
}

}  // namespace berth::oras
