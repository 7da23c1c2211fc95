#include "deffile/json_reader.h"

#include <cstddef>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "deffile/checks.h"
#include "deffile/go_text.h"
#include "deffile/stage_parser.h"

namespace berth::deffile {
namespace {

using Json = nlohmann::json;
using internal::Printable;

// A byte iterator that counts the newlines it steps over, so that the parse
// callback knows the line of the token it is told about (nlohmann's lexer
// reads no further than the token's last byte).
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator() = default;
  CountingIterator(const char* p, int* newlines) : p_(p), newlines_(newlines) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    if (*p_ == '\n') ++*newlines_;
    ++p_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_ = nullptr;
  int* newlines_ = nullptr;
};

// Where each key and each array element starts: "/buildData/files[0]" -> line.
using LineMap = std::map<std::string, int>;

int LineAt(absl::string_view bytes, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < bytes.size(); ++i) line += bytes[i] == '\n';
  return line;
}

struct Document {
  Json json;
  LineMap lines;
};

// One JSON value, bounded (depth, value count) while it is read; nlohmann's
// exceptions stop here.
absl::StatusOr<Document> ParseBounded(absl::string_view bytes, const std::string& file) {
  struct Frame {
    bool array;
    size_t index;
    std::string path;
    std::string key;
  };
  Document doc;
  std::vector<Frame> frames;
  int newlines = 0;
  size_t values = 0;
  std::string problem;
  int problem_line = 0;
  auto fail = [&](std::string why) {
    if (problem.empty()) {
      problem = std::move(why);
      problem_line = newlines + 1;
    }
    return false;
  };
  auto child_path = [&]() -> std::string {
    if (frames.empty()) return "";
    Frame& top = frames.back();
    if (top.array) return absl::StrCat(top.path, "[", top.index++, "]");
    return absl::StrCat(top.path, "/", top.key);
  };
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (!problem.empty()) return false;
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start: {
        if (++values > kMaxJsonValues) {
          return fail(absl::StrCat("more than ", kMaxJsonValues, " JSON values (the limit)"));
        }
        if (frames.size() >= static_cast<size_t>(kMaxJsonDepth)) {
          return fail(
              absl::StrCat("nested deeper than ", kMaxJsonDepth, " levels (a definition needs 6)"));
        }
        std::string path = child_path();
        doc.lines.emplace(path, newlines + 1);
        frames.push_back({event == Json::parse_event_t::array_start, 0, std::move(path), ""});
        return true;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        return true;
      case Json::parse_event_t::key:
        if (!frames.empty()) {
          frames.back().key = parsed.get<std::string>();
          doc.lines.emplace(absl::StrCat(frames.back().path, "/", frames.back().key), newlines + 1);
        }
        return true;
      case Json::parse_event_t::value:
        if (++values > kMaxJsonValues) {
          return fail(absl::StrCat("more than ", kMaxJsonValues, " JSON values (the limit)"));
        }
        if (!frames.empty() && frames.back().array) child_path();
        return true;
    }
    return true;
  };
  CountingIterator first(bytes.data(), &newlines), last(bytes.data() + bytes.size(), &newlines);
  try {
    doc.json = Json::parse(first, last, callback, /*allow_exceptions=*/true);
  } catch (const Json::parse_error& e) {
    if (!problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", problem_line, ": ", problem));
    }
    // "[json.exception.parse_error.101] parse error at line 1, column 2: why"
    std::string why = e.what();
    size_t column = why.find("column ");
    size_t colon = column == std::string::npos ? std::string::npos : why.find(": ", column);
    if (colon != std::string::npos) why = why.substr(colon + 2);
    return absl::InvalidArgumentError(absl::StrCat(
        file, ":", LineAt(bytes, e.byte > 0 ? e.byte - 1 : 0), ": invalid JSON: ", Printable(why)));
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": invalid JSON: ", Printable(e.what())));
  }
  if (!problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", problem_line, ": ", problem));
  }
  return doc;
}

