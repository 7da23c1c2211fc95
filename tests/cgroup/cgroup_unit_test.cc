// Limit checks and conversions, the client's sizes and TOML, and the stats
// reader on a v2-shaped directory (this host may have no v2 controllers).
#define CATCH_CONFIG_MAIN
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "client/action/cgroups_toml.h"
#include "client/action/limit_flags.h"
#include "daemon/cgroup/ceiling.h"
#include "daemon/cgroup/cgroup_stats.h"
#include "daemon/cgroup/limit_files.h"
#include "daemon/cgroup/resources.h"
#include "daemon/launch/cgroups.h"

using namespace berth::daemon::cgroup;

namespace {

std::string Find(const std::vector<LimitWrite>& writes, const std::string& file) {
  for (const LimitWrite& w : writes) {
    if (w.file == file) return w.value;
  }
  return "<none>";
}

}  // namespace

TEST_CASE("Validate bounds every value") {
  Resources r;
  CHECK(Validate(r).ok());
  CHECK(r.empty());
  r.cpu_shares = 1;
  CHECK_FALSE(Validate(r).ok());
  r.cpu_shares = 1024;
  CHECK(Validate(r).ok());
  r.cpu_quota = 999;
  CHECK_FALSE(Validate(r).ok());
  r.cpu_quota = 50000;
  r.memory_limit = 1024;
  CHECK(std::string(Validate(r).message()).find("--memory 1024 bytes") != std::string::npos);
  r.memory_limit = 64 << 20;
  r.memory_swap = 32 << 20;
  CHECK_FALSE(Validate(r).ok());  // memory+swap below memory
  r.memory_swap = -1;
  CHECK(Validate(r).ok());
  r.blkio_weight = 5;
  CHECK_FALSE(Validate(r).ok());
  r.blkio_weight = 500;
  r.blkio_weight_device = {{1u << 12, 0, 100}};
  CHECK_FALSE(Validate(r).ok());  // no such major
  r.blkio_weight_device = {{8, 0, 100}};
  CHECK(Validate(r).ok());
  r.hugepage_limits = {{"2MB/../x", 1}};
  CHECK_FALSE(Validate(r).ok());
  r.hugepage_limits = {{"2MB", 1 << 21}};
  CHECK(Validate(r).ok());
}

TEST_CASE("cpu lists are digits, commas and ascending ranges") {
  CHECK(IsCpuList("0"));
  CHECK(IsCpuList("0-3,8,10-11"));
  CHECK_FALSE(IsCpuList(""));
  CHECK_FALSE(IsCpuList("3-1"));
  CHECK_FALSE(IsCpuList("0\n1"));
  CHECK_FALSE(IsCpuList("0,,1"));
  CHECK_FALSE(IsCpuList("a"));
}

TEST_CASE("[unified] names controller files and one-line values only") {
  Resources r;
  r.unified["pids.max"] = "512";
  r.unified["memory.high"] = "max";
  CHECK(Validate(r).ok());
  for (const char* key : {"cgroup.procs", "cgroup.subtree_control", "../pids.max", "pids/max",
                          "pids", ".max", "pids.", "cgroup.kill"}) {
    Resources bad;
    bad.unified[key] = "1";
    INFO(key);
    CHECK_FALSE(Validate(bad).ok());
  }
  for (std::string value :
       {std::string("1\n2"), std::string("1\r"), std::string("1\0", 2), std::string("")}) {
    Resources bad;
    bad.unified["pids.max"] = value;
    CHECK_FALSE(Validate(bad).ok());
  }
}

TEST_CASE("v1 and v2 files for Apptainer's flags") {
  Resources r;
  r.cpu_quota = 50000;
  r.cpu_period = 100000;
  r.cpu_shares = 1024;
  r.memory_limit = 64 << 20;
  r.memory_swap = 128 << 20;
  r.pids_limit = 10;
  r.blkio_weight = 500;
  auto v1 = V1Writes(r);
  REQUIRE(v1.ok());
  CHECK(Find(*v1, "cpu.cfs_quota_us") == "50000");
  CHECK(Find(*v1, "cpu.cfs_period_us") == "100000");
  CHECK(Find(*v1, "cpu.shares") == "1024");
  CHECK(Find(*v1, "memory.limit_in_bytes") == "67108864");
  CHECK(Find(*v1, "memory.memsw.limit_in_bytes") == "134217728");
  CHECK(Find(*v1, "pids.max") == "10");
  CHECK(Find(*v1, "blkio.weight") == "500");
  auto v2 = V2Writes(r);
  REQUIRE(v2.ok());
  CHECK(Find(*v2, "cpu.max") == "50000 100000");
  CHECK(Find(*v2, "cpu.weight") == "39");  // runc: 1 + (1024-2)*9999/262142
  CHECK(Find(*v2, "memory.max") == "67108864");
  CHECK(Find(*v2, "memory.swap.max") == "67108864");  // OCI counts memory + swap
  CHECK(Find(*v2, "io.weight") == "default 4950");    // runc: 1 + (500-10)*9999/990
  CHECK(ControllersOf(*v2) == std::vector<std::string>{"cpu", "memory", "pids", "io"});
}

