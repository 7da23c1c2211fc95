// Build args (build.md §1 "Build args") and how scripts are run ("Section
// execution"), rule by rule.
#include <catch2/catch.hpp>

#include "deffile/deffile.h"
#include "tests/build/deffile_test_util.h"

using namespace berth::deffile;
using berth::deffile::testing::Error;
using berth::deffile::testing::Parse;
using berth::deffile::testing::Stages;

TEST_CASE("%arguments defaults are substituted in the whole stage, header included",
          "[buildargs]") {
  auto parsed = Parse(
      "Bootstrap: docker\nFrom: {{ BASE }}:{{TAG}}\n%arguments\n  BASE=alpine\n  TAG = 3.19 \n"
      "%post\n  echo {{BASE}}\n");
  REQUIRE(parsed.ok());
  const Definition& d = parsed->stages[0];
  CHECK(d.From() == "alpine:3.19");
  CHECK(d.post.script == "  echo alpine\n");
  CHECK(d.build_args == std::map<std::string, std::string>{{"BASE", "alpine"}, {"TAG", "3.19"}});
  CHECK(parsed->used_args == std::vector<std::string>{"BASE", "TAG"});
  CHECK(parsed->full_raw.find("From: alpine:3.19\n") != std::string::npos);
}

TEST_CASE("%arguments lines that are no key=value pair are skipped with a warning", "[buildargs]") {
  auto parsed = Parse("Bootstrap: docker\nFrom: a\n%arguments\n  # c\n  junk\n  =v\n  K=\n");
  REQUIRE(parsed.ok());
  CHECK(parsed->warnings ==
        std::vector<std::string>{
            "Skipping \"junk\" in 'arguments' section: \"junk\" is not a key=value pair",
            "Skipping \"=v\" in 'arguments' section: missing key portion in \"=v\""});
}

TEST_CASE("each stage reads its own defaults", "[buildargs]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: {{ X }}\n%arguments\n  X=one\n"
      "Bootstrap: docker\nFrom: {{ X }}\n%arguments\n  X=two\n");
  CHECK(stages[0].From() == "one");
  CHECK(stages[1].From() == "two");
}

TEST_CASE("the command line beats the defaults", "[buildargs]") {
  auto stages = Stages("Bootstrap: docker\nFrom: {{ X }}\n%arguments\n  X=default\n", {"X=cli"});
  CHECK(stages[0].From() == "cli");
}

TEST_CASE("no substitution after a '#' comment on the line, but '#!' is no comment",
          "[buildargs]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\n%post\n  echo {{ A }} # {{ NOT_DEFINED }}\n"
      "  # {{ NOT_DEFINED }}\n  #!{{ A }}\n  x#{{ A }}\n",
      {"A=1"});
  CHECK(stages[0].post.script ==
        "  echo 1 # {{ NOT_DEFINED }}\n  # {{ NOT_DEFINED }}\n  #!1\n  x#1\n");
}

TEST_CASE("an undefined build var", "[buildargs]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%post\n  echo {{ MISSING }}\n") ==
        "t.def:4: build var MISSING is not defined through either --build-arg "
        "(--build-arg-file) or 'arguments' section");
}

TEST_CASE("an unused --build-arg is fatal, or a warning when asked", "[buildargs]") {
  std::string def = "Bootstrap: docker\nFrom: {{ A }}\n";
  CHECK(Error(def, {"A=1", "B=2", "C=3"}) ==
        "unused build args: B C. Use option --warn-unused-build-args to show a warning instead "
        "of a fatal message");
  auto parsed = Parse(def, {"A=1", "B=2"}, /*warn_unused=*/true);
  REQUIRE(parsed.ok());
  CHECK(parsed->warnings == std::vector<std::string>{"Unused build args: B"});
}

TEST_CASE("each --build-arg needs key=value", "[buildargs]") {
  BuildArgs args;
  CHECK(AddBuildArg(args, "NOVALUE").message() ==
        "--build-arg: \"NOVALUE\" is not a key=value pair");
  CHECK(AddBuildArg(args, " =x").message() == "--build-arg: missing key portion in \" =x\"");
  REQUIRE(AddBuildArg(args, "K = a=b ").ok());
  CHECK(args.values.at("K") == "a=b");
}

TEST_CASE("a --build-arg-file holds K=V lines; others are skipped with Apptainer's warning",
          "[buildargs]") {
  BuildArgs args;
  std::vector<std::string> warnings;
  AddBuildArgFile(args, "A=1\r\n\n# c\nB = two words\n", warnings);
  CHECK(args.values == decltype(args.values){{"A", "1"}, {"B", "two words"}});
  CHECK(warnings == std::vector<std::string>{
                        "Skipping \"\" in build arg file: \"\" is not a key=value pair",
                        "Skipping \"# c\" in build arg file: \"# c\" is not a key=value pair"});
}

TEST_CASE("a value's own references resolve one level, never again", "[buildargs][hostile]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\n%arguments\n  SELF={{ SELF }}x\n  A={{ B }}\n  B={{ A }}\n"
      "  G=hello {{ N }}\n  N=world\n%post\n  {{ SELF }} {{ A }} {{ G }}\n");
  CHECK(stages[0].post.script == "  {{ SELF }}xx {{ A }} hello world\n");
}

TEST_CASE("names used only inside another value count as used", "[buildargs]") {
  auto parsed = Parse("Bootstrap: docker\nFrom: {{ G }}\n%arguments\n  G={{ N }}\n", {"N=n"});
  REQUIRE(parsed.ok());
  CHECK(parsed->stages[0].From() == "n");
}

TEST_CASE("a value with a newline: errors after it still name the template's line", "[buildargs]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%post\n  {{ V }}\n  echo after\n", {"V=x\n%bad"}) ==
        "t.def:4: invalid section(s) specified: bad");
}

TEST_CASE("scripts run as /bin/sh -ex [args] script; -c takes the rest", "[exec]") {
  Script s;
  CHECK(*SectionCommand("post", s, "/.post.script") ==
        std::vector<std::string>{"/bin/sh", "-ex", "/.post.script"});
  s.args = "-u -v # a comment";
  CHECK(*SectionCommand("post", s, "/p") ==
        std::vector<std::string>{"/bin/sh", "-ex", "-u", "-v", "/p"});
  s.args = "-e -c /bin/bash  -l";
  CHECK(*SectionCommand("post", s, "/p") ==
        std::vector<std::string>{"/bin/sh", "-ex", "-e", "-c", "/bin/bash -l /p"});
  s.args = "-c";
  CHECK(SectionCommand("setup", s, "/p").status().message() ==
        "bad setup section '-c' parameter: missing arguments");
  CHECK(Error("Bootstrap: docker\nFrom: a\n%setup -c # c\n  x\n") ==
        "t.def:3: while processing section %setup arguments: bad setup section '-c' parameter: "
        "missing arguments");
}

TEST_CASE("%test is image data and build data: one script", "[exec]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\n%test -x\n  true\n");
  CHECK(stages[0].FindScript("test")->script == "  true\n");
  CHECK(stages[0].test.args == "-x");
}
