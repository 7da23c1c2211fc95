#include "daemon/build/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/apps.h"
#include "daemon/build/bootstrap_tool.h"
#include "daemon/build/fingerprints.h"
#include "daemon/build/metadata.h"
#include "daemon/build/sections.h"
#include "daemon/build/stage_cache.h"
#include "daemon/build/worker_runner.h"
#include "deffile/bootstrap.h"
#include "sif/assemble.h"
#include "sif/image.h"
#include "squash/options.h"

namespace berth::daemon::build {
namespace {

constexpr const char* kRootName = "rootfs";
constexpr int kDefaultZstdLevel = 3;

struct BasePartition {
  int64_t offset = 0;
  int64_t size = 0;
};

absl::StatusOr<UniqueFd> Dup(int fd) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return ErrnoStatus("dup", errno);
  return UniqueFd(d);
}

// The base SIF's primary squashfs partition.
absl::StatusOr<BasePartition> LocateBase(int source_fd, const std::string& name) {
  ASSIGN_OR_RETURN(UniqueFd dup, Dup(source_fd));
  ASSIGN_OR_RETURN(sif::Image image,
                   sif::Image::FromFd(std::move(dup), sif::OpenMode::kReadOnly, name));
  const sif::Descriptor* part = image.PrimaryPartition();
  if (part == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no primary partition"));
  }
  if (part->Partition().fs_type != static_cast<int32_t>(sif::FsType::kSquashfs)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the primary partition is not squashfs"));
  }
  return BasePartition{part->offset, part->size};
}

absl::Status Unpack(BuildContext& ctx, int root_fd, int source_fd, const BasePartition& base) {
  PhaseScope phase(*ctx.progress, "unpack", "the base image");
  WorkerJob job("unpacking the base image", root_fd);
  v1::UnpackSquashfs* u = job.request().mutable_unpack_squashfs();
  u->set_fd(job.Pass(source_fd));
  u->set_offset(base.offset);
  u->set_size(base.size);
  u->set_fix_perms(ctx.request->fix_perms());
  return job.Run(ctx).status();
}

absl::Status WriteFiles(BuildContext& ctx, int root_fd, v1::WriteFiles files, const char* what) {
  WorkerJob job(what, root_fd);
  *job.request().mutable_write_files() = std::move(files);
  return job.Run(ctx).status();
}

// The roots of the stages built so far, by stage name, for `%files from`.
struct EarlierStages {
  std::vector<std::pair<std::string, int>> roots;

