// Unit tests of daemon/gpu/: the library lists, the loader cache, ELF
// identification, driver-file resolution beneath a root, the GPU choice,
// CDI specs (golden files in cdi/good and cdi/bad) and the CDI registry.
// Real files and the real ldconfig; no daemon, no container.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/action/action.h"
#include "daemon/gpu/cdi_registry.h"
#include "daemon/gpu/cdi_spec.h"
#include "daemon/gpu/driver_files.h"
#include "daemon/gpu/elf_ident.h"
#include "daemon/gpu/gpu_selection.h"
#include "daemon/gpu/ld_cache.h"
#include "daemon/gpu/liblist.h"
#include "daemon/policy/config.h"

namespace fs = std::filesystem;
using namespace berth::daemon::gpu;

namespace {

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/berth-gpu-unit-XXXXXX";
    path = ::mkdtemp(tmpl);
    ::chmod(path.c_str(), 0755);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string Output(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  char buf[4096];
  while (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (p != nullptr) ::pclose(p);
  return out;
}

}  // namespace

TEST_CASE("the shipped nvliblist.conf parses into programs, libraries and files", "[liblist]") {
  std::string text = Slurp(fs::path(BERTH_SOURCE_DIR) / "packaging/nvliblist.conf");
  auto list = ParseLibList(text, "nvliblist.conf");
  REQUIRE(list.ok());
  auto kind_of = [&](const std::string& value) {
    for (const LibListEntry& e : *list) {
      if (e.value == value) return static_cast<int>(e.kind);
    }
    return -1;
  };
  CHECK(kind_of("nvidia-smi") == LibListEntry::kBinary);
  CHECK(kind_of("libcuda.so") == LibListEntry::kLibraryName);
  CHECK(kind_of("/usr/share/vulkan/icd.d/nvidia_icd.json") == LibListEntry::kFile);
  CHECK(list->size() > 40);
  CHECK(ParseLibList(Slurp(fs::path(BERTH_SOURCE_DIR) / "packaging/rocmliblist.conf"), "r").ok());
}

TEST_CASE("a bad library list entry is refused with its line", "[liblist][hostile]") {
  struct Case {
    std::string text, error;
  } cases[] = {
      {"# c\nlibcuda.so\nlib/x.so\n", "l.conf:3: 'lib/x.so' is a relative path"},
      {"libcuda.so extra\n", "l.conf:1: 'libcuda.so extra' contains a space"},
      {"\n\n/usr/lib/../lib/x.so\n", "l.conf:3: '/usr/lib/../lib/x.so' contains '..'"},
      {std::string("nvidia-smi\x01\n"), "l.conf:1:"},
  };
  for (const Case& c : cases) {
    auto list = ParseLibList(c.text, "l.conf");
    REQUIRE_FALSE(list.ok());
    INFO(list.status().message());
    CHECK(std::string(list.status().message()).rfind(c.error, 0) == 0);
  }
}

TEST_CASE("the host's loader cache reads as ldconfig -p lists it", "[ld_cache]") {
  auto entries = ParseLdCache(Slurp("/etc/ld.so.cache"));
  REQUIRE(entries.ok());
  std::string listed = Output("ldconfig -p");
  size_t count = 0;
  for (const LdCacheEntry& e : *entries) {
    count += listed.find(absl::StrCat(e.name, " (")) != std::string::npos &&
             listed.find(absl::StrCat("=> ", e.path, "\n")) != std::string::npos;
  }
  CHECK(count == entries->size());
  CHECK(listed.find(absl::StrCat(entries->size(), " libs found")) == 0);
}

TEST_CASE("a truncated or corrupt loader cache is an error, never a crash", "[ld_cache][hostile]") {
  std::string good = Slurp("/etc/ld.so.cache");
  REQUIRE(good.size() > 100);
  for (size_t len = 0; len < good.size(); len += 1 + len / 3) {
    auto r = ParseLdCache(absl::string_view(good).substr(0, len));
    if (len < 48) CHECK_FALSE(r.ok());
  }
  std::string bad = good;
  bad[48 + 4] = '\xff';  // the first entry's name offset, past the end
  bad[48 + 5] = '\xff';
  bad[48 + 6] = '\xff';
  CHECK_FALSE(ParseLdCache(bad).ok());
  std::string count = good;
  count[20] = count[21] = count[22] = count[23] = '\x7f';
  CHECK_FALSE(ParseLdCache(count).ok());
  CHECK_FALSE(ParseLdCache("ld.so-1.7.0").ok());
}

TEST_CASE("driver files resolve beneath the root, for this machine only", "[driver_files]") {
  TempDir root;
  fs::path lib = root.path / "usr/lib";
  std::string elf = Slurp("/proc/self/exe");
  Write(lib / "libfoo.so.1", elf);
  std::string other = elf;
  other[4] = other[4] == 2 ? 1 : 2;  // the other ELF class
  Write(root.path / "usr/lib32/libfoo.so.1", other);
  Write(lib / "libbar.so.2.0", elf);
  fs::create_symlink("libbar.so.2.0", lib / "libbar.so.2");
  fs::create_symlink("libbar.so.2", lib / "libbar.so");
  // An absolute link to a host ELF of this machine (this test): beneath the
  // root it leads nowhere, and must not reach the host.
  fs::create_symlink(fs::read_symlink("/proc/self/exe"), lib / "libescape.so.1");
  Write(root.path / "usr/bin/tool", "#!/bin/sh\n", 0755);
  Write(root.path / "bin/notexec", "data", 0644);
  Write(root.path / "etc/icd.json", "{}");
  std::vector<LdCacheEntry> cache = {{"libfoo.so.1", "/usr/lib32/libfoo.so.1", 0},
                                     {"libfoo.so.1", "/usr/lib/libfoo.so.1", 0},
                                     {"libescape.so.1", "/usr/lib/libescape.so.1", 0}};
  auto list = ParseLibList(
      "libfoo.so\nlibfo.so\nlibescape.so\n/usr/lib/libbar.so.2.0\ntool\nnotexec\n/etc/icd.json\n",
      "t");
  REQUIRE(list.ok());
  auto dr = DriverRoot::Open(root.path);
  REQUIRE(dr.ok());
  auto native = NativeElfIdent();
  REQUIRE(native.ok());
  DriverFiles files = ResolveDriverFiles(*list, cache, *dr, *native);
  std::vector<std::string> libs, others;
  for (const DriverFile& f : files.libraries) libs.push_back(f.destination + "<" + f.host_path);
  for (const DriverFile& f : files.files) others.push_back(f.destination);
  std::string r = root.path.string();
  CHECK(absl::StrJoin(libs, " ") ==
        absl::StrCat("/.singularity.d/libs/libfoo.so.1<", r, "/usr/lib/libfoo.so.1 ",
                     "/.singularity.d/libs/libbar.so.2.0<", r, "/usr/lib/libbar.so.2.0 ",
                     "/.singularity.d/libs/libbar.so<", r, "/usr/lib/libbar.so ",
                     "/.singularity.d/libs/libbar.so.2<", r, "/usr/lib/libbar.so.2"));
  CHECK(absl::StrJoin(others, " ") == "/usr/bin/tool /etc/icd.json");
  CHECK(absl::StrJoin(files.missing, " ") == "libfo.so libescape.so notexec");
}

TEST_CASE("the job's GPUs: Slurm first, then the visible-devices variables", "[selection]") {
  std::vector<int> four = {0, 1, 2, 3};
  std::map<std::string, int> uuids = {{"GPU-aaaa", 2}};
  struct Case {
    std::vector<std::string> env;
    Vendor vendor;
    std::string want;  // "all", or "indices|source|VAR=value", or "error:..."
  } cases[] = {
      {{}, Vendor::kNvidia, "all"},
      {{"CUDA_VISIBLE_DEVICES=1"},
       Vendor::kNvidia,
       "1|CUDA_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES=0"},
      {{"CUDA_VISIBLE_DEVICES=3,1"},
       Vendor::kNvidia,
       "1,3|CUDA_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES=0,1"},
      {{"CUDA_VISIBLE_DEVICES=1", "SLURM_JOB_GPUS=2,3"},
       Vendor::kNvidia,
       "2,3|SLURM_JOB_GPUS|CUDA_VISIBLE_DEVICES=0,1"},
      {{"SLURM_JOB_GPUS=0-3", "SLURM_STEP_GPUS=1-2"},
       Vendor::kNvidia,
       "1,2|SLURM_STEP_GPUS|CUDA_VISIBLE_DEVICES=0,1"},
      {{"NVIDIA_VISIBLE_DEVICES=all", "CUDA_VISIBLE_DEVICES=1"}, Vendor::kNvidia, "all"},
      {{"NVIDIA_VISIBLE_DEVICES=GPU-aaaa"},
       Vendor::kNvidia,
       "2|NVIDIA_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES=0"},
      {{"NVIDIA_VISIBLE_DEVICES=none"},
       Vendor::kNvidia,
       "|NVIDIA_VISIBLE_DEVICES|CUDA_VISIBLE_DEVICES="},
      {{"ROCR_VISIBLE_DEVICES=2"}, Vendor::kAmd, "2|ROCR_VISIBLE_DEVICES|ROCR_VISIBLE_DEVICES=0"},
      {{"CUDA_VISIBLE_DEVICES=2"}, Vendor::kAmd, "all"},
      {{"CUDA_VISIBLE_DEVICES=7"},
       Vendor::kNvidia,
       "error:CUDA_VISIBLE_DEVICES='7': this node has no GPU 7"},
      {{"CUDA_VISIBLE_DEVICES=1;rm"},
       Vendor::kNvidia,
       "error:CUDA_VISIBLE_DEVICES='1;rm': not a GPU"},
      {{"SLURM_STEP_GPUS=3-1"}, Vendor::kNvidia, "error:SLURM_STEP_GPUS='3-1': not a GPU"},
      {{"CUDA_VISIBLE_DEVICES=MIG-1"}, Vendor::kNvidia, "error:CUDA_VISIBLE_DEVICES='MIG-1': MIG"},
      {{"CUDA_VISIBLE_DEVICES=GPU-bbbb"},
       Vendor::kNvidia,
       "error:CUDA_VISIBLE_DEVICES='GPU-bbbb': no GPU"},
      {{"CUDA_VISIBLE_DEVICES=99999999999"},
       Vendor::kNvidia,
       "error:CUDA_VISIBLE_DEVICES='99999999999'"},
  };
  for (const Case& c : cases) {
    INFO(absl::StrJoin(c.env, " "));
    auto s = SelectGpus(c.env, c.vendor, four, uuids);
    if (c.want.rfind("error:", 0) == 0) {
      REQUIRE_FALSE(s.ok());
      CHECK(std::string(s.status().message()).rfind(c.want.substr(6), 0) == 0);
      continue;
    }
    REQUIRE(s.ok());
    if (c.want == "all") {
      CHECK_FALSE(s->restricted);
      CHECK(s->env.empty());
      continue;
    }
    REQUIRE(s->env.size() == 1);
    CHECK(absl::StrCat(absl::StrJoin(s->indices, ","), "|", s->source, "|", s->env[0].first, "=",
                       s->env[0].second) == c.want);
  }
}

namespace {

std::string Opt(const std::optional<int64_t>& v) {
  return v ? absl::StrCat(*v) : "-";
}
std::string Opt(const std::optional<uint32_t>& v) {
  return v ? absl::StrCat(*v) : "-";
}

void DumpEdits(const CdiEdits& e, std::string& out) {
  for (const std::string& kv : e.env) absl::StrAppend(&out, "  env ", kv, "\n");
  for (const CdiDeviceNode& n : e.device_nodes) {
    char mode[8] = "-";
    if (n.file_mode) std::snprintf(mode, sizeof mode, "%04o", *n.file_mode);
    absl::StrAppend(&out, "  node ", n.path, " host=", n.host_path, " type=", n.type,
                    " major=", Opt(n.major), " minor=", Opt(n.minor), " mode=", mode,
                    " uid=", Opt(n.uid), " gid=", Opt(n.gid), " perms=", n.permissions, "\n");
  }
  for (const CdiMount& m : e.mounts) {
    absl::StrAppend(&out, "  mount ", m.host_path, " at ", m.container_path, " type=", m.type,
                    " options=", absl::StrJoin(m.options, ","), "\n");
  }
  for (const CdiHook& h : e.hooks) {
    absl::StrAppend(&out, "  hook ", h.hook_name, " ", h.path, " args=", absl::StrJoin(h.args, ","),
                    " env=", absl::StrJoin(h.env, ","),
                    " timeout=", h.timeout ? absl::StrCat(*h.timeout) : "-", "\n");
  }
  if (!e.additional_gids.empty()) {
    absl::StrAppend(&out, "  gids ", absl::StrJoin(e.additional_gids, ","), "\n");
  }
}

std::string Dump(const CdiSpec& spec) {
  std::string out = absl::StrCat("version ", spec.version, "\nkind ", spec.kind, "\nspec edits\n");
  DumpEdits(spec.edits, out);
  for (const CdiDevice& d : spec.devices) {
    absl::StrAppend(&out, "device ", d.name, "\n");
    DumpEdits(d.edits, out);
  }
  return out;
}

fs::path CdiData() {
  return fs::path(BERTH_SOURCE_DIR) / "tests/gpu/cdi";
}

}  // namespace

TEST_CASE("CDI specs parse into berth's structs (golden)", "[cdi]") {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(CdiData() / "good")) {
    if (entry.path().extension() == ".txt") continue;
    INFO(entry.path());
    auto spec = ParseCdiSpec(Slurp(entry.path()), entry.path().filename());
    REQUIRE(spec.ok());
    fs::path want = entry.path();
    want.replace_extension(".txt");
    CHECK(Dump(*spec) == Slurp(want));
    ++seen;
  }
  CHECK(seen == 2);
}

