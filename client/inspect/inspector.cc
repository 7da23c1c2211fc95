#include "client/inspect/inspector.h"

#include <fnmatch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace berth::inspect {
namespace {

constexpr char kMetadataObject[] = "inspect-metadata.json";
constexpr char kImageMetadataDir[] = "/.singularity.d";
constexpr char kAppsDir[] = "/scif/apps";

// The sections one run collects, after Apptainer's defaulting: labels when
// nothing else is asked for, and everything (top level only) for --all.
struct Selection {
  bool labels, deffile, helpfile, runscript, startscript, test, environment, list_apps, all;
  std::string app;

  explicit Selection(const InspectOptions& o)
      : labels(o.labels || o.all ||
               !(o.helpfile || o.deffile || o.runscript || o.startscript || o.test ||
                 o.environment || o.list_apps)),
        deffile(o.deffile || o.all),
        helpfile(o.helpfile || o.all),
        runscript(o.runscript || o.all),
        startscript(o.startscript || o.all),
        test(o.test || o.all),
        environment(o.environment || o.all),
        list_apps(o.list_apps),
        all(o.all),
        app(o.all ? "" : o.app) {}
};

// A metadata directory the snippet reads, and the app it belongs to (empty
// for the image itself).
struct Location {
  std::string dir;
  std::string app;
};

enum class Section { kLabels, kDeffile, kHelpfile, kRunscript, kStartscript, kTest };

std::string TrimTrailingNewlines(std::string text) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// A file as `[ -f "$file" ] && cat_file` sees it: nullopt when it is not a
// regular file; an error when the image is damaged or the file is too big.
absl::StatusOr<std::optional<std::string>> ReadIfRegular(RootReader& root,
                                                         const std::string& path) {
  auto content = root.ReadFile(path, kMaxFileBytes);
  if (absl::IsNotFound(content.status())) return std::nullopt;
  if (!content.ok()) return content.status();
  return TrimTrailingNewlines(*std::move(content));
}

// Directory entries matching a shell glob, as `for f in dir/pattern` lists them.
absl::StatusOr<std::vector<std::string>> Glob(RootReader& root, const std::string& dir,
                                              const char* pattern) {
  auto names = root.ListDirectory(dir);
  if (absl::IsNotFound(names.status())) return std::vector<std::string>();
  if (!names.ok()) return names.status();
  std::vector<std::string> matches;
  for (const std::string& name : *names) {
    if (::fnmatch(pattern, name.c_str(), FNM_PERIOD) == 0) matches.push_back(name);
  }
  return matches;
}

// Apps are /scif/apps/* entries with a scif/ directory.
absl::Status DiscoverApps(RootReader& root, std::map<std::string, AppAttributes>& apps) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, Glob(root, kAppsDir, "*"));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(EntryType type, root.Stat(absl::StrCat(kAppsDir, "/", name, "/scif")));
    if (type == EntryType::kDirectory) apps.try_emplace(name);
  }
  return absl::OkStatus();
}

std::vector<Location> Locations(const Selection& s, const Attributes& found) {
  if (!s.app.empty()) {
    if (!found.apps.contains(s.app)) return {};  // no such app: nothing to show
    return {{absl::StrCat(kAppsDir, "/", s.app, "/scif"), s.app}};
  }
  std::vector<Location> out = {{kImageMetadataDir, ""}};
  if (s.all) {
    for (const auto& entry : found.apps) {
      out.push_back({absl::StrCat(kAppsDir, "/", entry.first, "/scif"), entry.first});
    }
  }
  return out;
}

class ContainerReader {
 public:
  ContainerReader(RootReader& root, InspectResult& result) : root_(root), result_(result) {}

  absl::Status ReadSection(const std::vector<Location>& where, const char* file, Section section) {
    for (const Location& loc : where) {
      ASSIGN_OR_RETURN(std::optional<std::string> value,
                       ReadIfRegular(root_, absl::StrCat(loc.dir, "/", file)));
      if (value) Store(loc.app, section, *std::move(value));
    }
    return absl::OkStatus();
  }

  absl::Status ReadEnvironment(const std::vector<Location>& where) {
    for (const Location& loc : where) {
      std::string env_dir = absl::StrCat(loc.dir, "/env");
      std::vector<const char*> patterns = {"9*-environment.sh"};
      // Docker-derived environment lives only in the image's own directory.
      if (loc.app.empty()) patterns.insert(patterns.begin(), "10-docker*.sh");
      for (const char* pattern : patterns) {
        ASSIGN_OR_RETURN(std::vector<std::string> names, Glob(root_, env_dir, pattern));
        for (const std::string& name : names) {
          std::string path = absl::StrCat(env_dir, "/", name);
          ASSIGN_OR_RETURN(std::optional<std::string> value, ReadIfRegular(root_, path));
          if (!value) continue;
          Attributes& a = result_.attributes;
          (loc.app.empty() ? a.environment : a.apps[loc.app].environment)[path] = *std::move(value);
        }
      }
    }
    return absl::OkStatus();
  }

 private:
  void Store(const std::string& app_name, Section section, std::string value) {
    Attributes& a = result_.attributes;
    AppAttributes* app = app_name.empty() ? nullptr : &a.apps[app_name];
    switch (section) {
      case Section::kDeffile:
        if (a.deffile.empty()) a.deffile = std::move(value);  // the image's wins
        break;
      case Section::kLabels: {
        ParsedLabels parsed = ParseLabels(value);
        if (!parsed.warning.empty()) {
          result_.warnings.push_back(absl::StrCat("Unable to parse labels: ", parsed.warning));
        }
        (app ? app->labels : a.labels) = std::move(parsed.labels);
        break;
      }
      case Section::kHelpfile:
        (app ? app->helpfile : a.helpfile) = std::move(value);
        break;
      case Section::kRunscript:
        (app ? app->runscript : a.runscript) = std::move(value);
        break;
      case Section::kStartscript:
        (app ? app->startscript : a.startscript) = std::move(value);
        break;
      case Section::kTest:
        (app ? app->test : a.test) = std::move(value);
        break;
    }
  }