  int Find(absl::string_view name) const {
    for (const auto& [n, fd] : roots) {
      if (n == name) return fd;
    }
    return -1;
  }
};

// `%files` sections: those from an earlier stage (`from_stages`) come
// before %setup, the host's after it, as in Apptainer.
absl::Status CopyFiles(BuildContext& ctx, int root_fd, const deffile::Definition& stage,
                       const EarlierStages& earlier, bool from_stages) {
  for (const deffile::FilesSection& section : stage.files) {
    if (section.from_stage.empty() == from_stages) continue;
    int source_root = -1;
    if (from_stages) {
      source_root = earlier.Find(section.from_stage);
      // The parser only lets an earlier stage be named; this is its twin.
      if (source_root < 0) {
        return absl::InvalidArgumentError(absl::StrCat(ctx.definition_name, ":", section.line,
                                                       ": stage ", section.from_stage,
                                                       " was not found"));
      }
    }
    PhaseScope phase(*ctx.progress, "%files",
                     from_stages ? absl::StrCat("from ", section.from_stage) : "");
    WorkerJob job(absl::StrCat("%files, ", ctx.definition_name, ":", section.line), root_fd);
    v1::CopyFiles* copy = job.request().mutable_copy_files();
    copy->set_source_root_fd(source_root < 0 ? -1 : job.Pass(source_root));
    for (const deffile::FileTransfer& t : section.files) {
      v1::FileCopy* line = copy->add_files();
      line->set_source(t.source);
      line->set_destination(t.destination);
      line->set_line(t.line);
    }
    RETURN_IF_ERROR(job.Run(ctx).status());
  }
  return absl::OkStatus();
}

// Bootstrap: busybox, as Apptainer's agent makes it: its account files and
// hosts, an empty runscript, then the binary and its applet links.
absl::Status InstallBusyboxBase(BuildContext& ctx, int root_fd, int binary_fd) {
  PhaseScope phase(*ctx.progress, "bootstrap", "busybox");
  v1::WriteFiles files;
  AddFile(files, "/etc/passwd", "root:!:0:0:root:/root:/bin/sh", 0664);
  AddFile(files, "/etc/group", " root:x:0:", 0664);
  AddFile(files, "/etc/hosts",
          "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4", 0664);
  AddFile(files, "/.singularity.d/runscript", "#!/bin/sh\n", 0755);
  RETURN_IF_ERROR(WriteFiles(ctx, root_fd, std::move(files), "writing the busybox base"));
  WorkerJob job("installing busybox", root_fd);
  job.request().mutable_install_busybox()->set_fd(job.Pass(binary_fd));
  return job.Run(ctx).status();
}

// SCIF apps, right after the base as in Apptainer: their layout, then
// their %appfiles from the host.
absl::Status MakeApps(BuildContext& ctx, int root_fd, const deffile::Definition& stage) {
  RETURN_IF_ERROR(WriteFiles(ctx, root_fd, AppLayout(stage), "writing the SCIF apps"));
  for (const deffile::App& app : stage.apps) {
    v1::CopyFiles copies = AppFileCopies(app);
    if (copies.files().empty()) continue;
    PhaseScope phase(*ctx.progress, "%appfiles", app.name);
    WorkerJob job(absl::StrCat("%appfiles ", app.name, ", ", ctx.definition_name, ":", app.line),
                  root_fd);
    *job.request().mutable_copy_files() = std::move(copies);
    RETURN_IF_ERROR(job.Run(ctx).status());
  }
  return absl::OkStatus();
}

bool Selected(const BuildContext& ctx, const char* section) {
  const auto& wanted = ctx.request->sections();
  if (wanted.empty()) return true;
  for (const std::string& s : wanted) {
    if (s == "all" || s == section) return true;
  }
  return false;
}

absl::Status RunScripts(BuildContext& ctx, int root_fd, const deffile::Definition& stage,
                        const EarlierStages& earlier, const std::string& root_path) {
  if (Selected(ctx, "files")) RETURN_IF_ERROR(CopyFiles(ctx, root_fd, stage, earlier, true));
  if (stage.setup.present() && Selected(ctx, "setup")) {
    PhaseScope phase(*ctx.progress, "%setup");
    RETURN_IF_ERROR(RunHostScript(ctx, {"setup", &stage.setup, stage.setup.script}, root_path));
  }
  if (Selected(ctx, "files")) RETURN_IF_ERROR(CopyFiles(ctx, root_fd, stage, earlier, false));
  RETURN_IF_ERROR(WriteFiles(ctx, root_fd, MountPoints(), "preparing the root"));
  const bool installs = std::any_of(stage.apps.begin(), stage.apps.end(), [](const auto& app) {
    return app.Find("appinstall") != nullptr;
  });
  if ((stage.post.present() || installs) && Selected(ctx, "post")) {
    PhaseScope phase(*ctx.progress, "%post");
    std::vector<std::string> env = {"APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
                                    "SINGULARITY_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
                                    "APPTAINER_ROOTFS=/", "SINGULARITY_ROOTFS=/"};
    // As Apptainer: every app's %appinstall runs at the end of %post.
    std::string body = stage.post.script;
    if (!stage.apps.empty()) body += AppInstalls(stage);
    RETURN_IF_ERROR(RunContainerScript(ctx, {"post", &stage.post, body}, root_fd, env));
  }
  return absl::OkStatus();
}

absl::StatusOr<squash::Options> SquashOptions(const BuildContext& ctx) {
  squash::Options o;
  std::string name = ctx.request->compressor();
  if (name.empty()) name = ctx.config->build.compression;
  ASSIGN_OR_RETURN(o.compressor, squash::ParseCompressor(name));
  o.level = ctx.request->compression_level() != 0 ? ctx.request->compression_level()
                                                  : ctx.config->build.compression_level;
  // Nobody chose a level: zstd's 3, as berth.conf documents. (Left at 0,
  // libsquashfs would take its own default, 15: 13x the time for 9% less
  // space on bench/build_squash.sh's tree.) gzip's 9 and xz's 6 are
  // libsquashfs's defaults already.
  if (o.level == 0 && o.compressor == squash::Compressor::kZstd) o.level = kDefaultZstdLevel;
  if (ctx.request->block_size() != 0) o.block_size = ctx.request->block_size();
  o.threads = ctx.request->processors() > 0 ? static_cast<unsigned>(ctx.request->processors()) : 0;
  RETURN_IF_ERROR(squash::CheckOptions(o));
  return o;
}

// Def.FILE right after the descriptor table, the squashfs at the next
// partition boundary (written by the worker), then the table and header.
absl::StatusOr<int64_t> Assemble(BuildContext& ctx, int root_fd, int out_fd, const std::string& raw,
                                 int64_t now) {
  ASSIGN_OR_RETURN(squash::Options options, SquashOptions(ctx));
  const int64_t def_end = sif::kBuildDataOffset + static_cast<int64_t>(raw.size());
  const int64_t part_offset = sif::AlignUp(def_end, sif::kPartitionAlignment);
  int64_t squashfs_size = 0;
  {
    PhaseScope phase(*ctx.progress, "squash", squash::CompressorName(options.compressor));
    WorkerJob job("squashing the image", root_fd);
    v1::Squash* s = job.request().mutable_squash();
    s->set_out_fd(job.Pass(out_fd));
    s->set_offset(part_offset);
    v1::WorkerSquashOptions* w = s->mutable_options();
    w->set_compressor(squash::CompressorName(options.compressor));
    w->set_level(options.level);
    w->set_block_size(options.block_size);
    w->set_threads(options.threads);
    w->set_timestamp(now);
    ASSIGN_OR_RETURN(v1::WorkerResult result, job.Run(ctx));
    squashfs_size = result.bytes();
  }
  RETURN_IF_ERROR(PwriteFull(out_fd, {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()},
                             sif::kBuildDataOffset));
  std::vector<sif::Descriptor> objects;
  objects.push_back(sif::MakeBuildDescriptor(sif::DataType::kDeffile, 1, sif::kBuildDataOffset,
                                             static_cast<int64_t>(raw.size()), 0, now, ""));
  sif::Descriptor part = sif::MakeBuildDescriptor(sif::DataType::kPartition, 2, part_offset,
                                                  squashfs_size, part_offset - def_end, now, "");
  part.SetPartition({static_cast<int32_t>(sif::FsType::kSquashfs),
                     static_cast<int32_t>(sif::PartType::kPrimSys), "02"});
  objects.push_back(part);
  RETURN_IF_ERROR(sif::WriteBuildMetadata(out_fd, objects, "02", now));
  return part_offset + squashfs_size;
}

absl::Status CheckOutput(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("the output file", errno);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("the output is not a regular file");
  if (::ftruncate(fd, 0) != 0) return ErrnoStatus("truncating the output file", errno);
  return absl::OkStatus();
}

}  // namespace

