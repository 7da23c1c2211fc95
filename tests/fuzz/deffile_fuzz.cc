// libFuzzer target for the definition parsers (deffile/): text and JSON. The
// input is a definition, read as both binaries read it (JSON by its first
// byte, text otherwise); a last byte below 4 instead asks for that many
// build args, taken from the input's tail (so the seed corpus, real
// definition files, parses as written). Whatever parses must keep the
// promises deffile.h makes, and every error must be one non-empty line. A
// parsed text is also written as JSON and read back, which must give the
// same stages (json_reader.h).
//
// Invariant violations call abort() so libFuzzer records them like crashes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/go_json.h"
#include "deffile/bootstrap.h"
#include "deffile/deffile.h"
#include "deffile/json.h"
#include "deffile/json_reader.h"
#include "deffile/plan.h"
#include "fuzzer/FuzzedDataProvider.h"

namespace berth::deffile {
namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "deffile_fuzz invariant violated: %s: %s\n", what, detail.c_str());
  std::abort();
}

void Require(bool ok, const char* what) {
  if (!ok) Fail(what, "");
}

void CheckError(const absl::Status& status) {
  Require(!status.ok(), "error status is OK");
  std::string message(status.message());
  Require(!message.empty(), "empty error message");
  if (message.find('\n') != std::string::npos) Fail("multi-line error message", message);
}

void CheckLine(int line, int lines, const char* what) {
  if (line < 1 || line > lines) Fail(what, std::to_string(line));
}

void CheckScripts(const Definition& d, int lines) {
  for (const char* name : {"help", "environment", "runscript", "test", "startscript", "pre",
                           "setup", "post", "arguments"}) {
    const Script* s = d.FindScript(name);
    Require(s != nullptr, "a section name has no script");
    if (s->present()) CheckLine(s->line, lines, "script line");
    Require(s->present() || (s->args.empty() && s->script.empty()), "absent script with text");
    absl::StatusOr<std::vector<std::string>> command = SectionCommand(name, *s, "/script");
    if (command.ok()) {
      Require(command->size() >= 3 && command->back().find("/script") != std::string::npos,
              "section command without the script");
    } else {
      CheckError(command.status());
    }
  }
}

void CheckStage(const Definition& d, const ParsedFile& file, int lines) {
  CheckLine(d.first_line, lines, "stage first line");
  Require(!d.raw.empty(), "a stage with no text");
  for (const HeaderEntry& e : d.header.entries()) {
    CheckLine(e.line, lines, "header line");
    Require(d.header.Find(e.key) == &e, "header index out of step");
  }
  CheckScripts(d, lines);
  for (const FilesSection& f : d.files) {
    CheckLine(f.line, lines, "%files line");
    for (const FileTransfer& t : f.files) {
      CheckLine(t.line, lines, "%files entry line");
      Require(!t.source.empty(), "%files entry without a source");
    }
    Require(f.from_stage.empty() || file.FindStage(f.from_stage) != nullptr,
            "%files from a stage that does not exist");
  }
  for (const App& app : d.apps) {
    Require(!app.name.empty() && app.name.find('/') == std::string::npos, "bad app name");
    Require(!app.sections.empty(), "an app without sections");
  }
  (void)d.Fingerprints();
  (void)d.OtherUrls();
  if (absl::Status st = CheckBootstrap(d, "fuzz.def"); !st.ok()) CheckError(st);
  PlanOptions narrow;
  narrow.sections = {"post"};
  narrow.notest = narrow.update = true;
  for (const PlanOptions& options : {PlanOptions(), narrow}) {
    for (const Step& step : PlanStage(d, options)) {
      Require(step.script != nullptr || step.files != nullptr || step.app != nullptr ||
                  step.kind == StepKind::kBootstrap || step.section == "labels",
              "a step with nothing to do");
    }
  }
}

bool ValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t rune = 0;
    size_t n = DecodeUtf8Rune(std::string_view(s.data(), s.size()), i, rune);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// The JSON of `file` read back: the same stages, for what a build uses.