// Reads one document's stages as the text parser would have parsed them.
class Reader {
 public:
  Reader(std::string file, const LineMap& lines, std::vector<std::string>& warnings)
      : file_(std::move(file)), lines_(lines), warnings_(warnings) {}

  absl::StatusOr<Definition> Stage(const Json& j, const std::string& path) {
    if (!j.is_object()) return TypeError(j, path, "an object (a stage)");
    Definition d;
    d.first_line = Line(path);
    Known(j, path,
          {"header", "imageData", "buildData", "customData", "appOrder", "raw", "fullraw"});
    std::string p;
    if (const Json* h = Member(j, path, "header", p)) RETURN_IF_ERROR(ReadHeader(*h, p, d.header));
    Script image_test, build_test;
    if (const Json* image = Member(j, path, "imageData", p)) {
      if (!image->is_object()) return TypeError(*image, p, "an object");
      Known(*image, p, {"metadata", "labels", "imageScripts"});
      std::string q;
      if (const Json* m = Member(*image, p, "metadata", q)) RETURN_IF_ERROR(Base64(*m, q).status());
      if (const Json* labels = Member(*image, p, "labels", q)) {
        RETURN_IF_ERROR(ReadLabels(*labels, q, d.labels));
      }
      if (const Json* scripts = Member(*image, p, "imageScripts", q)) {
        RETURN_IF_ERROR(ReadScripts(*scripts, q,
                                    {{"help", &d.help},
                                     {"environment", &d.environment},
                                     {"runScript", &d.runscript},
                                     {"test", &image_test},
                                     {"startScript", &d.startscript}}));
      }
    }
    if (const Json* build = Member(j, path, "buildData", p)) {
      if (!build->is_object()) return TypeError(*build, p, "an object");
      Known(*build, p, {"files", "buildScripts"});
      std::string q;
      if (const Json* files = Member(*build, p, "files", q)) {
        RETURN_IF_ERROR(ReadFiles(*files, q, d.files));
      }
      if (const Json* scripts = Member(*build, p, "buildScripts", q)) {
        RETURN_IF_ERROR(ReadScripts(*scripts, q,
                                    {{"pre", &d.pre},
                                     {"setup", &d.setup},
                                     {"post", &d.post},
                                     {"test", &build_test},
                                     {"arguments", &d.arguments}}));
      }
    }
    RETURN_IF_ERROR(MergeTest(image_test, build_test, path, d.test));
    RETURN_IF_ERROR(ReadApps(j, path, d.apps));
    for (const char* key : {"raw", "fullraw"}) {
      if (const Json* raw = Member(j, path, key, p)) RETURN_IF_ERROR(Base64(*raw, p).status());
    }
    return d;
  }

  // The line of `path`, or of the nearest enclosing key or element that has
  // one (plain values in arrays are not recorded).
  int Line(std::string path) const {
    while (true) {
      if (auto it = lines_.find(path); it != lines_.end()) return it->second;
      size_t cut = path.find_last_of("/[");
      if (cut == std::string::npos) return 1;
      path.resize(cut);
    }
  }

  absl::Status Error(const std::string& path, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", Line(path), ": ", message));
  }

 private:
  // "[1]/buildData/files[0]" -> "[1].buildData.files[0]", for messages.
  static std::string Label(const std::string& path) {
    std::string out = absl::StrReplaceAll(path, {{"/", "."}});
    if (!out.empty() && out.front() == '.') out.erase(0, 1);
    return Printable(out);
  }

  absl::Status TypeError(const Json& j, const std::string& path, absl::string_view want) const {
    return Error(path, absl::StrCat(Label(path), " is ", j.is_null() ? "null" : j.type_name(),
                                    ", not ", want));
  }

