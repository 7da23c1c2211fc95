#include "daemon/build/stage_cache.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/apps.h"
#include "daemon/build/worker_runner.h"
#include "deffile/bootstrap.h"
#include "spdlog/spdlog.h"

namespace berth::daemon::build {
namespace {

constexpr const char* kType = "build-stage";
constexpr const char* kVersion = "berth stage cache 1";
// Cheap to write and to unpack: the entry is an intermediate, as the
// node cache's "sif-build" is.
constexpr int kZstdLevel = 1;

// Length-prefixed fields: two different inputs never feed the same bytes.
class KeyHasher {
 public:
  KeyHasher() : h_(DigestAlgorithm::kSha256) {}
  KeyHasher& Add(absl::string_view field) {
    const uint64_t n = field.size();
    h_.Update({reinterpret_cast<const uint8_t*>(&n), sizeof(n)});
    h_.Update({reinterpret_cast<const uint8_t*>(field.data()), field.size()});
    return *this;
  }
  std::string Finish() { return h_.FinishHex(); }

 private:
  Hasher h_;
};

// Whose entry this is: the uid whose rights read the %files sources, and
// the ids that own the root's files (the fakeroot maps).
void AddCaller(KeyHasher& k, const Caller& c) {
  k.Add("caller").Add(absl::StrCat(c.uid, ":", c.gid, ":", c.ranges));
  for (const auto& m : c.uid_map) k.Add(absl::StrCat("u", m.inside, ":", m.outside, ":", m.count));
  for (const auto& m : c.gid_map) k.Add(absl::StrCat("g", m.inside, ":", m.outside, ":", m.count));
}

absl::Status AddSource(KeyHasher& k, const CachedStage& s) {
  k.Add("agent").Add(absl::StrCat(static_cast<int>(deffile::AgentOf(*s.stage))));
  if (s.source_fd < 0) return absl::OkStatus();
  struct stat st {};
  if (::fstat(s.source_fd, &st) != 0) return ErrnoStatus("the bootstrap source", errno);
  // The same file, unchanged, is hashed once per build.
  const std::string file =
      absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                   st.st_mtim.tv_nsec, ":", st.st_ctim.tv_sec, ".", st.st_ctim.tv_nsec);
  if (s.base_digests != nullptr) {
    if (auto it = s.base_digests->find(file); it != s.base_digests->end()) {
      k.Add("source").Add(it->second);
      return absl::OkStatus();
    }
  }
  ASSIGN_OR_RETURN(std::string digest,
                   DigestRange(s.source_fd, 0, st.st_size, DigestAlgorithm::kSha256));
  if (s.base_digests != nullptr) s.base_digests->emplace(file, digest);
  k.Add("source").Add(digest);
  return absl::OkStatus();
}

void AddScript(KeyHasher& k, const char* name, const deffile::Script& script) {
  k.Add(name).Add(script.present() ? "1" : "0").Add(script.args).Add(script.script);
}

void AddText(KeyHasher& k, const CachedStage& s, const v1::BuildRequest& r) {
  const deffile::Definition& d = *s.stage;
  for (const deffile::HeaderEntry& e : d.header.entries()) k.Add("header").Add(e.key).Add(e.value);
  AddScript(k, "pre", d.pre);
  AddScript(k, "setup", d.setup);
  AddScript(k, "post", d.post);
  for (const deffile::FilesSection& f : d.files) {
    k.Add("files").Add(f.args).Add(f.from_stage);
    for (const deffile::FileTransfer& t : f.files) k.Add(t.source).Add(t.destination);
  }
  // Every app section: the layout writes them all into the root before %post.
  for (const deffile::App& app : d.apps) {
    k.Add("app").Add(app.name);
    for (const auto& [name, body] : app.sections) k.Add(name).Add(body);
  }
  k.Add("flags").Add(absl::StrCat(r.fix_perms(), r.nv(), r.rocm()));
  std::vector<std::string> sections(r.sections().begin(), r.sections().end());
  std::sort(sections.begin(), sections.end());
  for (const std::string& name : sections) k.Add("section").Add(name);
}

// The host sources of %files and %appfiles, hashed by the worker as the
// caller: their content is the caller's to read, not the daemon's.
absl::StatusOr<std::string> HashHostFiles(BuildContext& ctx, const CachedStage& s) {
  WorkerJob job("reading the %files sources for the stage cache", s.root);
  v1::HashFiles* hash = job.request().mutable_hash_files();
  for (const deffile::FilesSection& f : s.stage->files) {
    if (!f.from_stage.empty()) continue;
    v1::CopyFiles* section = hash->add_sections();
    for (const deffile::FileTransfer& t : f.files) {
      v1::FileCopy* line = section->add_files();
      line->set_source(t.source);
      line->set_destination(t.destination);
      line->set_line(t.line);
    }
  }
  for (const deffile::App& app : s.stage->apps) *hash->add_sections() = AppFileCopies(app);
  if (hash->sections().empty()) return std::string();  // no worker to start for nothing
  ASSIGN_OR_RETURN(v1::WorkerResult result, job.Run(ctx));
  return result.digest();
}

// The worker squashes the root into the cache's temp file `fd`.
absl::Status SquashInto(BuildContext& ctx, int root, int fd) {
  // A descriptor of its own: the walk reads the directory through it, and
  // the image's squash reads the same root afterwards from the start.
  UniqueFd own(::openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own) return ErrnoStatus("the stage's root", errno);
  PhaseScope phase(*ctx.progress, "cache", "keeping the stage");
  WorkerJob job("keeping the stage in the cache", own.get());
  v1::Squash* s = job.request().mutable_squash();
  s->set_out_fd(job.Pass(fd));
  s->set_offset(0);
  s->mutable_options()->set_compressor("zstd");
  s->mutable_options()->set_level(kZstdLevel);
  s->mutable_options()->set_threads(
      ctx.request->processors() > 0 ? static_cast<unsigned>(ctx.request->processors()) : 0);
  return job.Run(ctx).status();
}

absl::Status UnpackEntry(BuildContext& ctx, int root, int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("the stage cache entry", errno);
  PhaseScope phase(*ctx.progress, "unpack", "the cached stage");
  WorkerJob job("unpacking the cached stage", root);
  v1::UnpackSquashfs* u = job.request().mutable_unpack_squashfs();
  u->set_fd(job.Pass(fd));
  u->set_offset(0);
  u->set_size(st.st_size);
  u->set_xattrs(true);
  return job.Run(ctx).status();
}

// A failed restore's leftovers, removed by the fakeroot user who made them.
absl::Status EmptyRoot(BuildContext& ctx, int root) {
  WorkerJob job("emptying the stage's root", root);
  job.request().mutable_remove_tree()->set_contents_only(true);
  return job.Run(ctx).status();
}

}  // namespace

