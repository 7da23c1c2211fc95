#include "daemon/build/metadata.h"

#include <ctime>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace berth::daemon::build {
namespace {

void AddLink(v1::WriteFiles& out, const std::string& path, const std::string& target) {
  v1::GeneratedFile* f = out.add_files();
  f->set_path(path);
  f->set_symlink(target);
  f->set_if_missing(true);
}

std::string Rfc3339(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// labels.json: the automatic labels, then %labels (which win), tab-indented
// as Apptainer writes it.
std::string Labels(const deffile::Definition& stage, int64_t build_time) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["org.label-schema.schema-version"] = "1.0";
  j["org.label-schema.build-arch"] = "amd64";
  j["org.label-schema.build-date"] = Rfc3339(build_time);
  j["org.opencontainers.image.created"] = Rfc3339(build_time);
  for (const deffile::HeaderEntry& e : stage.header.entries()) {
    j[absl::StrCat("org.label-schema.usage.singularity.deffile.", e.key)] = e.value;
  }
  for (const auto& [k, v] : stage.labels) j[k] = v;
  return j.dump(1, '\t', false, nlohmann::json::error_handler_t::replace);
}

// The environment of the app chosen with `--app` (APPTAINER_APPNAME, set by
// the runtime): its root and bin on PATH, its lib on LD_LIBRARY_PATH, its
// 01-base.sh and %appenv. Apptainer's images carry a script of this name
// doing this, so the runtime of either picks the app's environment up.
constexpr char kAppsEnv[] =
    "#!/bin/sh\n"
    "# SCIF: the environment of the app chosen with --app.\n"
    "__scif_app=${APPTAINER_APPNAME:-${SINGULARITY_APPNAME:-}}\n"
    "if test -n \"$__scif_app\"; then\n"
    "    __scif_dir=/scif/apps/$__scif_app\n"
    "    if ! test -d \"$__scif_dir/\"; then\n"
    "        echo \"Could not locate the container application: $__scif_app\"\n"
    "        exit 1\n"
    "    fi\n"
    "    SCIF_APPS=/scif/apps\n"
    "    SCIF_APPROOT=$__scif_dir\n"
    "    export SCIF_APPS SCIF_APPROOT\n"
    "    PATH=\"$__scif_dir:$PATH\"\n"
    "    if test -d \"$__scif_dir/bin\"; then PATH=\"$__scif_dir/bin:$PATH\"; fi\n"
    "    export PATH\n"
    "    if test -d \"$__scif_dir/lib\"; then\n"
    "        LD_LIBRARY_PATH=\"$__scif_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n"
    "        export LD_LIBRARY_PATH\n"
    "    fi\n"
    "    for __scif_env in \"$__scif_dir/scif/env/01-base.sh\" "
    "\"$__scif_dir/scif/env/90-environment.sh\"; do\n"
    "        if test -f \"$__scif_env\"; then . \"$__scif_env\"; fi\n"
    "    done\n"
    "    unset __scif_dir __scif_env\n"
    "fi\n"
    "unset __scif_app\n";

}  // namespace

void AddFile(v1::WriteFiles& out, const std::string& path, const std::string& content,
             uint32_t mode, bool append) {
  v1::GeneratedFile* f = out.add_files();
  f->set_path(path);
  f->set_content(content);
  f->set_mode(mode);
  f->set_append(append);
}

void AddDir(v1::WriteFiles& out, const std::string& path, uint32_t mode) {
  v1::GeneratedFile* f = out.add_files();
  f->set_path(path);
  f->set_directory(true);
  f->set_mode(mode);
  f->set_if_missing(true);
}

std::string ScriptFile(const deffile::Script& script) {
  if (absl::StartsWith(script.script, "#!")) return script.script;
  std::string shebang = "#!/bin/sh";
  if (!script.args.empty()) absl::StrAppend(&shebang, " ", script.args);
  return absl::StrCat(shebang, "\n\n", script.script);
}

v1::WriteFiles MountPoints() {
  v1::WriteFiles out;
  for (const char* dir :
       {"/proc", "/sys", "/dev", "/tmp", "/root", "/home", "/etc", "/var/tmp", "/.singularity.d",
        "/.singularity.d/env", "/.singularity.d/actions", "/.singularity.d/libs"}) {
    AddDir(out, dir, std::string(dir) == "/tmp" || std::string(dir) == "/var/tmp" ? 01777 : 0755);
  }
  for (const char* file : {"/etc/hosts", "/etc/resolv.conf"}) {
    v1::GeneratedFile* f = out.add_files();
    f->set_path(file);
    f->set_mode(0644);
    f->set_if_missing(true);
  }
  return out;
}

v1::WriteFiles StageMetadata(const deffile::Definition& stage, const std::string& raw,
                             int64_t build_time) {
  v1::WriteFiles out;
  AddFile(out, "/.singularity.d/Singularity", raw, 0644);
  AddFile(out, "/.singularity.d/labels.json", Labels(stage, build_time), 0644);
  AddFile(out, "/.singularity.d/env/95-apps.sh", kAppsEnv, 0755);
  if (stage.environment.present()) {
    // Appended to what the base has (formats.md §5.3); its own shebang line
    // only opens a new file, which the worker cannot tell here, so it is
    // always there: a repeated `#!/bin/sh` is a comment to sh.
    AddFile(out, "/.singularity.d/env/90-environment.sh",
            absl::StrCat("#!/bin/sh\n\n", stage.environment.script), 0755, /*append=*/true);
  }
  if (stage.runscript.present()) {
    AddFile(out, "/.singularity.d/runscript", ScriptFile(stage.runscript), 0755);
  }
  if (stage.startscript.present()) {
    AddFile(out, "/.singularity.d/startscript", ScriptFile(stage.startscript), 0755);
  }
  if (stage.test.present()) AddFile(out, "/.singularity.d/test", ScriptFile(stage.test), 0755);
  if (stage.help.present()) AddFile(out, "/.singularity.d/runscript.help", stage.help.script, 0644);
  AddLink(out, "/singularity", ".singularity.d/runscript");
  AddLink(out, "/environment", ".singularity.d/env/90-environment.sh");
  return out;
}

}  // namespace berth::daemon::build
