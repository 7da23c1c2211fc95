#include "oci/singularity_layout.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/go_json.h"
#include "common/status_macros.h"
#include "oci/manifest.h"

namespace berth::oci {
namespace {

using Json = nlohmann::json;

// The sourcing loop every action script starts with.
constexpr char kSourceEnv[] = R"(for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done
)";

std::string ExecAction() {
  return absl::StrCat("#!/bin/sh\n\n", kSourceEnv, "\nexec \"$@\"\n");
}

std::string RunAction() {
  return absl::StrCat("#!/bin/sh\n\n", kSourceEnv, R"(
if test -n "${APPTAINER_APPNAME:-}"; then

    if test -x "/scif/apps/${APPTAINER_APPNAME:-}/scif/runscript"; then
        exec "/scif/apps/${APPTAINER_APPNAME:-}/scif/runscript" "$@"
    elif test -x "/scif/apps/singularity/scif/runscript"; then
        exec "/scif/apps/singularity/scif/runscript" "$@"
    else
        echo "No Apptainer runscript for contained app: ${APPTAINER_APPNAME:-}"
        exit 1
    fi

elif test -x "/.singularity.d/runscript"; then
    exec "/.singularity.d/runscript" "$@"
else
    echo "No Apptainer runscript found, executing /bin/sh"
    exec /bin/sh "$@"
fi
)");
}

std::string ShellAction() {
  return absl::StrCat("#!/bin/sh\n\n", kSourceEnv, R"(
if test -n "$APPTAINER_SHELL" -a -x "$APPTAINER_SHELL"; then
    exec $APPTAINER_SHELL "$@"

    echo "ERROR: Failed running shell as defined by '\$APPTAINER_SHELL'" 1>&2
    exit 1

elif test -x /bin/bash; then
    SHELL=/bin/bash
    PS1="Apptainer $APPTAINER_NAME:\\w> "
    export SHELL PS1
    exec /bin/bash --norc "$@"
elif test -x /bin/sh; then
    SHELL=/bin/sh
    export SHELL
    exec /bin/sh "$@"
else
    echo "ERROR: /bin/sh does not exist in container" 1>&2
fi
exit 1
)");
}

std::string StartAction() {
  return absl::StrCat(
      "#!/bin/sh\n\n# if we are here start notify PID 1 to continue\n"
      "# DON'T REMOVE\nkill -CONT 1\n\n",
      kSourceEnv, R"(
if test -x "/.singularity.d/startscript"; then
    exec "/.singularity.d/startscript"
fi
)");
}

std::string TestAction() {
  return absl::StrCat("#!/bin/sh\n\n", kSourceEnv, R"(

if test -n "${APPTAINER_APPNAME:-}"; then

    if test -x "/scif/apps/${APPTAINER_APPNAME:-}/scif/test"; then
        exec "/scif/apps/${APPTAINER_APPNAME:-}/scif/test" "$@"
    elif test -x "/scif/apps/singularity/scif/test"; then
        exec "/scif/apps/singularity/scif/test" "$@"
    else
        echo "No tests for contained app: ${APPTAINER_APPNAME:-}"
        exit 1
    fi
elif test -x "/.singularity.d/test"; then
    exec "/.singularity.d/test" "$@"
else
    echo "No test found in container, executing /bin/sh -c true"
    exec /bin/sh -c true
fi
)");
}

constexpr char kBaseEnv[] =
    "#!/bin/sh\n# Base environment of the container (written by berth).\n\n";
constexpr char kCustomEnv[] = "#!/bin/sh\n# Custom environment shell code should follow\n\n";

constexpr char kAppsEnv[] = R"(#!/bin/sh
# SCIF app environment (written by berth, as Apptainer does).

if test -n "${APPTAINER_APPNAME:-}"; then

    # The active app should be exported
    export APPTAINER_APPNAME

    if test -d "/scif/apps/${APPTAINER_APPNAME:-}/"; then
        SCIF_APPS="/scif/apps"
        SCIF_APPROOT="/scif/apps/${APPTAINER_APPNAME:-}"
        export SCIF_APPROOT SCIF_APPS
        PATH="/scif/apps/${APPTAINER_APPNAME:-}:/scif/apps/singularity:$PATH"

