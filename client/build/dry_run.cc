#include "client/build/dry_run.h"

#include <unistd.h>

#include <cstdio>
#include <span>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/build/build_spec.h"
#include "client/cli_log.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "deffile/bootstrap.h"
#include "deffile/json.h"
#include "deffile/json_reader.h"
#include "deffile/plan.h"

namespace berth::client {
namespace {

using deffile::Step;
using deffile::StepKind;

absl::Status Print(int fd, const std::string& text) {
  return WriteAll(fd, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// One line of the plan: what, where, and the details.
void Row(std::string& out, absl::string_view what, absl::string_view where,
         absl::string_view details) {
  absl::StrAppendFormat(&out, "  %-13s %-10s %s\n", what, where, details);
}

std::string LineOf(const deffile::Script& s) {
  std::string out = absl::StrCat("line ", s.line);
  if (!s.args.empty()) absl::StrAppend(&out, ", args: ", s.args);
  return out;
}

std::string Skipped(const Step& step, std::string details) {
  if (!step.skipped.empty()) absl::StrAppend(&details, " (skipped: ", step.skipped, ")");
  return details;
}

void FilesRows(std::string& out, const Step& step) {
  const deffile::FilesSection& f = *step.files;
  bool from_stage = step.kind == StepKind::kFilesFromStage;
  Row(out, from_stage ? "%files from" : "%files", from_stage ? "berthd" : "host",
      Skipped(step, from_stage ? absl::StrCat("stage \"", f.from_stage, "\", line ", f.line)
                               : absl::StrCat("line ", f.line)));
  for (const deffile::FileTransfer& t : f.files) {
    absl::StrAppend(&out, "      ", t.source, " -> ",
                    t.destination.empty() ? "(same path)" : t.destination, "\n");
  }
}

std::string BootstrapDetails(const deffile::Definition& d) {
  std::vector<std::string> parts = {std::string(d.Bootstrap())};
  if (!d.From().empty()) parts.emplace_back(d.From());
  if (!d.OsVersion().empty()) parts.emplace_back(d.OsVersion());
  if (!d.MirrorUrl().empty()) parts.push_back(absl::StrCat("from ", d.MirrorUrl()));
  std::vector<std::string> fps = d.Fingerprints();
  if (!fps.empty()) parts.push_back(absl::StrCat("signed by ", absl::StrJoin(fps, ", ")));
  return absl::StrJoin(parts, " ");
}

void StepRows(std::string& out, const deffile::Definition& d, const Step& step) {
  switch (step.kind) {
    case StepKind::kPre:
      return Row(out, "%pre", "host", Skipped(step, LineOf(*step.script)));
    case StepKind::kBootstrap:
      return Row(out, "bootstrap", "berthd", Skipped(step, BootstrapDetails(d)));
    case StepKind::kFilesFromStage:
    case StepKind::kFilesFromHost:
      return FilesRows(out, step);
    case StepKind::kSetup:
      return Row(out, "%setup", "host", Skipped(step, LineOf(*step.script)));
    case StepKind::kPost: {
      std::string details = step.script->present() ? LineOf(*step.script) : "";
      std::vector<std::string> installs;
      for (const deffile::App& app : d.apps) {
        if (app.Find("appinstall") != nullptr) installs.push_back(app.name);
      }
      if (!installs.empty()) {
        absl::StrAppend(&details, details.empty() ? "" : ", ", "then %appinstall of ",
                        absl::StrJoin(installs, ", "));
      }
      return Row(out, "%post", "container", Skipped(step, details));
    }
    case StepKind::kImageFile: {
      std::string details = step.destination;
      if (step.section == "labels") {
        std::vector<std::string> keys;
        for (const auto& [key, value] : d.labels) keys.push_back(key);
        absl::StrAppend(&details, ": ", absl::StrJoin(keys, ", "));
      }
      return Row(out, absl::StrCat("%", step.section), "image", Skipped(step, details));
    }
    case StepKind::kApp: {
      std::vector<std::string> sections;
      for (const auto& [section, body] : step.app->sections) sections.push_back(section);
      return Row(out, absl::StrCat("app ", step.app->name), "image",
                 absl::StrCat(step.destination, ": ", absl::StrJoin(sections, ", ")));
    }
    case StepKind::kTest:
      return Row(out, "%test", "container", Skipped(step, LineOf(*step.script)));
  }
}

std::string OutputLine(const std::string& image, const BuildFlags& flags,
                       const SquashOptions& squash) {
  if (image.empty()) return "Output: none given\n";
  if (flags.sandbox) return absl::StrCat("Output: ", image, " (sandbox directory)\n");
  return absl::StrCat("Output: ", image, " (SIF, squashfs ",
                      squash.compressor.empty() ? "with the site's compression" : squash.compressor,
                      ")\n");
}

}  // namespace

absl::StatusOr<deffile::ParsedFile> ParseBuildSpec(const BuildFlags& flags, const std::string& spec,
                                                   BuildSpec* read) {
  deffile::BuildArgs args;
  args.warn_unused = flags.warn_unused_build_args;
  std::vector<std::string> warnings;
  if (!flags.build_arg_file.empty()) {
    ASSIGN_OR_RETURN(std::string contents, ReadBuildArgFile(flags.build_arg_file));
    deffile::AddBuildArgFile(args, contents, warnings);
  }
  for (const std::string& arg : flags.build_args) RETURN_IF_ERROR(deffile::AddBuildArg(args, arg));
  ASSIGN_OR_RETURN(BuildSpec source, ReadBuildSpec(spec));
  // A definition file or a JSON definition, told apart by their first
  // byte; --json (Apptainer's "interpret build definition as JSON") insists.
  if (flags.json && !flags.dry_run && !deffile::IsJsonDefinition(source.bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source.name,
        ": not a JSON definition (it starts with neither '{' nor '['); --json builds from "
        "Apptainer's JSON form, as `berth build --dry-run --json` prints it; drop --json to "
        "build from a definition file"));
  }
  absl::StatusOr<deffile::ParsedFile> file =
      deffile::ParseDefinition(source.bytes, source.name, args);
  if (file.ok()) warnings.insert(warnings.end(), file->warnings.begin(), file->warnings.end());
  if (read != nullptr) *read = std::move(source);
  for (const std::string& w : warnings) {
    log::Warning(w);
  }
  return file;
}

std::string RenderPlan(const deffile::ParsedFile& file, const std::string& spec_name,
                       const std::string& image, const BuildFlags& flags,
                       const SquashOptions& squash) {
  size_t n = file.stages.size();
  std::string out = absl::StrCat("Definition ", spec_name, ": ", n, n == 1 ? " stage" : " stages",
                                 n == 1 ? "" : absl::StrCat("; stage ", n, " becomes the image"),
                                 "\n", OutputLine(image, flags, squash));
  deffile::PlanOptions options{flags.sections, flags.notest, flags.update};
  for (size_t i = 0; i < n; ++i) {
    const deffile::Definition& d = file.stages[i];
    absl::StrAppend(&out, "\nStage ", i + 1);
    if (!d.StageName().empty()) absl::StrAppend(&out, " \"", d.StageName(), "\"");
    absl::StrAppend(&out, " (line ", d.first_line, ")\n");
    if (!d.build_args.empty()) {
      // Values may hold anything, newlines included; the plan stays one line each.
      auto format = [](std::string* to, const auto& arg) {
        absl::StrAppend(to, arg.first, "=", absl::CEscape(arg.second));
      };
      absl::StrAppend(&out, "  build args: ", absl::StrJoin(d.build_args, ", ", format), "\n");
    }
    for (const Step& step : deffile::PlanStage(d, options)) StepRows(out, d, step);
  }
  return out;
}

absl::Status RunDryRun(const BuildFlags& flags, const SquashOptions& squash,
                       const std::string& image, const std::string& spec) {
  ASSIGN_OR_RETURN(deffile::ParsedFile file, ParseBuildSpec(flags, spec));
  if (flags.json) return Print(STDOUT_FILENO, deffile::DefinitionsToJson(file.stages));
  for (const deffile::Definition& d : file.stages) {
    RETURN_IF_ERROR(deffile::CheckBootstrap(d, spec));
  }
  return Print(STDOUT_FILENO, RenderPlan(file, spec, image, flags, squash));
}

}  // namespace berth::client
