#include "deffile/plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "deffile/go_text.h"

namespace berth::deffile {
namespace {

constexpr absl::string_view kSectionNames[] = {"pre",         "setup",     "files",       "post",
                                               "environment", "runscript", "startscript", "test",
                                               "help",        "labels"};

// Apptainer's Bundle.RunSection.
bool Selected(const PlanOptions& o, absl::string_view section) {
  for (const std::string& s : o.sections) {
    if (s == "none") return false;
    if (s == "all" || s == section) return true;
  }
  return false;
}

std::string SkipReason(const PlanOptions& o, absl::string_view section) {
  if (Selected(o, section)) return "";
  return absl::StrCat("--section ", absl::StrJoin(o.sections, ","));
}

Step ScriptStep(StepKind kind, absl::string_view section, bool on_host, const Script& script,
                const PlanOptions& o) {
  return Step{kind, std::string(section),  on_host, &script, nullptr, nullptr,
              "",   SkipReason(o, section)};
}

void AddImageFiles(const Definition& d, const PlanOptions& o, std::vector<Step>& steps) {
  struct File {
    absl::string_view section;
    const Script* script;
    absl::string_view destination;
  };
  const File files[] = {
      {"environment", &d.environment, "/.singularity.d/env/90-environment.sh"},
      {"runscript", &d.runscript, "/.singularity.d/runscript"},
      {"startscript", &d.startscript, "/.singularity.d/startscript"},
      {"test", &d.test, "/.singularity.d/test"},
      {"help", &d.help, "/.singularity.d/runscript.help"},
  };
  for (const File& f : files) {
    if (!f.script->present()) continue;
    Step step = ScriptStep(StepKind::kImageFile, f.section, false, *f.script, o);
    step.destination = std::string(f.destination);
    steps.push_back(std::move(step));
  }
  if (!d.labels.empty()) {
    steps.push_back(Step{StepKind::kImageFile, "labels", false, nullptr, nullptr, nullptr,
                         "/.singularity.d/labels.json", SkipReason(o, "labels")});
  }
  for (const App& app : d.apps) {
    steps.push_back(Step{StepKind::kApp, "", false, nullptr, nullptr, &app,
                         absl::StrCat("/scif/apps/", app.name), ""});
  }
}

}  // namespace

absl::Status CheckSectionsOption(const std::vector<std::string>& sections) {
  for (const std::string& s : sections) {
    if ((s == "all" || s == "none") && sections.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("section specification error: cannot have ", s, " and any other option"));
    }
    if (s != "all" && s != "none" &&
        std::find(std::begin(kSectionNames), std::end(kSectionNames), s) ==
            std::end(kSectionNames)) {
      return absl::InvalidArgumentError(absl::StrCat("--section ", internal::Printable(s),
                                                     ": no such section (use all, none or ",
                                                     absl::StrJoin(kSectionNames, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

std::vector<Step> PlanStage(const Definition& d, const PlanOptions& o) {
  std::vector<Step> steps;
  if (!d.pre.script.empty()) steps.push_back(ScriptStep(StepKind::kPre, "pre", true, d.pre, o));
  steps.push_back(Step{StepKind::kBootstrap, "", false, nullptr, nullptr, nullptr, "",
                       o.update ? "--update: the existing sandbox is the base" : ""});
  for (const FilesSection& f : d.files) {
    if (f.from_stage.empty()) continue;
    steps.push_back(Step{StepKind::kFilesFromStage, "files", false, nullptr, &f, nullptr, "",
                         SkipReason(o, "files")});
  }
  if (d.setup.present()) steps.push_back(ScriptStep(StepKind::kSetup, "setup", true, d.setup, o));
  for (const FilesSection& f : d.files) {
    if (!f.from_stage.empty()) continue;
    steps.push_back(Step{StepKind::kFilesFromHost, "files", true, nullptr, &f, nullptr, "",
                         SkipReason(o, "files")});
  }
  bool installs = std::any_of(d.apps.begin(), d.apps.end(),
                              [](const App& a) { return a.Find("appinstall") != nullptr; });
  if (d.post.present() || installs) {
    steps.push_back(ScriptStep(StepKind::kPost, "post", false, d.post, o));
  }
  AddImageFiles(d, o, steps);
  if (d.test.present()) {
    Step test = ScriptStep(StepKind::kTest, "test", false, d.test, o);
    if (test.skipped.empty() && o.notest) test.skipped = "--notest";
    steps.push_back(std::move(test));
  }
  return steps;
}

}  // namespace berth::deffile
