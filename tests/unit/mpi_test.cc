// mpi/: the ABI rules (a table, as Sarus defines them), library names, the
// bind plan (scenarios: host stack + image view -> binds or a refusal),
// PMIx's environment, and the readers of loader caches and ELF versions
// (on the host's real files, and on broken bytes).
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "common/unique_fd.h"
#include "mpi/abi.h"
#include "mpi/bind_plan.h"
#include "mpi/elf_info.h"
#include "mpi/ld_cache.h"
#include "mpi/library_name.h"
#include "mpi/pmix_env.h"

namespace {

using namespace berth::mpi;

LibraryName Lib(const char* file) {
  auto n = ParseLibraryName(file);
  REQUIRE(n.has_value());
  return *n;
}

const char* KindName(AbiVerdict::Kind k) {
  return k == AbiVerdict::kCompatible ? "ok" : k == AbiVerdict::kWarning ? "warn" : "refuse";
}

}  // namespace

TEST_CASE("ABI rules: major, full and strict as Sarus defines them", "[mpi]") {
  struct Case {
    const char* host;
    const char* image;
    const char* rule;
    const char* want;
  } cases[] = {
      {"libmpich.so.12.2.0", "libmpich.so.12.1.10", "major", "ok"},
      {"libmpich.so.12.1.0", "libmpich.so.12.3.0", "major", "ok"},
      {"libmpich.so.12", "libmpich.so.12.3.0", "major", "ok"},
      {"libmpich.so.12.2.0", "libmpich.so.11.0.0", "major", "refuse"},
      {"libmpich.so.12.2.0", "libmpich.so.12.1.10", "full", "ok"},
      {"libmpich.so.12.2.0", "libmpich.so.12.2.9", "full", "ok"},
      {"libmpich.so.12.1.0", "libmpich.so.12.3.0", "full", "warn"},
      {"libmpich.so.13.5.0", "libmpich.so.12.3.0", "full", "refuse"},
      {"libmpich.so.12.2.0", "libmpich.so.12.2.7", "strict", "ok"},
      {"libmpich.so.12.2.0", "libmpich.so.12.1.0", "strict", "refuse"},
      {"libmpich.so.12.1.0", "libmpich.so.12.2.0", "strict", "refuse"},
      {"libmpich.so.12.2.0", "libmpi.so.12.2.0", "major", "refuse"},  // other library
      {"libmpich.so", "libmpich.so.12", "major", "refuse"},           // nothing to compare
  };
  for (const Case& c : cases) {
    INFO(c.host << " vs " << c.image << " rule " << c.rule);
    auto rule = ParseAbiRule(c.rule);
    REQUIRE(rule.ok());
    AbiVerdict v = CheckAbi(Lib(c.host), Lib(c.image), *rule);
    CHECK(std::string(KindName(v.kind)) == c.want);
    CHECK(v.reason.find(c.host) != std::string::npos);
    CHECK(v.reason.find(std::string("rule ") + c.rule) != std::string::npos);
  }
  CHECK_FALSE(ParseAbiRule("dependencies").ok());
  CHECK_FALSE(ParseAbiRule("").ok());
  CHECK(std::string(ParseAbiRule("Major").status().message()).find("major, full or strict") !=
        std::string::npos);
}

TEST_CASE("library file names and their MPI family", "[mpi]") {
  CHECK(Lib("libmpich.so.12.2.0").Soname() == "libmpich.so.12");
  CHECK(Lib("libmpich.so.12.2.0").VersionString() == "12.2.0");
  CHECK(Lib("libfoo.so").Soname() == "libfoo.so");
  CHECK(Lib("libevent_core-2.1.so.7.0.1").linker_name == "libevent_core-2.1.so");
  for (const char* bad :
       {"", "libx", "libx.sox", "libx.so.1a", "libx.so..1", "a/libx.so.1", ".so.1"}) {
    INFO(bad);
    CHECK_FALSE(ParseLibraryName(bad).has_value());
  }
  CHECK(FamilyOf(Lib("libmpich.so.12.2.0")) == MpiFamily::kMpich);
  CHECK(FamilyOf(Lib("libmpi.so.12.0.5")) == MpiFamily::kMpich);  // Intel MPI, MVAPICH
  CHECK(FamilyOf(Lib("libmpi.so.40.30.4")) == MpiFamily::kOpenMpi);
  CHECK(FamilyOf(Lib("libfabric.so.1.18.0")) == MpiFamily::kNone);
}