TEST_CASE("malformed CDI specs give one line naming the file, line and field", "[cdi][hostile]") {
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(CdiData() / "bad")) {
    if (entry.path().extension() == ".err") continue;
    auto spec = ParseCdiSpec(Slurp(entry.path()), entry.path().filename());
    fs::path want = entry.path();
    want.replace_extension(".err");
    std::string expected = Slurp(want);
    expected.erase(expected.find_last_not_of('\n') + 1);
    INFO(entry.path());
    REQUIRE_FALSE(spec.ok());
    std::string got(spec.status().message());
    INFO(got);
    CHECK(got.rfind(expected, 0) == 0);
    CHECK(got.find('\n') == std::string::npos);
    ++seen;
  }
  CHECK(seen >= 10);
}

TEST_CASE("CDI device names are checked", "[cdi][hostile]") {
  CHECK(ParseCdiName("nvidia.com/gpu=0").ok());
  CHECK(ParseCdiName("vendor.com/class=a:b_c.d-e").ok());
  for (const char* bad : {"gpu=0", "nvidia.com/gpu", "nvidia.com/gpu=", "1vendor.com/c=x",
                          "nvidia.com/gpu=-x", "nvidia.com/gp u=0", "v.com/c=x/../y"}) {
    INFO(bad);
    CHECK_FALSE(ParseCdiName(bad).ok());
  }
}