        # Automatically add application bin to path
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/bin"; then
            PATH="/scif/apps/${APPTAINER_APPNAME:-}/bin:$PATH"
        elif test -d "/scif/apps/singularity/bin"; then
            PATH="/scif/apps/singularity/bin:$PATH"
        fi

        # Automatically add application lib to LD_LIBRARY_PATH
        if test -d "/scif/apps/${APPTAINER_APPNAME:-}/lib"; then
            LD_LIBRARY_PATH="/scif/apps/${APPTAINER_APPNAME:-}/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        elif test -d "/scif/apps/singularity/lib"; then
            LD_LIBRARY_PATH="/scif/apps/singularity/lib:$LD_LIBRARY_PATH"
            export LD_LIBRARY_PATH
        fi

        # Automatically source environment
        if [ -f "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/01-base.sh" ]; then
            . "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/01-base.sh"
        elif [ -f "/scif/apps/singularity/scif/env/01-base.sh" ]; then
            . "/scif/apps/singularity/scif/env/01-base.sh" "$@"
        fi
        if [ -f "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/90-environment.sh" ]; then
            . "/scif/apps/${APPTAINER_APPNAME:-}/scif/env/90-environment.sh"
        elif [ -f "/scif/apps/singularity/scif/env/90-environment.sh" ]; then
            . "/scif/apps/singularity/scif/env/90-environment.sh" "$@"
        fi

        export PATH
    else
        echo "Could not locate the container application: ${APPTAINER_APPNAME}"
        exit 1
    fi
fi

)";

constexpr char kBase99Env[] = R"(#!/bin/sh
# Final environment of the container (written by berth, as Apptainer does).

if [ -z "$LD_LIBRARY_PATH" ]; then
    LD_LIBRARY_PATH="/.singularity.d/libs"
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi

PS1="Apptainer> "
export LD_LIBRARY_PATH PS1
)";

constexpr char kRuntimeVarsEnv[] = R"(#!/bin/sh
# PATH edits requested on the command line (written by berth, as Apptainer does).

if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
	PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
fi

if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
	PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
fi

if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then
	PATH="${SING_USER_DEFINED_PATH}"
fi

unset SING_USER_DEFINED_PREPEND_PATH \
	  SING_USER_DEFINED_APPEND_PATH \
	  SING_USER_DEFINED_PATH

export PATH
)";

// Apptainer's shell.Escape: backslash, double quote, backtick and dollar.
std::string ShellEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"' || c == '`' || c == '$') out += '\\';
    out += c;
  }
  return out;
}
std::string EscapeSingleQuotes(std::string_view s) {
  return absl::StrReplaceAll(absl::string_view(s.data(), s.size()), {{"'", "'\"'\"'"}});
}
// shell.ArgsQuoted: each argument double-quoted and escaped, space separated.
std::string ArgsQuoted(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args)
    absl::StrAppend(&out, out.empty() ? "" : " ", "\"", ShellEscape(a), "\"");
  return out;
}
// `set -- 'arg' "$@"` lines that prepend `args` to the positional parameters.
std::string PrependLines(const std::vector<std::string>& args) {
  std::string out;
  for (auto it = args.rbegin(); it != args.rend(); ++it) {
    absl::StrAppend(&out, "set -- '", EscapeSingleQuotes(*it), "' \"$@\"\n");
  }
  return out;
}

