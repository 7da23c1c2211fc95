#include "client/clidoc/clidoc_command.h"

#include <cstdio>
#include <string>
#include <utility>

#include "client/clidoc/cli_model.h"
#include "client/clidoc/completion.h"
#include "client/clidoc/man_page.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

absl::Status PrintCompletion(const CLI::App& root, const std::string& shell) {
  ASSIGN_OR_RETURN(std::string script,
                   clidoc::CompletionScript(clidoc::DescribeCommand(root), shell));
  std::fputs(script.c_str(), stdout);
  return absl::OkStatus();
}

}  // namespace

void RegisterCliDocCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  auto shell = std::make_shared<std::string>();
  CLI::App* completion =
      app.add_subcommand("completion", "Print a shell completion script (bash, zsh or fish)");
  completion->add_option("shell", *shell, "bash, zsh or fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completion->callback([&app, shell, result] { *result = PrintCompletion(app, *shell); });

  auto dir = std::make_shared<std::string>();
  CLI::App* man = app.add_subcommand("man-pages", "Write the man pages into a directory");
  man->group("");  // for the build, not for users
  man->add_option("dir", *dir, "an existing directory")->required();
  man->callback([&app, dir, result] {
    *result = clidoc::WriteManPages(clidoc::DescribeCommand(app), *dir, BERTH_VERSION);
  });
}

}  // namespace berth::client
