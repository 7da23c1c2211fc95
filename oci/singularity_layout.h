// The /.singularity.d layout Apptainer adds to an image built from OCI
// layers, and the OCI config object it stores next to the squashfs.
//
// `apptainer pull docker://…` runs the image through its OCI conveyor packer
// (internal/pkg/build/sources/conveyorPacker_oci.go, base_environment.go):
// action scripts, env scripts (10-docker2singularity.sh from the config's
// Env), a runscript from Entrypoint/Cmd, labels.json, the standard mount
// point directories and the /.run-style symlinks. This file reproduces those
// bytes so images behave the same under berth and Apptainer. berth adds one
// thing Apptainer lacks: the runscript enters the config's WorkingDir, as
// `docker run` does (set BERTH_OCI_KEEP_CWD to keep the caller's directory).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::oci {

struct GeneratedFile {
  std::string path;  // relative to the image root, no leading '/'
  std::string content;
  uint32_t mode = 0644;
};

struct SingularityLayout {
  // Written over whatever the layers hold at these paths (Apptainer truncates
  // and rewrites them).
  std::vector<GeneratedFile> files;
  // Created (0755, root) only where the layers have nothing (MkdirAll).
  std::vector<std::string> dirs_if_missing;
  // (path, target), created only where the layers have nothing.
  std::vector<std::pair<std::string, std::string>> symlinks_if_missing;
  // json.Marshal of go-containerregistry's v1.Config, as Apptainer stores it
  // in the SIF's JSON.Generic object "oci-config.json".
  std::string oci_config_json;
  // Env names that are no shell identifier; left out of the env script.
  std::vector<std::string> dropped_env;
};

absl::StatusOr<SingularityLayout> BuildSingularityLayout(std::string_view config_json);

}  // namespace berth::oci
