// The golden corpus: every tests/build/defs/CASE.def is parsed (as both
// binaries do: a JSON definition by its first byte, text otherwise) with the
// build args of CASE.args (one NAME=VALUE per line, if present) and must
// give exactly CASE.json (`berth build --dry-run --json`) or fail with
// exactly the one-line message in CASE.err.
//
// BERTH_UPDATE_GOLDEN=1 rewrites the expected files from the parser's
// output; review the diff before committing it.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "deffile/deffile.h"
#include "deffile/json.h"
#include "deffile/json_reader.h"

namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spill(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<fs::path> Cases() {
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(BERTH_DEFS_DIR)) {
    if (entry.path().extension() == ".def") cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

berth::deffile::BuildArgs ArgsFor(const fs::path& def) {
  berth::deffile::BuildArgs args;
  fs::path file = fs::path(def).replace_extension(".args");
  if (fs::exists(file)) {
    std::vector<std::string> warnings;
    berth::deffile::AddBuildArgFile(args, Slurp(file), warnings);
    REQUIRE(warnings.empty());
  }
  return args;
}

}  // namespace

TEST_CASE("golden definition files parse to their JSON or fail with their message", "[golden]") {
  std::vector<fs::path> cases = Cases();
  REQUIRE(cases.size() >= 40);
  bool update = std::getenv("BERTH_UPDATE_GOLDEN") != nullptr;
  for (const fs::path& def : cases) {
    std::string name = def.filename().string();
    INFO("case " << name);
    auto parsed = berth::deffile::ParseDefinition(Slurp(def), name, ArgsFor(def));
    fs::path json = fs::path(def).replace_extension(".json");
    fs::path err = fs::path(def).replace_extension(".err");
    if (update) {
      Spill(parsed.ok() ? json : err, parsed.ok()
                                          ? berth::deffile::DefinitionsToJson(parsed->stages)
                                          : std::string(parsed.status().message()) + "\n");
    }
    REQUIRE(fs::exists(json) != fs::exists(err));
    if (fs::exists(json)) {
      REQUIRE(parsed.ok());
      CHECK(berth::deffile::DefinitionsToJson(parsed->stages) == Slurp(json));
    } else {
      REQUIRE_FALSE(parsed.ok());
      CHECK(std::string(parsed.status().message()) + "\n" == Slurp(err));
    }
  }
}