  RootReader& root_;
  InspectResult& result_;
};

// The no-metadata path: read the container's files. `deffile_in_container`
// is set when the SIF has no Def.FILE to answer --deffile.
absl::Status ReadFromContainer(ImageSource& image, const Selection& s, bool deffile_in_container,
                               InspectResult& result) {
  bool wants_apps = s.list_apps || s.all || !s.app.empty();
  if (!(s.labels || s.helpfile || s.runscript || s.startscript || s.test || s.environment ||
        wants_apps || deffile_in_container)) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(RootReader * root, image.Root());
  if (wants_apps) RETURN_IF_ERROR(DiscoverApps(*root, result.attributes.apps));
  std::vector<Location> where = Locations(s, result.attributes);
  ContainerReader reader(*root, result);
  if (s.labels) RETURN_IF_ERROR(reader.ReadSection(where, "labels.json", Section::kLabels));
  if (deffile_in_container) {
    RETURN_IF_ERROR(reader.ReadSection(where, "Singularity", Section::kDeffile));
  }
  if (s.helpfile) RETURN_IF_ERROR(reader.ReadSection(where, "runscript.help", Section::kHelpfile));
  if (s.runscript) RETURN_IF_ERROR(reader.ReadSection(where, "runscript", Section::kRunscript));
  if (s.startscript) {
    RETURN_IF_ERROR(reader.ReadSection(where, "startscript", Section::kStartscript));
  }
  if (s.test) RETURN_IF_ERROR(reader.ReadSection(where, "test", Section::kTest));
  if (s.environment) RETURN_IF_ERROR(reader.ReadEnvironment(where));
  return absl::OkStatus();
}

// One field from inspect-metadata.json: the image's, or with --app that
// app's (and only when the metadata knows the app).
template <typename T>
void CopyField(const Attributes& from, Attributes& to, const std::string& app,
               T Attributes::*top_field, T AppAttributes::*app_field) {
  if (app.empty()) {
    to.*top_field = from.*top_field;
    return;
  }
  if (auto it = from.apps.find(app); it != from.apps.end()) {
    to.apps[app].*app_field = it->second.*app_field;
  }
}

Attributes FromSifMetadata(const Attributes& from, const Selection& s, bool has_deffile_object) {
  Attributes to;
  if (s.list_apps || s.all) to.apps = from.apps;
  if (s.labels) CopyField(from, to, s.app, &Attributes::labels, &AppAttributes::labels);
  // Apptainer takes the metadata's deffile only when a Def.FILE object exists.
  if (s.deffile && has_deffile_object) to.deffile = from.deffile;
  if (s.helpfile) CopyField(from, to, s.app, &Attributes::helpfile, &AppAttributes::helpfile);
  if (s.runscript) CopyField(from, to, s.app, &Attributes::runscript, &AppAttributes::runscript);
  if (s.startscript) {
    CopyField(from, to, s.app, &Attributes::startscript, &AppAttributes::startscript);
  }
  if (s.test) CopyField(from, to, s.app, &Attributes::test, &AppAttributes::test);
  if (s.environment) {
    CopyField(from, to, s.app, &Attributes::environment, &AppAttributes::environment);
  }
  return to;
}

}  // namespace

absl::StatusOr<InspectResult> Inspect(ImageSource& image, const InspectOptions& options) {
  Selection s(options);
  InspectResult result;
  std::optional<Attributes> metadata;
  if (image.is_sif()) {
    auto raw = image.ReadSifObject(sif::DataType::kGenericJson, kMetadataObject, kMaxMetadataBytes);
    absl::StatusOr<Attributes> parsed = !raw.ok()          ? raw.status()
                                        : raw->has_value() ? ParseInspectMetadata(**raw)
                                                           : Attributes();
    if (!parsed.ok()) {
      // As Apptainer: say so, then read the container instead.
      result.warnings.push_back(absl::StrCat("Unable to read ", kMetadataObject,
                                             " SIF descriptor: ", parsed.status().message()));
    } else if (raw->has_value()) {
      metadata = *std::move(parsed);
    }
  }
  std::optional<std::string> deffile_object;
  if (s.deffile && image.is_sif()) {
    ASSIGN_OR_RETURN(deffile_object,
                     image.ReadSifObject(sif::DataType::kDeffile, "", kMaxFileBytes));
    if (!deffile_object) {
      result.warnings.push_back("No SIF metadata partition, searching in container...");
    }
  }
  if (metadata) {
    result.attributes = FromSifMetadata(*metadata, s, deffile_object.has_value());
  } else {
    bool deffile_in_container = s.deffile && !deffile_object;
    // The Def.FILE object is shown verbatim, untrimmed, as Apptainer shows it.
    if (deffile_object) result.attributes.deffile = *std::move(deffile_object);
    RETURN_IF_ERROR(ReadFromContainer(image, s, deffile_in_container, result));
  }
  if (!s.list_apps && !s.all) {
    std::erase_if(result.attributes.apps, [&](const auto& entry) { return entry.first != s.app; });
  }
  return result;
}

std::string RenderInspectOutput(const InspectResult& result, const InspectOptions& options) {
  if (options.json || options.all) return RenderJson(result.attributes);
  return RenderText(result.attributes, options.app, options.list_apps);
}

}  // namespace berth::inspect