// One stage's root up to and with %post: what the stage cache keeps.
absl::Status ShapeRoot(BuildContext& ctx, const BuildInputs& in, size_t index,
                       const EarlierStages& earlier, int root, const std::string& root_path) {
  const deffile::Definition& stage = in.file->stages[index];
  // %pre: on the host, before there is a root (build.md §3).
  if (stage.pre.present() && Selected(ctx, "pre")) {
    PhaseScope phase(*ctx.progress, "%pre");
    RETURN_IF_ERROR(RunHostScript(ctx, {"pre", &stage.pre, stage.pre.script}, ""));
  }
  // Scratch starts from the empty root; busybox from its binary;
  // debootstrap, yum and zypper from a host tool; every other base is a SIF
  // by now. --update keeps the sandbox it was given.
  const int source_fd = index < in.source_fds.size() ? in.source_fds[index] : -1;
  if (ctx.request->update()) {
    ctx.progress->Info("Building into existing container");
  } else if (deffile::BuiltByHostTool(deffile::AgentOf(stage))) {
    RETURN_IF_ERROR(RunBootstrapTool(ctx, stage, root, root_path));
  } else if (deffile::AgentOf(stage) == deffile::Agent::kBusybox) {
    RETURN_IF_ERROR(InstallBusyboxBase(ctx, root, source_fd));
  } else if (source_fd >= 0) {
    ASSIGN_OR_RETURN(BasePartition base, LocateBase(source_fd, std::string(stage.From())));
    // The unpacked base needs about three times its compressed size.
    RETURN_IF_ERROR(CheckFreeSpace(root, root_path, 3 * base.size, "the unpacked base image"));
    RETURN_IF_ERROR(Unpack(ctx, root, source_fd, base));
  }
  RETURN_IF_ERROR(MakeApps(ctx, root, stage));
  return RunScripts(ctx, root, stage, earlier, root_path);
}

