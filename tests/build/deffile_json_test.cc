// The JSON definition reader (deffile/json_reader.h): every golden
// definition read back from its `--dry-run --json` form gives the same
// stages, and each refusal with its exact one-line message.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "deffile/deffile.h"
#include "deffile/json.h"
#include "deffile/json_reader.h"

namespace {

namespace fs = std::filesystem;
using berth::deffile::BuildArgs;
using berth::deffile::Definition;
using berth::deffile::ParsedFile;
using berth::deffile::Script;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::StatusOr<ParsedFile> ReadJson(const std::string& text, const BuildArgs& args = {}) {
  return berth::deffile::ParseDefinitionJson(text, "t.json", args);
}

std::string JsonError(const std::string& text, const BuildArgs& args = {}) {
  auto parsed = ReadJson(text, args);
  REQUIRE_FALSE(parsed.ok());
  std::string message(parsed.status().message());
  CHECK(message.find('\n') == std::string::npos);
  return message;
}

ParsedFile JsonOk(const std::string& text) {
  auto parsed = ReadJson(text);
  INFO(parsed.status().message());
  REQUIRE(parsed.ok());
  return *std::move(parsed);
}

// What a build uses of a stage, lines and text left out; JSON has no
// "present but empty" section, so a script is its args and body.
void RequireSame(const Definition& a, const Definition& b) {
  std::map<std::string, std::string> ha, hb;
  for (const auto& e : a.header.entries()) ha[e.key] = e.value;
  for (const auto& e : b.header.entries()) hb[e.key] = e.value;
  CHECK(ha == hb);
  CHECK(a.labels == b.labels);
  for (const char* name :
       {"help", "environment", "runscript", "test", "startscript", "pre", "setup", "post"}) {
    INFO("section " << name);
    const Script* sa = a.FindScript(name);
    const Script* sb = b.FindScript(name);
    CHECK(sa->args == sb->args);
    CHECK(sa->script == sb->script);
    CHECK((sa->args.empty() && sa->script.empty()) == !sb->present());
  }
  REQUIRE(a.files.size() == b.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) {
    CHECK(a.files[i].args == b.files[i].args);
    CHECK(a.files[i].from_stage == b.files[i].from_stage);
    REQUIRE(a.files[i].files.size() == b.files[i].files.size());
    for (size_t k = 0; k < a.files[i].files.size(); ++k) {
      CHECK(a.files[i].files[k].source == b.files[i].files[k].source);
      CHECK(a.files[i].files[k].destination == b.files[i].files[k].destination);
    }
  }
  REQUIRE(a.apps.size() == b.apps.size());
  for (size_t i = 0; i < a.apps.size(); ++i) {
    CHECK(a.apps[i].name == b.apps[i].name);
    CHECK(a.apps[i].sections == b.apps[i].sections);
  }
}

}  // namespace

TEST_CASE("every golden definition reads back from its JSON as the same stages", "[json]") {
  int cases = 0;
  for (const auto& entry : fs::directory_iterator(BERTH_DEFS_DIR)) {
    if (entry.path().extension() != ".def") continue;
    fs::path args_file = fs::path(entry.path()).replace_extension(".args");
    BuildArgs args;
    if (fs::exists(args_file)) {
      std::vector<std::string> warnings;
      berth::deffile::AddBuildArgFile(args, Slurp(args_file), warnings);
    }
    std::string name = entry.path().filename().string();
    auto text = berth::deffile::ParseDefinitionFile(Slurp(entry.path()), name, args);
    if (!text.ok()) continue;
    INFO("case " << name);
    std::string json = berth::deffile::DefinitionsToJson(text->stages);
    auto back = berth::deffile::ParseDefinition(json, name + ".json", {});
    INFO(back.status().message());
    REQUIRE(back.ok());
    CHECK(back->warnings.empty());
    REQUIRE(back->stages.size() == text->stages.size());
    for (size_t i = 0; i < text->stages.size(); ++i) RequireSame(text->stages[i], back->stages[i]);
    // Its definition text, written from the stages, is a definition that
    // parses to them again.
    auto again = berth::deffile::ParseDefinitionFile(back->full_raw, name + ".txt", {});
    INFO(back->full_raw);
    REQUIRE(again.ok());
    ++cases;
  }
  CHECK(cases >= 25);
}

