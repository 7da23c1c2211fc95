#include "deffile/json.h"

#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/go_json.h"

namespace berth::deffile {
namespace {

std::string Quote(absl::string_view s) {
  return GoJsonQuote(std::string_view(s.data(), s.size()));
}

// Writes MarshalIndent's layout: one member per line, two spaces per level.
class JsonWriter {
 public:
  std::string Take() { return std::move(out_); }

  // `{` or `[`, after the key when inside an object.
  void Open(absl::string_view key, char bracket) {
    Member(key);
    out_ += bracket;
    ++depth_;
    first_ = true;
  }
  void Close(char bracket) {
    --depth_;
    if (!first_) NewLine();
    out_ += bracket;
    first_ = false;
  }
  void String(absl::string_view key, absl::string_view value) {
    Member(key);
    out_ += Quote(value);
  }
  void Raw(absl::string_view key, absl::string_view json) {
    Member(key);
    absl::StrAppend(&out_, json);
  }
  void StringMap(absl::string_view key, const std::map<std::string, std::string>& map) {
    Open(key, '{');
    for (const auto& [k, v] : map) String(k, v);
    Close('}');
  }

 private:
  void NewLine() {
    out_ += '\n';
    out_.append(2 * depth_, ' ');
  }
  // Separates from the previous member and writes `"key": ` (no key in arrays).
  void Member(absl::string_view key) {
    if (depth_ > 0) {
      if (!first_) out_ += ',';
      NewLine();
    }
    first_ = false;
    if (!key.empty()) absl::StrAppend(&out_, Quote(key), ": ");
  }

  std::string out_;
  int depth_ = 0;
  bool first_ = true;
};

void WriteScript(JsonWriter& w, absl::string_view key, const Script& s) {
  w.Open(key, '{');
  w.String("args", s.args);
  w.String("script", s.script);
  w.Close('}');
}

void WriteHeader(JsonWriter& w, const Header& header) {
  if (header.empty()) {
    w.Raw("header", "null");  // Apptainer leaves the map nil
    return;
  }
  std::map<std::string, std::string> sorted;
  for (const HeaderEntry& e : header.entries()) sorted[e.key] = e.value;
  w.StringMap("header", sorted);
}

void WriteFiles(JsonWriter& w, const std::vector<FilesSection>& files) {
  w.Open("files", '[');
  for (const FilesSection& section : files) {
    w.Open("", '{');
    w.String("args", section.args);
    if (section.files.empty()) {
      w.Raw("files", "null");  // a nil slice in Go
    } else {
      w.Open("files", '[');
      for (const FileTransfer& f : section.files) {
        w.Open("", '{');
        w.String("source", f.source);
        w.String("destination", f.destination);
        w.Close('}');
      }
      w.Close(']');
    }
    w.Close('}');
  }
  w.Close(']');
}

void WriteApps(JsonWriter& w, const std::vector<App>& apps) {
  if (apps.empty()) return;
  std::map<std::string, std::string> custom;
  for (const App& app : apps) {
    for (const auto& [section, body] : app.sections)
      custom[absl::StrCat(section, " ", app.name)] = body;
  }
  w.StringMap("customData", custom);
  w.Open("appOrder", '[');
  for (const App& app : apps) w.String("", app.name);
  w.Close(']');
}

void WriteStage(JsonWriter& w, const Definition& d) {
  w.Open("", '{');
  WriteHeader(w, d.header);
  w.Open("imageData", '{');
  w.Raw("metadata", "null");
  w.StringMap("labels", d.labels);
  w.Open("imageScripts", '{');
  WriteScript(w, "help", d.help);
  WriteScript(w, "environment", d.environment);
  WriteScript(w, "runScript", d.runscript);
  WriteScript(w, "test", d.test);
  WriteScript(w, "startScript", d.startscript);
  w.Close('}');
  w.Close('}');
  w.Open("buildData", '{');
  WriteFiles(w, d.files);
  w.Open("buildScripts", '{');
  WriteScript(w, "pre", d.pre);
  WriteScript(w, "setup", d.setup);
  WriteScript(w, "post", d.post);
  WriteScript(w, "test", d.test);
  w.Close('}');
  w.Close('}');
  WriteApps(w, d.apps);
  w.String("raw", absl::Base64Escape(d.raw));
  w.Close('}');
}

}  // namespace

std::string DefinitionsToJson(const std::vector<Definition>& stages) {
  JsonWriter w;
  w.Open("", '[');
  for (const Definition& d : stages) WriteStage(w, d);
  w.Close(']');
  std::string out = w.Take();
  out += '\n';
  return out;
}

}  // namespace berth::deffile
