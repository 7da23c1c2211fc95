// berth.conf's [build] table: where builds stage their files, how images are
// compressed, and the stage cache (docs/config.md, "[build]").
#pragma once

#include <cstdint>
#include <string>

namespace berth::daemon::policy {

struct BuildConfig {
  // Where builds stage root filesystems: "" = <state dir>/build. Must not be
  // mounted noexec; a small tmpfs here limits every build on the node.
  std::string build_dir;
  // Whether a user's --tmpdir (APPTAINER_TMPDIR, BERTH_TMPDIR) may move a
  // build's staging into a directory of theirs.
  bool allow_user_tmpdir = true;
  // The squashfs compressor and level when the user names none: zstd needs
  // Linux >= 4.14 to mount; gzip is readable everywhere. Level 0 = berth's
  // choice for the compressor (zstd 3, gzip 9, xz 6).
  std::string compression = "zstd";
  int compression_level = 0;
  // The stage cache (--cache) for every build; its entries count in the
  // node cache's budget ([registry] cache_max_mib).
  bool build_cache = false;
};

}  // namespace berth::daemon::policy
