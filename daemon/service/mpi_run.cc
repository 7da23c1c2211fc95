#include "daemon/service/mpi_run.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "daemon/policy/mpi_stacks.h"
#include "mpi/host_stack.h"
#include "mpi/image_view.h"
#include "mpi/pmix_env.h"
#include "nlohmann/json.hpp"

namespace berth::daemon {
namespace {

constexpr const char* kHostLdCache = "/etc/ld.so.cache";

bool HasVar(const google::protobuf::RepeatedPtrField<std::string>& env, absl::string_view name) {
  for (const std::string& kv : env) {
    if (absl::StartsWith(kv, absl::StrCat(name, "="))) return true;
  }
  return false;
}

// A host path the daemon opens to bind (O_PATH, no symlink in its last
// component), root's and writable by nobody else.
absl::StatusOr<launch::BindSpec> HostBind(const std::string& path, const std::string& dest) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_PATH | O_NOFOLLOW));
  RETURN_IF_ERROR(mpi::CheckRootOnly(fd.get(), path));
  return launch::BindSpec{std::move(fd), path, dest, true};
}

// The stack's device patterns, expanded: character devices below /dev,
// never through a link, each added to the container's minimal /dev where
// the caller's device cgroup allows it (launch.h DeviceSpec).
absl::Status AddDevices(const mpi::Stack& stack, launch::LaunchSpec& spec) {
  for (const std::string& pattern : stack.devices) {
    glob_t g{};
    std::vector<std::string> found;
    if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
      found.assign(g.gl_pathv, g.gl_pathv + g.gl_pathc);
    }
    ::globfree(&g);
    for (const std::string& dev : found) {
      struct stat st;
      if (!absl::StartsWith(dev, "/dev/") || absl::StrContains(dev, "/.") ||
          ::lstat(dev.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
        continue;
      }
      ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(dev, O_PATH | O_NOFOLLOW));
      launch::DeviceSpec node;
      node.node = std::move(fd);
      node.source_path = dev;
      node.destination = dev;
      node.required = false;
      spec.devices.nodes.push_back(std::move(node));
    }
  }
  return absl::OkStatus();
}

void SetVar(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  std::string prefix = absl::StrCat(name, "=");
  std::erase_if(env, [&](const std::string& kv) { return absl::StartsWith(kv, prefix); });
  env.push_back(prefix + value);
}

// The launcher's variables reach the rank even under --cleanenv; the
// stack's own settings come last.
void AddEnvironment(const v1::RunRequest& r, const mpi::Stack& stack, launch::LaunchSpec& spec) {
  std::vector<std::string> patterns = mpi::DefaultEnvPass();
  patterns.insert(patterns.end(), stack.env_pass.begin(), stack.env_pass.end());
  for (const std::string& kv : r.env()) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string name = kv.substr(0, eq);
    bool pass = false;
    for (const std::string& p : patterns) pass |= mpi::EnvPatternMatches(p, name);
    bool present = false;
    for (const std::string& have : spec.env) present |= absl::StartsWith(have, name + "=");
    if (pass && !present) spec.env.push_back(kv);
  }
  for (const auto& [name, value] : stack.env_set) SetVar(spec.env, name, value);
}

std::string MpiOf(mpi::MpiFamily family, const std::string& file) {
  return family == mpi::MpiFamily::kNone ? "none found"
                                         : absl::StrCat(mpi::FamilyName(family), " (", file, ")");
}

// `berth mpi check` (BERTH_MPI_EXPLAIN in the caller's environment): what
// the plan does, as INFO lines; a refused plan is then the run's error.
void Explain(const v1::RunRequest& r, const mpi::Stack& stack, const mpi::BindPlan& plan,
             std::vector<std::string>& notices) {
  auto line = [&notices](auto&&... parts) { notices.push_back(absl::StrCat(parts...)); };
  line("MPI stack ", stack.name, ", ABI rule ", mpi::AbiRuleName(stack.abi));
  line("the image's MPI: ", MpiOf(plan.image_family, plan.image_mpi));
  line("the host's MPI: ", MpiOf(plan.host_family, plan.host_mpi));
  for (const mpi::AbiVerdict& v : plan.verdicts) line("ABI: ", v.reason);
  line("glibc: the image has ", plan.image_glibc.ToString(), ", the host libraries need ",
       plan.host_glibc_needed.ToString(),
       plan.glibc_needed_by.empty() ? "" : absl::StrCat(" (", plan.glibc_needed_by, ")"));
  for (const mpi::FileBind& f : plan.files) {
    line(f.replaces ? "replaces " : "adds ", f.container_path, " with the host's ", f.host_path);
  }
  for (const std::string& d : plan.dirs) line("binds ", d);
  std::vector<std::string> env(r.env().begin(), r.env().end());
  line("the launcher offers: ", mpi::OfferedPmi(env));
}