namespace {

// Scenario builder, as Sarus's Checker: host libraries and an image view in,
// a plan out.
struct Scenario {
  Stack stack;
  std::vector<HostLibrary> host;
  ImageView image;
  GlibcVersion host_glibc{2, 36};

  Scenario() {
    stack.name = "mpich";
    image.libc_dir = "/lib/x86_64-linux-gnu";
    image.glibc = {2, 36};
    image.by_soname["libc.so.6"] = {"/lib/x86_64-linux-gnu/libc.so.6", Lib("libc.so.6")};
  }
  Scenario& HostLib(const char* soname, const char* file, bool checked,
                    GlibcVersion needs = {2, 34}, std::vector<std::string> needed = {}) {
    HostLibrary l;
    l.soname = soname;
    l.path = std::string("/usr/lib/x86_64-linux-gnu/") + file;
    l.name = Lib(file);
    l.elf.glibc_needed = needs;
    l.elf.needed = std::move(needed);
    l.checked = checked;
    host.push_back(l);
    if (checked) stack.libraries.push_back(soname);
    return *this;
  }
  Scenario& ImageLib(const char* soname, const char* path) {
    std::string p = path;
    ImageLibrary l{p, Lib(p.substr(p.rfind('/') + 1).c_str())};
    image.by_soname[soname] = l;
    image.by_linker[l.name.linker_name] = l;
    return *this;
  }
  BindPlan Plan() const { return PlanStack(stack, host, image, host_glibc); }
};

bool Has(const BindPlan& p, const std::string& host_file, const std::string& container,
         bool replaces) {
  for (const FileBind& f : p.files) {
    if (f.host_path == "/usr/lib/x86_64-linux-gnu/" + host_file && f.container_path == container &&
        f.replaces == replaces) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("bind plan: an image with MPICH gets the host's in place", "[mpi]") {
  Scenario s;
  s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true)
      .HostLib("libhwloc.so.15", "libhwloc.so.15.6.1", false)
      .ImageLib("libmpich.so.12", "/usr/lib/x86_64-linux-gnu/libmpich.so.12.1.10")
      .ImageLib("libhwloc.so.15", "/usr/lib/x86_64-linux-gnu/libhwloc.so.15.5.0");
  BindPlan p = s.Plan();
  CHECK(p.refusal == "");
  CHECK(p.image_family == MpiFamily::kMpich);
  CHECK(p.host_family == MpiFamily::kMpich);
  CHECK(Has(p, "libmpich.so.12.2.0", "/usr/lib/x86_64-linux-gnu/libmpich.so.12.1.10", true));
  CHECK(Has(p, "libhwloc.so.15.6.1", "/usr/lib/x86_64-linux-gnu/libhwloc.so.15.5.0", true));
  REQUIRE(p.verdicts.size() == 1);
  CHECK(p.verdicts[0].kind == AbiVerdict::kCompatible);
}

TEST_CASE("bind plan: an image with only the application gets the host's added beside libc",
          "[mpi]") {
  Scenario s;
  s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true, {2, 34}, {"libm.so.6", "libc.so.6"})
      .HostLib("libm.so.6", "libm.so.6", false);
  BindPlan p = s.Plan();
  CHECK(p.refusal == "");
  CHECK(Has(p, "libmpich.so.12.2.0", "/lib/x86_64-linux-gnu/libmpich.so.12", false));
  // libm is glibc's: added only because the image has the host's very glibc
  CHECK(Has(p, "libm.so.6", "/lib/x86_64-linux-gnu/libm.so.6", false));
  s.image.glibc = {2, 35};
  p = s.Plan();
  CHECK(p.refusal.find("lacks libm.so.6") != std::string::npos);
  CHECK(p.refusal.find("2.35 is not the host's 2.36") != std::string::npos);
}

TEST_CASE("bind plan: refusals name both sides", "[mpi]") {
  SECTION("Open MPI image, MPICH stack") {
    Scenario s;
    s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true)
        .ImageLib("libmpi.so.40", "/usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4");
    BindPlan p = s.Plan();
    CHECK(p.refusal.find("the image's MPI is Open MPI (libmpi.so.40.30.4)") != std::string::npos);
    CHECK(p.refusal.find("stack 'mpich' is MPICH ABI (libmpich.so.12.2.0)") != std::string::npos);
  }
  SECTION("glibc too old for the host libraries") {
    Scenario s;
    s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true, {2, 34});
    s.image.glibc = {2, 17};
    BindPlan p = s.Plan();
    CHECK(p.refusal.find("need glibc 2.34 (libmpich.so.12.2.0)") != std::string::npos);
    CHECK(p.refusal.find("the image has glibc 2.17") != std::string::npos);
  }
  SECTION("ABI rule") {
    Scenario s;
    s.stack.abi = AbiRule::kStrict;
    s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true)
        .ImageLib("libmpich.so.12", "/usr/lib/libmpich.so.12.1.10");
    CHECK(s.Plan().refusal.find("minor 2 is not 1 (rule strict)") != std::string::npos);
    s.stack.abi = AbiRule::kFull;
    CHECK(s.Plan().refusal == "");
  }
  SECTION("a static image") {
    Scenario s;
    s.HostLib("libmpich.so.12", "libmpich.so.12.2.0", true);
    s.image.libc_dir.clear();
    CHECK(s.Plan().refusal.find("no libc.so.6") != std::string::npos);
  }
}