  // The member `name` as encoding/json finds it: the exact key, else one
  // equal to it ignoring case. Null reads as absent (nullptr).
  const Json* Member(const Json& obj, const std::string& path, absl::string_view name,
                     std::string& member_path) const {
    auto found = obj.end();
    if (auto it = obj.find(std::string(name)); it != obj.end()) {
      found = it;
    } else {
      for (auto it2 = obj.begin(); it2 != obj.end(); ++it2) {
        if (absl::EqualsIgnoreCase(it2.key(), name)) found = it2;
      }
    }
    if (found == obj.end() || found->is_null()) return nullptr;
    member_path = absl::StrCat(path, "/", found.key());
    return &*found;
  }

  // Keys the shape does not have: encoding/json drops them silently, which
  // hides a typo; berth says so and goes on.
  void Known(const Json& obj, const std::string& path, std::span<const absl::string_view> names) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool known = false;
      for (absl::string_view n : names) known = known || absl::EqualsIgnoreCase(it.key(), n);
      if (!known) {
        std::string at = absl::StrCat(path, "/", it.key());
        warnings_.push_back(
            absl::StrCat(file_, ":", Line(at), ": ignoring unknown key ", Label(at)));
      }
    }
  }
  void Known(const Json& obj, const std::string& path,
             std::initializer_list<absl::string_view> names) {
    Known(obj, path, std::span<const absl::string_view>(names.begin(), names.size()));
  }

  absl::StatusOr<std::string> String(const Json& j, const std::string& path) const {
    if (!j.is_string()) return TypeError(j, path, "a string");
    const std::string& s = j.get_ref<const std::string&>();
    if (s.find('\0') != std::string::npos) {
      return Error(path, absl::StrCat(Label(path), ": NUL byte: a definition is text"));
    }
    return s;
  }

  // A string that stands on one line of the definition text (section args,
  // %files paths, label keys).
  absl::StatusOr<std::string> OneLine(const Json& j, const std::string& path) const {
    ASSIGN_OR_RETURN(std::string s, String(j, path));
    if (s.find('\n') != std::string::npos) {
      return Error(path, absl::StrCat(Label(path),
                                      ": a line break where the definition "
                                      "text has one line"));
    }
    return s;
  }

  // Go's []byte: standard base64.
  absl::StatusOr<std::string> Base64(const Json& j, const std::string& path) const {
    ASSIGN_OR_RETURN(std::string s, String(j, path));
    std::string out;
    if (!absl::Base64Unescape(s, &out)) {
      return Error(path, absl::StrCat(Label(path), " is not base64"));
    }
    return out;
  }

  absl::Status ReadHeader(const Json& j, const std::string& path, Header& header) {
    if (!j.is_object()) return TypeError(j, path, "an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string at = absl::StrCat(path, "/", it.key());
      if (it->is_null()) continue;
      ASSIGN_OR_RETURN(std::string value, String(*it, at));
      std::string key = internal::AsciiLower(it.key());
      if (!internal::ValidKey(key)) {
        return Error(at, absl::StrCat("failed to parse deffile header: invalid header keyword "
                                      "found: ",
                                      Printable(key)));
      }
      header.Set(std::move(key), std::move(value), Line(at));
    }
    return absl::OkStatus();
  }

  absl::Status ReadLabels(const Json& j, const std::string& path,
                          std::map<std::string, std::string>& labels) {
    if (!j.is_object()) return TypeError(j, path, "an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string at = absl::StrCat(path, "/", it.key());
      if (it->is_null()) continue;
      if (it.key().empty() || it.key().find_first_of(" \n") != std::string::npos ||
          it.key().find('\0') != std::string::npos) {
        return Error(at, absl::StrCat("label ", internal::GoQuote(it.key()),
                                      ": a label's name is one word"));
      }
      ASSIGN_OR_RETURN(labels[it.key()], String(*it, at));
    }
    return absl::OkStatus();
  }

  absl::Status ReadScripts(const Json& j, const std::string& path,
                           std::initializer_list<std::pair<absl::string_view, Script*>> scripts) {
    if (!j.is_object()) return TypeError(j, path, "an object");
    std::vector<absl::string_view> names;
    for (const auto& [name, script] : scripts) names.push_back(name);
    Known(j, path, names);
    for (const auto& [name, script] : scripts) {
      std::string p;
      const Json* s = Member(j, path, name, p);
      if (s == nullptr) continue;
      if (!s->is_object()) return TypeError(*s, p, "an object ({\"args\": ..., \"script\": ...})");
      Known(*s, p, {"args", "script"});
      std::string q;
      if (const Json* args = Member(*s, p, "args", q)) {
        ASSIGN_OR_RETURN(script->args, OneLine(*args, q));
      }
      if (const Json* body = Member(*s, p, "script", q)) {
        ASSIGN_OR_RETURN(script->script, String(*body, q));
      }
      // JSON has no "present but empty": an empty section is an absent one.
      if (!script->args.empty() || !script->script.empty()) script->line = Line(p);
    }
    return absl::OkStatus();
  }

  absl::Status ReadFiles(const Json& j, const std::string& path, std::vector<FilesSection>& out) {
    if (!j.is_array()) return TypeError(j, path, "an array");
    std::map<std::string, size_t> index;  // args -> section, merged as the text parser does
    for (size_t i = 0; i < j.size(); ++i) {
      std::string at = absl::StrCat(path, "[", i, "]");
      const Json& section = j[i];
      if (section.is_null()) continue;
      if (!section.is_object()) return TypeError(section, at, "an object (a %files section)");
      Known(section, at, {"args", "files"});
      std::string p, args;
      if (const Json* a = Member(section, at, "args", p)) {
        ASSIGN_OR_RETURN(args, OneLine(*a, p));
      }
      auto [it, added] = index.try_emplace(args, out.size());
      if (added) out.push_back({args, "", {}, Line(at)});
      FilesSection& into = out[it->second];
      const Json* files = Member(section, at, "files", p);
      if (files == nullptr) continue;
      if (!files->is_array()) return TypeError(*files, p, "an array");
      for (size_t k = 0; k < files->size(); ++k) {
        std::string f = absl::StrCat(p, "[", k, "]");
        const Json& entry = (*files)[k];
        if (!entry.is_object()) return TypeError(entry, f, "an object ({\"source\": ...})");
        Known(entry, f, {"source", "destination"});
        FileTransfer t{"", "", Line(f)};
        std::string q;
        if (const Json* s = Member(entry, f, "source", q)) {
          ASSIGN_OR_RETURN(t.source, OneLine(*s, q));
        }
        if (const Json* d = Member(entry, f, "destination", q)) {
          ASSIGN_OR_RETURN(t.destination, OneLine(*d, q));
        }
        if (t.source.empty()) return Error(f, absl::StrCat("%files: ", Label(f), " has no source"));
        into.files.push_back(std::move(t));
      }
    }
    return absl::OkStatus();
  }

  // customData ("apprun foo": body) and appOrder into apps, in appOrder's
  // order, then any other app by name.
  absl::Status ReadApps(const Json& stage, const std::string& path, std::vector<App>& apps) {
    std::string p;
    std::map<std::string, size_t> index;
    if (const Json* custom = Member(stage, path, "customData", p)) {
      if (!custom->is_object()) return TypeError(*custom, p, "an object");
      std::vector<App> found;
      for (auto it = custom->begin(); it != custom->end(); ++it) {
        std::string at = absl::StrCat(p, "/", it.key());
        if (it->is_null()) continue;
        ASSIGN_OR_RETURN(std::string body, String(*it, at));
        size_t space = it.key().find(' ');
        std::string section = it.key().substr(0, space);
        if (space == std::string::npos || !internal::IsAppSection(section)) {
          return Error(at, absl::StrCat("invalid section(s) specified: ", Printable(it.key()),
                                        " (customData keys are \"appSECTION APP\")"));
        }
        std::string name = it.key().substr(space + 1);
        if (!internal::ValidAppName(name)) {
          return Error(at,
                       absl::StrCat("app section ", section, ": app name ", internal::GoQuote(name),
                                    " is not a directory name (no '/', '.', '..' or control "
                                    "characters)"));
        }
        auto [slot, added] = index.try_emplace(name, found.size());
        if (added) found.push_back({name, {}, Line(at)});
        found[slot->second].sections[section] = std::move(body);
      }
      std::vector<bool> placed(found.size(), false);
      if (const Json* order = Member(stage, path, "appOrder", p)) {
        if (!order->is_array()) return TypeError(*order, p, "an array");
        for (size_t i = 0; i < order->size(); ++i) {
          std::string at = absl::StrCat(p, "[", i, "]");
          ASSIGN_OR_RETURN(std::string name, String((*order)[i], at));
          auto it = index.find(name);
          if (it == index.end()) {
            return Error(at, absl::StrCat("appOrder names app ", internal::GoQuote(name),
                                          ", which has no section in customData"));
          }
          if (placed[it->second]) continue;
          placed[it->second] = true;
          apps.push_back(found[it->second]);
        }
      }
      for (size_t i = 0; i < found.size(); ++i) {
        if (!placed[i]) apps.push_back(std::move(found[i]));
      }
    } else if (const Json* order = Member(stage, path, "appOrder", p)) {
      if (!order->is_array()) return TypeError(*order, p, "an array");
      if (!order->empty()) {
        return Error(p, "appOrder names apps, but the stage has no customData with their sections");
      }
    }
    return absl::OkStatus();
  }

  // Apptainer keeps %test twice (image and build scripts); berth once.
  absl::Status MergeTest(const Script& image, const Script& build, const std::string& path,
                         Script& test) const {
    bool has_image = image.present(), has_build = build.present();
    if (has_image && has_build && (image.args != build.args || image.script != build.script)) {
      return Error(path + "/buildData",
                   "imageData.imageScripts.test and buildData.buildScripts.test differ: a "
                   "definition has one %test");
    }
    test = has_image ? image : build;
    return absl::OkStatus();
  }

  std::string file_;
  const LineMap& lines_;
  std::vector<std::string>& warnings_;
};

