#include "daemon/build/bootstrap_tool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/build/host_process.h"
#include "daemon/build/metadata.h"
#include "daemon/build/sections.h"
#include "daemon/build/worker_runner.h"
#include "deffile/bootstrap.h"
#include "oci/singularity_layout.h"

namespace berth::daemon::build {
namespace {

// Where the daemon looks for the tools, in the order of the PATH they run
// with (sections.h's): the host's, never the caller's.
constexpr const char* kToolDirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                     "/usr/bin",        "/sbin",          "/bin"};
constexpr const char* kToolPathText =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kScriptPath = "/proc/self/fd/5";
constexpr const char* kYumConf = "/etc/bootstrap-yum.conf";
constexpr const char* kZypperConf = "/etc/zypp/zypp.conf";
// Every id but (uid_t)-1, each to itself: the root caller's map.
constexpr uint32_t kAllIds = 4294967294U;

// What one agent runs: its shell text (run by /bin/sh -e in the namespace),
// the files it needs written first, and the words of its failure.
struct Plan {
  std::string agent;    // "debootstrap", for messages
  std::string failure;  // "while debootstrapping"
  std::string script;
  v1::WriteFiles config;
};

std::optional<std::string> FindTool(absl::string_view name) {
  for (const char* dir : kToolDirs) {
    std::string path = absl::StrCat(dir, "/", name);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0) {
      return path;
    }
  }
  return std::nullopt;
}

absl::Status Missing(absl::string_view what, absl::string_view package) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, " (looked in ", kToolPathText, "): install the Debian package ", package,
                   " on this host (apt-get install ", package, ")"));
}

// The helpers every agent's script uses: looked up as the tool would.
absl::StatusOr<std::string> Helper(absl::string_view name, absl::string_view package) {
  std::optional<std::string> path = FindTool(name);
  if (!path) return Missing(absl::StrCat(name, " is not in PATH"), package);
  return *path;
}