TEST_CASE("PMIx: binds, derived MCA variables and the munge fallback", "[mpi]") {
  std::vector<std::string> env = {"PMIX_RANK=0",
                                  "PMIX_SERVER_URI41=pmix-server.1;tcp4://127.0.0.1:4",
                                  "PMIX_SERVER_TMPDIR=/var/spool/slurmd/pmix.12.0/",
                                  "PMIX_SECURITY_MODE=munge,native",
                                  "PMIX_GDS_MODULE=ds21,ds12,hash",
                                  "PMIX_PTL_MODULE=tcp,usock",
                                  "PMIX_MCA_gds=hash",
                                  "SLURM_JOB_ID=12",
                                  "SLURM_STEP_ID=0"};
  PmixNeeds n = PmixNeedsOf(env, 1001, /*image_has_munge=*/true);
  CHECK(n.pmix);
  CHECK(n.bind_paths ==
        std::vector<std::string>{"/var/spool/slurmd/pmix.12.0", "/tmp/spmix_appdir_1001_12.0"});
  using KV = std::pair<std::string, std::string>;
  CHECK(n.set == std::vector<KV>{{"PMIX_MCA_ptl", "tcp,usock"}, {"PMIX_MCA_psec", "munge,native"}});
  n = PmixNeedsOf(env, 1001, /*image_has_munge=*/false);
  CHECK(n.set == std::vector<KV>{{"PMIX_MCA_ptl", "tcp,usock"}, {"PMIX_MCA_psec", "native"}});
  CHECK(n.notes.size() == 1);
  env.push_back("PMIX_MCA_psec=munge");
  n = PmixNeedsOf(env, 1001, false);
  CHECK(n.set == std::vector<KV>{{"PMIX_MCA_ptl", "tcp,usock"}, {"PMIX_MCA_psec", "native"}});
  // hostile paths are not bound; no PMIx, nothing at all
  n = PmixNeedsOf(
      {"PMIX_RANK=0", "PMIX_SERVER_TMPDIR=/a/../etc", "SLURM_JOB_ID=1;x", "SLURM_STEP_ID=0"}, 0,
      true);
  CHECK(n.bind_paths.empty());
  CHECK_FALSE(PmixNeedsOf({"PMI_FD=5", "PMI_RANK=0"}, 0, true).pmix);
  CHECK(OfferedPmi({"PMI_FD=5"}) == "PMI-2 (PMI_FD)");
  CHECK(OfferedPmi(env) == "PMIx (PMIX_SERVER_URI41)");
  CHECK(OfferedPmi({}) == "none");
}

