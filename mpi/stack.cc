#include "mpi/stack.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace berth::mpi {
namespace {

bool PatternMatches(const std::string& pattern, const std::string& s) {
  if (!pattern.empty() && pattern.back() == '*') {
    return absl::StartsWith(s, absl::string_view(pattern).substr(0, pattern.size() - 1));
  }
  return s == pattern;
}

}  // namespace

bool IsValidStackName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool EnvPatternMatches(const std::string& pattern, const std::string& name) {
  return PatternMatches(pattern, name);
}

bool LibraryPatternMatches(const std::string& pattern, const std::string& soname) {
  return PatternMatches(pattern, soname);
}

const std::vector<std::string>& DefaultEnvPass() {
  static const auto* kPass = new std::vector<std::string>{
      "PMI_*",   "PMI2_*",  "PMIX_*", "SLURM_*", "OMPI_*", "MPICH_*", "MPIR_*",
      "HYDRA_*", "I_MPI_*", "FI_*",   "UCX_*",   "NCCL_*", "HFI_*",   "PSM2_*"};
  return *kPass;
}

}  // namespace berth::mpi