// One word for sh: single-quoted.
std::string Quote(absl::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string QuoteAll(const std::vector<std::string>& words) {
  std::vector<std::string> quoted;
  for (const std::string& w : words) quoted.push_back(Quote(w));
  return absl::StrJoin(quoted, " ");
}

// Include: plus the client's INCLUDE, as words (Apptainer's order).
std::vector<std::string> Includes(const BuildContext& ctx, const deffile::Definition& stage) {
  std::string text(stage.header.Get("include"));
  for (const std::string& kv : ctx.request->env()) {
    if (absl::StartsWith(kv, "INCLUDE=")) absl::StrAppend(&text, " ", kv.substr(8));
  }
  return absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// Apptainer's %{OSVERSION} in MirrorURL/UpdateURL (any case).
bool MentionsOsVersion(absl::string_view url) {
  return absl::StrContains(absl::AsciiStrToUpper(url), "%{OSVERSION}");
}

std::string WithOsVersion(std::string url, absl::string_view version) {
  const std::string key = "%{OSVERSION}";
  for (size_t at = absl::AsciiStrToUpper(url).find(key); at != std::string::npos;
       at = absl::AsciiStrToUpper(url).find(key, at + version.size())) {
    url.replace(at, key.size(), std::string(version));
  }
  return url;
}

// The script's start: the root, and /dev/{null,random,urandom,zero} bound
// from the host onto empty files (a user namespace cannot mknod them); the
// binds die with the process's mount namespace, leaving the files empty.
absl::StatusOr<std::string> Prelude(const std::string& root_path) {
  ASSIGN_OR_RETURN(std::string mount, Helper("mount", "mount"));
  return absl::StrCat("root=", Quote(root_path), "\nmount=", Quote(mount),
                      "\nmkdir -p \"$root/dev\"\n"
                      "for d in null random urandom zero; do\n"
                      "  : >\"$root/dev/$d\"\n"
                      "  \"$mount\" --bind \"/dev/$d\" \"$root/dev/$d\"\n"
                      "done\n");
}

// Runs the tool; on failure prints `log`'s tail (when there is one) and
// exits with the tool's status.
std::string RunStep(const std::string& command, absl::string_view log) {
  std::string text =
      absl::StrCat("status=0\n", command, " || status=$?\n", "if [ \"$status\" -ne 0 ]; then\n");
  if (!log.empty()) {
    absl::StrAppend(&text, "  if [ -f \"$root/", log, "\" ]; then\n", "    echo '", log,
                    ", last lines:'\n", "    tail -n 20 \"$root/", log, "\"\n", "  fi\n");
  }
  return absl::StrCat(text, "  exit \"$status\"\nfi\n");
}

// Debian's port name for this build's machine.
const char* DebianArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64el";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__i386__)
  return "i386";
#else
  return nullptr;
#endif
}

// debootstrap --variant=minbase, Apptainer's excludes and includes. In a
// user namespace it can neither mount /proc and /sys in the target nor
// mknod: /proc/filesystems reads empty (no sysfs to mount), and mount and
// mknod are the host's `true`, in this process's mount namespace only.
absl::StatusOr<Plan> PlanDebootstrap(const BuildContext& ctx, const deffile::Definition& stage,
                                     const std::string& root_path) {
  Plan plan{"debootstrap", "while debootstrapping", "", {}};
  const char* arch = DebianArch();
  if (arch == nullptr)
    return absl::UnimplementedError("debootstrap: no Debian port is known for this machine");
  std::optional<std::string> tool = FindTool("debootstrap");
  if (!tool) return Missing("debootstrap is not in PATH", "debootstrap");
  ASSIGN_OR_RETURN(std::string prelude, Prelude(root_path));
  ASSIGN_OR_RETURN(std::string mknod, Helper("mknod", "coreutils"));
  ASSIGN_OR_RETURN(std::string true_path, Helper("true", "coreutils"));
  std::vector<std::string> includes = {"apt"};
  for (std::string& word : Includes(ctx, stage)) {
    for (absl::string_view p : absl::StrSplit(word, ',', absl::SkipEmpty()))
      includes.emplace_back(p);
  }
  std::vector<std::string> argv = {*tool,
                                   "--variant=minbase",
                                   "--exclude=openssl,udev,debconf-i18n,e2fsprogs",
                                   absl::StrCat("--include=", absl::StrJoin(includes, ",")),
                                   absl::StrCat("--arch=", arch),
                                   std::string(stage.header.Get("osversion")),
                                   root_path,
                                   std::string(stage.header.Get("mirrorurl"))};
  plan.script = absl::StrCat(prelude, "\"$mount\" --bind /dev/null /proc/filesystems\n",
                             "\"$mount\" --bind ", Quote(true_path), " ", Quote(mknod), "\n",
                             "\"$mount\" --bind ", Quote(true_path), " \"$mount\"\n",
                             RunStep(QuoteAll(argv), "debootstrap/debootstrap.log"));
  return plan;
}

// Apptainer's /etc/bootstrap-yum.conf: no host repositories, no gpgcheck
// (Apptainer checks only with a GPG key, which berth does not import yet).
std::string YumConfig(const std::string& mirror, const std::string& update) {
  std::string text =
      "[main]\ncachedir=/var/cache/yum-bootstrap\nkeepcache=0\ndebuglevel=2\n"
      "logfile=/var/log/yum.log\nsyslog_device=/dev/null\nexactarch=1\nobsoletes=1\n"
      "gpgcheck=0\nplugins=1\nreposdir=0\ndeltarpm=0\n\n"
      "[base]\nname=Linux $releasever - $basearch\n";
  absl::StrAppend(&text, "baseurl=", mirror, "\nenabled=1\ngpgcheck=0\n");
  if (!update.empty()) {
    absl::StrAppend(&text,
                    "[updates]\nname=Linux $releasever - $basearch updates\nbaseurl=", update,
                    "\nenabled=1\ngpgcheck=0\n\n");
  }
  return text;
}

// A URL header with %{OSVERSION} replaced; OSVersion must then be set.
absl::StatusOr<std::string> Url(const deffile::Definition& stage, absl::string_view key,
                                absl::string_view agent) {
  std::string url(stage.header.Get(key));
  if (!MentionsOsVersion(url)) return url;
  absl::string_view version = stage.header.Get("osversion");
  if (version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", agent,
                                                   " header, OSVersion referenced in mirror but "
                                                   "no OSVersion specified"));
  }
  return WithOsVersion(std::move(url), version);
}

absl::StatusOr<Plan> PlanYum(const BuildContext& ctx, const deffile::Definition& stage,
                             const std::string& root_path) {
  Plan plan{std::string(stage.Bootstrap()), "while bootstrapping", "", {}};
  ASSIGN_OR_RETURN(std::string mirror, Url(stage, "mirrorurl", "yum"));
  ASSIGN_OR_RETURN(std::string update, Url(stage, "updateurl", "yum"));
  std::optional<std::string> tool = FindTool("dnf");
  if (!tool) tool = FindTool("yum");
  if (!tool) return Missing("neither yum nor dnf in path", "dnf");
  if (!FindTool("rpm")) return Missing("rpm is not in path", "rpm");
  ASSIGN_OR_RETURN(std::string prelude, Prelude(root_path));
  AddDir(plan.config, "/etc");
  AddFile(plan.config, kYumConf, YumConfig(mirror, update), 0664);
  std::vector<std::string> argv = {*tool,
                                   "--noplugins",
                                   "-c",
                                   root_path + kYumConf,
                                   "--installroot",
                                   root_path,
                                   absl::StrCat("--releasever=", stage.header.Get("osversion")),
                                   "-y"};
  if (absl::string_view setopt = stage.header.Get("setopt"); !setopt.empty()) {
    argv.push_back("--setopt");
    argv.emplace_back(setopt);
  }
  argv.push_back("install");
  argv.push_back("/etc/redhat-release");
  argv.push_back("coreutils");
  for (std::string& word : Includes(ctx, stage)) argv.push_back(std::move(word));
  plan.script = absl::StrCat(prelude, RunStep(QuoteAll(argv), ""),
                             "rm -rf \"$root/var/cache/yum-bootstrap\"\n");
  return plan;
}