TEST_CASE("a limit a version cannot express is an error, not skipped") {
  Resources r;
  r.disable_oom_killer = true;
  CHECK(V1Writes(r).ok());
  CHECK_FALSE(V2Writes(r).ok());
  Resources u;
  u.unified["pids.max"] = "5";
  CHECK_FALSE(V1Writes(u).ok());
  auto v2 = V2Writes(u);
  REQUIRE(v2.ok());
  CHECK(Find(*v2, "pids.max") == "5");
  CHECK((*v2)[0].controller == "pids");
}

TEST_CASE("hierarchies: v2 and each v1 hierarchy with its controllers") {
  std::string cgroup = "4:memory:/job/task_0\n2:cpu,cpuacct:/job\n1:name=systemd:/x\n0::/job\n";
  std::string mountinfo =
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  auto h = berth::daemon::launch::CgroupHierarchiesFrom(cgroup, mountinfo);
  REQUIRE(h.ok());
  REQUIRE(h->size() == 4);
  CHECK((*h)[0].dir == "/sys/fs/cgroup/memory/job/task_0");
  CHECK((*h)[0].controllers == std::vector<std::string>{"memory"});
  CHECK((*h)[1].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK((*h)[2].controllers.empty());
  CHECK((*h)[3].v2);
  CHECK((*h)[3].dir == "/sys/fs/cgroup/unified/job");
}

TEST_CASE("client sizes as docker's RAMInBytes") {
  using berth::client::ParseRamSize;
  CHECK(*ParseRamSize("512") == 512);
  CHECK(*ParseRamSize("64M") == 64 << 20);
  CHECK(*ParseRamSize("64m") == 64 << 20);
  CHECK(*ParseRamSize("64MB") == 64 << 20);
  CHECK(*ParseRamSize("2GiB") == int64_t{2} << 30);
  CHECK(*ParseRamSize("1.5g") == int64_t{3} << 29);
  CHECK(*ParseRamSize("4k") == 4096);
  CHECK_FALSE(ParseRamSize("").ok());
  CHECK_FALSE(ParseRamSize("12q").ok());
  CHECK_FALSE(ParseRamSize("-5M").ok());
  CHECK_FALSE(ParseRamSize("M").ok());
  CHECK_FALSE(ParseRamSize("99999999999P").ok());
}

TEST_CASE("Apptainer's cgroups TOML") {
  const char* toml = R"([memory]
limit = 536870912
reservation = 268435456
[cpu]
shares = 512
quota = 50000
period = 100000
cpus = "0-1"
[pids]
limit = 64
[blockIO]
weight = 300
[[blockIO.throttleReadBpsDevice]]
major = 8
minor = 0
rate = 1048576
[[hugepageLimits]]
pageSize = "2MB"
limit = 2097152
[[devices]]
allow = true
access = "rwm"
[unified]
"pids.max" = "512"
)";
  auto r = berth::client::ParseCgroupsToml(toml, "limits.toml");
  REQUIRE(r.ok());
  CHECK(r->memory_limit() == 536870912);
  CHECK(r->memory_reservation() == 268435456);
  CHECK(r->cpu_shares() == 512);
  CHECK(r->cpu_quota() == 50000);
  CHECK(r->cpuset_cpus() == "0-1");
  CHECK(r->pids_limit() == 64);
  CHECK(r->blkio_weight() == 300);
  REQUIRE(r->throttle_read_bps_size() == 1);
  CHECK(r->throttle_read_bps(0).value() == 1048576);
  CHECK(r->hugepage_limits(0).page_size() == "2MB");
  CHECK(r->unified().at("pids.max") == "512");
  CHECK_FALSE(r->has_memory_swap());

  for (const char* bad :
       {"[memory]\nkernel = 1\n", "[network]\nclassID = 1\n", "[rdma]\n",
        "[cpu]\nrealtimeRuntime = 1\n", "[memory]\nlimt = 1\n",
        "[[devices]]\nallow = false\naccess = \"rwm\"\n", "[[devices]]\nallow = true\nmajor = 1\n",
        "[pids]\nlimit = \"x\"\n", "[unified]\n\"pids.max\" = 5\n", "[memory\n"}) {
    INFO(bad);
    auto parsed = berth::client::ParseCgroupsToml(bad, "t.toml");
    CHECK_FALSE(parsed.ok());
    CHECK(std::string(parsed.status().message()).rfind("t.toml:", 0) == 0);
  }
}

