// The command line as data, read from the CLI11 definition itself, so that
// everything generated from it (man pages, shell completion) lists exactly
// the verbs and flags `berth` parses, and cannot drift from them.
//
// Hidden subcommands and options (CLI11 group "") are left out, as they are
// of `--help`; CLI11's unnamed option groups are folded into their command.
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace berth::client::clidoc {

struct OptionDoc {
  std::vector<std::string> short_names;  // without the dash: "B"
  std::vector<std::string> long_names;   // without the dashes: "bind"
  std::string value_name;                // "" for a flag; CLI11's type name otherwise
  std::string description;
};

struct PositionalDoc {
  std::string name;
  std::string description;
  bool required = false;
  bool repeated = false;
};

struct CommandDoc {
  std::vector<std::string> path;  // {"berth", "sif", "list"}
  std::string description;
  std::vector<OptionDoc> options;
  std::vector<PositionalDoc> positionals;
  std::vector<CommandDoc> subcommands;

  std::string Name(const char* separator = " ") const;
};

// The tree under `app` (usually the root), visible commands and options only.
CommandDoc DescribeCommand(const CLI::App& app, std::vector<std::string> parent_path = {});

// Every command of the tree, depth first, the root first.
std::vector<const CommandDoc*> Flatten(const CommandDoc& root);

}  // namespace berth::client::clidoc