bool StageCacheWanted(const BuildContext& ctx) {
  // What a bind shows %post is outside the key: a build with -B/--mount
  // neither reuses nor fills the cache.
  return (ctx.request->cache() || ctx.config->build.build_cache) && !ctx.request->update() &&
         ctx.request->binds().empty();
}

absl::StatusOr<std::string> StageKey(BuildContext& ctx, const CachedStage& s) {
  KeyHasher k;
  k.Add(kVersion);
  AddCaller(k, ctx.caller);
  RETURN_IF_ERROR(AddSource(k, s));
  AddText(k, s, *ctx.request);
  ASSIGN_OR_RETURN(std::string files, HashHostFiles(ctx, s));
  k.Add("host files").Add(files);
  for (const deffile::FilesSection& f : s.stage->files) {
    if (f.from_stage.empty()) continue;
    auto it = s.earlier->find(f.from_stage);
    // An earlier stage that was not keyed: nothing to key this one by.
    if (it == s.earlier->end() || it->second.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("stage ", f.from_stage, " has no cache key"));
    }
    k.Add("from").Add(f.from_stage).Add(it->second);
  }
  return k.Finish();
}

std::string StageIdentity(const std::string& key, const deffile::Definition& stage) {
  return KeyHasher().Add("identity").Add(key).Add(stage.raw).Finish();
}

