// The build plan of a stage: the steps Apptainer takes, in its order
// (build.md §3), where each runs, and which ones the build options skip.
// `berth build --dry-run` prints it; the builder walks the same list, so
// the order lives in one place.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "deffile/definition.h"

namespace berth::deffile {

enum class StepKind {
  kPre,             // %pre, on the host
  kBootstrap,       // fetch and unpack the base (the header)
  kFilesFromStage,  // a %files from STAGE section
  kSetup,           // %setup, on the host, $APPTAINER_ROOTFS set
  kFilesFromHost,   // the %files section without args
  kPost,            // %post (with every %appinstall appended), in the container
  kImageFile,       // a script or metadata file written into the image
  kApp,             // a SCIF app's files under /scif/apps/NAME
  kTest,            // %test, in the container, after the build
};

struct Step {
  StepKind kind;
  std::string section;                  // the --section name that selects it ("post", "files", ...)
  bool on_host = false;                 // runs on the host as the caller, not in the container
  const Script* script = nullptr;       // kPre, kSetup, kPost, kTest, kImageFile
  const FilesSection* files = nullptr;  // kFilesFrom*
  const App* app = nullptr;             // kApp
  std::string destination;              // kImageFile: the path in the image
  std::string skipped;  // why the step does not run ("--notest", ...); "" when it runs
};

struct PlanOptions {
  std::vector<std::string> sections = {"all"};  // --section
  bool notest = false;                          // --notest
  bool update = false;                          // --update: no bootstrap
};

// Apptainer's --section rules: "all" and "none" stand alone. berth also
// refuses names that select nothing.
absl::Status CheckSectionsOption(const std::vector<std::string>& sections);

// The steps of `stage`; sections the file does not have are left out.
std::vector<Step> PlanStage(const Definition& stage, const PlanOptions& options);

}  // namespace berth::deffile
