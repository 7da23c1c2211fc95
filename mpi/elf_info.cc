#include "mpi/elf_info.h"

#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::mpi {
namespace {

constexpr uint64_t kMaxSection = 16 << 20;
constexpr int kMaxChain = 65536;  // version entries followed per section

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed ELF: ", what));
}

// A section's bytes, read whole (bounded).
absl::StatusOr<std::string> ReadSection(int fd, const Elf64_Shdr& sh, uint64_t file_size) {
  if (sh.sh_type == SHT_NOBITS) return std::string();
  if (sh.sh_size > kMaxSection || sh.sh_offset > file_size ||
      sh.sh_size > file_size - sh.sh_offset) {
    return Bad("section outside the file");
  }
  std::string out(sh.sh_size, '\0');
  RETURN_IF_ERROR(PreadFull(fd, std::span(reinterpret_cast<uint8_t*>(out.data()), out.size()),
                            static_cast<int64_t>(sh.sh_offset)));
  return out;
}

absl::StatusOr<std::string> Str(absl::string_view table, uint64_t offset) {
  if (offset >= table.size()) return Bad("string offset outside its table");
  size_t end = table.find('\0', offset);
  if (end == absl::string_view::npos) return Bad("unterminated string");
  return std::string(table.substr(offset, end - offset));
}

template <typename T>
absl::StatusOr<T> At(absl::string_view bytes, uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T))
    return Bad("entry past its section");
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

struct Sections {
  std::vector<Elf64_Shdr> headers;
  uint64_t file_size = 0;
};

absl::StatusOr<Sections> ReadHeaders(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("stat", errno);
  Sections s;
  s.file_size = static_cast<uint64_t>(st.st_size);
  Elf64_Ehdr eh;
  if (s.file_size < sizeof eh) return Bad("shorter than an ELF header");
  RETURN_IF_ERROR(PreadFull(fd, std::span(reinterpret_cast<uint8_t*>(&eh), sizeof eh), 0));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return Bad("no ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return Bad("not a 64-bit little-endian ELF");
  }
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shoff > s.file_size ||
      uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr) > s.file_size - eh.e_shoff) {
    return Bad("section headers outside the file");
  }
  s.headers.resize(eh.e_shnum);
  RETURN_IF_ERROR(PreadFull(fd,
                            std::span(reinterpret_cast<uint8_t*>(s.headers.data()),
                                      s.headers.size() * sizeof(Elf64_Shdr)),
                            static_cast<int64_t>(eh.e_shoff)));
  return s;
}

// The string table a section links to.
absl::StatusOr<std::string> LinkedStrings(int fd, const Sections& s, const Elf64_Shdr& sh) {
  if (sh.sh_link >= s.headers.size()) return Bad("section link out of range");
  return ReadSection(fd, s.headers[sh.sh_link], s.file_size);
}

absl::Status ReadDynamic(int fd, const Sections& s, const Elf64_Shdr& sh, ElfInfo& out) {
  ASSIGN_OR_RETURN(std::string dyn, ReadSection(fd, sh, s.file_size));
  ASSIGN_OR_RETURN(std::string strings, LinkedStrings(fd, s, sh));
  for (uint64_t off = 0; off + sizeof(Elf64_Dyn) <= dyn.size(); off += sizeof(Elf64_Dyn)) {
    ASSIGN_OR_RETURN(Elf64_Dyn d, At<Elf64_Dyn>(dyn, off));
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_NEEDED) {
      ASSIGN_OR_RETURN(std::string name, Str(strings, d.d_un.d_val));
      out.needed.push_back(std::move(name));
    } else if (d.d_tag == DT_SONAME) {
      ASSIGN_OR_RETURN(out.soname, Str(strings, d.d_un.d_val));
    }
  }
  return absl::OkStatus();
}

void Raise(GlibcVersion& max, absl::string_view name) {
  GlibcVersion v = ParseGlibcVersion(name);
  if (max < v) max = v;
}

// .gnu.version_r: Verneed records, each with a chain of Vernaux.
absl::Status ReadVerneed(int fd, const Sections& s, const Elf64_Shdr& sh, ElfInfo& out) {
  ASSIGN_OR_RETURN(std::string data, ReadSection(fd, sh, s.file_size));
  ASSIGN_OR_RETURN(std::string strings, LinkedStrings(fd, s, sh));
  uint64_t off = 0;
  for (int i = 0; i < kMaxChain && off < data.size(); ++i) {
    ASSIGN_OR_RETURN(Elf64_Verneed vn, At<Elf64_Verneed>(data, off));
    uint64_t aux = off + vn.vn_aux;
    for (int j = 0; j < vn.vn_cnt && j < kMaxChain; ++j) {
      ASSIGN_OR_RETURN(Elf64_Vernaux va, At<Elf64_Vernaux>(data, aux));
      ASSIGN_OR_RETURN(std::string name, Str(strings, va.vna_name));
      Raise(out.glibc_needed, name);
      if (va.vna_next == 0) break;
      aux += va.vna_next;
    }
    if (vn.vn_next == 0) break;
    off += vn.vn_next;
  }
  return absl::OkStatus();
}

// .gnu.version_d: Verdef records; the first Verdaux of each names it.
absl::Status ReadVerdef(int fd, const Sections& s, const Elf64_Shdr& sh, ElfInfo& out) {
  ASSIGN_OR_RETURN(std::string data, ReadSection(fd, sh, s.file_size));
  ASSIGN_OR_RETURN(std::string strings, LinkedStrings(fd, s, sh));
  uint64_t off = 0;
  for (int i = 0; i < kMaxChain && off < data.size(); ++i) {
    ASSIGN_OR_RETURN(Elf64_Verdef vd, At<Elf64_Verdef>(data, off));
    if (vd.vd_cnt > 0) {
      ASSIGN_OR_RETURN(Elf64_Verdaux va, At<Elf64_Verdaux>(data, off + vd.vd_aux));
      ASSIGN_OR_RETURN(std::string name, Str(strings, va.vda_name));
      Raise(out.glibc_defined, name);
    }
    if (vd.vd_next == 0) break;
    off += vd.vd_next;
  }
  return absl::OkStatus();
}

}  // namespace

std::string GlibcVersion::ToString() const {
  return absl::StrCat(major, ".", minor);
}

GlibcVersion ParseGlibcVersion(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "GLIBC_")) return {};
  std::vector<absl::string_view> parts = absl::StrSplit(name, '.');
  GlibcVersion v;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &v.major) ||
      !absl::SimpleAtoi(parts[1], &v.minor) || v.major < 0 || v.minor < 0) {
    return {};
  }
  return v;
}

absl::StatusOr<ElfInfo> ReadElfInfo(int fd) {
  ASSIGN_OR_RETURN(Sections s, ReadHeaders(fd));
  ElfInfo out;
  for (const Elf64_Shdr& sh : s.headers) {
    if (sh.sh_type == SHT_DYNAMIC) {
      RETURN_IF_ERROR(ReadDynamic(fd, s, sh, out));
    } else if (sh.sh_type == SHT_GNU_verneed) {
      RETURN_IF_ERROR(ReadVerneed(fd, s, sh, out));
    } else if (sh.sh_type == SHT_GNU_verdef) {
      RETURN_IF_ERROR(ReadVerdef(fd, s, sh, out));
    }
  }
  return out;
}

}  // namespace berth::mpi