// Text that is not UTF-8 comes back with U+FFFD in it, as from Go's
// encoding/json: there only the shape is compared.
void CheckJsonRoundTrip(const ParsedFile& file, const std::string& json, bool exact) {
  // A stage of nothing but %arguments: the JSON shape (build.md §2) has no
  // "arguments", so that stage comes back empty, which the reader refuses.
  for (const Definition& d : file.stages) {
    bool only_arguments = d.header.empty() && d.labels.empty() && d.files.empty() && d.apps.empty();
    for (const char* name :
         {"help", "environment", "runscript", "test", "startscript", "pre", "setup", "post"}) {
      const Script* s = d.FindScript(name);
      only_arguments = only_arguments && s->args.empty() && s->script.empty();
    }
    if (only_arguments) return;
  }
  absl::StatusOr<ParsedFile> back = ParseDefinitionJson(json, "fuzz.json", BuildArgs());
  if (!back.ok())
    Fail("the JSON of a parsed file does not read back", std::string(back.status().message()));
  Require(back->stages.size() == file.stages.size(), "JSON read back: stage count");
  Require(back->full_raw.size() <= kMaxFileBytes, "JSON read back: Def.FILE over the limit");
  if (!exact) return;
  for (size_t i = 0; i < file.stages.size(); ++i) {
    const Definition& a = file.stages[i];
    const Definition& b = back->stages[i];
    Require(a.header.entries().size() == b.header.entries().size(), "JSON read back: header");
    for (const HeaderEntry& e : a.header.entries()) {
      Require(b.header.Get(e.key) == e.value, "JSON read back: a header value");
    }
    Require(a.labels == b.labels, "JSON read back: labels");
    for (const char* name :
         {"help", "environment", "runscript", "test", "startscript", "pre", "setup", "post"}) {
      Require(a.FindScript(name)->script == b.FindScript(name)->script &&
                  a.FindScript(name)->args == b.FindScript(name)->args,
              "JSON read back: a script");
    }
    Require(a.files.size() == b.files.size(), "JSON read back: %files sections");
    for (size_t k = 0; k < a.files.size(); ++k) {
      Require(a.files[k].from_stage == b.files[k].from_stage &&
                  a.files[k].files.size() == b.files[k].files.size(),
              "JSON read back: a %files section");
    }
    Require(a.apps.size() == b.apps.size(), "JSON read back: apps");
  }
}

void CheckParsed(const ParsedFile& file, absl::string_view input, const BuildArgs& args) {
  Require(!file.stages.empty(), "parsed without stages");
  Require(file.full_raw.size() <= kMaxFileBytes, "Def.FILE over the limit");
  // Lines name the file as written: a build-arg template may span lines
  // and leave the substituted text shorter.
  int lines = 1;
  for (char c : input) lines += c == '\n';
  for (const Definition& d : file.stages) CheckStage(d, file, lines);
  std::string json = DefinitionsToJson(file.stages);
  Require(json.size() >= 4 && json.front() == '[' && json.substr(json.size() - 2) == "]\n",
          "JSON is no array");
  if (!IsJsonDefinition(input)) CheckJsonRoundTrip(file, json, ValidUtf8(input));
  // Nothing substituted: Def.FILE is the file, byte for byte.
  if (file.used_args.empty() && args.values.empty() && !IsJsonDefinition(input)) {
    Require(file.full_raw == input, "Def.FILE differs from the file");
  }
}

}  // namespace
}  // namespace berth::deffile

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::deffile;
  BuildArgs args;
  std::string text(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[size - 1] < 4) {
    FuzzedDataProvider tail(data, size - 1);
    args.warn_unused = tail.ConsumeBool();
    for (int i = 0; i < data[size - 1]; ++i) {
      absl::Status st = AddBuildArg(args, tail.ConsumeRandomLengthString(64));
      if (!st.ok()) CheckError(st);
    }
    text = tail.ConsumeRemainingBytesAsString();
  }
  absl::StatusOr<ParsedFile> file = ParseDefinition(text, "fuzz.def", args);
  if (!file.ok()) {
    CheckError(file.status());
    return 0;
  }
  CheckParsed(*file, text, args);
  return 0;
}