TEST_CASE("CDI registry: priority, conflicts, broken specs, refresh on change", "[cdi]") {
  TempDir dir;
  fs::path low = dir.path / "low", high = dir.path / "high";
  auto spec = [](const std::string& kind, const std::string& device, const std::string& env) {
    return absl::StrCat("{\"cdiVersion\":\"0.6.0\",\"kind\":\"", kind,
                        "\",\"devices\":[{\"name\":\"", device,
                        "\",\"containerEdits\":{\"env\":[\"", env, "\"]}}]}");
  };
  Write(low / "a.json", spec("t.com/x", "one", "V=low"));
  Write(low / "b.yaml", spec("t.com/x", "two", "V=low"));
  Write(low / "c.yaml", spec("t.com/x", "two", "V=clash"));
  Write(high / "a.json", spec("t.com/x", "one", "V=high"));
  Write(high / "broken.yaml", "cdiVersion: [\n");
  Write(high / "ignored.txt", "not a spec");
  CdiRegistry registry(/*check_trust=*/true);
  auto catalog = [&] {
    std::vector<CdiDir> dirs;
    dirs.push_back({low.string(), berth::UniqueFd()});
    dirs.push_back({high.string(), berth::UniqueFd()});
    return registry.Catalog(std::move(dirs));
  };
  CdiCatalog c = catalog();
  auto one = CdiRegistry::Find(c, "t.com/x=one");
  REQUIRE(one.ok());
  CHECK((*one)->spec->devices[0].edits.env[0] == "V=high");
  auto two = CdiRegistry::Find(c, "t.com/x=two");
  REQUIRE_FALSE(two.ok());
  CHECK(std::string(two.status().message()).find("defined in both") != std::string::npos);
  REQUIRE(c.broken.size() == 1);
  CHECK(c.broken[0].first == (high / "broken.yaml").string());
  auto none = CdiRegistry::Find(c, "t.com/x=three");
  REQUIRE_FALSE(none.ok());
  CHECK(std::string(none.status().message()).find("broken.yaml") != std::string::npos);
  // A spec edited in place is read again.
  Write(high / "a.json", spec("t.com/x", "one", "V=edited"));
  c = catalog();
  one = CdiRegistry::Find(c, "t.com/x=one");
  REQUIRE(one.ok());
  CHECK((*one)->spec->devices[0].edits.env[0] == "V=edited");
  // Anyone-writable is untrusted: broken, by name, the rest still offered.
  ::chmod((high / "a.json").c_str(), 0666);
  c = catalog();
  bool refused = false;
  for (const auto& [path, why] : c.broken) {
    refused |= path == (high / "a.json").string() &&
               why.find("writable by nobody else") != std::string::npos;
  }
  CHECK(refused);
  one = CdiRegistry::Find(c, "t.com/x=one");
  REQUIRE(one.ok());
  CHECK((*one)->spec->devices[0].edits.env[0] == "V=low");
}