TEST_CASE("stats from a cgroup v2 directory's files") {
  char dir[] = "/tmp/berth-cgstats-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  auto put = [&dir](const char* name, const char* text) {
    std::ofstream(std::string(dir) + "/" + name) << text;
  };
  put("cgroup.controllers", "cpu memory pids io\n");
  put("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
  put("memory.current", "4096\n");
  put("memory.max", "max\n");
  put("pids.current", "3\n");
  put("pids.max", "10\n");
  put("io.stat", "8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=0\n");
  auto s = ReadCgroupStats({dir});
  REQUIRE(s.ok());
  CHECK(s->cpu_usage_ns == 1500000);
  CHECK(s->memory_usage_bytes == 4096);
  CHECK_FALSE(s->memory_limit_bytes.has_value());
  CHECK(s->pids_current == 3);
  CHECK(s->pids_limit == 10);
  CHECK(s->io_read_bytes == 105);
  CHECK(s->io_write_bytes == 20);
  std::system((std::string("rm -rf ") + dir).c_str());
  CHECK_FALSE(ReadCgroupStats({"/nonexistent/cgroup"}).ok());
}

// --- the caller's ceiling (instances: their cgroup is below berthd's) ---

TEST_CASE("ReadCeiling takes the tightest limit of a cgroup and its ancestors") {
  char tmpl[] = "/tmp/berth-ceiling-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string top = tmpl;
  // top (no cgroup.procs: the mount's parent) / root / job / step
  std::string root = top + "/root", job = root + "/job", step = job + "/step";
  for (const std::string& d : {root, job, step}) {
    REQUIRE(::mkdir(d.c_str(), 0755) == 0);
    std::ofstream(d + "/cgroup.procs") << "";
  }
  std::ofstream(job + "/memory.max") << "1073741824\n";
  std::ofstream(step + "/memory.max") << "max\n";
  std::ofstream(job + "/pids.max") << "500\n";
  std::ofstream(step + "/pids.max") << "100\n";
  std::ofstream(job + "/cpu.max") << "150000 100000\n";
  berth::daemon::launch::CgroupHierarchy h;
  h.dir = step;
  h.v2 = true;
  Ceiling c = ReadCeiling({h});
  CHECK(c.memory_bytes == 1073741824);
  CHECK(c.pids == 100);
  REQUIRE(c.cpus.has_value());
  CHECK(*c.cpus == Approx(1.5));
  std::system(("rm -rf " + top).c_str());
}

TEST_CASE("TightenTo lowers what asks for more or nothing, never raises") {
  Ceiling c;
  c.memory_bytes = 256 << 20;
  c.pids = 100;
  c.cpus = 1.5;
  Resources more;
  more.memory_limit = int64_t{1} << 30;
  more.pids_limit = 1000;
  more.cpu_quota = 400000;  // 4 cpus
  auto notes = TightenTo(c, more);
  REQUIRE(notes.ok());
  CHECK(more.memory_limit == 256 << 20);
  CHECK(more.pids_limit == 100);
  CHECK(more.cpu_quota == 150000);
  CHECK(notes->size() == 3);

  Resources none;
  REQUIRE(TightenTo(c, none).ok());
  CHECK(none.memory_limit == 256 << 20);
  CHECK(none.pids_limit == 100);

  Resources less;
  less.memory_limit = 64 << 20;
  less.pids_limit = 10;
  less.cpu_quota = 50000;
  auto quiet = TightenTo(c, less);
  REQUIRE(quiet.ok());
  CHECK(quiet->empty());
  CHECK(less.memory_limit == 64 << 20);
  CHECK(less.pids_limit == 10);
  CHECK(less.cpu_quota == 50000);

  Resources unified;
  unified.unified["memory.max"] = "max";
  CHECK_FALSE(TightenTo(c, unified).ok());

  Resources untouched;
  REQUIRE(TightenTo(Ceiling{}, untouched).ok());
  CHECK(untouched.empty());
}
