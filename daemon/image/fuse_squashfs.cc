#include "daemon/image/fuse_squashfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/image/fuse_squashfs_internal.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::image {
namespace {

// How long teardown waits for the server threads after the unmount.
constexpr absl::Duration kStopWait = absl::Seconds(5);
// Decompressed blocks kept per mount while containers use it (64 blocks of
// the default 128 KiB): the kernel page cache keeps file data, this only
// saves re-decompressing a fragment or a block read in several requests.
constexpr size_t kBlockCacheBytes = 8 << 20;
constexpr int kIdleThreads = 2;

// mount(2) on /dev/fuse ourselves: libfuse would fall back to the setuid
// fusermount3 helper, an external process we do not want (and do not need:
// we are root, or own our user namespace).
absl::Status MountFuseDevice(int fuse_fd, const std::string& target) {
  const std::string options =
      absl::StrFormat("fd=%d,rootmode=40000,user_id=%d,group_id=%d,allow_other,default_permissions",
                      fuse_fd, geteuid(), getegid());
  const unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV;
  if (mount("berth", target.c_str(), "fuse.berth", flags, options.c_str()) == 0) {
    return absl::OkStatus();
  }
  if (errno == ENODEV && mount("berth", target.c_str(), "fuse", flags, options.c_str()) == 0) {
    return absl::OkStatus();
  }
  return ErrnoStatus(absl::StrCat("mounting FUSE at ", target), errno);
}

// The session takes the /dev/fuse descriptor (libfuse's "/dev/fd/N" form
// for a file system mounted by someone else) and closes it when destroyed.
absl::StatusOr<fuse_session*> CreateSession(UniqueFd fuse_fd, FuseSquashfsMount::Server* server) {
  char program[] = "berthd";
  char* argv[] = {program, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  const fuse_lowlevel_ops& ops = SquashfsOperations();
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), server);
  fuse_opt_free_args(&args);
  if (session == nullptr) return absl::InternalError("fuse_session_new failed");
  const std::string device = absl::StrCat("/dev/fd/", fuse_fd.get());
  if (fuse_session_mount(session, device.c_str()) != 0) {
    fuse_session_destroy(session);
    return absl::InternalError("fuse_session_mount on the /dev/fuse descriptor failed");
  }
  fuse_fd.Release();
  return session;
}

// Takes its own reference: a server whose mount is gone but whose files are
// still open outlives its FuseSquashfsMount (see the destructor).
// NOLINTNEXTLINE(performance-unnecessary-value-param)
void ServeUntilUnmounted(std::shared_ptr<FuseSquashfsMount::Server> server, int max_threads) {
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(config, static_cast<unsigned>(max_threads));
  // Workers beyond these exit when idle: each holds a stack, a read buffer
  // and a malloc arena, and an image may stay mounted idle for minutes.
  fuse_loop_cfg_set_idle_threads(config,
                                 static_cast<unsigned>(std::min(max_threads, kIdleThreads)));
  int rc = fuse_session_loop_mt(server->session, config);
  fuse_loop_cfg_destroy(config);
  spdlog::debug("FUSE server for {} stopped ({})", server->mount_path, rc);
  server->loop_done.Notify();
}

}  // namespace

FuseSquashfsMount::Server::~Server() {
  mount.Reset();
  if (session != nullptr) fuse_session_destroy(session);
}

FuseSquashfsMount::FuseSquashfsMount(std::shared_ptr<Server> server) : server_(std::move(server)) {}

absl::StatusOr<std::unique_ptr<FuseSquashfsMount>> FuseSquashfsMount::Mount(
    int image_fd, int64_t offset, const std::string& target, int max_threads) {
  UniqueFd own_fd(fcntl(image_fd, F_DUPFD_CLOEXEC, 0));
  if (!own_fd) return ErrnoStatus("dup image descriptor", errno);
  auto server = std::make_shared<Server>(std::move(own_fd), offset, max_threads);
  server->mount_path = target;
  RETURN_IF_ERROR(server->pool.Init());
  server->blocks = std::make_unique<SharedBlockCache>(kBlockCacheBytes / server->pool.block_size());
  ASSIGN_OR_RETURN(UniqueFd fuse_fd, OpenFile("/dev/fuse", O_RDWR));
  RETURN_IF_ERROR(MountFuseDevice(fuse_fd.get(), target));
  server->mount = ScopedMount(target);
  ASSIGN_OR_RETURN(server->session, CreateSession(std::move(fuse_fd), server.get()));
  server->loop = std::thread(ServeUntilUnmounted, server, max_threads);
  return std::unique_ptr<FuseSquashfsMount>(new FuseSquashfsMount(std::move(server)));
}

FuseSquashfsMount::~FuseSquashfsMount() {
  // Once detached and unused, the kernel aborts the connection and the
  // workers' reads fail with ENODEV, which ends the loop.
  server_->mount.Reset();
  if (server_->loop_done.WaitForNotificationWithTimeout(kStopWait)) {
    server_->loop.join();
    return;
  }
  spdlog::warn(
      "FUSE server for {} still busy {} after unmount (files still open?); leaving it "
      "to stop on its own",
      server_->mount_path, absl::FormatDuration(kStopWait));
  server_->loop.detach();  // the thread holds the Server until it returns
}

void FuseSquashfsMount::Trim() {
  if (server_->blocks) server_->blocks->Clear();
  server_->pool.ShrinkIdle();
}

FuseSquashfsMount::RequestCounts FuseSquashfsMount::request_counts() const {
  RequestCounts counts;
  counts.lookups = server_->lookups.load(std::memory_order_relaxed);
  counts.opens = server_->opens.load(std::memory_order_relaxed);
  counts.opendirs = server_->opendirs.load(std::memory_order_relaxed);
  counts.reads = server_->reads.load(std::memory_order_relaxed);
  return counts;
}

const std::string& FuseSquashfsMount::path() const {
  return server_->mount_path;
}

}  // namespace berth::daemon::image
