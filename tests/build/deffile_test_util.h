// Helpers for the deffile tests: parse a text as "t.def" and look at the
// result or the one-line error.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "deffile/deffile.h"

namespace berth::deffile::testing {

inline absl::StatusOr<ParsedFile> Parse(const std::string& text,
                                        const std::vector<std::string>& build_args = {},
                                        bool warn_unused = false) {
  BuildArgs args;
  args.warn_unused = warn_unused;
  for (const std::string& a : build_args) {
    absl::Status st = AddBuildArg(args, a);
    REQUIRE(st.ok());
  }
  return ParseDefinitionFile(text, "t.def", args);
}

// The stages of a text that must parse.
inline std::vector<Definition> Stages(const std::string& text,
                                      const std::vector<std::string>& build_args = {}) {
  auto parsed = Parse(text, build_args);
  INFO(parsed.status().message());
  REQUIRE(parsed.ok());
  return parsed->stages;
}

// The message of a text that must fail.
inline std::string Error(const std::string& text, const std::vector<std::string>& build_args = {}) {
  auto parsed = Parse(text, build_args);
  REQUIRE_FALSE(parsed.ok());
  std::string message(parsed.status().message());
  CHECK(message.find('\n') == std::string::npos);
  return message;
}

}  // namespace berth::deffile::testing
