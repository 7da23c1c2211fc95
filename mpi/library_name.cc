#include "mpi/library_name.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace berth::mpi {

std::string LibraryName::Soname() const {
  return version.empty() ? linker_name : absl::StrCat(linker_name, ".", version[0]);
}

std::string LibraryName::VersionString() const {
  return absl::StrJoin(version, ".");
}

std::optional<LibraryName> ParseLibraryName(absl::string_view file_name) {
  if (file_name.empty() || file_name.find('/') != absl::string_view::npos) return std::nullopt;
  size_t so = file_name.find(".so");
  if (so == 0 || so == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = file_name.substr(so + 3);
  if (!rest.empty() && rest.front() != '.') return std::nullopt;  // "libx.sox"
  LibraryName out;
  out.file_name = std::string(file_name);
  out.linker_name = std::string(file_name.substr(0, so + 3));
  if (rest.empty()) return out;
  for (absl::string_view part : absl::StrSplit(rest.substr(1), '.')) {
    int v;
    if (part.empty() || part.size() > 9 || !absl::SimpleAtoi(part, &v) || v < 0) {
      return std::nullopt;
    }
    out.version.push_back(v);
  }
  return out;
}

MpiFamily FamilyOf(const LibraryName& name) {
  if (name.version.empty()) return MpiFamily::kNone;
  int major = name.version[0];
  if (name.linker_name == "libmpich.so" && major == 12) return MpiFamily::kMpich;
  if (name.linker_name == "libmpi.so" && major == 12) return MpiFamily::kMpich;
  if (name.linker_name == "libmpi.so" && major == 40) return MpiFamily::kOpenMpi;
  return MpiFamily::kNone;
}

const char* FamilyName(MpiFamily family) {
  switch (family) {
    case MpiFamily::kMpich:
      return "MPICH ABI";
    case MpiFamily::kOpenMpi:
      return "Open MPI";
    default:
      return "none";
  }
}

}  // namespace berth::mpi
