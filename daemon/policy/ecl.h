// ecl.toml: the Execution Control List, Apptainer's schema and semantics
// (formats.md §4). When activated, only SIF images signed the way an
// execgroup demands may run; the keys come from the node's global keyring.
//
// This file is the policy alone: parsing and validating the TOML (an invalid
// file makes the daemon refuse to start, naming the line), choosing an
// execgroup for an image, and the allow/deny decision from fingerprint sets.
// Verifying images and keeping the verdicts is daemon/service/ecl_gate.h.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace berth::daemon::policy {

enum class EclMode { kWhitelist, kWhitestrict, kBlacklist };

const char* EclModeName(EclMode mode);

struct ExecGroup {
  std::string tagname;
  EclMode mode = EclMode::kWhitelist;
  std::string dirpath;             // empty: catch-all
  std::vector<std::string> keyfp;  // 40 upper-case hex digits each
};

struct Ecl {
  bool activated = false;
  bool legacy_insecure = false;
  std::vector<ExecGroup> groups;
};

// Parses ecl.toml text; `origin` names the file in messages ("file:line: ...").
absl::StatusOr<Ecl> ParseEcl(const std::string& text, const std::string& origin);

// Reads `<config_dir>/ecl.toml` (absent: not activated). With
// `require_root_owned`, refuses a file not owned by root or writable by others.
absl::StatusOr<Ecl> LoadEcl(const std::string& config_dir, bool require_root_owned);

// The execgroup for an image in directory `image_dir`: the first whose
// dirpath equals it, else the first catch-all; nullptr when none applies.
const ExecGroup* SelectExecGroup(const Ecl& ecl, const std::string& image_dir);

struct EclSigners {
  std::set<std::string> all_signed_by;  // fingerprints that signed every task
  std::set<std::string> any_signed_by;  // ... at least one task
  std::set<std::string> unvalidated;    // whose signatures did not verify
};

// Empty when `group` allows the image; else why not (one line, without the image name).
std::string EclDenial(const ExecGroup& group, const EclSigners& signers);

}  // namespace berth::daemon::policy
