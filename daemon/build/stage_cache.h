// The stage cache (`berth build --cache`, berth.conf [build] build_cache):
// a stage's root filesystem as it stands after %post is kept in the node
// cache (daemon/pull/blob_cache.h, type "build-stage") and a later build
// whose stage has the same key unpacks it instead of running %pre, the
// base's unpack, %files, %setup and %post again. The metadata (%runscript,
// %environment, %labels, %help) and %test come after that point, so a build
// that changes only those reuses the stage.
//
// The key is a SHA-256 over what shapes the root: the caller (uid, gid and
// fakeroot maps: an entry serves only the user whose rights read its %files
// sources and whose ids own its files), the bootstrap agent and the content
// of its source (the base SIF, the busybox binary), the header, %pre,
// %setup, %files lines, %post and every app's sections with build args
// substituted, the content of the host %files and %appfiles sources (hashed
// by the worker with the caller's rights), the identities of the earlier
// stages copied from, and the flags that change the root (--fix-perms,
// --nv, --rocm, --section). --update never uses the cache.
//
// An entry is a squashfs (zstd level 1) of the root, written by the worker
// as the fakeroot user, so it holds the ids and modes as the build's user
// namespace made them; it is unpacked by the worker in the same mapping.
// Entries are created whole (the node cache names a filled temp file) and
// two identical builds at once share one fill. Privilege: the daemon only
// computes keys and hands descriptors; every read of the caller's files and
// every write in the root is the worker's.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "daemon/build/build_context.h"
#include "deffile/deffile.h"

namespace berth::daemon::build {

struct CachedStage {
  const deffile::Definition* stage = nullptr;
  size_t index = 0;
  int source_fd = -1;  // its base (SIF or busybox binary); -1: none
  int root = -1;       // a directory for the worker's jobs (not written)
  // Identities (StageIdentity) of the earlier stages, by stage name.
  const std::map<std::string, std::string>* earlier = nullptr;
  // Bases already hashed in this build, by file (stages of one base file).
  std::map<std::string, std::string>* base_digests = nullptr;
};

// One stage's place in the cache, planned before any stage is built.
struct StageSlot {
  std::string key;     // "": built without the cache (it could not be keyed)
  UniqueFd entry;      // its entry, found (and pinned) when the build was planned
  bool needed = true;  // false: nothing needs its root (see PlanStages)
};

// Whether this build uses the cache: --cache or berth.conf's build_cache,
// never with --update.
bool StageCacheWanted(const BuildContext& ctx);

// The key of a stage's root after %post (hex).
absl::StatusOr<std::string> StageKey(BuildContext& ctx, const CachedStage& s);

// What a later stage's key records of this one: its key and its whole text
// (a `%files from` copy also sees its metadata).
std::string StageIdentity(const std::string& key, const deffile::Definition& stage);

// With the cache on (else: no slots): every stage's key, in order, then
// from the last stage back, which stages need their root built: the last
// one; an earlier one that a needed stage missing from the cache copies
// from, or that no stage copies from (built as without the cache). An
// earlier stage that only cached stages copy from is not built at all, its
// %test included: its root would be unpacked for nothing.
absl::StatusOr<std::vector<StageSlot>> PlanStages(BuildContext& ctx,
                                                  const deffile::ParsedFile& file,
                                                  const std::vector<int>& source_fds, int root);

// `shape` (the stage up to and with %post) runs when the slot has no entry
// and none appeared since, and its root is then kept; otherwise the entry
// is unpacked into `root`. A null slot: `shape` alone.
absl::Status ShapeThroughCache(BuildContext& ctx, size_t index, StageSlot* slot, int root,
                               const std::function<absl::Status()>& shape);

}  // namespace berth::daemon::build
