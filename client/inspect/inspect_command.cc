#include "client/inspect/inspect_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <span>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_log.h"
#include "client/inspect/image_source.h"
#include "client/inspect/inspector.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

using inspect::InspectOptions;

// Errors and warnings can carry names from the image (apps, link targets,
// env scripts). A control character in one must not break the one-line report.
std::string OneLine(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

absl::Status Write(int fd, const std::string& text) {
  return WriteAll(fd, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// Inspects `path`; errors come back as one line naming the image.
absl::StatusOr<inspect::InspectResult> InspectImage(const std::string& path,
                                                    const InspectOptions& options) {
  auto image = inspect::ImageSource::Open(path);
  if (!image.ok()) {
    // The message already starts with the path, as in "Failed to open image X: why".
    return absl::Status(image.status().code(),
                        OneLine(absl::StrCat("Failed to open image ", image.status().message())));
  }
  auto result = inspect::Inspect(*image, options);
  if (!result.ok()) {
    return absl::Status(
        result.status().code(),
        OneLine(absl::StrCat("Failed to inspect image ", path, ": ", result.status().message())));
  }
  // Warnings go out first: Apptainer logs them while it gathers.
  for (const std::string& warning : result->warnings) {
    log::Warning(warning);
  }
  return result;
}

absl::Status RunInspect(const std::string& path, const InspectOptions& options) {
  ASSIGN_OR_RETURN(inspect::InspectResult result, InspectImage(path, options));
  return Write(STDOUT_FILENO, inspect::RenderInspectOutput(result, options));
}

absl::Status RunHelp(const std::string& path, const std::string& app) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Annotate(ErrnoStatus(absl::StrCat("stat ", path), errno), "container not found");
  }
  InspectOptions options;
  options.helpfile = true;
  options.app = app;
  ASSIGN_OR_RETURN(inspect::InspectResult result, InspectImage(path, options));
  std::string text = inspect::RenderInspectOutput(result, options);
  return Write(STDOUT_FILENO,
               text.empty() ? std::string("No help sections were defined for this image\n") : text);
}

}  // namespace

void RegisterInspectCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  struct State {
    InspectOptions options;
    std::string image;
    std::string help_app;
  };
  auto st = std::make_shared<State>();
  InspectOptions& o = st->options;

  auto* inspect = app.add_subcommand("inspect", "Show metadata for an image");
  inspect->add_flag("-l,--labels", o.labels, "show the labels for the image (default)");
  inspect->add_flag("-d,--deffile", o.deffile,
                    "show the definition file that was used to generate the image");
  inspect->add_flag("-r,--runscript", o.runscript, "show the runscript for the image");
  inspect->add_flag("-s,--startscript", o.startscript, "show the startscript for the image");
  inspect->add_flag("-t,--test", o.test, "show the test script for the image");
  inspect->add_flag("-e,--environment", o.environment,
                    "show the environment settings for the image");
  inspect->add_flag("-H,--helpfile", o.helpfile, "inspect the runscript helpfile, if it exists");
  inspect->add_flag("--list-apps", o.list_apps, "list all apps in a container");
  inspect->add_option("--app", o.app, "inspect a specific app");
  inspect->add_flag("-j,--json", o.json, "print structured json instead of sections");
  inspect->add_flag("--all", o.all, "show all available data (imply --json option)");
  inspect->add_option("image", st->image, "SIF or squashfs image file")->required();
  inspect->callback([st, result] { *result = RunInspect(st->image, st->options); });

  auto* run_help = app.add_subcommand("run-help", "Show the user-defined help for an image");
  run_help->add_option("--app", st->help_app, "show the help for an app");
  run_help->add_option("image", st->image, "SIF or squashfs image file")->required();
  run_help->callback([st, result] { *result = RunHelp(st->image, st->help_app); });
}

}  // namespace berth::client
