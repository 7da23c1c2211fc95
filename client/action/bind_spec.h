// Apptainer's bind syntax, as users type it in -B/--bind and APPTAINER_BIND:
// "src[:dst[:opts]]" entries separated by commas, opts "ro", "rw" or
// "image-src=PATH" (an "id=N" entry after it, as Apptainer's
// "img:dst:image-src=/p,id=2", belongs to that bind); and
// its --mount syntax (APPTAINER_MOUNT): one bind per value, comma-separated
// key=value fields read as a CSV record ("type=bind,src=/a,dst=/b,ro"), so a
// path with a comma or a colon can be written in double quotes.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::client {

struct BindEntry {
  std::string source;       // absolute (relative sources are taken from `cwd`)
  std::string destination;  // absolute; defaults to the source
  bool read_only = false;
  // image-src=PATH: `source` is an image file (SIF or squashfs) and PATH a
  // directory or file inside it; empty for a plain bind.
  std::string image_src;
  // id=N: with image_src, the SIF partition of descriptor id N instead of
  // the primary one; 0 for the primary.
  uint32_t image_id = 0;
};

// Parses one flag value (which may hold several comma-separated entries).
absl::StatusOr<std::vector<BindEntry>> ParseBinds(const std::string& value, const std::string& cwd);

// Parses one --mount value: type=bind (the default), source|src,
// destination|dst|target, ro|readonly, image-src (a path inside the image
// file named by source), id (with image-src: the SIF partition of that
// descriptor id instead of the primary one).
absl::StatusOr<BindEntry> ParseMount(const std::string& value, const std::string& cwd);

}  // namespace berth::client
