#include "client/action/bind_spec.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

absl::Status Invalid(absl::string_view entry, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--bind '", entry, "': ", why));
}

absl::Status InvalidMount(absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--mount '", value, "': ", why));
}

// One CSV record (RFC 4180, as Go's encoding/csv reads Apptainer's): fields
// split at commas outside double quotes; "" inside quotes is one quote.
absl::StatusOr<std::vector<std::string>> CsvFields(absl::string_view value) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < value.size() && value[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c == '\n' || c == '\r') {
      return InvalidMount(value,
                          "one mount per value (a newline separates them in APPTAINER_MOUNT)");
    } else {
      fields.back() += c;
    }
  }
  if (quoted) return InvalidMount(value, "a quote is not closed");
  return fields;
}

}  // namespace

absl::StatusOr<BindEntry> ParseMount(const std::string& value, const std::string& cwd) {
  ASSIGN_OR_RETURN(std::vector<std::string> fields, CsvFields(value));
  BindEntry bind;
  for (const std::string& field : fields) {
    const size_t eq = field.find('=');
    const std::string key = field.substr(0, eq);
    const std::string v = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (key == "type") {
      if (v != "bind") return InvalidMount(value, absl::StrCat("type '", v, "': only bind is"));
    } else if (key == "source" || key == "src") {
      bind.source = v;
    } else if (key == "destination" || key == "dst" || key == "target") {
      bind.destination = v;
    } else if (key == "ro" || key == "readonly") {
      if (eq != std::string::npos && v != "true" && v != "false") {
        return InvalidMount(value, absl::StrCat(key, "=", v, ": use ", key, " alone, or =true"));
      }
      bind.read_only = v != "false";
    } else if (key == "image-src") {
      if (v.empty() || v.front() != '/') {
        return InvalidMount(value, "image-src must be an absolute path inside the image");
      }
      bind.image_src = v;
    } else if (key == "id") {
      if (!absl::SimpleAtoi(v, &bind.image_id) || bind.image_id == 0) {
        return InvalidMount(value, "id must be a SIF descriptor id (1, 2, ...)");
      }
    } else if (key == "bind-propagation") {
      // Apptainer accepts and ignores it: binds are private either way.
    } else {
      return InvalidMount(value, absl::StrCat("unknown field '", key, "'"));
    }
  }
  if (bind.image_id != 0 && bind.image_src.empty()) {
    return InvalidMount(value, "id= needs image-src=PATH (a path inside that partition)");
  }
  if (bind.source.empty()) return InvalidMount(value, "no source (src=PATH)");
  if (bind.destination.empty()) return InvalidMount(value, "no destination (dst=PATH)");
  if (bind.destination.front() != '/') {
    return InvalidMount(value, "the destination must be an absolute path");
  }
  if (bind.source.front() != '/') bind.source = absl::StrCat(cwd, "/", bind.source);
  return bind;
}

absl::StatusOr<std::vector<BindEntry>> ParseBinds(const std::string& value,
                                                  const std::string& cwd) {
  std::vector<BindEntry> out;
  for (absl::string_view entry : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    if (absl::StartsWith(entry, "id=") && !out.empty() && !out.back().image_src.empty() &&
        out.back().image_id == 0) {
      if (!absl::SimpleAtoi(entry.substr(3), &out.back().image_id) || out.back().image_id == 0) {
        return Invalid(entry, "id must be a SIF descriptor id (1, 2, ...)");
      }
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(entry, ':');
    if (parts.size() > 3 || parts[0].empty()) return Invalid(entry, "use src[:dst[:ro|rw]]");
    BindEntry bind;
    bind.source = parts[0].front() == '/' ? parts[0] : absl::StrCat(cwd, "/", parts[0]);
    bind.destination = parts.size() > 1 && !parts[1].empty() ? parts[1] : bind.source;
    if (bind.destination.front() != '/') {
      return Invalid(entry, "the destination must be an absolute path");
    }
    if (parts.size() == 3) {
      if (parts[2] == "ro") {
        bind.read_only = true;
      } else if (absl::StartsWith(parts[2], "image-src=")) {
        bind.image_src = parts[2].substr(10);
        if (bind.image_src.empty() || bind.image_src.front() != '/') {
          return Invalid(entry, "image-src must be an absolute path inside the image");
        }
      } else if (parts[2] != "rw") {
        return Invalid(
            entry, absl::StrCat("unknown option '", parts[2], "' (use ro, rw or image-src=PATH)"));
      }
    }
    out.push_back(std::move(bind));
  }
  return out;
}

}  // namespace berth::client