// One stage, everything up to the assembly: its base unpacked into
// `root` (or its root after %post from the stage cache), the scripts, the
// metadata and %test.
absl::Status BuildRoot(BuildContext& ctx, const BuildInputs& in, size_t index,
                       const EarlierStages& earlier, StageSlot* slot, int root,
                       const std::string& root_path, int64_t now) {
  const deffile::Definition& stage = in.file->stages[index];
  RETURN_IF_ERROR(CheckNotNoexec(root, root_path));
  const int source_fd = index < in.source_fds.size() ? in.source_fds[index] : -1;
  // Before the cache too: a key the user no longer trusts is refused.
  if (!ctx.request->update() && deffile::AgentOf(stage) != deffile::Agent::kBusybox &&
      source_fd >= 0) {
    RETURN_IF_ERROR(CheckBaseFingerprints(ctx, stage, source_fd));
  }
  RETURN_IF_ERROR(ShapeThroughCache(
      ctx, index, slot, root, [&] { return ShapeRoot(ctx, in, index, earlier, root, root_path); }));
  {
    PhaseScope phase(*ctx.progress, "metadata");
    RETURN_IF_ERROR(WriteFiles(ctx, root, StageMetadata(stage, in.file->full_raw, now),
                               "writing the image's metadata"));
  }
  if (stage.test.present() && !ctx.request->notest() && Selected(ctx, "test")) {
    PhaseScope phase(*ctx.progress, "%test");
    RETURN_IF_ERROR(RunContainerScript(ctx, {"test", &stage.test, stage.test.script}, root, {}));
  }
  return absl::OkStatus();
}

// Every stage but the last, each in a root of its own in the staging
// directory (removed with it); their descriptors stay open for the stages
// that copy from them. With the stage cache, a stage only cached stages
// copy from is not built (stage_cache.h, PlanStages).
absl::Status BuildEarlierStages(BuildContext& ctx, const BuildInputs& in, int64_t now,
                                std::vector<StageSlot>& slots, std::vector<UniqueFd>& roots,
                                EarlierStages& earlier) {
  for (size_t i = 0; i + 1 < in.file->stages.size(); ++i) {
    const std::string name = absl::StrCat("stage-", i);
    const std::string stage_name(in.file->stages[i].StageName());
    StageSlot* slot = slots.empty() ? nullptr : &slots[i];
    if (slot != nullptr && !slot->needed) {
      ctx.progress->Info(absl::StrCat("Skipping stage ", stage_name.empty() ? name : stage_name,
                                      ": the stages that copy from it are cached"));
      continue;
    }
    ASSIGN_OR_RETURN(UniqueFd root, ctx.staging->MakeDir(name));
    const std::string path = absl::StrCat(ctx.staging->path(), "/", name);
    ctx.progress->Info(absl::StrCat("Building stage ", stage_name.empty() ? name : stage_name));
    RETURN_IF_ERROR(BuildRoot(ctx, in, i, earlier, slot, root.get(), path, now));
    earlier.roots.emplace_back(stage_name, root.get());
    roots.push_back(std::move(root));
  }
  return absl::OkStatus();
}