// The runscript Apptainer generates from Entrypoint/Cmd, preceded by the
// WorkingDir step berth adds.
std::string Runscript(const ImageConfig& c) {
  std::string s = "#!/bin/sh\n";
  if (!c.working_dir.empty()) {
    absl::StrAppend(&s,
                    "# berth: start in the image's WorkingDir like `docker run` "
                    "(BERTH_OCI_KEEP_CWD=1 keeps the current one).\n",
                    "if [ -z \"${BERTH_OCI_KEEP_CWD:-}\" ]; then\n    cd '",
                    EscapeSingleQuotes(c.working_dir), "' || exit 1\nfi\n");
  }
  absl::StrAppend(&s, "OCI_ENTRYPOINT='", EscapeSingleQuotes(ArgsQuoted(c.entrypoint)), "'\n");
  absl::StrAppend(&s, "OCI_CMD='", EscapeSingleQuotes(ArgsQuoted(c.cmd)), "'\n");
  std::string pre_cmd = PrependLines(c.cmd);
  std::string pre_ep = PrependLines(c.entrypoint);
  absl::StrAppend(&s, R"(
# When SINGULARITY_NO_EVAL set, use OCI compatible behavior that does
# not evaluate resolved CMD / ENTRYPOINT / ARGS through the shell, and
# does not modify expected quoting behavior of args.
if [ -n "$SINGULARITY_NO_EVAL" ]; then
    # ENTRYPOINT only - run entrypoint plus args
    if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then
        )",
                  pre_ep, R"(
        exec "$@"
    fi

    # CMD only - run CMD or override with args
    if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then)");
  if (!pre_cmd.empty()) {
    absl::StrAppend(&s, "\n        if [ $# -eq 0 ]; then\n            ", pre_cmd, "\n        fi");
  }
  absl::StrAppend(&s, R"(
        exec "$@"
    fi

    # ENTRYPOINT and CMD - run ENTRYPOINT with CMD as default args
    # override with user provided args)");
  if (!pre_ep.empty()) {
    absl::StrAppend(&s, "\n    if [ $# -gt 0 ]; then\n        ", pre_ep, "\n\telse\n        ",
                    pre_cmd, "\n        ", pre_ep, "\n    fi");
  } else if (!pre_cmd.empty()) {
    absl::StrAppend(&s, "\n    if [ $# -eq 0 ]; then\n        ", pre_cmd, "\n    fi");
  }
  absl::StrAppend(&s, R"(
    exec "$@"
fi

# Standard Apptainer behavior evaluates CMD / ENTRYPOINT / ARGS
# combination through shell before exec, and requires special quoting
# due to concatenation of CMDLINE_ARGS.
CMDLINE_ARGS=""
# prepare command line arguments for evaluation
for arg in "$@"; do
        CMDLINE_ARGS="${CMDLINE_ARGS} \"$arg\""
done

# ENTRYPOINT only - run entrypoint plus args
if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"
    else
        SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT}"
    fi
fi

# CMD only - run CMD or override with args
if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${CMDLINE_ARGS}"
    else
        SINGULARITY_OCI_RUN="${OCI_CMD}"
    fi
fi

# ENTRYPOINT and CMD - run ENTRYPOINT with CMD as default args
# override with user provided args
if [ $# -gt 0 ]; then
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"
else
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${OCI_CMD}"
fi

# Evaluate shell expressions first and set arguments accordingly,
# then execute final command as first container process
eval "set ${SINGULARITY_OCI_RUN}"
exec "$@"
)");
  return s;
}

bool ShellIdentifier(std::string_view name) {
  if (name.empty() || absl::ascii_isdigit(name[0])) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

// 10-docker2singularity.sh: the image's Env, each variable only when the
// host did not set it, except PATH which the image always sets.
std::string DockerEnv(const ImageConfig& c, std::vector<std::string>& dropped) {
  std::string s = "#!/bin/sh\n";
  for (const std::string& e : c.env) {
    size_t eq = e.find('=');
    std::string name = e.substr(0, eq);
    std::string value = e.substr(eq + 1);
    if (!ShellIdentifier(name)) {
      dropped.push_back(name);
      continue;
    }
    if (name == "PATH") {
      absl::StrAppend(&s, "export PATH=\"", ShellEscape(value), "\"\n");
    } else {
      // Apptainer also wraps the value in Go's %q, escaping it twice
      // (`a "b"` arrives as `a \"b\"`); berth escapes once, as docker run
      // delivers it.
      absl::StrAppend(&s, "export ", name, "=\"${", name, ":-", ShellEscape(value), "}\"\n");
    }
  }
  return s;
}

// json.MarshalIndent(labels, "", "\t") of a map[string]string.
std::string LabelsJson(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "{}";
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&s, first ? "\n\t" : ",\n\t", GoJsonQuote(k), ": ", GoJsonQuote(v));
    first = false;
  }
  return s + "\n}";
}

