// What a definition writes into the image besides its files (formats.md
// §5.3, §5.5): /.singularity.d's runscript, environment, labels, help, test
// and Singularity, the `/singularity` and action links where the base lacks
// them, and the mount points the build's container needs.
#pragma once

#include <cstdint>
#include <string>

#include "berth/v1/build_worker.pb.h"
#include "deffile/definition.h"

namespace berth::daemon::build {

// Directories and empty files that must exist before %post runs (the
// launcher binds or mounts over them); existing entries are left alone.
// One generated file, and one directory made if missing, added to `out`.
void AddFile(v1::WriteFiles& out, const std::string& path, const std::string& content,
             uint32_t mode, bool append = false);
void AddDir(v1::WriteFiles& out, const std::string& path, uint32_t mode = 0755);

v1::WriteFiles MountPoints();

// The metadata of `stage`, for the image whose whole definition is `raw`.
// `build_time` (Unix seconds) dates the automatic labels.
v1::WriteFiles StageMetadata(const deffile::Definition& stage, const std::string& raw,
                             int64_t build_time);

// "#!/bin/sh\n\n" + body, or the body itself when it starts with "#!"
// (section args are appended to the default shebang).
std::string ScriptFile(const deffile::Script& script);

}  // namespace berth::daemon::build
