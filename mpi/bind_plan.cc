#include "mpi/bind_plan.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace berth::mpi {
namespace {

void Refuse(BindPlan& plan, std::string why) {
  if (plan.refusal.empty()) plan.refusal = std::move(why);
}

void FindFamilies(const std::vector<HostLibrary>& host, const ImageView& image, BindPlan& plan) {
  for (const HostLibrary& lib : host) {
    if (!lib.checked || FamilyOf(lib.name) == MpiFamily::kNone) continue;
    plan.host_family = FamilyOf(lib.name);
    plan.host_mpi = lib.name.file_name;
    break;
  }
  for (const char* linker : {"libmpich.so", "libmpi.so"}) {
    auto it = image.by_linker.find(linker);
    if (it == image.by_linker.end() || FamilyOf(it->second.name) == MpiFamily::kNone) continue;
    plan.image_family = FamilyOf(it->second.name);
    plan.image_mpi = it->second.name.file_name;
    break;
  }
}

void CheckFamilies(const Stack& stack, BindPlan& plan) {
  if (plan.image_family == MpiFamily::kNone || plan.host_family == MpiFamily::kNone ||
      plan.image_family == plan.host_family) {
    return;
  }
  Refuse(plan, absl::StrCat("the image's MPI is ", FamilyName(plan.image_family), " (",
                            plan.image_mpi, ") and stack '", stack.name, "' is ",
                            FamilyName(plan.host_family), " (", plan.host_mpi,
                            "): their ABIs differ; use an image built with the host's MPI, or "
                            "a stack of the image's"));
}

void CheckGlibc(const std::vector<HostLibrary>& host, const ImageView& image, BindPlan& plan) {
  plan.image_glibc = image.glibc;
  for (const HostLibrary& lib : host) {
    if (plan.host_glibc_needed < lib.elf.glibc_needed) {
      plan.host_glibc_needed = lib.elf.glibc_needed;
      plan.glibc_needed_by = lib.name.file_name;
    }
  }
  if (image.glibc < plan.host_glibc_needed) {
    Refuse(plan,
           absl::StrCat("the host libraries need glibc ", plan.host_glibc_needed.ToString(), " (",
                        plan.glibc_needed_by, ") and the image has glibc ", image.glibc.ToString(),
                        ": they cannot run on it; use an image with glibc ",
                        plan.host_glibc_needed.ToString(), " or newer"));
  }
}

// The glibc libraries the host's need that the image lacks: bound from the
// host only when both glibcs are the same release.
void AddMissingGlibc(const std::vector<HostLibrary>& host, const ImageView& image,
                     GlibcVersion host_glibc, BindPlan& plan) {
  std::set<std::string> missing;
  for (const HostLibrary& lib : host) {
    for (const std::string& n : lib.elf.needed) {
      if (IsGlibcLibrary(n) && !image.by_soname.count(n)) missing.insert(n);
    }
  }
  for (const std::string& soname : missing) {
    const HostLibrary* found = nullptr;
    for (const HostLibrary& lib : host) {
      if (lib.soname == soname) found = &lib;
    }
    if (found == nullptr || !(image.glibc == host_glibc)) {
      Refuse(plan,
             absl::StrCat("the image lacks ", soname,
                          ", which the host libraries need, and its glibc ", image.glibc.ToString(),
                          " is not the host's ", host_glibc.ToString()));
      continue;
    }
    plan.files.push_back({found->path, absl::StrCat(image.libc_dir, "/", soname), false});
  }
}

// One host library: over the image's counterpart, else beside its libc.
void PlaceLibrary(const HostLibrary& lib, AbiRule rule, const ImageView& image, BindPlan& plan) {
  const ImageLibrary* counterpart = nullptr;
  if (lib.checked) {
    auto it = image.by_linker.find(lib.name.linker_name);
    if (it != image.by_linker.end()) counterpart = &it->second;
  } else {
    auto it = image.by_soname.find(lib.soname);
    if (it != image.by_soname.end()) counterpart = &it->second;
  }
  if (counterpart != nullptr && lib.checked) {
    AbiVerdict v = CheckAbi(lib.name, counterpart->name, rule);
    plan.verdicts.push_back(v);
    if (v.kind == AbiVerdict::kIncompatible) return Refuse(plan, v.reason);
    if (v.kind == AbiVerdict::kWarning) plan.warnings.push_back(v.reason);
  }
  if (counterpart != nullptr) {
    plan.files.push_back({lib.path, counterpart->path, true});
  } else {
    plan.files.push_back({lib.path, absl::StrCat(image.libc_dir, "/", lib.soname), false});
  }
}

}  // namespace

bool IsGlibcLibrary(const std::string& soname) {
  static const std::set<std::string> kGlibc = {"libc.so.6",
                                               "libm.so.6",
                                               "libpthread.so.0",
                                               "libdl.so.2",
                                               "librt.so.1",
                                               "libresolv.so.2",
                                               "libutil.so.1",
                                               "libanl.so.1",
                                               "libnsl.so.1",
                                               "libBrokenLocale.so.1",
                                               "libmvec.so.1",
                                               "libc_malloc_debug.so.0",
                                               "ld-linux-x86-64.so.2",
                                               "ld-linux-aarch64.so.1",
                                               "libthread_db.so.1"};
  return kGlibc.count(soname) > 0;
}

BindPlan PlanStack(const Stack& stack, const std::vector<HostLibrary>& host, const ImageView& image,
                   GlibcVersion host_glibc) {
  BindPlan plan;
  FindFamilies(host, image, plan);
  if (image.libc_dir.empty()) {
    Refuse(plan, "the image has no libc.so.6 (a static image?): host libraries cannot load in it");
    return plan;
  }
  CheckFamilies(stack, plan);
  CheckGlibc(host, image, plan);
  for (const HostLibrary& lib : host) {
    if (IsGlibcLibrary(lib.soname)) continue;
    PlaceLibrary(lib, stack.abi, image, plan);
  }
  AddMissingGlibc(host, image, host_glibc, plan);
  plan.dirs = stack.binds;
  return plan;
}

}  // namespace berth::mpi
