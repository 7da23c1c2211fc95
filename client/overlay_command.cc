#include "client/overlay_command.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

extern char** environ;

namespace berth::client {
namespace {

constexpr uint64_t kMinSizeMib = 64;  // Apptainer's default and minimum

struct CreateFlags {
  uint64_t size_mib = kMinSizeMib;
  bool sparse = false;
  bool fakeroot = false;
  std::vector<std::string> create_dirs;
  std::string image;
};

// The tree mkfs.ext3 copies in: upper/ and work/ (0755, or 0777 when the
// caller's ids do not fit ext3's 16-bit owners, as Apptainer makes them),
// each --create-dir below upper/.
absl::Status FillTree(const std::filesystem::path& tree, const CreateFlags& f) {
  mode_t mode = (::getuid() > 65535 || ::getgid() > 65535) ? 0777 : 0755;
  for (const char* name : {"upper", "work"}) {
    std::string dir = (tree / name).string();
    if (::mkdir(dir.c_str(), mode) != 0 || ::chmod(dir.c_str(), mode) != 0) {
      return ErrnoStatus(dir, errno);
    }
  }
  for (const std::string& d : f.create_dirs) {
    if (d.empty() || absl::StrContains(d, "..")) {
      return absl::InvalidArgumentError(absl::StrCat("--create-dir ", d, ": not a clean path"));
    }
    std::error_code ec;
    std::filesystem::create_directories(tree / "upper" / std::filesystem::path(d).relative_path(),
                                        ec);
    if (ec) return absl::InternalError(absl::StrCat("--create-dir ", d, ": ", ec.message()));
  }
  return absl::OkStatus();
}

// The image file, zeroed (Apptainer's dd) or sparse (its truncate).
absl::Status MakeImageFile(const CreateFlags& f) {
  UniqueFd fd(::open(f.image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return ErrnoStatus(absl::StrCat("creating ", f.image), errno);
  off_t size = static_cast<off_t>(f.size_mib) << 20;
  if (f.sparse) {
    if (::ftruncate(fd.get(), size) != 0) return ErrnoStatus(f.image, errno);
    return absl::OkStatus();
  }
  std::vector<char> zeros(1 << 20, 0);
  for (uint64_t i = 0; i < f.size_mib; ++i) {
    RETURN_IF_ERROR_CTX(
        WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size()}),
        f.image);
  }
  return absl::OkStatus();
}

absl::Status RunMkfs(const std::string& tree, const std::string& image) {
  // As the user, with their PATH and the sbin directories e2fsprogs uses.
  std::string path = absl::StrCat(getenv("PATH") ? getenv("PATH") : "", ":/usr/sbin:/sbin");
  std::string mkfs;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/mkfs.ext3");
    if (::access(candidate.c_str(), X_OK) == 0) {
      mkfs = candidate;
      break;
    }
  }
  if (mkfs.empty()) {
    return absl::NotFoundError("mkfs.ext3 not found (install e2fsprogs 1.43 or later)");
  }
  std::vector<std::string> args = {mkfs, "-q", "-F", "-d", tree, image};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int err = posix_spawn(&pid, mkfs.c_str(), nullptr, nullptr, argv.data(), environ)) {
    return ErrnoStatus(mkfs, err);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("waiting for mkfs.ext3", errno);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("mkfs.ext3 -d failed on ", image));
  }
  return absl::OkStatus();
}

absl::Status RunCreate(const CreateFlags& f) {
  if (f.fakeroot) {
    return absl::UnimplementedError("overlay create --fakeroot is not supported by berth yet");
  }
  if (f.size_mib < kMinSizeMib) {
    return absl::InvalidArgumentError(
        absl::StrCat("image size must be equal or greater than ", kMinSizeMib, " MiB"));
  }
  struct stat st;
  if (::stat(f.image.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("image ", f.image,
                     " already exists (berth does not add an overlay partition to a SIF file)"));
  }
  char tmpl[] = "/tmp/berth-overlay-create-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return ErrnoStatus("a temporary directory", errno);
  absl::Cleanup remove_tree = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmpl, ec);
  };
  RETURN_IF_ERROR(FillTree(tmpl, f));
  absl::Status made = MakeImageFile(f);
  if (made.ok()) made = RunMkfs(tmpl, f.image);
  if (!made.ok() && !absl::IsAlreadyExists(made)) ::unlink(f.image.c_str());
  return made;
}

}  // namespace

void RegisterOverlayCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  CLI::App* group = app.add_subcommand("overlay", "Manage an EXT3 writable overlay image");
  group->require_subcommand(1);
  auto flags = std::make_shared<CreateFlags>();
  CLI::App* create = group->add_subcommand("create", "Create EXT3 writable overlay image");
  create->add_option("-s,--size", flags->size_mib, "size of the EXT3 writable overlay in MiB");
  create->add_flag("-S,--sparse", flags->sparse, "create a sparse overlay image");
  create->add_option("--create-dir", flags->create_dirs,
                     "directories to create in the overlay's upper layer");
  create->add_flag("-f,--fakeroot", flags->fakeroot, "make the upper and work dirs root's");
  create->add_option("image", flags->image, "the image file to create")->required();
  create->callback([flags, result] { *result = RunCreate(*flags); });
}

}  // namespace berth::client