absl::StatusOr<std::vector<StageSlot>> PlanStages(BuildContext& ctx,
                                                  const deffile::ParsedFile& file,
                                                  const std::vector<int>& source_fds, int root) {
  std::vector<StageSlot> slots;
  if (ctx.stage_cache == nullptr) return slots;
  const size_t n = file.stages.size();
  slots.resize(n);
  std::map<std::string, std::string> identities, base_digests;
  std::map<std::string, size_t> index_of;  // the first stage of a name, as %files from finds it
  for (size_t i = 0; i < n; ++i) {
    const deffile::Definition& stage = file.stages[i];
    const int source = i < source_fds.size() ? source_fds[i] : -1;
    absl::StatusOr<std::string> key =
        StageKey(ctx, {&stage, i, source, root, &identities, &base_digests});
    if (key.ok()) {
      slots[i].key = *key;
    } else {
      // Not a build error: the steps that follow report their own.
      ctx.progress->Info(absl::StrCat("Not caching stage ", i + 1, ": ", key.status().message()));
    }
    const std::string name(stage.StageName());
    if (!name.empty() && !identities.contains(name)) {
      identities.emplace(name, slots[i].key.empty() ? "" : StageIdentity(slots[i].key, stage));
      index_of.emplace(name, i);
    }
  }
  std::vector<bool> copied(n, false), wanted(n, false);
  wanted[n - 1] = true;
  for (size_t j = n; j-- > 0;) {
    for (const deffile::FilesSection& f : file.stages[j].files) {
      if (auto it = index_of.find(f.from_stage); it != index_of.end() && it->second < j) {
        copied[it->second] = true;
      }
    }
  }
  for (size_t j = n; j-- > 0;) {
    slots[j].needed = wanted[j] || !copied[j];
    if (!slots[j].needed) continue;
    if (!slots[j].key.empty()) {
      auto entry = ctx.stage_cache->Get(kType, absl::StrCat("sha256:", slots[j].key));
      if (entry.ok()) {
        slots[j].entry = *std::move(entry);
        continue;  // what it copies from is in the entry already
      }
    }
    for (const deffile::FilesSection& f : file.stages[j].files) {
      if (auto it = index_of.find(f.from_stage); it != index_of.end() && it->second < j) {
        wanted[it->second] = true;
      }
    }
  }
  return slots;
}

absl::Status ShapeThroughCache(BuildContext& ctx, size_t index, StageSlot* slot, int root,
                               const std::function<absl::Status()>& shape) {
  if (slot == nullptr || slot->key.empty() || ctx.stage_cache == nullptr) return shape();
  const std::string& key = slot->key;
  bool shaped = false;
  absl::Status shape_status;
  absl::StatusOr<UniqueFd> entry = std::move(slot->entry);
  if (!entry->valid()) {
    auto fill = [&](int fd, const std::function<void(int64_t)>&) -> absl::Status {
      shaped = true;
      shape_status = shape();
      RETURN_IF_ERROR(shape_status);
      return SquashInto(ctx, root, fd);
    };
    entry = ctx.stage_cache->GetOrFill(kType, absl::StrCat("sha256:", key), -1, fill, nullptr);
  }
  if (shaped) {
    RETURN_IF_ERROR(shape_status);
    // The stage is built; only keeping it failed (the budget, the disk).
    if (!entry.ok()) {
      ctx.progress->Warning(
          absl::StrCat("stage ", index + 1, " not cached: ", entry.status().message()));
    }
    return absl::OkStatus();
  }
  if (!entry.ok()) {
    ctx.progress->Warning(
        absl::StrCat("the stage cache: ", entry.status().message(), "; building the stage"));
    return shape();
  }
  ctx.progress->Info(
      absl::StrCat("Using cached stage ", index + 1, " (key ", key.substr(0, 12), ")"));
  spdlog::info("build for uid {}: stage {} from the cache ({})", ctx.caller.uid, index + 1, key);
  absl::Status restored = UnpackEntry(ctx, root, entry->get());
  if (restored.ok()) return restored;
  RETURN_IF_ERROR(ctx.CheckCancelled());
  // An xattr this host does not let the user set again (an SELinux label):
  // the stage is built as without the cache rather than kept incomplete.
  ctx.progress->Warning(absl::StrCat("stage ", index + 1,
                                     ": the cached root could not be restored (",
                                     restored.message(), "); building the stage"));
  RETURN_IF_ERROR(EmptyRoot(ctx, root));
  return shape();
}

}  // namespace berth::daemon::build