// All stages; the last one's root is `root`.
absl::Status BuildStages(BuildContext& ctx, const BuildInputs& in, int root,
                         const std::string& root_path, int64_t now) {
  ASSIGN_OR_RETURN(std::vector<StageSlot> slots, PlanStages(ctx, *in.file, in.source_fds, root));
  std::vector<UniqueFd> roots;
  EarlierStages earlier;
  RETURN_IF_ERROR(BuildEarlierStages(ctx, in, now, slots, roots, earlier));
  const size_t last = in.file->stages.size() - 1;
  return BuildRoot(ctx, in, last, earlier, slots.empty() ? nullptr : &slots[last], root, root_path,
                   now);
}

absl::StatusOr<int64_t> BuildSif(BuildContext& ctx, const BuildInputs& in) {
  const int64_t now = static_cast<int64_t>(::time(nullptr));
  RETURN_IF_ERROR(CheckOutput(in.output_fd));
  ASSIGN_OR_RETURN(UniqueFd root, ctx.staging->MakeDir(kRootName));
  const std::string root_path = absl::StrCat(ctx.staging->path(), "/", kRootName);
  RETURN_IF_ERROR(BuildStages(ctx, in, root.get(), root_path, now));
  return Assemble(ctx, root.get(), in.output_fd, in.file->full_raw, now);
}

// The sandbox must be an empty directory of the caller's: what the client
// made for this build, not a tree the daemon would then run a build in.
// With --update it is the caller's existing sandbox: the build's steps run
// in it with the caller's fakeroot rights, as they would in one the caller
// unpacked from an image of their own.
absl::Status CheckSandbox(const BuildContext& ctx, int dir) {
  struct stat st {};
  if (::fstat(dir, &st) != 0) return ErrnoStatus("the sandbox directory", errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ctx.caller.uid) {
    return absl::InvalidArgumentError("the sandbox must be a directory of the caller's");
  }
  if (ctx.request->update()) return absl::OkStatus();
  int listing = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  DIR* d = listing >= 0 ? ::fdopendir(listing) : nullptr;
  if (d == nullptr) return ErrnoStatus("the sandbox directory", errno);
  int entries = 0;
  while (dirent* e = ::readdir(d))
    entries += std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..";
  ::closedir(d);
  if (entries != 0) return absl::InvalidArgumentError("the sandbox directory is not empty");
  return absl::OkStatus();
}

absl::Status BuildSandbox(BuildContext& ctx, const BuildInputs& in, const std::string& path) {
  RETURN_IF_ERROR(CheckSandbox(ctx, in.output_fd));
  absl::Status built = BuildStages(ctx, in, in.output_fd, path, ::time(nullptr));
  // A failed --update leaves the user's sandbox as the failed step left it,
  // as Apptainer does: it is theirs, not a temporary of this build.
  if (built.ok() || ctx.request->update()) return built;
  // Emptied even when the client went away: nobody else could.
  ctx.cancelled = nullptr;
  WorkerJob job("emptying the sandbox", in.output_fd);
  job.request().mutable_remove_tree()->set_contents_only(true);
  (void)job.Run(ctx);
  return built;
}

}  // namespace berth::daemon::build