TEST_CASE("JSON: Apptainer's one-object form, Go's key matching, null as absent", "[json]") {
  ParsedFile f = JsonOk(R"({"Header": {"Bootstrap": "scratch"},
    "imagedata": {"imageScripts": {"RUNSCRIPT": {"script": "echo hi\n"}, "help": null}},
    "buildData": null, "raw": null})");
  REQUIRE(f.stages.size() == 1);
  CHECK(f.stages[0].Bootstrap() == "scratch");
  CHECK(f.stages[0].runscript.script == "echo hi\n");
  CHECK(f.stages[0].runscript.line == 2);
  CHECK_FALSE(f.stages[0].help.present());
  CHECK(f.full_raw == "Bootstrap: scratch\n\n%runscript\necho hi\n\n");
}

TEST_CASE("JSON: lines name the JSON text's lines", "[json]") {
  ParsedFile f = JsonOk(
      "[\n {\"header\": {\"bootstrap\": \"scratch\", \"stage\": \"a\"}},\n"
      " {\"header\": {\"bootstrap\": \"scratch\"},\n"
      "  \"buildData\": {\"files\": [\n"
      "    {\"args\": \"from a\", \"files\": [{\"source\": \"/x\"}]}]}}]\n");
  REQUIRE(f.stages.size() == 2);
  CHECK(f.stages[1].first_line == 3);
  REQUIRE(f.stages[1].files.size() == 1);
  CHECK(f.stages[1].files[0].line == 5);
  CHECK(f.stages[1].files[0].from_stage == "a");
  CHECK(f.stages[1].files[0].files[0].line == 5);
}

TEST_CASE("JSON: unknown keys are ignored with a warning", "[json]") {
  ParsedFile f = JsonOk("{\"header\": {\"bootstrap\": \"scratch\"},\n \"runscript\": \"x\"}");
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0] == "t.json:2: ignoring unknown key runscript");
}

