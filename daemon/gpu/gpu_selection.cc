#include "daemon/gpu/gpu_selection.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace berth::daemon::gpu {
namespace {

constexpr int kMaxIndex = 4096;

std::optional<std::string> Lookup(const std::vector<std::string>& env, absl::string_view name) {
  for (const std::string& e : env) {
    if (e.size() > name.size() && absl::StartsWith(e, name) && e[name.size()] == '=') {
      return e.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

absl::Status Refuse(absl::string_view var, absl::string_view value, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(var, "='", absl::CHexEscape(value.substr(0, 128)), "': ", why));
}

// One list item: a number, or a range "a-b" (Slurm), or a GPU UUID (NVIDIA).
absl::Status AddItem(absl::string_view var, absl::string_view item,
                     const std::map<std::string, int>& uuids, std::vector<int>& out) {
  if (absl::StartsWith(item, "GPU-")) {
    auto it = uuids.find(std::string(item));
    if (it == uuids.end()) return Refuse(var, item, "no GPU with this UUID on this node");
    out.push_back(it->second);
    return absl::OkStatus();
  }
  if (absl::StartsWith(item, "MIG-")) {
    return Refuse(var, item, "MIG devices are not supported; name whole GPUs");
  }
  std::pair<absl::string_view, absl::string_view> range =
      absl::StrSplit(item, absl::MaxSplits('-', 1));
  int first = 0;
  bool numeric = absl::SimpleAtoi(range.first, &first);
  int last = first;
  if (numeric && !range.second.empty()) numeric = absl::SimpleAtoi(range.second, &last);
  if (!numeric || first < 0 || last < first || last >= kMaxIndex ||
      !std::all_of(item.begin(), item.end(),
                   [](char c) { return absl::ascii_isdigit(c) || c == '-'; })) {
    return Refuse(var, item, "not a GPU number, range or UUID");
  }
  for (int i = first; i <= last; ++i) out.push_back(i);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> ParseList(absl::string_view var, absl::string_view value,
                                           const std::vector<int>& available,
                                           const std::map<std::string, int>& uuids) {
  std::vector<int> out;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    if (absl::Status st = AddItem(var, item, uuids, out); !st.ok()) return st;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  for (int i : out) {
    if (!std::binary_search(available.begin(), available.end(), i)) {
      return Refuse(var, value,
                    absl::StrCat("this node has no GPU ", i, " (it has: ",
                                 available.empty() ? "none" : absl::StrJoin(available, ","), ")"));
    }
  }
  return out;
}

// The variable CUDA (or ROCm) reads inside, and the ones that choose GPUs.
struct VendorVars {
  const char* visible;
  std::vector<const char*> choosers;
};

VendorVars VarsOf(Vendor vendor) {
  if (vendor == Vendor::kNvidia) {
    return {"CUDA_VISIBLE_DEVICES", {"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"}};
  }
  return {"ROCR_VISIBLE_DEVICES", {"ROCR_VISIBLE_DEVICES"}};
}

std::string Sequence(size_t n) {
  std::vector<int> seq(n);
  for (size_t i = 0; i < n; ++i) seq[i] = static_cast<int>(i);
  return absl::StrJoin(seq, ",");
}

}  // namespace

absl::StatusOr<GpuSelection> SelectGpus(const std::vector<std::string>& env, Vendor vendor,
                                        const std::vector<int>& available,
                                        const std::map<std::string, int>& uuids) {
  VendorVars vars = VarsOf(vendor);
  std::vector<const char*> order = {"SLURM_STEP_GPUS", "SLURM_JOB_GPUS"};
  order.insert(order.end(), vars.choosers.begin(), vars.choosers.end());
  GpuSelection s;
  for (const char* var : order) {
    std::optional<std::string> value = Lookup(env, var);
    if (!value) continue;
    s.source = var;
    std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*value));
    if (lower == "all") return s;
    s.restricted = true;
    if (lower != "none" && lower != "void" && lower != "nodevfiles" && lower != "-1") {
      auto indices = ParseList(var, *value, available, uuids);
      if (!indices.ok()) return indices.status();
      s.indices = *std::move(indices);
    }
    s.env.emplace_back(vars.visible, Sequence(s.indices.size()));
    return s;
  }
  return s;
}

}  // namespace berth::daemon::gpu
