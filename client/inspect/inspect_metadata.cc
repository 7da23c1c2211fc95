#include "client/inspect/inspect_metadata.h"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace berth::inspect {
namespace {

using Json = nlohmann::json;
using Members = std::vector<std::pair<std::string, std::string>>;

// Go's MarshalIndent layout of an object whose member values are already
// rendered for nesting level `depth`.
std::string Object(const Members& members, int depth) {
  if (members.empty()) return "{}";
  std::string out = "{\n";
  for (size_t i = 0; i < members.size(); ++i) {
    out.append(depth + 1, '\t');
    absl::StrAppend(&out, GoJsonQuote(members[i].first), ": ", members[i].second,
                    i + 1 < members.size() ? ",\n" : "\n");
  }
  out.append(depth, '\t');
  out += "}";
  return out;
}

std::string MapObject(const StringMap& map, int depth) {
  Members members;
  for (const auto& [key, value] : map) members.emplace_back(key, GoJsonQuote(value));
  return Object(members, depth);
}

// The members Go emits for a struct field tagged `omitempty`.
void AddMap(Members& members, const char* key, const StringMap& map, int depth) {
  if (!map.empty()) members.emplace_back(key, MapObject(map, depth + 1));
}
void AddString(Members& members, const char* key, const std::string& value) {
  if (!value.empty()) members.emplace_back(key, GoJsonQuote(value));
}

std::string AppObject(const AppAttributes& app, int depth) {
  Members members;
  AddMap(members, "environment", app.environment, depth);
  AddMap(members, "labels", app.labels, depth);
  AddString(members, "runscript", app.runscript);
  AddString(members, "startscript", app.startscript);
  AddString(members, "test", app.test);
  AddString(members, "helpfile", app.helpfile);
  return Object(members, depth);
}

std::string AttributesObject(const Attributes& a, int depth) {
  Members members;
  if (!a.apps.empty()) {
    Members apps;
    for (const auto& [name, app] : a.apps) apps.emplace_back(name, AppObject(app, depth + 2));
    members.emplace_back("apps", Object(apps, depth + 1));
  }
  AddMap(members, "environment", a.environment, depth);
  AddMap(members, "labels", a.labels, depth);
  AddString(members, "runscript", a.runscript);
  AddString(members, "test", a.test);
  AddString(members, "helpfile", a.helpfile);
  AddString(members, "deffile", a.deffile);
  AddString(members, "startscript", a.startscript);
  return Object(members, depth);
}

// Go's name for a JSON value's kind in "cannot unmarshal X into ..." errors.
std::string GoKind(const Json& j) {
  if (j.is_object()) return "object";
  if (j.is_array()) return "array";
  if (j.is_string()) return "string";
  if (j.is_boolean()) return "bool";
  if (j.is_number()) return "number";
  return "null";
}

absl::Status TypeError(const Json& j, absl::string_view field, absl::string_view type) {
  return absl::InvalidArgumentError(
      absl::StrCat("while decoding inspect metadata: cannot unmarshal ", GoKind(j), " into ", field,
                   " of type ", type));
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

absl::Status DecodeString(const Json& object, const char* key, std::string& out) {
  const Json* j = Member(object, key);
  if (j == nullptr || j->is_null()) return absl::OkStatus();
  if (!j->is_string()) return TypeError(*j, key, "string");
  out = j->get<std::string>();
  return absl::OkStatus();
}

absl::Status DecodeMap(const Json& object, const char* key, StringMap& out) {
  const Json* j = Member(object, key);
  if (j == nullptr || j->is_null()) return absl::OkStatus();
  if (!j->is_object()) return TypeError(*j, key, "map[string]string");
  for (auto it = j->begin(); it != j->end(); ++it) {
    // Go stores a null value as the empty string.
    if (it->is_null()) {
      out[it.key()] = "";
    } else if (it->is_string()) {
      out[it.key()] = it->get<std::string>();
    } else {
      return TypeError(*it, absl::StrCat(key, ".", it.key()), "string");
    }
  }
  return absl::OkStatus();
}

absl::Status DecodeApp(const Json& j, AppAttributes& app) {
  if (j.is_null()) return absl::OkStatus();
  if (!j.is_object()) return TypeError(j, "apps", "inspect.AppAttributes");
  RETURN_IF_ERROR(DecodeMap(j, "environment", app.environment));
  RETURN_IF_ERROR(DecodeMap(j, "labels", app.labels));
  RETURN_IF_ERROR(DecodeString(j, "runscript", app.runscript));
  RETURN_IF_ERROR(DecodeString(j, "startscript", app.startscript));
  RETURN_IF_ERROR(DecodeString(j, "test", app.test));
  return DecodeString(j, "helpfile", app.helpfile);
}

absl::Status DecodeAttributes(const Json& j, Attributes& a) {
  if (j.is_null()) return absl::OkStatus();
  if (!j.is_object()) return TypeError(j, "data.attributes", "inspect.Attributes");
  if (const Json* apps = Member(j, "apps"); apps != nullptr && !apps->is_null()) {
    if (!apps->is_object()) return TypeError(*apps, "apps", "map[string]*inspect.AppAttributes");
    for (auto it = apps->begin(); it != apps->end(); ++it) {
      RETURN_IF_ERROR(DecodeApp(*it, a.apps[it.key()]));
    }
  }
  RETURN_IF_ERROR(DecodeMap(j, "environment", a.environment));
  RETURN_IF_ERROR(DecodeMap(j, "labels", a.labels));
  RETURN_IF_ERROR(DecodeString(j, "runscript", a.runscript));
  RETURN_IF_ERROR(DecodeString(j, "test", a.test));
  RETURN_IF_ERROR(DecodeString(j, "helpfile", a.helpfile));
  RETURN_IF_ERROR(DecodeString(j, "deffile", a.deffile));
  return DecodeString(j, "startscript", a.startscript);
}

void AppendSection(std::string& out, const std::string& top, const std::string* app) {
  if (!top.empty()) {
    absl::StrAppend(&out, top, "\n");
  } else if (app != nullptr && !app->empty()) {
    absl::StrAppend(&out, *app, "\n");
  }
}

}  // namespace

std::string RenderJson(const Attributes& attributes) {
  Members data = {{"attributes", AttributesObject(attributes, 2)}};
  Members top = {{"data", Object(data, 1)}, {"type", GoJsonQuote("container")}};
  return Object(top, 0) + "\n";
}

std::string RenderText(const Attributes& a, const std::string& app_name, bool list_apps) {
  std::string out;
  auto found = a.apps.find(app_name);
  const AppAttributes* app = found == a.apps.end() ? nullptr : &found->second;
  if (list_apps) {
    for (const auto& entry : a.apps) absl::StrAppend(&out, entry.first, "\n");
  }
  AppendSection(out, a.deffile, nullptr);
  AppendSection(out, a.runscript, app ? &app->runscript : nullptr);
  AppendSection(out, a.startscript, app ? &app->startscript : nullptr);
  AppendSection(out, a.test, app ? &app->test : nullptr);
  AppendSection(out, a.helpfile, app ? &app->helpfile : nullptr);
  const StringMap* env = !a.environment.empty() ? &a.environment
                         : app != nullptr       ? &app->environment
                                                : nullptr;
  if (env != nullptr) {
    for (const auto& [path, script] : *env)
      absl::StrAppend(&out, "=== ", path, " ===\n", script, "\n\n");
  }
  const StringMap* labels = !a.labels.empty() ? &a.labels : app != nullptr ? &app->labels : nullptr;
  if (labels != nullptr) {
    for (const auto& [key, value] : *labels) absl::StrAppend(&out, key, ": ", value, "\n");
  }
  return out;
}

ParsedLabels ParseLabels(absl::string_view text) {
  ParsedLabels parsed;
  Json doc = Json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    parsed.warning = text.find_first_not_of(" \t\r\n") == absl::string_view::npos
                         ? "unexpected end of JSON input"
                         : "labels.json is not valid JSON";
    return parsed;
  }
  if (doc.is_null()) return parsed;
  if (!doc.is_object()) {
    parsed.warning = absl::StrCat("json: cannot unmarshal ", GoKind(doc),
                                  " into Go value of type map[string]string");
    return parsed;
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it->is_string()) {
      parsed.labels[it.key()] = it->get<std::string>();
    } else if (it->is_null()) {
      parsed.labels[it.key()] = "";
    } else if (parsed.warning.empty()) {
      // Go reports the first mismatch and keeps decoding the rest.
      parsed.warning =
          absl::StrCat("json: cannot unmarshal ", GoKind(*it), " into Go value of type string");
    }
  }
  return parsed;
}

absl::StatusOr<Attributes> ParseInspectMetadata(absl::string_view text) {
  Json doc = Json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError("while decoding inspect metadata: not valid JSON");
  }
  Attributes attributes;
  if (doc.is_null()) return attributes;
  if (!doc.is_object()) return TypeError(doc, "the document", "inspect.Metadata");
  const Json* data = Member(doc, "data");
  if (data == nullptr || data->is_null()) return attributes;
  if (!data->is_object()) return TypeError(*data, "data", "inspect.Data");
  if (const Json* a = Member(*data, "attributes"); a != nullptr) {
    RETURN_IF_ERROR(DecodeAttributes(*a, attributes));
  }
  return attributes;
}

}  // namespace berth::inspect
