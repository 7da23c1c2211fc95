// Registry credentials in the docker-config format (`{"auths": {HOST:
// {"auth": base64(user:pass)}}}`), the format Docker, Podman, skopeo and
// Apptainer (`~/.apptainer/docker-config.json`) all read.
//
// The client reads these files as the user and sends what it found with the
// request; the daemon never reads a user's files and never logs credentials.
// Where berth looks, first match wins: --authfile, berth's own file
// (~/.berth/docker-config.json, written by `berth registry login`),
// Apptainer's, then Docker's ($DOCKER_CONFIG/config.json or
// ~/.docker/config.json). Credential helpers (credsStore) are not run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::oras {

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // an OAuth2 refresh token ("identitytoken")
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

// berth's own file: $HOME/.berth/docker-config.json.
absl::StatusOr<std::string> BerthAuthFile();

// The files to search, in order; `authfile` (may be empty) comes first.
std::vector<std::string> CredentialFiles(const std::string& authfile);

// The credentials for `registry` (host[:port]) in the first file that has
// them; nullopt when none does. Missing files are skipped; unreadable or
// malformed ones are errors (a typo must not silently mean "anonymous").
absl::StatusOr<std::optional<Credentials>> FindCredentials(const std::vector<std::string>& files,
                                                           const std::string& registry);

// Adds or replaces `registry`'s entry in `file` (created 0600, its directory
// 0700; written to a temp file and renamed). Other content is kept.
absl::Status StoreCredentials(const std::string& file, const std::string& registry,
                              const Credentials& credentials);

// Removes `registry`'s entry; NotFound if there was none.
absl::Status RemoveCredentials(const std::string& file, const std::string& registry);

// The registries with an entry in `file` (empty when the file is missing).
absl::StatusOr<std::vector<std::string>> ListCredentialRegistries(const std::string& file);

}  // namespace berth::oras