TEST_CASE("JSON: refusals, each with its message", "[json]") {
  CHECK(JsonError("\"x\"") ==
        "t.json:1: a JSON definition is an array of stages or one stage object, not string");
  CHECK(JsonError("[]") == "t.json: no stages found in definition file");
  CHECK(JsonError("{\"header\": }") ==
        "t.json:1: invalid JSON: syntax error while parsing value - unexpected '}'; expected '[', "
        "'{', or a literal");
  CHECK(JsonError(std::string("{\"header\":\n\0}", 14)) ==
        "t.json:2: NUL byte: a definition file is text");
  CHECK(JsonError(std::string(berth::deffile::kMaxFileBytes + 1, ' ')) ==
        "t.json: larger than 8 MiB (the limit for a definition file)");
  CHECK(JsonError(std::string(100, '[') + std::string(100, ']')) ==
        "t.json:1: nested deeper than 10 levels (a definition needs 6)");
  std::string huge = "[";
  for (size_t i = 0; i <= berth::deffile::kMaxJsonValues; ++i) huge += "0,";
  huge += "0]";
  CHECK(JsonError(huge) == "t.json:1: more than 262144 JSON values (the limit)");
  std::string stages = "[";
  for (int i = 0; i <= 128; ++i) stages += "{},";
  stages += "{}]";
  CHECK(JsonError(stages) == "t.json:1: more than 128 stages (the limit per file)");
  CHECK(JsonError("{\"header\": {\"bootstrap\": 1}}") ==
        "t.json:1: header.bootstrap is number, not a string");
  CHECK(JsonError("{\"header\": [\"scratch\"]}") == "t.json:1: header is array, not an object");
  CHECK(JsonError("[{\"header\": {\"bootstrap\": \"scratch\"}}, 3]") ==
        "t.json:1: [1] is number, not an object (a stage)");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"buildData\": {\"buildScripts\": {\"post\": \"echo\"}}}") ==
        "t.json:2: buildData.buildScripts.post is string, not an object ({\"args\": ..., "
        "\"script\": ...})");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"imageData\": {\"imageScripts\": {\"help\": {\"script\": \"a\\u0000b\"}}}}") ==
        "t.json:2: imageData.imageScripts.help.script: NUL byte: a definition is text");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\", \"form\": \"x\"}}") ==
        "t.json:1: failed to parse deffile header: invalid header keyword found: form");
  CHECK(JsonError("{}") == "t.json:1: the stage holds nothing (no header, section, label or file)");
  CHECK(JsonError("[{\"header\": {\"bootstrap\": \"scratch\"}},\n"
                  " {\"imageData\": {\"labels\": {\"a\": \"b\"}}}]") ==
        "t.json:2: multiple stages detected, all must have headers");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"buildData\": {\"files\": [{\"files\": [{\"destination\": \"/x\"}]}]}}") ==
        "t.json:2: %files: buildData.files[0].files[0] has no source");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"buildData\": {\"files\": [{\"args\": \"from nowhere\", \"files\": []}]}}") ==
        "t.json:2: stage nowhere was not found");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"buildData\": {\"files\": [{\"files\": [{\"source\": \"/a\\n/b\"}]}]}}") ==
        "t.json:2: buildData.files[0].files[0].source: a line break where the definition text "
        "has one line");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"buildData\": {\"buildScripts\": {\"post\": {\"args\": \"-c\"}}}}") ==
        "t.json:2: while processing section %post arguments: bad post section '-c' parameter: "
        "missing arguments");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"customData\": {\"apprun\": \"echo\"}}") ==
        "t.json:2: invalid section(s) specified: apprun (customData keys are \"appSECTION APP\")");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"customData\": {\"apprun ../x\": \"echo\"}}") ==
        "t.json:2: app section apprun: app name \"../x\" is not a directory name (no '/', '.', "
        "'..' or control characters)");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"customData\": {\"apprun a\": \"echo\"}, \"appOrder\": [\"a\", \"b\"]}") ==
        "t.json:2: appOrder names app \"b\", which has no section in customData");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"imageData\": {\"imageScripts\": {\"test\": {\"script\": \"a\"}}},\n"
                  " \"buildData\": {\"buildScripts\": {\"test\": {\"script\": \"b\"}}}}") ==
        "t.json:3: imageData.imageScripts.test and buildData.buildScripts.test differ: a "
        "definition has one %test");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n \"raw\": \"%%%\"}") ==
        "t.json:2: raw is not base64");
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"},\n"
                  " \"imageData\": {\"labels\": {\"a b\": \"c\"}}}") ==
        "t.json:2: label \"a b\": a label's name is one word");
  BuildArgs args;
  REQUIRE(berth::deffile::AddBuildArg(args, "V=1").ok());
  CHECK(JsonError("{\"header\": {\"bootstrap\": \"scratch\"}}", args) ==
        "unused build args: V. Use option --warn-unused-build-args to show a warning instead of "
        "a fatal message");
}

TEST_CASE("JSON: what counts as a JSON definition", "[json]") {
  CHECK(berth::deffile::IsJsonDefinition(" \n\t[{}]"));
  CHECK(berth::deffile::IsJsonDefinition("{"));
  CHECK_FALSE(berth::deffile::IsJsonDefinition("Bootstrap: scratch\n"));
  CHECK_FALSE(berth::deffile::IsJsonDefinition("# {\n"));
  CHECK_FALSE(berth::deffile::IsJsonDefinition(""));
}
