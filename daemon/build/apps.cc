#include "daemon/build/apps.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/go_json.h"
#include "daemon/build/metadata.h"

namespace berth::daemon::build {
namespace {

std::string Root(const deffile::App& app) {
  return absl::StrCat("/scif/apps/", app.name);
}

// App names become parts of variable names: anything but [A-Za-z0-9_] is "_".
std::string VariableName(absl::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return out;
}

std::string Base01(const deffile::App& app) {
  const std::string& n = app.name;
  return absl::StrFormat(
      "#!/bin/sh\n\nSCIF_APPNAME=%1$s\nSCIF_APPROOT=\"/scif/apps/%1$s\"\n"
      "SCIF_APPMETA=\"/scif/apps/%1$s/scif\"\nSCIF_DATA=\"/scif/data\"\n"
      "SCIF_APPDATA=\"/scif/data/%1$s\"\nSCIF_APPINPUT=\"/scif/data/%1$s/input\"\n"
      "SCIF_APPOUTPUT=\"/scif/data/%1$s/output\"\n"
      "export SCIF_APPDATA SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_APPINPUT SCIF_APPOUTPUT "
      "SCIF_DATA\n",
      n);
}

// What 94-appsbase.sh says about one app: where its parts are, and the
// environment, labels and runscript files it has.
std::string GlobalExports(const deffile::App& app) {
  const std::string v = VariableName(app.name);
  const std::string& n = app.name;
  std::string out = absl::StrFormat(
      "## App Global Exports For: %1$s\n\t\nSCIF_APPDATA_%1$s=/scif/data/%2$s\n"
      "SCIF_APPMETA_%1$s=/scif/apps/%2$s/scif\nSCIF_APPROOT_%1$s=/scif/apps/%2$s\n"
      "SCIF_APPBIN_%1$s=/scif/apps/%2$s/bin\nSCIF_APPLIB_%1$s=/scif/apps/%2$s/lib\n\n"
      "export SCIF_APPDATA_%1$s SCIF_APPMETA_%1$s SCIF_APPROOT_%1$s SCIF_APPBIN_%1$s "
      "SCIF_APPLIB_%1$s\n",
      v, n);
  if (app.Find("appenv") != nullptr && !app.Find("appenv")->empty()) {
    absl::StrAppendFormat(
        &out, "export SCIF_APPENV_%1$s=\"/scif/apps/%2$s/scif/env/90-environment.sh\"\n", v, n);
  }
  absl::StrAppendFormat(&out, "export SCIF_APPLABELS_%1$s=\"/scif/apps/%2$s/scif/labels.json\"\n",
                        v, n);
  if (app.Find("apprun") != nullptr && !app.Find("apprun")->empty()) {
    absl::StrAppendFormat(&out, "export SCIF_APPRUN_%1$s=\"/scif/apps/%2$s/scif/runscript\"\n", v,
                          n);
  }
  return out;
}

// labels.json: SCIF_APP_NAME and "KEY value" lines, as Go's
// json.MarshalIndent writes a map (sorted keys, tab indent, HTML-safe).
std::string Labels(const deffile::App& app) {
  std::map<std::string, std::string> labels;
  labels["SCIF_APP_NAME"] = app.name;
  if (const std::string* body = app.Find("applabels")) {
    for (absl::string_view line : absl::StrSplit(*body, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line.front() == '#') continue;
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(line, absl::MaxSplits(' ', 1));
      labels[std::string(absl::StripAsciiWhitespace(kv.first))] =
          std::string(absl::StripAsciiWhitespace(kv.second));
    }
  }
  std::string out = "{";
  const char* sep = "\n";
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, sep, "\t", GoJsonQuote(k), ": ", GoJsonQuote(v));
    sep = ",\n";
  }
  absl::StrAppend(&out, "\n}");
  return out;
}

void AddApp(const deffile::App& app, v1::WriteFiles& out) {
  const std::string root = Root(app), meta = root + "/scif";
  for (const std::string& dir : {root, meta, root + "/bin", root + "/lib", meta + "/env",
                                 absl::StrCat("/scif/data/", app.name, "/input"),
                                 absl::StrCat("/scif/data/", app.name, "/output")}) {
    AddDir(out, dir);
  }
  AddFile(out, meta + "/env/01-base.sh", Base01(app), 0755);
  auto body = [&](const char* section) -> const std::string* {
    const std::string* b = app.Find(section);
    return b != nullptr && !b->empty() ? b : nullptr;
  };
  if (const std::string* env = body("appenv"))
    AddFile(out, meta + "/env/90-environment.sh", *env, 0755);
  if (const std::string* run = body("apprun")) {
    AddFile(out, meta + "/runscript", absl::StrCat("#!/bin/sh\n\n", *run, "\n"), 0755);
  }
  if (const std::string* test = body("apptest")) {
    AddFile(out, meta + "/test", absl::StrCat("#!/bin/sh\n\n", *test, "\n"), 0755);
  }
  if (const std::string* help = body("apphelp"))
    AddFile(out, meta + "/runscript.help", *help, 0644);
  AddFile(out, meta + "/labels.json", Labels(app), 0644);
}

}  // namespace

v1::WriteFiles AppLayout(const deffile::Definition& stage) {
  v1::WriteFiles out;
  std::string global;
  for (const deffile::App& app : stage.apps) {
    AddApp(app, out);
    global += GlobalExports(app);
  }
  AddFile(out, "/.singularity.d/env/94-appsbase.sh", global, 0755);
  return out;
}

v1::CopyFiles AppFileCopies(const deffile::App& app) {
  v1::CopyFiles copy;
  copy.set_source_root_fd(-1);
  const std::string* body = app.Find("appfiles");
  if (body == nullptr) return copy;
  for (absl::string_view line : absl::StrSplit(*body, '\n')) {
    // Apptainer's rule: everything from the first '#' is a comment; the
    // destination (the source's own path by default) is in the app's root.
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    absl::string_view dst = absl::StripAsciiWhitespace(parts.second);
    v1::FileCopy* f = copy.add_files();
    f->set_source(std::string(parts.first));
    f->set_destination(absl::StrCat(Root(app), "/", dst.empty() ? parts.first : dst));
    f->set_line(app.line);
  }
  return copy;
}

std::string AppInstalls(const deffile::Definition& stage) {
  std::string out;
  for (const deffile::App& app : stage.apps) {
    const std::string* install = app.Find("appinstall");
    const std::string root = Root(app);
    absl::StrAppend(&out, "\ncd /\n. ", root, "/scif/env/01-base.sh\n\ncd ", root, "\n",
                    install != nullptr ? *install : "", "\n\ncd /\n");
  }
  return out;
}

}  // namespace berth::daemon::build
