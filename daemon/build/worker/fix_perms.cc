#include "daemon/build/worker/fix_perms.h"

#include <fts.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/file_io.h"

namespace berth::build_worker {
namespace {

mode_t Fixed(const struct stat& st) {
  mode_t mode = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) return mode | S_IRWXU;
  mode |= S_IRUSR | S_IWUSR;
  if ((mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0) mode |= S_IXUSR;
  return mode;
}

}  // namespace

absl::Status FixPermissions(int root_fd) {
  std::string root = absl::StrCat("/proc/self/fd/", root_fd);
  char* paths[] = {root.data(), nullptr};
  // FTS_PHYSICAL: links are reported as links, never entered; a directory
  // is fixed in preorder, before fts reads it.
  FTS* fts = ::fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_COMFOLLOW, nullptr);
  if (fts == nullptr) return ErrnoStatus("--fix-perms: opening the root", errno);
  absl::Status status;
  for (;;) {
    errno = 0;
    FTSENT* e = ::fts_read(fts);
    if (e == nullptr) {
      if (errno != 0) status = ErrnoStatus("--fix-perms: walking the root", errno);
      break;
    }
    const std::string where = absl::StrCat("--fix-perms: ", e->fts_path + root.size());
    if (e->fts_info == FTS_ERR || e->fts_info == FTS_DNR || e->fts_info == FTS_NS) {
      status = ErrnoStatus(where, e->fts_errno);
      break;
    }
    if (e->fts_info != FTS_D && e->fts_info != FTS_F) continue;
    if (e->fts_level == 0) continue;  // the root is the daemon's staging directory
    mode_t want = Fixed(*e->fts_statp);
    if (want == (e->fts_statp->st_mode & 07777)) continue;
    if (::chmod(e->fts_accpath, want) != 0) {
      status = ErrnoStatus(where, errno);
      break;
    }
  }
  ::fts_close(fts);
  return status;
}

}  // namespace berth::build_worker
