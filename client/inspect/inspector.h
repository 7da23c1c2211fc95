// What `berth inspect` shows, gathered the way Apptainer gathers it.
//
// Apptainer answers from the SIF's inspect-metadata.json object when the SIF
// has one. Otherwise it runs a shell snippet in the container that cats files
// under /.singularity.d and /scif/apps/<app>/scif (cmd/internal/cli/inspect.go).
// We read the same files straight out of the squashfs and apply the snippet's
// rules:
// - a file that is missing or not a regular file (after symlinks) adds
//   nothing;
// - trailing newlines are trimmed;
// - the environment is the 10-docker*.sh and 9*-environment.sh scripts;
// - apps are the /scif/apps entries that have a scif/ directory;
// - the definition file comes from the SIF's Def.FILE object, else from
//   /.singularity.d/Singularity.
// Damage Apptainer would only trip over becomes an error here: a corrupt
// filesystem, a symlink loop, or a file over the size cap.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/inspect/image_source.h"
#include "client/inspect/inspect_metadata.h"

namespace berth::inspect {

// Per-file cap on what we read from an image. Real metadata files are a few KB.
inline constexpr int64_t kMaxFileBytes = 1 << 20;
// inspect-metadata.json gathers several files, so its cap is larger.
inline constexpr int64_t kMaxMetadataBytes = 8 << 20;

// The flags of `apptainer inspect`.
struct InspectOptions {
  bool labels = false;
  bool deffile = false;
  bool runscript = false;
  bool startscript = false;
  bool test = false;
  bool environment = false;
  bool helpfile = false;
  bool list_apps = false;
  bool json = false;
  bool all = false;  // every section, as JSON, for the image and all apps
  std::string app;
};

struct InspectResult {
  Attributes attributes;
  // Apptainer's WARNING lines (unparsable labels, no Def.FILE, ...), in order.
  std::vector<std::string> warnings;
};

// Collects what `options` selects from `image`.
absl::StatusOr<InspectResult> Inspect(ImageSource& image, const InspectOptions& options);

// The text or JSON form of `result`, as `apptainer inspect` prints it.
std::string RenderInspectOutput(const InspectResult& result, const InspectOptions& options);

}  // namespace berth::inspect