TEST_CASE("berth.conf [gpu]", "[config]") {
  auto c = berth::daemon::policy::ParseConfig(
      "[gpu]\nalways_use_nv = true\ncdi_dirs = [\"/site/cdi\"]\ntest_driver_root = \"/tmp/r\"\n",
      "berth.conf");
  REQUIRE(c.ok());
  CHECK(c->always_use_nv);
  CHECK_FALSE(c->always_use_rocm);
  CHECK(c->cdi_dirs == std::vector<std::string>{"/site/cdi"});
  CHECK(c->gpu_test_driver_root == "/tmp/r");
  auto defaults = berth::daemon::policy::ParseConfig("", "berth.conf");
  REQUIRE(defaults.ok());
  CHECK(defaults->cdi_dirs == std::vector<std::string>{"/etc/cdi", "/var/run/cdi"});
  for (const char* bad : {"[gpu]\nalways_use_nvidia = true\n", "[gpu]\ntest_driver_root = \"r\"\n",
                          "[gpu]\ncdi_dirs = [\"cdi\"]\n"}) {
    auto r = berth::daemon::policy::ParseConfig(bad, "berth.conf");
    INFO(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(std::string(r.status().message()).rfind("berth.conf:2", 0) == 0);
  }
}

TEST_CASE("the daemon's variables win, and the libraries join LD_LIBRARY_PATH once", "[action]") {
  using namespace berth::daemon::action;
  EnvRequest req;
  req.host_env = {"CUDA_VISIBLE_DEVICES=3", "LD_LIBRARY_PATH=/host"};
  req.env_flags = {"CUDA_VISIBLE_DEVICES=2,LD_LIBRARY_PATH=/mine"};
  req.runtime_env = {{"CUDA_VISIBLE_DEVICES", "0"}};
  req.library_dir = "/.singularity.d/libs";
  req.container_home = "/home/u";
  req.image_path = "/i.sif";
  auto env = BuildEnvironment(req);
  REQUIRE(env.ok());
  CommandRequest cmd;
  cmd.args = {"true"};
  cmd.image_has_shell = false;
  auto launch = BuildCommand(cmd, *env);
  REQUIRE(launch.ok());
  auto value = [&](const std::string& name) {
    std::string found = "unset";
    for (const std::string& e : launch->env) {
      if (e.rfind(name + "=", 0) == 0) found = e.substr(name.size() + 1);
    }
    return found;
  };
  CHECK(value("CUDA_VISIBLE_DEVICES") == "0");
  CHECK(value("LD_LIBRARY_PATH") == "/mine:/.singularity.d/libs");
  // With a shell, the shim does the same after the image's scripts.
  cmd.image_has_shell = true;
  launch = BuildCommand(cmd, *env);
  REQUIRE(launch.ok());
  // Both are handed over literally ("l:"): node facts are not shell input.
  bool passed = false, gpu_literal = false;
  for (const std::string& a : launch->argv) {
    passed |= a == "l:BERTH_LIBRARY_DIR=/.singularity.d/libs";
    gpu_literal |= a == "l:CUDA_VISIBLE_DEVICES=0";
  }
  CHECK(passed);
  CHECK(gpu_literal);
}
