// `berth build`'s options with Apptainer's names and environment forms
// (cmd/internal/cli/build.go: APPTAINER_SANDBOX, _FORCE, _UPDATE, _SECTION,
// _NOTEST, _FIXPERMS, _JSON, _FAKEROOT, _IGNORE_SUBUID, _TMPDIR,
// _MKSQUASHFS_ARGS, each also as BERTH_ and SINGULARITY_), plus berth's own
// --dry-run, --compress (BERTH_COMPRESS) and --cache (BERTH_CACHE).
// Apptainer's flags that make no sense for a node daemon (--library,
// --docker-*, --ignore-userns, --ignore-fakeroot-command) are refused by
// name with the reason.
//
// Everything is parsed and checked here, before any work, so that the
// builder receives options that are already known to be valid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace berth::client {

struct BuildFlags {
  bool dry_run = false;
  // The definition is JSON (checked); with --dry-run: print it as JSON.
  bool json = false;
  bool sandbox = false, force = false, update = false, notest = false, fix_perms = false;
  std::vector<std::string> sections = {"all"};
  std::string compress;  // zstd, gzip, lz4 or xz; "" leaves it to berth.conf
  std::string mksquashfs_args;
  std::string tmpdir;
  std::vector<std::string> build_args;
  std::string build_arg_file;
  bool warn_unused_build_args = false;
  bool fakeroot = false, ignore_subuid = false, cache = false, nv = false, rocm = false;
  // Registry bases (Bootstrap: docker, oras): the user's credentials file,
  // plain HTTP, the platform to pull.
  std::string authfile, arch, arch_variant;
  bool no_https = false, disable_cache = false;
  // -B/--bind and --mount values (APPTAINER_MOUNT too), for %post and %test.
  std::vector<std::string> binds, mounts;
  // --writable-tmpfs: %test writes to a discarded layer. Accepted for
  // Apptainer's scripts (docs/compat.md): --no-cleanup, --userns; --nvccli
  // sets nv.
  bool writable_tmpfs = false, no_cleanup = false, userns = false;
  // Refused by name (CheckBuildFlags), given or not.
  std::vector<std::string> refused;
};

void AddBuildFlags(CLI::App& cmd, BuildFlags& flags);

// Fills what the command line left unset from the environment forms.
absl::Status ApplyBuildEnvironment(const CLI::App& cmd, BuildFlags& flags);

// How the squashfs is written: --compress and the --mksquashfs-args berth's
// in-process writer understands (-comp, -Xcompression-level, -processors,
// -b). 0 and "" mean the site default.
struct SquashOptions {
  std::string compressor;
  int level = 0;
  int processors = 0;
  uint32_t block_size = 0;
};

// Refuses combinations Apptainer refuses (--update without --sandbox, "all"
// or "none" with other sections) and values berth cannot honour.
absl::StatusOr<SquashOptions> CheckBuildFlags(const BuildFlags& flags);

// --arch-variant folded into --arch as OS/ARCH/VARIANT (the node's ARCH
// when --arch is not given), as pull does.
absl::Status ResolveBuildArch(BuildFlags& flags);

}  // namespace berth::client
