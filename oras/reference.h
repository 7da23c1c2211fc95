// Image references as users type them: `oras://REG/REPO:TAG`,
// `docker://REPO[@sha256:…]`, parsed by Docker's rules.
//
// Every part ends up in a URL or a cache file name, so parsing is strict:
// hosts, repository paths, tags and digests must match the distribution
// spec's grammars (a digest must be `sha256:` + 64 lower-case hex digits,
// CVE-2024-3727) before anything is sent anywhere.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace berth::oras {

enum class Transport { kOras, kDocker };

struct Reference {
  Transport transport = Transport::kOras;
  std::string registry;    // as written ("index.docker.io" by default); host[:port]
  std::string repository;  // "library/alpine"
  std::string tag;         // "latest" unless a digest was given
  std::string digest;      // "sha256:<hex>" or empty
  // What the manifest request names: the digest if any, else the tag.
  const std::string& ManifestRef() const { return digest.empty() ? tag : digest; }
  // The host to talk to: Docker Hub's API lives on registry-1.docker.io.
  std::string ApiHost() const;
  // "reg/repo:tag" or "reg/repo@digest", for messages.
  std::string Display() const;
};

// Parses "oras://…" or "docker://…" (the transport prefix is required).
absl::StatusOr<Reference> ParseReference(const std::string& uri);

// True for "sha256:" + 64 lower-case hex digits, the only digests berth uses.
bool IsValidDigest(const std::string& digest);

}  // namespace berth::oras
