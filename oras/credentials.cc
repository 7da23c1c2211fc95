#include "oras/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace berth::oras {
namespace {

constexpr size_t kMaxAuthFileBytes = 4 << 20;

std::string Home() {
  const char* home = std::getenv("HOME");
  return home != nullptr && *home == '/' ? home : "";
}

// The keys Docker accepts for a host: "host", "https://host", "http://host",
// "https://host/v1/" (Docker Hub's historical key).
bool KeyNamesRegistry(std::string key, const std::string& registry) {
  for (const char* scheme : {"https://", "http://"}) {
    if (absl::StartsWith(key, scheme)) key.erase(0, strlen(scheme));
  }
  if (size_t slash = key.find('/'); slash != std::string::npos) key.resize(slash);
  if (key == registry) return true;
  bool hub = registry == "index.docker.io" || registry == "docker.io" ||
             registry == "registry-1.docker.io";
  return hub && (key == "index.docker.io" || key == "docker.io" || key == "registry-1.docker.io");
}

// Reads `file` as JSON: nullopt if missing.
absl::StatusOr<std::optional<nlohmann::json>> ReadJsonFile(const std::string& file) {
  auto fd = OpenFile(file, O_RDONLY | O_CLOEXEC);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) return std::nullopt;
    return fd.status();
  }
  ASSIGN_OR_RETURN(int64_t size, FileSize(fd->get()));
  if (size > static_cast<int64_t>(kMaxAuthFileBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(file, " is larger than 4 MiB"));
  }
  std::string text(static_cast<size_t>(size), '\0');
  RETURN_IF_ERROR(PreadFull(fd->get(), {reinterpret_cast<uint8_t*>(text.data()), text.size()}, 0));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, " is not a JSON object"));
  }
  return doc;
}

absl::StatusOr<Credentials> DecodeEntry(const nlohmann::json& entry, const std::string& where) {
  Credentials c;
  if (!entry.is_object()) return absl::InvalidArgumentError(where + " is not an object");
  auto str = [&](const char* key) -> std::string {
    auto it = entry.find(key);
    return it != entry.end() && it->is_string() ? it->get<std::string>() : "";
  };
  if (std::string auth = str("auth"); !auth.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(auth, &decoded) || decoded.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(where + ".auth is not base64 of user:password");
    }
    size_t colon = decoded.find(':');
    c.username = decoded.substr(0, colon);
    c.password = decoded.substr(colon + 1);
  } else {
    c.username = str("username");
    c.password = str("password");
  }
  c.identity_token = str("identitytoken");
  return c;
}

absl::Status WriteJsonFile(const std::string& file, const nlohmann::json& doc) {
  if (size_t slash = file.rfind('/'); slash != std::string::npos && slash > 0) {
    std::string dir = file.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus(absl::StrCat("creating ", dir), errno);
    }
  }
  std::string tmp = absl::StrCat(file, ".tmp.", ::getpid());
  std::string text = doc.dump(1, '\t') + "\n";
  {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    absl::Status written =
        WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    if (written.ok() && ::fsync(fd.get()) != 0) written = ErrnoStatus("fsync " + tmp, errno);
    if (!written.ok()) {
      ::unlink(tmp.c_str());
      return written;
    }
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(absl::StrCat("renaming into ", file), err);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> BerthAuthFile() {
  std::string home = Home();
  if (home.empty()) return absl::FailedPreconditionError("HOME is not set");
  return home + "/.berth/docker-config.json";
}

std::vector<std::string> CredentialFiles(const std::string& authfile) {
  std::vector<std::string> files;
  if (!authfile.empty()) files.push_back(authfile);
  std::string home = Home();
  if (!home.empty()) {
    files.push_back(home + "/.berth/docker-config.json");
    files.push_back(home + "/.apptainer/docker-config.json");
  }
  const char* docker_config = std::getenv("DOCKER_CONFIG");
  if (docker_config != nullptr && *docker_config == '/') {
    files.push_back(absl::StrCat(docker_config, "/config.json"));
  } else if (!home.empty()) {
    files.push_back(home + "/.docker/config.json");
  }
  return files;
}

absl::StatusOr<std::optional<Credentials>> FindCredentials(const std::vector<std::string>& files,
                                                           const std::string& registry) {
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(std::optional<nlohmann::json> doc, ReadJsonFile(file));
    if (!doc) continue;
    auto auths = doc->find("auths");
    if (auths == doc->end()) continue;
    if (!auths->is_object()) return absl::InvalidArgumentError(file + ": auths is not an object");
    for (const auto& [key, entry] : auths->items()) {
      if (!KeyNamesRegistry(key, registry)) continue;
      ASSIGN_OR_RETURN(Credentials c, DecodeEntry(entry, absl::StrCat(file, ": auths.", key)));
      if (!c.empty()) return c;
    }
  }
  return std::nullopt;
}

absl::Status StoreCredentials(const std::string& file, const std::string& registry,
                              const Credentials& credentials) {
  ASSIGN_OR_RETURN(std::optional<nlohmann::json> doc, ReadJsonFile(file));
  nlohmann::json root = doc ? *doc : nlohmann::json::object();
  if (!root.contains("auths") || !root["auths"].is_object())
    root["auths"] = nlohmann::json::object();
  nlohmann::json entry = nlohmann::json::object();
  if (!credentials.username.empty() || !credentials.password.empty()) {
    entry["auth"] = absl::Base64Escape(credentials.username + ":" + credentials.password);
  }
  if (!credentials.identity_token.empty()) entry["identitytoken"] = credentials.identity_token;
  root["auths"][registry] = entry;
  return WriteJsonFile(file, root);
}

absl::Status RemoveCredentials(const std::string& file, const std::string& registry) {
  ASSIGN_OR_RETURN(std::optional<nlohmann::json> doc, ReadJsonFile(file));
  if (!doc || !doc->contains("auths") || !(*doc)["auths"].is_object() ||
      (*doc)["auths"].erase(registry) == 0) {
    return absl::NotFoundError(absl::StrCat("no credentials for ", registry, " in ", file));
  }
  return WriteJsonFile(file, *doc);
}

absl::StatusOr<std::vector<std::string>> ListCredentialRegistries(const std::string& file) {
  ASSIGN_OR_RETURN(std::optional<nlohmann::json> doc, ReadJsonFile(file));
  std::vector<std::string> out;
  if (!doc) return out;
  auto auths = doc->find("auths");
  if (auths == doc->end() || !auths->is_object()) return out;
  for (const auto& [key, entry] : auths->items()) out.push_back(key);
  return out;
}

}  // namespace berth::oras
