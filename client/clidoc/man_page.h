// Man pages generated from the command tree (cli_model.h): berth(1) and one
// page per command at every level, berth-sif-list(1) for `berth sif list`, as
// Apptainer ships them. The build writes them (`berth man-pages DIR`, a
// hidden verb) and the berth package installs them, so a page lists exactly
// the flags that version parses.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "client/clidoc/cli_model.h"

namespace berth::client::clidoc {

// The troff source of `cmd`'s page; `version` goes in its header.
std::string ManPage(const CommandDoc& cmd, const std::string& version);

// The page's file name: "berth-sif-list.1".
std::string ManPageName(const CommandDoc& cmd);

// Writes every command's page into `dir` (which must exist).
absl::Status WriteManPages(const CommandDoc& root, const std::string& dir,
                           const std::string& version);

}  // namespace berth::client::clidoc