// zypper: the mirror (and UpdateURL, OtherURL0..N) as repositories of the
// root, then aaa_base and Include:. SLE registration (Product, User,
// Regcode) is not done by berth.
absl::StatusOr<Plan> PlanZypper(const BuildContext& ctx, const deffile::Definition& stage,
                                const std::string& root_path) {
  Plan plan{"zypper", "while bootstrapping from zypper", "", {}};
  for (absl::string_view key :
       {"product", "user", "regcode", "productpgp", "registerurl", "modules"}) {
    if (!stage.header.Get(key).empty()) {
      return absl::UnimplementedError(
          "Bootstrap: zypper: SLE registration (Product, User, Regcode, ProductPGP, RegisterURL, "
          "Modules) is not supported by berth: use a MirrorURL that needs none");
    }
  }
  ASSIGN_OR_RETURN(std::string mirror, Url(stage, "mirrorurl", "zypper"));
  ASSIGN_OR_RETURN(std::string update, Url(stage, "updateurl", "zypper"));
  // OtherURL0 (or OtherURL1) and on, while they follow each other.
  std::vector<std::string> others;
  int n = stage.header.Get("otherurl0").empty() ? 1 : 0;
  for (; others.size() < 20; ++n) {
    absl::string_view url = stage.header.Get(absl::StrCat("otherurl", n));
    if (url.empty()) break;
    others.emplace_back(url);
  }
  std::optional<std::string> tool = FindTool("zypper");
  if (!tool) return Missing("zypper is not in PATH", "zypper");
  if (!FindTool("rpm")) return Missing("rpm is not in path", "rpm");
  ASSIGN_OR_RETURN(std::string prelude, Prelude(root_path));
  AddDir(plan.config, "/etc");
  AddDir(plan.config, "/etc/zypp");
  AddFile(plan.config, kZypperConf, "[main]\ncachedir=/var/cache/zypp-bootstrap\n\n", 0664);
  const std::string z = absl::StrCat(Quote(*tool), " --non-interactive --root \"$root\"");
  std::string text = absl::StrCat(z, " addrepo ", Quote(mirror), " repo\n", z,
                                  " --gpg-auto-import-keys refresh\n");
  auto add = [&](const std::string& url, const std::string& name) {
    absl::StrAppend(&text, z, " addrepo -f ", Quote(url), " ", name, "\n", z,
                    " --gpg-auto-import-keys refresh -r ", name, "\n");
  };
  if (!update.empty()) add(update, "update");
  for (size_t i = 0; i < others.size(); ++i) add(others[i], absl::StrCat("repo-", i));
  std::vector<std::string> argv = {*tool,
                                   "--non-interactive",
                                   "-c",
                                   root_path + kZypperConf,
                                   "--root",
                                   root_path,
                                   absl::StrCat("--releasever=", stage.header.Get("osversion")),
                                   "install",
                                   "--auto-agree-with-licenses",
                                   "--download-in-advance",
                                   "aaa_base"};
  for (std::string& word : Includes(ctx, stage)) argv.push_back(std::move(word));
  // 107: installed, but some RPM scriptlets failed (Apptainer warns).
  absl::StrAppend(&text, "status=0\n", QuoteAll(argv), " || status=$?\n",
                  "if [ \"$status\" -eq 107 ]; then\n"
                  "  echo 'Bootstrap succeeded, some RPM scripts failed'\n"
                  "elif [ \"$status\" -ne 0 ]; then\n"
                  "  exit \"$status\"\nfi\n",
                  "rm -rf \"$root/var/cache/zypp-bootstrap\"\n");
  plan.script = absl::StrCat(prelude, text);
  return plan;
}

absl::StatusOr<Plan> MakePlan(const BuildContext& ctx, const deffile::Definition& stage,
                              const std::string& root_path) {
  switch (deffile::AgentOf(stage)) {
    case deffile::Agent::kDebootstrap:
      return PlanDebootstrap(ctx, stage, root_path);
    case deffile::Agent::kYum:
      return PlanYum(ctx, stage, root_path);
    case deffile::Agent::kZypper:
      return PlanZypper(ctx, stage, root_path);
    default:
      return absl::InternalError("not a host tool's bootstrap");
  }
}

