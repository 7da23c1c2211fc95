#include "client/cli_usage.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli_log.h"
#include "client/env_flags.h"

namespace berth::client {
namespace {

constexpr char kMoreHelp[] = "Run 'berth --help' for more detailed usage information.\n";

// The global options that take a value (the next argument).
bool GlobalTakesValue(absl::string_view arg) {
  return arg == "--socket";
}

// A subcommand of `app` called `name` (its aliases included), or nullptr.
CLI::App* FindCommand(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

// The deepest command the parse reached: where a usage error belongs.
CLI::App* ParsedCommand(CLI::App& app) {
  CLI::App* at = &app;
  for (;;) {
    std::vector<CLI::App*> parsed = at->get_subcommands();
    if (parsed.empty()) return at;
    at = parsed.back();
  }
}

// "berth exec" for the exec command, "berth" for the root.
std::string CommandPath(const CLI::App* cmd) {
  std::vector<std::string> names;
  for (const CLI::App* at = cmd; at != nullptr; at = at->get_parent()) {
    names.insert(names.begin(), at->get_name());
  }
  return absl::StrJoin(names, " ");
}

// Cobra's wording for CLI11's "The following argument(s) was/were not expected: X".
std::string DescribeExtras(const std::string& message) {
  size_t colon = message.find(": ");
  std::string extras = colon == std::string::npos ? message : message.substr(colon + 2);
  if (absl::StartsWith(extras, "-")) return absl::StrCat("unknown flag: ", extras);
  return absl::StrCat("unexpected argument(s): ", extras);
}

void PrintUsageError(CLI::App& cmd, const std::string& what) {
  std::string text = absl::StrCat("Error for command \"", cmd.get_name(),
                                  "\": ", log::OneLine(what), "\n\n", cmd.help(), kMoreHelp);
  std::fputs(text.c_str(), stderr);
}

bool GlobalBool(const char* name, bool flag_given, bool& target) {
  if (flag_given) {
    target = true;
    return true;
  }
  std::string variable;
  const char* v = EnvForm(name, variable);
  if (v == nullptr) return true;
  auto parsed = ParseEnvBool(variable, v);
  if (!parsed.ok()) {
    log::Fatal(parsed.status().message());
    return false;
  }
  target = *parsed;
  return true;
}

}  // namespace

void AddGlobalFlags(CLI::App& app, GlobalFlags& f) {
  app.add_flag("-d,--debug", f.debug, "print debugging information (highest verbosity)");
  app.add_flag("-v,--verbose", f.verbose, "print additional information");
  app.add_flag("-q,--quiet", f.quiet, "suppress normal output");
  app.add_flag("-s,--silent", f.silent, "only print errors");
  app.add_flag("--nocolor", f.nocolor, "print without color output (berth never colours)");
}

bool ApplyGlobalFlags(int argc, char** argv) {
  bool given[4] = {};
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.empty() || arg.front() != '-') break;  // the command: global flags end
    if (GlobalTakesValue(arg)) {
      ++i;
      continue;
    }
    given[0] |= arg == "-d" || arg == "--debug";
    given[1] |= arg == "-v" || arg == "--verbose";
    given[2] |= arg == "-q" || arg == "--quiet";
    given[3] |= arg == "-s" || arg == "--silent";
  }
  GlobalFlags f;
  if (!GlobalBool("DEBUG", given[0], f.debug) || !GlobalBool("VERBOSE", given[1], f.verbose) ||
      !GlobalBool("QUIET", given[2], f.quiet) || !GlobalBool("SILENT", given[3], f.silent)) {
    return false;
  }
  log::SetLevel(log::LevelFromFlags(f.debug, f.verbose, f.quiet, f.silent));
  log::Debug(absl::StrCat("berth version ", BERTH_VERSION));
  return true;
}

void RegisterHelpCommand(CLI::App& app) {
  auto topic = std::make_shared<std::vector<std::string>>();
  CLI::App* help = app.add_subcommand("help", "Help about any command");
  help->add_option("command", *topic, "the command (and subcommand) to describe");
  help->callback([&app, topic] {
    CLI::App* at = &app;
    for (const std::string& name : *topic) {
      CLI::App* next = FindCommand(*at, name);
      if (next == nullptr) {
        std::printf("Unknown help topic `%s`\n", log::OneLine(absl::StrJoin(*topic, " ")).c_str());
        break;
      }
      at = next;
    }
    std::fputs(at->help().c_str(), stdout);
  });
}

int ReportUnknownCommand(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (GlobalTakesValue(arg)) {
      ++i;
      continue;
    }
    if (!arg.empty() && arg.front() == '-') continue;
    if (FindCommand(app, std::string(arg)) != nullptr) return -1;
    std::string text = absl::StrCat("Error: unknown command \"", log::OneLine(arg),
                                    "\" for \"berth\"\n\n", app.help(), kMoreHelp);
    std::fputs(text.c_str(), stderr);
    return 1;
  }
  return -1;
}

int ReportParseError(CLI::App& app, const CLI::ParseError& error) {
  if (dynamic_cast<const CLI::Success*>(&error) != nullptr ||
      dynamic_cast<const CLI::CallForHelp*>(&error) != nullptr ||
      dynamic_cast<const CLI::CallForAllHelp*>(&error) != nullptr ||
      dynamic_cast<const CLI::CallForVersion*>(&error) != nullptr) {
    return app.exit(error);
  }
  CLI::App* cmd = ParsedCommand(app);
  std::string what = error.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) what = DescribeExtras(what);
  if (cmd == &app && absl::StrContains(what, "subcommand is required")) {
    // A bare `berth`: Apptainer shows the usage.
    std::string text = absl::StrCat(app.help(), kMoreHelp);
    std::fputs(text.c_str(), stderr);
    return 1;
  }
  log::Debug(absl::StrCat("usage error in '", CommandPath(cmd), "': ", what));
  PrintUsageError(*cmd, what);
  return 1;
}

}  // namespace berth::client