// Apptainer's IsEmpty: nothing a build could use.
bool IsEmpty(const Definition& d) {
  for (const Script* s : {&d.help, &d.environment, &d.runscript, &d.test, &d.startscript, &d.pre,
                          &d.setup, &d.post, &d.arguments}) {
    if (s->present()) return false;
  }
  return d.header.empty() && d.labels.empty() && d.files.empty() && d.apps.empty();
}

void Section(std::string& out, absl::string_view name, const std::string& args,
             const std::string& body) {
  absl::StrAppend(&out, "%", name, args.empty() ? "" : " ", args, "\n", body);
  if (!body.empty() && body.back() != '\n') out += '\n';
  out += '\n';
}

// The stage as definition text (Apptainer's populateRaw, in a fixed order):
// what Def.FILE and /.singularity.d/Singularity show.
std::string StageText(const Definition& d) {
  std::string out;
  if (const HeaderEntry* b = d.header.Find("bootstrap")) {
    absl::StrAppend(&out, "Bootstrap: ", b->value, "\n");
  }
  for (const HeaderEntry& e : d.header.entries()) {
    // A line break in a value is the text parser's "\n\" continuation.
    if (e.key != "bootstrap") {
      absl::StrAppend(&out, e.key, ": ", absl::StrReplaceAll(e.value, {{"\n", "\\n\\\n"}}), "\n");
    }
  }
  out += '\n';
  if (!d.labels.empty()) {
    std::string body;
    for (const auto& [k, v] : d.labels) absl::StrAppend(&body, "    ", k, " ", v, "\n");
    Section(out, "labels", "", body);
  }
  for (const FilesSection& f : d.files) {
    std::string body;
    for (const FileTransfer& t : f.files) {
      absl::StrAppend(&body, "    ", t.source, t.destination.empty() ? "" : " ", t.destination,
                      "\n");
    }
    Section(out, "files", f.args, body);
  }
  const std::pair<const char*, const Script*> scripts[] = {{"help", &d.help},
                                                           {"environment", &d.environment},
                                                           {"runscript", &d.runscript},
                                                           {"test", &d.test},
                                                           {"startscript", &d.startscript},
                                                           {"pre", &d.pre},
                                                           {"setup", &d.setup},
                                                           {"post", &d.post},
                                                           {"arguments", &d.arguments}};
  for (const auto& [name, s] : scripts) {
    if (s->present()) Section(out, name, s->args, s->script);
  }
  for (const App& app : d.apps) {
    for (const auto& [section, body] : app.sections) Section(out, section, app.name, body);
  }
  return out;
}

}  // namespace

