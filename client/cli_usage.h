// What `berth` does before and around the verbs, the way Apptainer's CLI
// does it: the global flags (-d/--debug, -v/--verbose, -q/--quiet,
// -s/--silent, --nocolor, and their APPTAINER_* forms), `berth help CMD`,
// and usage errors: an unknown command or flag, a missing argument. Those
// print Apptainer's shape on stderr and exit 1:
//
//   Error for command "exec": <what is wrong>
//
//   <the command's usage and options>
//   Run 'berth --help' for more detailed usage information.
//
// and an unknown command names itself: Error: unknown command "foo" for "berth".
#pragma once

#include "CLI/CLI.hpp"

namespace berth::client {

struct GlobalFlags {
  bool debug = false, verbose = false, quiet = false, silent = false, nocolor = false;
};

// Adds the global flags to the root command, for parsing and --help.
void AddGlobalFlags(CLI::App& app, GlobalFlags& flags);

// Sets the message level from the global flags before the command line is
// parsed (so the verbs' own messages already obey it). Global flags come
// before the command, as in Apptainer. Returns false, after printing the
// problem, when an environment form is not a boolean.
bool ApplyGlobalFlags(int argc, char** argv);

// `berth help [COMMAND [SUBCOMMAND]]`: that command's help on stdout.
void RegisterHelpCommand(CLI::App& app);

// An unknown command on the command line, reported before parsing; the
// exit code (1) when there was one, else -1.
int ReportUnknownCommand(CLI::App& app, int argc, char** argv);

// Reports a parse error: help and version requests as CLI11 does (exit 0),
// anything else in Apptainer's shape. Returns the exit code.
int ReportParseError(CLI::App& app, const CLI::ParseError& error);

}  // namespace berth::client
