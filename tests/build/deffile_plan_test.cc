// The build plan (Apptainer's order, --section/--notest/--update), the
// bootstrap checks, the typed header accessors and the JSON shape.
#include <catch2/catch.hpp>

#include "deffile/bootstrap.h"
#include "deffile/deffile.h"
#include "deffile/json.h"
#include "deffile/plan.h"
#include "tests/build/deffile_test_util.h"

using namespace berth::deffile;
using berth::deffile::testing::Stages;

namespace {

const char kEverySection[] =
    "Bootstrap: docker\nFrom: a\nStage: one\n"
    "Bootstrap: docker\nFrom: b\n"
    "%test\n  t\n%runscript\n  r\n%post\n  p\n%files\n  /h\n%setup\n  s\n"
    "%files from one\n  /x\n%pre\n  pre\n%environment\n  e\n%help\n  h\n%startscript\n  st\n"
    "%labels\n  A b\n%appinstall foo\n  i\n";

std::vector<std::string> Names(const std::vector<Step>& steps) {
  std::vector<std::string> names;
  for (const Step& s : steps) {
    std::string name = s.section.empty() ? (s.app ? "app" : "bootstrap") : s.section;
    if (!s.skipped.empty()) name += " (" + s.skipped + ")";
    names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("the plan follows Apptainer's order, whatever the file's order", "[plan]") {
  auto stages = Stages(kEverySection);
  std::vector<Step> steps = PlanStage(stages[1], {});
  CHECK(Names(steps) == std::vector<std::string>{"pre", "bootstrap", "files", "setup", "files",
                                                 "post", "environment", "runscript", "startscript",
                                                 "test", "help", "labels", "app", "test"});
  CHECK(steps[0].on_host);
  CHECK(steps[2].kind == StepKind::kFilesFromStage);
  CHECK(steps[3].on_host);
  CHECK(steps[4].kind == StepKind::kFilesFromHost);
  CHECK_FALSE(steps[5].on_host);
  CHECK(steps[13].kind == StepKind::kTest);
}

TEST_CASE("the options --section --notest and --update skip steps and say why", "[plan]") {
  auto stages = Stages(kEverySection);
  PlanOptions options;
  options.sections = {"post", "test"};
  options.notest = true;
  options.update = true;
  std::vector<std::string> names = Names(PlanStage(stages[1], options));
  CHECK(names[0] == "pre (--section post,test)");
  CHECK(names[1] == "bootstrap (--update: the existing sandbox is the base)");
  CHECK(names[5] == "post");
  CHECK(names[9] == "test");  // the file /.singularity.d/test is still written
  CHECK(names[13] == "test (--notest)");
  options = {};
  options.sections = {"none"};
  CHECK(Names(PlanStage(stages[1], options))[5] == "post (--section none)");
}

TEST_CASE("the values of --section", "[plan]") {
  CHECK(CheckSectionsOption({"all"}).ok());
  CHECK(CheckSectionsOption({"post", "files"}).ok());
  CHECK(CheckSectionsOption({"all", "post"}).message() ==
        "section specification error: cannot have all and any other option");
  CHECK(CheckSectionsOption({"post", "none"}).message() ==
        "section specification error: cannot have none and any other option");
  CHECK(CheckSectionsOption({"psot"}).message().find("--section psot: no such section") == 0);
}

TEST_CASE("bootstrap checks name the header line", "[bootstrap]") {
  auto check = [](const std::string& def) {
    return std::string(CheckBootstrap(Stages(def)[0], "t.def").message());
  };
  CHECK(check("%post\n  x\n") == "t.def:1: no bootstrap specification found");
  CHECK(check("Bootstrap: Docker\nFrom: a\n") == "t.def:1: invalid build source Docker");
  CHECK(check("Bootstrap: library\nFrom: a\n") ==
        "t.def:1: Bootstrap: library is not supported by berth: use oras:// or docker://");
  CHECK(check("Bootstrap: shub\nFrom: a\n") ==
        "t.def:1: Bootstrap: shub is not supported by berth: use oras:// or docker://");
  CHECK(check("Bootstrap: docker\n") == "t.def:1: Bootstrap: docker needs a value for From:");
  CHECK(check("Bootstrap: debootstrap\nMirrorURL: m\n") ==
        "t.def:1: Bootstrap: debootstrap needs a value for OSVersion:");
  CHECK(check("Bootstrap: localimage\nFrom: a.sif\nFingerprints: abc, # c\n") ==
        "t.def:3: Fingerprints: \"abc\" is not a fingerprint (40 hexadecimal digits)");
  CHECK(check("Bootstrap: scratch\n").empty());
  CHECK(check("Bootstrap: dnf\nMirrorURL: m\n").empty());
}

TEST_CASE("Fingerprints: cut at '#', split on ',', trimmed", "[header]") {
  auto stages = Stages(
      "Bootstrap: localimage\nFrom: a.sif\nFingerprints: "
      "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84 ,8883491f4268f173c6e5dc49edece4f3f38d871e# x\n");
  CHECK(stages[0].Fingerprints() ==
        std::vector<std::string>{"12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84",
                                 "8883491f4268f173c6e5dc49edece4f3f38d871e"});
  CHECK(CheckBootstrap(stages[0], "t.def").ok());
  CHECK(Stages("Bootstrap: scratch\nFingerprints:\n")[0].Fingerprints().empty());
}

TEST_CASE("OtherURL<N> keys come back in numeric order", "[header]") {
  auto stages = Stages("Bootstrap: zypper\nOtherURL10: c\nOtherURL2: b\nOtherURL0: a\n");
  CHECK(stages[0].OtherUrls() == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("JSON: a top-level array; empty parts as Apptainer's encoder writes them", "[json]") {
  std::string json = DefinitionsToJson(Stages("%runscript\n  x\n\n%files\n"));
  CHECK(json.rfind("[\n  {\n    \"header\": null,\n", 0) == 0);
  CHECK(
      json.find("\"files\": [\n        {\n          \"args\": \"\",\n          \"files\": null") !=
      std::string::npos);
  CHECK(json.find("customData") == std::string::npos);
  CHECK(json.find("appOrder") == std::string::npos);
  CHECK(json.find("\"labels\": {}") != std::string::npos);
  std::string html = DefinitionsToJson(Stages("Bootstrap: docker\nFrom: a<b>&c\n"));
  CHECK(html.find("\"from\": \"a\\u003cb\\u003e\\u0026c\"") != std::string::npos);
  CHECK(html.find("\"files\": [],") != std::string::npos);
}

TEST_CASE("what the builder builds today, and a one-line refusal for the rest") {
  auto supports = [](const std::string& text) {
    return CheckBuilderSupports(ParseDefinitionFile(text, "t.def", {})->stages, "t.def");
  };
  CHECK(supports("Bootstrap: localimage\nFrom: a.sif\n%post\n  p\n%files\n  a /b\n").ok());
  // The agent's name is case-sensitive, as in Apptainer (the key is not).
  CHECK(supports("bootstrap: localimage\nFrom: a.sif\n").ok());
  CHECK(std::string(supports("Bootstrap: LocalImage\nFrom: a.sif\n").message()) ==
        "t.def:1: invalid build source LocalImage");
  CHECK(supports("Bootstrap: scratch\n%files\n  a /b\n").ok());
  CHECK(supports("Bootstrap: docker\nFrom: alpine\n").ok());
  CHECK(supports("Bootstrap: oci-archive\nFrom: a.tar\n").ok());
  CHECK(
      supports("Bootstrap: oras\nFrom: r/a:1\nFingerprints: " + std::string(40, 'A') + "\n").ok());
  CHECK(std::string(supports("Bootstrap: library\nFrom: a/b\n").message()) ==
        "t.def:1: Bootstrap: library is not supported by berth: use oras:// or docker://");
  CHECK(std::string(supports("Bootstrap: shub\nFrom: a/b\n").message()) ==
        "t.def:1: Bootstrap: shub is not supported by berth: use oras:// or docker://");
  CHECK(!supports("Bootstrap: nonsense\n").ok());
  CHECK(supports("Bootstrap: busybox\nMirrorURL: http://x/\n").ok());
  // The host tools' bases (daemon/build/bootstrap_tool.h).
  CHECK(supports("Bootstrap: yum\nMirrorURL: http://x/\n").ok());
  CHECK(supports("Bootstrap: dnf\nMirrorURL: http://x/\n").ok());
  CHECK(supports("Bootstrap: zypper\nMirrorURL: http://x/\n").ok());
  CHECK(supports("Bootstrap: debootstrap\nMirrorURL: http://x/\nOSVersion: bookworm\n").ok());
  CHECK(supports("Bootstrap: localimage\nFrom: a\nStage: one\nBootstrap: scratch\n%files from "
                 "one\n  /a /b\n")
            .ok());
  // Every stage is checked: a bad one is refused wherever it is.
  CHECK(std::string(supports("Bootstrap: scratch\nStage: one\nBootstrap: debootstrap\n"
                             "MirrorURL: http://x/\n")
                        .message()) ==
        "t.def:3: Bootstrap: debootstrap needs a value for OSVersion:");
  CHECK(supports("Bootstrap: localimage\nFrom: a\n%apprun x\n  r\n").ok());
  CHECK(supports("Bootstrap: localimage\nFrom: a\n%pre\n  p\n").ok());
}