bool IsJsonDefinition(absl::string_view bytes) {
  for (char c : bytes) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{' || c == '[';
  }
  return false;
}

absl::StatusOr<ParsedFile> ParseDefinitionJson(absl::string_view bytes, absl::string_view file_name,
                                               const BuildArgs& args) {
  const std::string name = Printable(file_name);
  if (bytes.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": larger than ", kMaxFileBytes >> 20,
                                                   " MiB (the limit for a definition file)"));
  }
  if (size_t nul = bytes.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", LineAt(bytes, nul), ": NUL byte: a definition file is text"));
  }
  ASSIGN_OR_RETURN(Document doc, ParseBounded(bytes, name));
  ParsedFile out;
  // Build args were substituted before the JSON was written: any given
  // here is unused, as the text parser says.
  RETURN_IF_ERROR(internal::CheckUnused(args, {}, out.warnings));
  Reader reader(name, doc.lines, out.warnings);
  std::vector<std::pair<const Json*, std::string>> stages;
  if (doc.json.is_array()) {
    if (doc.json.size() > kMaxStages) {
      return reader.Error("",
                          absl::StrCat("more than ", kMaxStages, " stages (the limit per file)"));
    }
    for (size_t i = 0; i < doc.json.size(); ++i) {
      stages.emplace_back(&doc.json[i], absl::StrCat("[", i, "]"));
    }
  } else if (doc.json.is_object()) {
    stages.emplace_back(&doc.json, "");  // Apptainer's form: one stage
  } else {
    return reader.Error("", absl::StrCat("a JSON definition is an array of stages or one stage "
                                         "object, not ",
                                         doc.json.type_name()));
  }
  if (stages.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no stages found in definition file"));
  }
  for (const auto& [json, path] : stages) {
    ASSIGN_OR_RETURN(Definition d, reader.Stage(*json, path));
    if (IsEmpty(d)) {
      return reader.Error(path, "the stage holds nothing (no header, section, label or file)");
    }
    if (stages.size() > 1 && d.header.empty()) {
      return reader.Error(path, "multiple stages detected, all must have headers");
    }
    d.raw = StageText(d);
    absl::StrAppend(&out.full_raw, d.raw);
    out.stages.push_back(std::move(d));
  }
  if (out.full_raw.size() > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": its definition text is larger than ",
                                                   kMaxFileBytes >> 20, " MiB (the limit)"));
  }
  RETURN_IF_ERROR(internal::CheckStages(out.stages, name));
  return out;
}

absl::StatusOr<ParsedFile> ParseDefinition(absl::string_view bytes, absl::string_view file_name,
                                           const BuildArgs& args) {
  if (IsJsonDefinition(bytes)) return ParseDefinitionJson(bytes, file_name, args);
  return ParseDefinitionFile(bytes, file_name, args);
}

}  // namespace berth::deffile
