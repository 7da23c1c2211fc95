// berth-build-worker: one job (build_worker.proto) per run, read from the
// control descriptor (3); progress, warnings and the result (or a one-line
// error) go back on it. berthd starts it as the build's fakeroot user, in a
// user namespace that maps only the caller and the caller's subordinate
// ids (daemon/build/host_process.h): it has the caller's rights on the
// host and nothing more, so it needs no checks of its own on what the
// caller may read.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "berth/v1/build_worker.pb.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/remove_tree.h"
#include "daemon/build/worker/busybox.h"
#include "daemon/build/worker/copy_files.h"
#include "daemon/build/worker/fix_perms.h"
#include "daemon/build/worker/hash_files.h"
#include "proto/run_wire.h"
#include "squash/dir_squasher.h"

namespace berth::build_worker {
namespace {

constexpr int kControlFd = 3;
constexpr const char* kUnsquashfs = "/usr/bin/unsquashfs";
constexpr size_t kMaxOutput = 1 << 20;  // of unsquashfs's messages, kept

void Send(const v1::WorkerEvent& event) {
  (void)rpc::WriteFrame(kControlFd, event);
}

// The last non-empty line of a tool's output, for a one-line error.
std::string LastLine(const std::string& text) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    last = std::string(line.substr(0, 300));
  }
  return last;
}

// How many "cannot create a device node" lines `out` holds, or -1 when it
// holds anything else (or was cut short). unsquashfs goes on past an entry
// it cannot create and exits with status 2.
int SkippedDeviceNodes(const std::string& out, bool complete) {
  if (!complete) return -1;
  int devices = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipWhitespace())) {
    const bool device =
        absl::StartsWith(line, "create_inode: failed to create character device ") ||
        absl::StartsWith(line, "create_inode: failed to create block device ");
    if (!device || !absl::EndsWith(line, ", because Operation not permitted")) return -1;
    ++devices;
  }
  return devices;
}

// Extraction by squashfs-tools' unsquashfs, run with the worker's (the
// caller's) rights into the root. A fakeroot user cannot make device
// nodes: they are left out with a warning, as Apptainer's rootless OCI
// unpack does (a container's /dev is mounted at run time); any other
// failure is an error.
absl::Status UnpackSquashfs(int root_fd, const v1::UnpackSquashfs& job) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
  std::string dest = absl::StrCat("/proc/self/fd/", root_fd);
  std::string src = absl::StrCat("/proc/self/fd/", job.fd());
  std::string offset = absl::StrCat(job.offset());
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    ::dup2(err[1], 1);
    ::dup2(err[1], 2);
    ::fcntl(root_fd, F_SETFD, 0);
    ::fcntl(job.fd(), F_SETFD, 0);
    ::execl(kUnsquashfs, "unsquashfs", "-f", "-n", "-q", job.xattrs() ? "-xattrs" : "-no-xattrs",
            "-o", offset.c_str(), "-d", dest.c_str(), src.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(err[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (out.size() < kMaxOutput) out.append(buf, static_cast<size_t>(n));
  }
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return job.fix_perms() ? FixPermissions(root_fd) : absl::OkStatus();
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
    if (int devices = SkippedDeviceNodes(out, out.size() < kMaxOutput); devices > 0) {
      v1::WorkerEvent warning;
      warning.set_warning(absl::StrCat("left out ", devices,
                                       " device node(s) of the base image: a fakeroot build "
                                       "cannot create them (/dev is mounted at run time)"));
      Send(warning);
      return job.fix_perms() ? FixPermissions(root_fd) : absl::OkStatus();
    }
  }
  return absl::FailedPreconditionError(
      absl::StrCat("unsquashfs failed: ", LastLine(out).empty() ? "exit status" : LastLine(out)));
}

absl::Status Squash(int root_fd, const v1::Squash& job, v1::WorkerResult& result) {
  squash::Options options;
  const v1::WorkerSquashOptions& o = job.options();
  ASSIGN_OR_RETURN(options.compressor, squash::ParseCompressor(o.compressor()));
  options.level = o.level();
  if (o.block_size() != 0) options.block_size = o.block_size();
  options.threads = o.threads();
  // A build squashes a finished tree from the page cache: with the default
  // 10 blocks per thread the compressors idled behind the oldest block
  // (1.10x mksquashfs at zstd 15 on 2 CPUs); 64 MiB keeps them busy, as
  // mksquashfs's own large queues do. It counts in the caller's cgroup.
  options.max_queued_bytes = int64_t{64} << 20;
  options.timestamp = o.timestamp();
  RETURN_IF_ERROR(squash::CheckOptions(options));
  auto progress = [](int64_t done, int64_t total) {
    v1::WorkerEvent event;
    event.mutable_progress()->set_done(done);
    event.mutable_progress()->set_total(total);
    Send(event);
  };
  ASSIGN_OR_RETURN(
      squash::Stats stats,
      squash::SquashDirectory(root_fd, {job.out_fd(), job.offset()}, options, progress));
  result.set_bytes(stats.bytes);
  result.set_entries(stats.files + stats.directories);
  return absl::OkStatus();
}

absl::Status Run(const v1::WorkerRequest& request, v1::WorkerResult& result) {
  int root = request.root_fd();
  switch (request.job_case()) {
    case v1::WorkerRequest::kUnpackSquashfs:
      return UnpackSquashfs(root, request.unpack_squashfs());
    case v1::WorkerRequest::kCopyFiles:
      return CopyFiles(root, request.copy_files(), result);
    case v1::WorkerRequest::kWriteFiles:
      return WriteFiles(root, request.write_files());
    case v1::WorkerRequest::kSquash:
      return Squash(root, request.squash(), result);
    case v1::WorkerRequest::kInstallBusybox:
      return InstallBusybox(root, request.install_busybox());
    case v1::WorkerRequest::kHashFiles:
      return HashFiles(request.hash_files(), result);
    case v1::WorkerRequest::kRemoveTree:
      // A failed sandbox build's half-made tree, emptied as the fakeroot
      // user who made it (files of the caller's subordinate ids included).
      return daemon::build::EmptyDirectory(root);
    default:
      return absl::UnimplementedError("this job is not supported by the worker");
  }
}

int Main() {
  rpc::FrameReader reader;
  std::string frame;
  v1::WorkerRequest request;
  absl::StatusOr<rpc::FrameReader::Result> got = reader.ReadFrame(kControlFd, &frame);
  absl::Status st = got.ok() ? absl::OkStatus() : got.status();
  if (st.ok() && *got != rpc::FrameReader::Result::kFrame) {
    st = absl::InvalidArgumentError("no request");
  }
  if (st.ok()) st = rpc::ParseFrame(frame, request, "worker request");
  v1::WorkerResult result;
  if (st.ok()) st = Run(request, result);
  v1::WorkerEvent event;
  if (st.ok()) {
    *event.mutable_result() = std::move(result);
  } else {
    event.set_error(std::string(st.message()));
  }
  Send(event);
  return st.ok() ? 0 : 1;
}

}  // namespace
}  // namespace berth::build_worker

int main() {
  return berth::build_worker::Main();
}
