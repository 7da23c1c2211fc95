// Instance names, globs and the daemon's records (daemon/instance/).
#include <unistd.h>

#include <catch2/catch.hpp>

#include "daemon/instance/instance_name.h"
#include "daemon/instance/instance_state.h"
#include "daemon/policy/config.h"

namespace berth::daemon::instance {
namespace {

TEST_CASE("instance names follow Apptainer's ^[a-zA-Z0-9._-]+$", "[instance]") {
  CHECK(CheckName("web").ok());
  CHECK(CheckName("a.b_c-D9").ok());
  CHECK(CheckName(std::string(kMaxNameBytes, 'x')).ok());
  for (const std::string& bad :
       {std::string(), std::string("a/b"), std::string(".."), std::string("."), std::string("a b"),
        std::string("a\0b", 3), std::string(kMaxNameBytes + 1, 'x'), std::string("é"),
        std::string("a*")}) {
    absl::Status st = CheckName(bad);
    CHECK_FALSE(st.ok());
    CHECK(std::string(st.message()).find('\n') == std::string::npos);
  }
}

TEST_CASE("instance globs select names", "[instance]") {
  CHECK(CheckPattern("a*").ok());
  CHECK(CheckPattern("").ok());
  CHECK_FALSE(CheckPattern("../*").ok());
  CHECK_FALSE(CheckPattern(std::string(kMaxPatternBytes + 1, 'a')).ok());
  CHECK(NameMatches("a*", "a1"));
  CHECK_FALSE(NameMatches("a*", "b1"));
  CHECK(NameMatches("", "anything"));
  CHECK(NameMatches("web", "web"));
  CHECK_FALSE(NameMatches("web", "web2"));
}

TEST_CASE("an instance record survives its JSON, and a bad one is refused", "[instance]") {
  InstanceRecord r;
  r.name = "web";
  r.uid = 1000;
  r.gid = 100;
  r.user = "u";
  r.image = "/a \"b\".sif";
  r.pid = 4242;
  r.start_ticks = 123456789;
  r.mnt_ns_inode = 4026531840u;
  r.fakeroot = true;
  r.user_ns = true;
  r.home = "/root";
  auto back = RecordFromJson(RecordToJson(r));
  REQUIRE(back.ok());
  CHECK(back->name == r.name);
  CHECK(back->image == r.image);
  CHECK(back->pid == r.pid);
  CHECK(back->start_ticks == r.start_ticks);
  CHECK(back->mnt_ns_inode == r.mnt_ns_inode);
  CHECK(back->fakeroot);
  CHECK_FALSE(RecordFromJson("not json").ok());
  CHECK_FALSE(RecordFromJson("{}").ok());
  r.name = "../x";
  CHECK_FALSE(RecordFromJson(RecordToJson(r)).ok());
  r.name = "web";
  r.pid = 1;
  CHECK_FALSE(RecordFromJson(RecordToJson(r)).ok());
}

TEST_CASE("a record is believed only for the same live process", "[instance]") {
  // This process is no berth init: its own record is refused even with the
  // right start time and mount namespace.
  InstanceRecord r;
  r.name = "self";
  r.pid = ::getpid();
  auto ticks = ProcessStartTicks(r.pid);
  REQUIRE(ticks.ok());
  auto mnt = NamespaceInode(r.pid, "mnt");
  REQUIRE(mnt.ok());
  r.mnt_ns_inode = *mnt;
  r.start_ticks = *ticks + 1;
  CHECK_FALSE(VerifyInstanceProcess(r).ok());
  r.start_ticks = *ticks;
  auto self = VerifyInstanceProcess(r);
  REQUIRE_FALSE(self.ok());
  CHECK(std::string(self.status().message()).find("not a berth init") != std::string::npos);
}

TEST_CASE("max_instances_per_user is read from [limits]", "[instance][config]") {
  auto c = policy::ParseConfig("[limits]\nmax_instances_per_user = 3\n", "berth.conf");
  REQUIRE(c.ok());
  CHECK(c->max_instances_per_user == 3);
  CHECK(policy::ParseConfig("", "berth.conf")->max_instances_per_user == 64);
  CHECK_FALSE(policy::ParseConfig("[limits]\nmax_instances_per_user = -1\n", "berth.conf").ok());
}

}  // namespace
}  // namespace berth::daemon::instance
