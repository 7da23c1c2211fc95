// The parsed form of one stage of a definition file (Apptainer's
// types.Definition), as the builder consumes it.
//
// Every field keeps Apptainer's meaning: header keys are lower-cased and the
// last duplicate wins, script bodies are verbatim (indentation and trailing
// newline kept), repeated sections are concatenated, %files sections with the
// same args are merged. On top of that each part remembers the line of the
// file it came from, so that the builder can say "app.def:12: %post: ...".
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace berth::deffile {

// A script section: `%name args` followed by its body.
struct Script {
  std::string args;    // the text after "%name ", verbatim ("" without one)
  std::string script;  // the body, verbatim; "" when the section is absent
  int line = 0;        // line of the first `%name` that opened it; 0 when absent

  bool present() const { return line != 0; }
};

// One `src [dst]` line of a %files section.
struct FileTransfer {
  std::string source;
  std::string destination;  // "" means the same path as `source`
  int line = 0;
};

// A %files section (all sections with the same args, merged in order).
struct FilesSection {
  std::string args;        // as written after "%files", e.g. "from build"
  std::string from_stage;  // the stage to copy from; "" copies from the host
  std::vector<FileTransfer> files;
  int line = 0;  // line of the first `%files` with these args
};

// One `Key: value` of the header; `key` is lower-case.
struct HeaderEntry {
  std::string key;
  std::string value;
  int line = 0;
};

// The header in file order (first appearance), the last value of a repeated
// key winning as in Apptainer.
class Header {
 public:
  // Adds or replaces `key` (already lower-case).
  void Set(std::string key, std::string value, int line);
  const HeaderEntry* Find(absl::string_view key) const;
  // The value of `key`, or "" when the header has no such key.
  absl::string_view Get(absl::string_view key) const;
  bool Has(absl::string_view key) const { return Find(key) != nullptr; }
  bool empty() const { return entries_.empty(); }
  const std::vector<HeaderEntry>& entries() const { return entries_; }

 private:
  std::vector<HeaderEntry> entries_;
  absl::flat_hash_map<std::string, size_t> index_;
};

// A SCIF app: its sections by Apptainer's name ("appinstall", "apprun", ...).
struct App {
  std::string name;
  std::map<std::string, std::string> sections;  // section name -> body
  int line = 0;                                 // first line naming the app

  // The body of `section` ("apprun", ...), or nullptr when the app has none.
  const std::string* Find(absl::string_view section) const;
};

struct Definition {
  Header header;
  std::map<std::string, std::string> labels;  // %labels: KEY value

  // Image scripts: written into the image.
  Script help, environment, runscript, test, startscript;
  // Build scripts (`test` above is one too: it runs after the build).
  Script pre, setup, post, arguments;

  std::vector<FilesSection> files;
  std::vector<App> apps;  // in the order the file first names them (appOrder)

  std::string raw;                                // this stage's text, build args substituted
  std::map<std::string, std::string> build_args;  // NAME -> value substituted here
  int first_line = 1;                             // the line where this stage starts in the file

  // Typed views of the common header keys; "" when absent.
  absl::string_view Bootstrap() const { return header.Get("bootstrap"); }
  absl::string_view From() const { return header.Get("from"); }
  absl::string_view StageName() const { return header.Get("stage"); }
  absl::string_view IncludeCmd() const { return header.Get("includecmd"); }
  absl::string_view MirrorUrl() const { return header.Get("mirrorurl"); }
  absl::string_view UpdateUrl() const { return header.Get("updateurl"); }
  absl::string_view OsVersion() const { return header.Get("osversion"); }
  absl::string_view Include() const { return header.Get("include"); }
  absl::string_view Registry() const { return header.Get("registry"); }
  absl::string_view Namespace() const { return header.Get("namespace"); }
  absl::string_view SetOpt() const { return header.Get("setopt"); }
  absl::string_view ConfUrl() const { return header.Get("confurl"); }
  // Fingerprints: as Apptainer reads it: cut at '#', trimmed, split on ','
  // and each entry trimmed. Empty when the key is absent or blank.
  std::vector<std::string> Fingerprints() const;
  // otherurl0, otherurl1, ... (zypper), by their number.
  std::vector<std::string> OtherUrls() const;

  // The section's script, by Apptainer's section name ("post", "runscript",
  // ...); nullptr for names that are not script sections.
  const Script* FindScript(absl::string_view section) const;
  Script* MutableScript(absl::string_view section);
  const App* FindApp(absl::string_view name) const;
};

}  // namespace berth::deffile