// The ids the tool runs with (bootstrap_tool.h). The root caller's
// identity maps stay for the rest of the build: the worker and %post must
// reach the files of every owner the tool made.
absl::Status PickIds(BuildContext& ctx, const std::string& agent) {
  if (ctx.options->mode == DaemonMode::kUser) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Bootstrap: ", agent,
        " needs subordinate ids, which a user-mode berthd cannot map: build with the system "
        "berthd"));
  }
  Caller& c = ctx.caller;
  if (c.uid == 0) {
    c.uid_map = {{0, 0, 1}, {1, 1, kAllIds}};
    c.gid_map = {{0, 0, 1}, {1, 1, kAllIds}};
    return absl::OkStatus();
  }
  if (!c.ranges) {
    const std::string name = c.name.empty() ? absl::StrCat(c.uid) : c.name;
    return absl::FailedPreconditionError(absl::StrCat(
        "Bootstrap: ", agent, " needs a subordinate id range for ", name, " (not listed in ",
        ctx.options->subuid_path, "): as root, run 'berth config fakeroot --add ", name, "'"));
  }
  return absl::OkStatus();
}

absl::Status RunTool(BuildContext& ctx, const Plan& plan, int root_fd) {
  HostProcessSpec spec;
  spec.what = absl::StrCat("Bootstrap: ", plan.agent);
  ASSIGN_OR_RETURN(spec.program, OpenFile("/bin/sh", O_PATH));
  spec.argv = {"/bin/sh", "-e", kScriptPath};
  spec.env = BuildEnvironment(ctx);
  // The root's mode as Apptainer leaves it, whatever the tool made of it.
  ASSIGN_OR_RETURN(UniqueFd out, ScriptStdio(plan.script + "chmod 0755 \"$root\"\n", spec.fds));
  ASSIGN_OR_RETURN(int status, RunHostProcess(ctx, std::move(spec), root_fd, out.get()));
  if (status != 0) {
    return absl::FailedPreconditionError(absl::StrCat(plan.failure, ": exit status ", status));
  }
  return absl::OkStatus();
}

absl::Status Write(BuildContext& ctx, int root_fd, v1::WriteFiles files, const char* what) {
  WorkerJob job(what, root_fd);
  *job.request().mutable_write_files() = std::move(files);
  return job.Run(ctx).status();
}

// Apptainer's base environment (the same files an OCI base gets, with
// neither the image's env script nor its labels), the root 0755, and the
// empty runscript; %runscript, when there is one, replaces it later.
absl::Status WriteBaseEnvironment(BuildContext& ctx, int root_fd) {
  ASSIGN_OR_RETURN(oci::SingularityLayout layout, oci::BuildSingularityLayout("{}"));
  v1::WriteFiles files;
  AddDir(files, "/.singularity.d");
  AddDir(files, "/.singularity.d/actions");
  AddDir(files, "/.singularity.d/env");
  for (const std::string& dir : layout.dirs_if_missing) AddDir(files, "/" + dir);
  for (const auto& [path, target] : layout.symlinks_if_missing) {
    v1::GeneratedFile* f = files.add_files();
    f->set_path("/" + path);
    f->set_symlink(target);
    f->set_if_missing(true);
  }
  for (const oci::GeneratedFile& f : layout.files) {
    if (absl::EndsWith(f.path, "10-docker2singularity.sh") ||
        absl::EndsWith(f.path, "labels.json")) {
      continue;
    }
    const bool runscript = f.path == ".singularity.d/runscript";
    AddFile(files, "/" + f.path, runscript ? "#!/bin/sh\n" : f.content, f.mode);
  }
  return Write(ctx, root_fd, std::move(files), "writing the base environment");
}

}  // namespace

absl::Status RunBootstrapTool(BuildContext& ctx, const deffile::Definition& stage, int root_fd,
                              const std::string& root_path) {
  ASSIGN_OR_RETURN(Plan plan, MakePlan(ctx, stage, root_path));
  RETURN_IF_ERROR(PickIds(ctx, plan.agent));
  PhaseScope phase(*ctx.progress, "bootstrap", plan.agent);
  if (!plan.config.files().empty()) {
    RETURN_IF_ERROR(Write(ctx, root_fd, plan.config, "writing the bootstrap configuration"));
  }
  RETURN_IF_ERROR(RunTool(ctx, plan, root_fd));
  return WriteBaseEnvironment(ctx, root_fd);
}

}  // namespace berth::daemon::build
