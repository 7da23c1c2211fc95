#include "daemon/pull/cache_refs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::pull {
namespace {

constexpr char kDigestPrefix[] = "/sha256:";

// "<type>-<hex>" <-> "<type>/sha256:<hex>"
std::string KeyOfName(const std::string& name) {
  const size_t dash = name.find('-');
  if (dash == std::string::npos) return "";
  return absl::StrCat(name.substr(0, dash), kDigestPrefix, name.substr(dash + 1));
}

std::set<uid_t> ParseUsers(const std::string& text) {
  std::set<uid_t> users;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    uint32_t uid = 0;
    if (absl::SimpleAtoi(line, &uid)) users.insert(uid);
  }
  return users;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_NOFOLLOW));
  std::string text(64 << 10, '\0');
  const ssize_t n = ::read(fd.get(), text.data(), text.size());
  if (n < 0) return ErrnoStatus(path, errno);
  text.resize(static_cast<size_t>(n));
  return text;
}

}  // namespace

CacheRefs::CacheRefs(std::string dir) : dir_(std::move(dir)) {}

std::string CacheRefs::PathOf(const std::string& key) const {
  std::string name = key;
  if (size_t at = name.find(kDigestPrefix); at != std::string::npos) {
    name.replace(at, sizeof(kDigestPrefix) - 1, "-");
  }
  return absl::StrCat(dir_, "/", name);
}

absl::Status CacheRefs::Load(const std::function<bool(const std::string& key)>& exists) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(absl::StrCat("creating ", dir_), errno);
  }
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ErrnoStatus(absl::StrCat("listing ", dir_), errno);
  absl::MutexLock lock(&mu_);
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name, key = KeyOfName(name);
    if (name[0] == '.') {
      if (name != "." && name != "..") ::unlinkat(dirfd(d), e->d_name, 0);  // a torn write
      continue;
    }
    if (key.empty() || !exists(key)) {
      ::unlinkat(dirfd(d), e->d_name, 0);
      continue;
    }
    auto text = ReadSmallFile(absl::StrCat(dir_, "/", name));
    if (text.ok()) users_[key] = ParseUsers(*text);
  }
  ::closedir(d);
  return absl::OkStatus();
}

absl::Status CacheRefs::WriteLocked(const std::string& key, const std::set<uid_t>& users) {
  const std::string path = PathOf(key);
  if (users.empty()) {
    ::unlink(path.c_str());
    return absl::OkStatus();
  }
  std::string text;
  for (uid_t uid : users) absl::StrAppend(&text, uid, "\n");
  const std::string temp = absl::StrCat(dir_, "/.", path.substr(dir_.size() + 1));
  {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
    RETURN_IF_ERROR(
        WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) return ErrnoStatus("recording cache users", errno);
  return absl::OkStatus();
}

absl::Status CacheRefs::Add(const std::string& key, uid_t uid) {
  absl::MutexLock lock(&mu_);
  std::set<uid_t>& users = users_[key];
  if (!users.insert(uid).second) return absl::OkStatus();
  return WriteLocked(key, users);
}

std::set<uid_t> CacheRefs::Drop(const std::string& key, uid_t uid) {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(key);
  if (it == users_.end()) return {};
  if (it->second.erase(uid) > 0) {
    absl::Status st = WriteLocked(key, it->second);
    if (!st.ok()) spdlog::warn("node cache: {}", std::string(st.message()));
  }
  std::set<uid_t> left = it->second;
  if (left.empty()) users_.erase(it);
  return left;
}

void CacheRefs::Erase(const std::string& key) {
  absl::MutexLock lock(&mu_);
  users_.erase(key);
  ::unlink(PathOf(key).c_str());
}

std::set<uid_t> CacheRefs::Users(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = users_.find(key);
  return it == users_.end() ? std::set<uid_t>{} : it->second;
}

}  // namespace berth::daemon::pull
