#include "mpi/pmix_env.h"

#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace berth::mpi {
namespace {

std::map<std::string, std::string> AsMap(const std::vector<std::string>& env) {
  std::map<std::string, std::string> out;
  for (const std::string& kv : env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    out.emplace(kv.substr(0, eq), kv.substr(eq + 1));  // the first wins, as getenv
  }
  return out;
}

std::optional<std::string> Get(const std::map<std::string, std::string>& env,
                               const std::string& name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  return it->second;
}

bool IsDecimal(const std::string& s) {
  return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

// An absolute path without "..": what is bound must be what was named.
bool IsCleanAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) return false;
  for (absl::string_view part : absl::StrSplit(p, '/')) {
    if (part == "..") return false;
  }
  return true;
}

void AddBinds(const std::map<std::string, std::string>& env, uint32_t uid, PmixNeeds& out) {
  if (auto dir = Get(env, "PMIX_SERVER_TMPDIR"); dir && IsCleanAbsolute(*dir)) {
    std::string d = *dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    out.bind_paths.push_back(d);
  }
  auto job = Get(env, "SLURM_JOB_ID"), step = Get(env, "SLURM_STEP_ID");
  if (!job || !step || !IsDecimal(*job) || !IsDecimal(*step)) return;
  std::string base = Get(env, "PMIX_SYSTEM_TMPDIR").value_or("/tmp");
  if (!IsCleanAbsolute(base)) return;
  out.bind_paths.push_back(absl::StrCat(base, "/spmix_appdir_", uid, "_", *job, ".", *step));
}

// PMIX_MCA_<x> from PMIX_<y>, unless the caller set it.
void Derive(const std::map<std::string, std::string>& env, const char* mca, const char* from,
            PmixNeeds& out) {
  if (Get(env, mca)) return;
  auto value = Get(env, from);
  if (!value || value->empty()) return;
  out.set.emplace_back(mca, *value);
}

void DropMunge(const std::map<std::string, std::string>& env, PmixNeeds& out) {
  std::string psec;
  for (const auto& [name, value] : out.set) {
    if (name == "PMIX_MCA_psec") psec = value;
  }
  if (psec.empty()) psec = Get(env, "PMIX_MCA_psec").value_or("");
  if (!absl::StrContains(psec, "munge")) return;
  std::vector<std::string> kept;
  for (absl::string_view c : absl::StrSplit(psec, ',', absl::SkipEmpty())) {
    if (c != "munge") kept.emplace_back(c);
  }
  std::string value = kept.empty() ? "native" : absl::StrJoin(kept, ",");
  std::erase_if(out.set, [](const auto& kv) { return kv.first == "PMIX_MCA_psec"; });
  out.set.emplace_back("PMIX_MCA_psec", value);
  out.notes.push_back(absl::StrCat("PMIx security: '", psec,
                                   "' offers munge, which the image lacks: using '", value, "'"));
}

}  // namespace

PmixNeeds PmixNeedsOf(const std::vector<std::string>& env, uint32_t uid, bool image_has_munge) {
  std::map<std::string, std::string> vars = AsMap(env);
  PmixNeeds out;
  out.pmix = Get(vars, "PMIX_RANK").has_value() || Get(vars, "PMIX_SERVER_URI41").has_value() ||
             Get(vars, "PMIX_SERVER_URI4").has_value() ||
             Get(vars, "PMIX_SERVER_URI3").has_value() || Get(vars, "PMIX_SERVER_URI2").has_value();
  if (!out.pmix) return out;
  AddBinds(vars, uid, out);
  Derive(vars, "PMIX_MCA_ptl", "PMIX_PTL_MODULE", out);
  Derive(vars, "PMIX_MCA_psec", "PMIX_SECURITY_MODE", out);
  Derive(vars, "PMIX_MCA_gds", "PMIX_GDS_MODULE", out);
  if (!image_has_munge) DropMunge(vars, out);
  return out;
}

std::string OfferedPmi(const std::vector<std::string>& env) {
  std::map<std::string, std::string> vars = AsMap(env);
  for (const char* uri : {"PMIX_SERVER_URI41", "PMIX_SERVER_URI4", "PMIX_SERVER_URI3",
                          "PMIX_SERVER_URI21", "PMIX_SERVER_URI2"}) {
    if (Get(vars, uri)) return absl::StrCat("PMIx (", uri, ")");
  }
  if (Get(vars, "PMI_FD")) return "PMI-2 (PMI_FD)";
  if (Get(vars, "PMI_PORT")) return "PMI (PMI_PORT)";
  return "none";
}

}  // namespace berth::mpi