// json.Marshal of go-containerregistry's v1.Config: its fields in struct
// order, omitempty, unknown fields dropped.
absl::StatusOr<std::string> GoConfigJson(std::string_view config_json) {
  Json doc;
  try {
    doc = Json::parse(config_json.begin(), config_json.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("image config: ", e.what()));
  }
  const Json* cfg = nullptr;
  if (doc.is_object() && doc.contains("config") && doc["config"].is_object()) cfg = &doc["config"];
  std::string out = "{";
  auto add = [&](const char* key, const std::string& value) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", key, "\":", value);
  };
  auto field = [&](const char* key) -> const Json* {
    if (cfg == nullptr) return nullptr;
    auto it = cfg->find(key);
    return it == cfg->end() || it->is_null() ? nullptr : &*it;
  };
  auto type_error = [](const char* key) {
    return absl::InvalidArgumentError(
        absl::StrCat("image config: \"", key, "\" has the wrong type"));
  };
  auto boolean = [&](const char* key) -> absl::Status {
    const Json* v = field(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return type_error(key);
    if (v->get<bool>()) add(key, "true");
    return absl::OkStatus();
  };
  auto string = [&](const char* key) -> absl::Status {
    const Json* v = field(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return type_error(key);
    if (!v->get<std::string>().empty()) add(key, GoJsonQuote(v->get<std::string>()));
    return absl::OkStatus();
  };
  auto strings = [&](const char* key, const Json* v) -> absl::StatusOr<std::string> {
    if (v == nullptr) return std::string();
    if (!v->is_array()) return type_error(key);
    std::string a = "[";
    for (const Json& item : *v) {
      if (!item.is_string()) return type_error(key);
      absl::StrAppend(&a, a.size() > 1 ? "," : "", GoJsonQuote(item.get<std::string>()));
    }
    return v->empty() ? std::string() : a + "]";
  };
  auto string_array = [&](const char* key) -> absl::Status {
    ASSIGN_OR_RETURN(std::string a, strings(key, field(key)));
    if (!a.empty()) add(key, a);
    return absl::OkStatus();
  };
  auto map = [&](const char* key, bool set) -> absl::Status {
    const Json* v = field(key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_object()) return type_error(key);
    if (v->empty()) return absl::OkStatus();
    std::map<std::string, std::string> sorted;  // Go sorts map keys bytewise
    for (const auto& [k, val] : v->items()) {
      if (!set && !val.is_string()) return type_error(key);
      sorted[k] = set ? "{}" : GoJsonQuote(val.get<std::string>());
    }
    std::string m = "{";
    for (const auto& [k, val] : sorted)
      absl::StrAppend(&m, m.size() > 1 ? "," : "", GoJsonQuote(k), ":", val);
    add(key, m + "}");
    return absl::OkStatus();
  };
  auto healthcheck = [&]() -> absl::Status {
    const Json* v = field("Healthcheck");
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_object()) return type_error("Healthcheck");
    std::string h = "{";
    auto hadd = [&](const char* k, const std::string& val) {
      absl::StrAppend(&h, h.size() > 1 ? "," : "", "\"", k, "\":", val);
    };
    auto test = v->find("Test");
    ASSIGN_OR_RETURN(
        std::string t,
        strings("Healthcheck", test == v->end() || test->is_null() ? nullptr : &*test));
    if (!t.empty()) hadd("Test", t);
    for (const char* k : {"Interval", "Timeout", "StartPeriod", "Retries"}) {
      auto it = v->find(k);
      if (it == v->end() || it->is_null()) continue;
      if (!it->is_number_integer()) return type_error("Healthcheck");
      if (it->get<int64_t>() != 0) hadd(k, std::to_string(it->get<int64_t>()));
    }
    add("Healthcheck", h + "}");
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(boolean("AttachStderr"));
  RETURN_IF_ERROR(boolean("AttachStdin"));
  RETURN_IF_ERROR(boolean("AttachStdout"));
  RETURN_IF_ERROR(string_array("Cmd"));
  RETURN_IF_ERROR(healthcheck());
  RETURN_IF_ERROR(string("Domainname"));
  RETURN_IF_ERROR(string_array("Entrypoint"));
  RETURN_IF_ERROR(string_array("Env"));
  RETURN_IF_ERROR(string("Hostname"));
  RETURN_IF_ERROR(string("Image"));
  RETURN_IF_ERROR(map("Labels", false));
  RETURN_IF_ERROR(string_array("OnBuild"));
  RETURN_IF_ERROR(boolean("OpenStdin"));
  RETURN_IF_ERROR(boolean("StdinOnce"));
  RETURN_IF_ERROR(boolean("Tty"));
  RETURN_IF_ERROR(string("User"));
  RETURN_IF_ERROR(map("Volumes", true));
  RETURN_IF_ERROR(string("WorkingDir"));
  RETURN_IF_ERROR(map("ExposedPorts", true));
  RETURN_IF_ERROR(boolean("ArgsEscaped"));
  RETURN_IF_ERROR(boolean("NetworkDisabled"));
  RETURN_IF_ERROR(string("MacAddress"));
  RETURN_IF_ERROR(string("StopSignal"));
  RETURN_IF_ERROR(string_array("Shell"));
  return out + "}";
}

}  // namespace

