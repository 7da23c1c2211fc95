#include "daemon/image/loop_ledger.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "daemon/image/sparse_copy.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

int64_t Mib(int64_t bytes) {
  return (bytes + (1 << 20) - 1) >> 20;
}

absl::StatusOr<HeldFile> DescribeBacking(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat of the loop device's file", errno);
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", fd).c_str(), buf, sizeof buf - 1);
  if (n < 0) return ErrnoStatus("naming the loop device's file", errno);
  return HeldFile{st.st_dev, st.st_ino, AllocatedBytes(st), std::string(buf, n)};
}

// Whether the kernel still has the device bound to what we attached: the
// number may have been freed and taken by anyone since, so the tag and the
// backing inode must match too. Errors count as "still attached": a device
// is only ever given back on the kernel's word.
bool StillAttached(int number, const std::string& tag, ino_t ino) {
  UniqueFd dev(::open(absl::StrCat("/dev/loop", number).c_str(), O_RDONLY | O_CLOEXEC));
  if (!dev) return errno != ENOENT && errno != ENXIO && errno != ENODEV;
  loop_info64 info;
  std::memset(&info, 0, sizeof info);
  if (::ioctl(dev.get(), LOOP_GET_STATUS64, &info) != 0) return errno != ENXIO;
  const char* name = reinterpret_cast<const char*>(info.lo_file_name);
  return info.lo_inode == ino && ::strncmp(name, tag.c_str(), LO_NAME_SIZE) == 0;
}

}  // namespace

LoopLedger::LoopLedger(std::vector<std::string> store_dirs, LoopLimits limits)
    : store_dirs_(std::move(store_dirs)), limits_(limits) {}

void LoopLedger::SweepLocked() {
  for (auto it = records_.begin(); it != records_.end();) {
    const Record& r = it->second;
    if (r.released && !StillAttached(r.number, r.tag, r.file.ino)) {
      spdlog::info("/dev/loop{} (user {}) is detached", r.number, r.uid);
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t LoopLedger::StoreBytesLocked(uid_t uid, const HeldFile* also) {
  absl::flat_hash_set<std::pair<dev_t, ino_t>> seen;
  int64_t bytes = 0;
  auto add = [&](const HeldFile& f) {
    if (seen.insert({f.dev, f.ino}).second) bytes += f.bytes;
  };
  for (const auto& [id, r] : records_) {
    if (r.uid == uid && r.store_copy) add(r.file);
  }
  if (also != nullptr) add(*also);
  return bytes;
}

absl::Status LoopLedger::CheckLoopsLocked(uid_t uid) {
  int held = 0, pinned = 0;
  for (const auto& [id, r] : records_) {
    if (r.uid != uid) continue;
    ++held;
    if (r.released) ++pinned;
  }
  if (held < limits_.max_loops) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "user %d already holds %d loop devices%s (limit max_loop_devices_per_user = %d in "
      "berth.conf)",
      uid, held,
      pinned == 0 ? "" : absl::StrFormat(", %d of them kept after their mount ended", pinned),
      limits_.max_loops));
}

absl::Status LoopLedger::CheckStoreLocked(uid_t uid, const HeldFile& file) {
  if (limits_.max_store_bytes <= 0) return absl::OkStatus();
  const int64_t before = StoreBytesLocked(uid, nullptr), after = StoreBytesLocked(uid, &file);
  if (after <= limits_.max_store_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "user %d already holds %d MiB of image copies and this one needs %d MiB more (limit "
      "max_store_mib_per_user = %d in berth.conf)",
      uid, Mib(before), Mib(after - before), limits_.max_store_bytes >> 20));
}

absl::StatusOr<LoopLedger::Ticket> LoopLedger::Reserve(uid_t uid, bool limited, int backing_fd) {
  ASSIGN_OR_RETURN(HeldFile file, DescribeBacking(backing_fd));
  bool store_copy = false;
  for (const std::string& dir : store_dirs_) store_copy |= absl::StartsWith(file.path, dir + "/");
  absl::MutexLock lock(&mu_);
  SweepLocked();
  if (limited) {
    RETURN_IF_ERROR(CheckLoopsLocked(uid));
    if (store_copy) RETURN_IF_ERROR(CheckStoreLocked(uid, file));
  }
  Ticket ticket{next_id_++, ""};
  ticket.tag = absl::StrCat("berth:", ::getpid(), ":", ticket.id);
  records_[ticket.id] = Record{uid, -1, ticket.tag, std::move(file), store_copy, false};
  return ticket;
}

void LoopLedger::Bind(uint64_t id, int loop_number) {
  absl::MutexLock lock(&mu_);
  if (auto it = records_.find(id); it != records_.end()) it->second.number = loop_number;
}

void LoopLedger::Cancel(uint64_t id) {
  absl::MutexLock lock(&mu_);
  records_.erase(id);
}

void LoopLedger::Release(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return;
  Record& r = it->second;
  r.released = true;
  if (StillAttached(r.number, r.tag, r.file.ino)) {
    spdlog::warn(
        "/dev/loop{} (user {}) is still attached after its mount ended (held through the "
        "image's mount elsewhere); it counts against the user until the kernel lets it go",
        r.number, r.uid);
    return;
  }
  records_.erase(it);
}

absl::Status LoopLedger::CheckNewCopy(uid_t uid, bool limited, int64_t bytes) {
  if (!limited) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  SweepLocked();
  RETURN_IF_ERROR(CheckLoopsLocked(uid));
  return CheckStoreLocked(uid, HeldFile{0, 0, bytes, ""});  // a new file: no inode shared yet
}

int64_t UserShareOf(int64_t per_user, int64_t store_budget) {
  if (store_budget <= 0) return per_user;
  const int64_t half = store_budget / 2;
  return per_user <= 0 ? half : std::min(per_user, half);
}

std::vector<HeldFile> LoopLedger::Held() {
  absl::MutexLock lock(&mu_);
  SweepLocked();
  std::vector<HeldFile> out;
  out.reserve(records_.size());
  for (const auto& [id, r] : records_) out.push_back(r.file);
  return out;
}

}  // namespace berth::daemon::image
