#include "trust/keyring_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::trust {

constexpr int64_t kMaxKeyringSize = 16 << 20;

std::string GlobalKeyringPath(const std::string& config_dir) {
  return absl::StrCat(config_dir, "/", kGlobalKeyringName);
}

absl::StatusOr<std::string> ReadKeyringFile(const std::string& path) {
  auto fd = OpenFile(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) return std::string();
    return Annotate(fd.status(), path);
  }
  struct stat st;
  if (fstat(fd->get(), &st) != 0) return ErrnoStatus(path, errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + " is not a regular file");
  if (st.st_size > kMaxKeyringSize) return absl::InvalidArgumentError(path + " is too large");
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR_CTX(
      PreadFull(fd->get(), std::span(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()), 0),
      path);
  return bytes;
}

absl::Status WriteKeyringFile(const std::string& path, const std::string& bytes) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  {
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644));
    absl::Status st = PwriteFull(
        fd.get(), std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
    if (st.ok() && fchmod(fd.get(), 0644) != 0) st = ErrnoStatus("chmod", errno);
    if (st.ok() && fsync(fd.get()) != 0) st = ErrnoStatus("fsync", errno);
    if (!st.ok()) {
      unlink(tmp.c_str());
      return Annotate(st, tmp);
    }
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(absl::StrCat("replacing ", path), err);
  }
  return absl::OkStatus();
}

absl::StatusOr<ScratchGnupgHome> ScratchGnupgHome::Create(const std::string& parent,
                                                          bool secret_keys) {
  std::string tmpl = absl::StrCat(parent, "/berth-gnupg-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoStatus(absl::StrCat("creating a GnuPG home in ", parent), errno);
  }
  ScratchGnupgHome home(tmpl);
  // Public keys only: gpg needs no agent here, and one started for a scratch
  // home would outlive it. Secret keys live in an agent (killed with the home).
  if (secret_keys) return home;
  ASSIGN_OR_RETURN(UniqueFd conf, OpenFile(tmpl + "/gpg.conf", O_WRONLY | O_CREAT | O_EXCL, 0600));
  constexpr char kConf[] = "no-autostart\n";
  RETURN_IF_ERROR(PwriteFull(
      conf.get(), std::span(reinterpret_cast<const uint8_t*>(kConf), sizeof kConf - 1), 0));
  return home;
}

ScratchGnupgHome::~ScratchGnupgHome() {
  if (path_.empty()) return;
  // gpgme may have started an agent for this home despite no-autostart; it
  // would linger after the directory is gone.
  if (access((path_ + "/S.gpg-agent").c_str(), F_OK) == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_RDWR);
      if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
      }
      execl("/usr/bin/gpgconf", "gpgconf", "--homedir", path_.c_str(), "--kill", "gpg-agent",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    if (pid > 0) waitpid(pid, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace berth::trust