absl::StatusOr<SingularityLayout> BuildSingularityLayout(std::string_view config_json) {
  ASSIGN_OR_RETURN(ImageConfig config, ParseImageConfig(config_json));
  SingularityLayout layout;
  ASSIGN_OR_RETURN(layout.oci_config_json, GoConfigJson(config_json));
  auto file = [&](std::string path, std::string content, uint32_t mode) {
    layout.files.push_back({std::move(path), std::move(content), mode});
  };
  file("etc/hosts", "", 0644);
  file("etc/resolv.conf", "", 0644);
  file(".singularity.d/actions/exec", ExecAction(), 0755);
  file(".singularity.d/actions/run", RunAction(), 0755);
  file(".singularity.d/actions/shell", ShellAction(), 0755);
  file(".singularity.d/actions/start", StartAction(), 0755);
  file(".singularity.d/actions/test", TestAction(), 0755);
  file(".singularity.d/env/01-base.sh", kBaseEnv, 0755);
  file(".singularity.d/env/10-docker2singularity.sh", DockerEnv(config, layout.dropped_env), 0755);
  file(".singularity.d/env/90-environment.sh", kCustomEnv, 0755);
  file(".singularity.d/env/95-apps.sh", kAppsEnv, 0755);
  file(".singularity.d/env/99-base.sh", kBase99Env, 0755);
  file(".singularity.d/env/99-runtimevars.sh", kRuntimeVarsEnv, 0755);
  file(".singularity.d/runscript", Runscript(config), 0755);
  file(".singularity.d/startscript", "#!/bin/sh\n", 0755);
  file(".singularity.d/labels.json", LabelsJson(config.labels), 0644);
  layout.dirs_if_missing = {
      ".singularity.d/libs", "dev", "proc", "root", "var/tmp", "tmp", "etc", "sys", "home"};
  // docker run creates a missing WorkingDir; the squashfs is read-only, so
  // it has to exist in the image for the runscript's cd.
  if (!config.working_dir.empty()) {
    std::string wd = config.working_dir;
    while (!wd.empty() && wd.front() == '/') wd.erase(0, 1);
    if (!wd.empty()) layout.dirs_if_missing.push_back(wd);
  }
  layout.symlinks_if_missing = {{"singularity", ".singularity.d/runscript"},
                                {".run", ".singularity.d/actions/run"},
                                {".exec", ".singularity.d/actions/exec"},
                                {".test", ".singularity.d/actions/test"},
                                {".shell", ".singularity.d/actions/shell"},
                                {"environment", ".singularity.d/env/90-environment.sh"}};
  return layout;
}

}  // namespace berth::oci