// The same as one JSON object (`berth mpi check --json`), refusal included.
std::string ExplainJson(const v1::RunRequest& r, const mpi::Stack& stack,
                        const mpi::BindPlan& plan) {
  auto family = [](mpi::MpiFamily f) {
    return f == mpi::MpiFamily::kNone ? nlohmann::json(nullptr)
                                      : nlohmann::json(mpi::FamilyName(f));
  };
  nlohmann::json j;
  j["stack"] = stack.name;
  j["abi_rule"] = mpi::AbiRuleName(stack.abi);
  j["image"] = {{"family", family(plan.image_family)},
                {"library", plan.image_mpi},
                {"glibc", plan.image_glibc.ToString()}};
  j["host"] = {{"family", family(plan.host_family)},
               {"library", plan.host_mpi},
               {"glibc_needed", plan.host_glibc_needed.ToString()},
               {"glibc_needed_by", plan.glibc_needed_by}};
  j["abi"] = nlohmann::json::array();
  for (const mpi::AbiVerdict& v : plan.verdicts) {
    const char* kind = v.kind == mpi::AbiVerdict::kCompatible ? "compatible"
                       : v.kind == mpi::AbiVerdict::kWarning  ? "warning"
                                                              : "incompatible";
    j["abi"].push_back({{"verdict", kind}, {"reason", v.reason}});
  }
  j["replaces"] = nlohmann::json::array();
  j["adds"] = nlohmann::json::array();
  for (const mpi::FileBind& f : plan.files) {
    j[f.replaces ? "replaces" : "adds"].push_back(
        {{"path", f.container_path}, {"host_path", f.host_path}});
  }
  j["binds"] = plan.dirs;
  j["warnings"] = plan.warnings;
  std::vector<std::string> env(r.env().begin(), r.env().end());
  j["launcher_offers"] = mpi::OfferedPmi(env);
  j["refused"] = plan.refusal.empty() ? nlohmann::json(nullptr) : nlohmann::json(plan.refusal);
  j["ok"] = plan.refusal.empty();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<mpi::BindPlan> PlanFor(const mpi::Stack& stack, const std::string& image_root) {
  ASSIGN_OR_RETURN(mpi::HostStack host, mpi::ReadHostStack(stack, kHostLdCache));
  ASSIGN_OR_RETURN(UniqueFd root, OpenFile(image_root, O_PATH | O_DIRECTORY));
  ASSIGN_OR_RETURN(mpi::ImageView image, mpi::ReadImageView(root.get()));
  return mpi::PlanStack(stack, host.libraries, image, host.glibc);
}

}  // namespace

absl::StatusOr<std::string> MpiStackOf(const v1::RunRequest& r, const policy::Config& config) {
  if (r.mpi() == "default" || (r.mpi().empty() && !config.default_mpi_stack.empty() &&
                               (HasVar(r.env(), "PMI_FD") || HasVar(r.env(), "PMIX_RANK")))) {
    if (config.default_mpi_stack.empty()) {
      return absl::FailedPreconditionError(
          "--mpi: this node has no default MPI stack (berth.conf [mpi] default_stack); name one "
          "with --mpi=STACK");
    }
    return config.default_mpi_stack;
  }
  return r.mpi();
}

absl::Status AddMpiStack(const v1::RunRequest& r, const DaemonOptions& options,
                         const policy::Config& config, launch::LaunchSpec& spec,
                         std::vector<std::string>& notices, std::vector<std::string>& explained) {
  ASSIGN_OR_RETURN(std::string name, MpiStackOf(r, config));
  if (name.empty()) return absl::OkStatus();
  bool system = options.mode == DaemonMode::kSystem;
  ASSIGN_OR_RETURN(mpi::Stack stack, policy::LoadMpiStack(options.config_dir, name, system));
  auto plan = PlanFor(stack, spec.image_root);
  if (!plan.ok()) return Annotate(plan.status(), absl::StrCat("MPI stack '", name, "'"));
  // Explained before a refusal, so that the caller learns what was found.
  if (std::find(r.env().begin(), r.env().end(), "BERTH_MPI_EXPLAIN=json") != r.env().end()) {
    explained.push_back(ExplainJson(r, stack, *plan));
  } else if (HasVar(r.env(), "BERTH_MPI_EXPLAIN")) {
    Explain(r, stack, *plan, explained);
  }
  if (!plan->refusal.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("MPI stack '", name, "': ", plan->refusal));
  }
  for (const std::string& w : plan->warnings) notices.push_back(absl::StrCat("MPI stack: ", w));
  for (const mpi::FileBind& f : plan->files) {
    ASSIGN_OR_RETURN(launch::BindSpec bind, HostBind(f.host_path, f.container_path));
    spec.binds.push_back(std::move(bind));
  }
  for (const std::string& dir : plan->dirs) {
    ASSIGN_OR_RETURN(launch::BindSpec bind, HostBind(dir, dir));
    spec.binds.push_back(std::move(bind));
  }
  if (spec.contain || spec.system_mounts.minimal_dev) RETURN_IF_ERROR(AddDevices(stack, spec));
  AddEnvironment(r, stack, spec);
  return absl::OkStatus();
}

}  // namespace berth::daemon