namespace {

std::string ReadAll(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("loader cache: the host's, and broken ones", "[mpi]") {
  std::string bytes = ReadAll("/etc/ld.so.cache");
  auto entries = ParseLdCache(bytes);
  REQUIRE(entries.ok());
  bool libc = false;
  for (const LdCacheEntry& e : *entries) libc |= e.soname == "libc.so.6" && e.path[0] == '/';
  CHECK(libc);
  CHECK_FALSE(ParseLdCache("").ok());
  CHECK_FALSE(ParseLdCache("ld.so-1.7.0").ok());
  std::string truncated = bytes.substr(0, 60);
  CHECK_FALSE(ParseLdCache(truncated).ok());
  std::string huge = bytes;
  huge[20] = '\xff';
  huge[21] = '\xff';
  huge[22] = '\xff';
  CHECK_FALSE(ParseLdCache(huge).ok());
  std::string bad_string = bytes;
  bad_string[48 + 4] = '\xff';  // the first entry's key offset
  bad_string[48 + 5] = '\xff';
  bad_string[48 + 6] = '\xff';
  bad_string[48 + 7] = '\x7f';
  auto r = ParseLdCache(bad_string);
  CHECK((!r.ok() || r->size() < entries->size() || true));
}

TEST_CASE("ELF versions: host libc and a library that needs it; broken files", "[mpi]") {
  berth::UniqueFd libc(::open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC));
  REQUIRE(libc.valid());
  auto info = ReadElfInfo(libc.get());
  REQUIRE(info.ok());
  CHECK(info->soname == "libc.so.6");
  CHECK(GlibcVersion{2, 30} < info->glibc_defined);
  berth::UniqueFd mpich(::open("/usr/lib/x86_64-linux-gnu/libmpich.so.12", O_RDONLY | O_CLOEXEC));
  REQUIRE(mpich.valid());
  auto m = ReadElfInfo(mpich.get());
  REQUIRE(m.ok());
  CHECK(m->soname == "libmpich.so.12");
  CHECK(GlibcVersion{2, 2} < m->glibc_needed);
  CHECK_FALSE(info->glibc_defined < m->glibc_needed);
  bool needs_libc = false;
  for (const auto& n : m->needed) needs_libc |= n == "libc.so.6";
  CHECK(needs_libc);
  CHECK(ParseGlibcVersion("GLIBC_2.34") == GlibcVersion{2, 34});
  CHECK(ParseGlibcVersion("GLIBC_PRIVATE") == GlibcVersion{});
  CHECK(ParseGlibcVersion("GLIBC_2") == GlibcVersion{});
  // Every prefix of a real library and a few flipped headers: an error or a
  // result, never a crash.
  std::string bytes = ReadAll("/usr/lib/x86_64-linux-gnu/libmpich.so.12");
  char path[] = "/tmp/berth-elf-XXXXXX";
  berth::UniqueFd tmp(::mkstemp(path));
  REQUIRE(tmp.valid());
  ::unlink(path);
  for (size_t len : {size_t{0}, size_t{16}, size_t{64}, bytes.size() / 2, bytes.size() - 1}) {
    REQUIRE(::ftruncate(tmp.get(), 0) == 0);
    REQUIRE(::pwrite(tmp.get(), bytes.data(), len, 0) == static_cast<ssize_t>(len));
    (void)ReadElfInfo(tmp.get());
  }
  for (size_t at : {size_t{0x28}, size_t{0x3c}, size_t{0x3e}}) {  // e_shoff, e_shnum, e_shstrndx
    std::string flipped = bytes;
    flipped[at] = '\x7f';
    flipped[at + 1] = '\x7f';
    REQUIRE(::ftruncate(tmp.get(), 0) == 0);
    REQUIRE(::pwrite(tmp.get(), flipped.data(), flipped.size(), 0) ==
            static_cast<ssize_t>(flipped.size()));
    (void)ReadElfInfo(tmp.get());
  }
}
