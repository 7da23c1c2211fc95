// One test per parser rule of build.md §1, with Apptainer's exact message
// where the rule is an error. Inputs are written for these tests.
#include <catch2/catch.hpp>

#include "deffile/deffile.h"
#include "tests/build/deffile_test_util.h"

using namespace berth::deffile;
using berth::deffile::testing::Error;
using berth::deffile::testing::Parse;
using berth::deffile::testing::Stages;

TEST_CASE("stages split before column-0 bootstrap: lines, in any case", "[stages]") {
  auto stages =
      Stages("Bootstrap: docker\nFrom: a\nbootstrap: docker\nFrom: b\nBOOTSTRAP: docker\n");
  REQUIRE(stages.size() == 3);
  CHECK(stages[1].From() == "b");
  CHECK(stages[2].first_line == 5);
  CHECK(stages[2].raw == "BOOTSTRAP: docker\n");
}

TEST_CASE("text above the first bootstrap: line is a chunk; empty chunks are dropped", "[stages]") {
  auto parsed = Parse("# about this file\n\nBootstrap: docker\nFrom: a\n");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->stages.size() == 1);
  CHECK(parsed->stages[0].first_line == 3);
  // Def.FILE keeps the dropped comment chunk.
  CHECK(parsed->full_raw == "# about this file\n\nBootstrap: docker\nFrom: a\n");
  CHECK(Error("# only a comment\n\n") == "t.def: no stages found in definition file");
  CHECK(Error("") == "t.def: no stages found in definition file");
}

TEST_CASE("a column-0 bootstrap: in a heredoc starts a stage; an indented one stays script",
          "[stages]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%post\n  cat <<EOF\nbootstrap: x\nEOF\n") ==
        "t.def:6: failed to parse deffile header: header key EOF had no val");
  auto stages = Stages("Bootstrap: docker\nFrom: a\n%post\n  cat <<EOF\n  Bootstrap: x\nEOF\n");
  REQUIRE(stages.size() == 1);
  CHECK(stages[0].post.script == "  cat <<EOF\n  Bootstrap: x\nEOF\n");
}

TEST_CASE("a comment above the second bootstrap: belongs to the stage before", "[stages]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\n# about b\nBootstrap: docker\nFrom: b\n");
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].raw == "Bootstrap: docker\nFrom: a\n# about b\n");
}

TEST_CASE("'Bootstrap : docker' is a header key but splits nothing", "[stages]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\nBootstrap : library\n");
  REQUIRE(stages.size() == 1);
  CHECK(stages[0].Bootstrap() == "library");
}

TEST_CASE("with several stages each needs a header", "[stages]") {
  CHECK(Error("%post\n  echo\nBootstrap: docker\nFrom: a\n") ==
        "t.def:1: multiple stages detected, all must have headers");
}

TEST_CASE("CRLF files parse like LF files", "[lines]") {
  auto lf = Stages("Bootstrap: docker\nFrom: a\n%post\n  echo 1\n%labels\n  A b\n");
  auto crlf = Stages("Bootstrap: docker\r\nFrom: a\r\n%post\r\n  echo 1\r\n%labels\r\n  A b\r\n");
  CHECK(crlf[0].From() == "a");
  CHECK(crlf[0].post.script == lf[0].post.script);
  CHECK(crlf[0].labels == lf[0].labels);
  CHECK(crlf[0].raw.find('\r') != std::string::npos);  // raw stays as written
}

TEST_CASE("a section opens at a line whose first word starts with %", "[sections]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\n%%POST -c /bin/bash\n  echo\n");
  CHECK(stages[0].post.args == "-c /bin/bash");
  CHECK(stages[0].post.script == "  echo\n");
  CHECK(stages[0].post.line == 3);
}

TEST_CASE("app sections need an app name", "[sections]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%apprun\n  echo\n") ==
        "t.def:3: app section apprun: could not be split into section name and app name");
}

TEST_CASE("unknown sections are fatal, all of them named", "[sections]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%bogus\n%post\n  x\n%other args\n%bogus\n") ==
        "t.def:3: invalid section(s) specified: bogus, other");
}

TEST_CASE("an indented %word line in a script fails, naming its line", "[sections]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%post\n  echo\n    %define x 1\n") ==
        "t.def:5: invalid section(s) specified: %define (indented)");
}

TEST_CASE("a tab after the section name is part of the name", "[sections]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%post\t-c sh\n") ==
        "t.def:3: invalid section(s) specified: post\\t-c");
}

TEST_CASE("repeated sections concatenate; args change only when the later one has some",
          "[sections]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\n%post -x\n  one\n%post\n  two\n%runscript a\n  r1\n"
      "%runscript b\n  r2\n");
  CHECK(stages[0].post.args == "-x");
  CHECK(stages[0].post.script == "  one\n  two\n");
  CHECK(stages[0].runscript.args == "b");
  CHECK(stages[0].runscript.script == "  r1\n  r2\n");
  CHECK(stages[0].post.line == 3);
}

TEST_CASE("bodies are verbatim: indentation and the trailing newlines stay", "[sections]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\n%runscript\n\t  echo  \n\n\n");
  CHECK(stages[0].runscript.script == "\t  echo  \n\n\n");
}

TEST_CASE("in a header-less file the first section is trimmed", "[sections]") {
  auto stages = Stages("  %runscript\n  echo hi  \n\n%post\n  echo p\n\n");
  CHECK(stages[0].runscript.script == "  echo hi");
  CHECK(stages[0].post.script == "  echo p\n\n");
  CHECK(stages[0].header.empty());
  CHECK(Error("%runscript\n\n") ==
        "t.def:1: section %runscript: could not be split into section name and body");
}

TEST_CASE("header lines are trimmed, comments skipped, text after # cut", "[header]") {
  auto stages = Stages(
      "  # comment\n\nBootstrap: docker\n   From:   reg/app#frag  \n# another\nStage: s # c\n");
  CHECK(stages[0].From() == "reg/app");
  CHECK(stages[0].StageName() == "s");
  CHECK(stages[0].header.Find("from")->line == 4);
}

TEST_CASE("a header line without ':' has no value", "[header]") {
  CHECK(Error("Bootstrap docker\n") ==
        "t.def:1: failed to parse deffile header: header key Bootstrap docker had no val");
  CHECK(Error("Bootstrap: docker\nFrom alpine # tag\n") ==
        "t.def:2: failed to parse deffile header: header key From alpine  had no val");
}

TEST_CASE("header keys are lower-cased and checked against the list", "[header]") {
  auto stages = Stages("BootStrap: docker\nFROM: a\nOtherURL12: u\n");
  CHECK(stages[0].header.entries()[1].key == "from");
  CHECK(stages[0].header.Has("otherurl12"));
  CHECK(Error("Bootstrap: yum\nExclude: kernel\n") ==
        "t.def:2: failed to parse deffile header: invalid header keyword found: exclude");
  CHECK(Error("Bootstrap: yum\nMetaLink: x\n") ==
        "t.def:2: failed to parse deffile header: invalid header keyword found: metalink");
  CHECK(Error("Bootstrap: zypper\nOtherURL: x\n") ==
        "t.def:2: failed to parse deffile header: invalid header keyword found: otherurl");
}

TEST_CASE("a duplicate header key: the last value wins, in the first one's place", "[header]") {
  auto stages = Stages("Bootstrap: docker\nFrom: a\nStage: s\nFrom: b\n");
  CHECK(stages[0].From() == "b");
  CHECK(stages[0].header.entries()[1].key == "from");
  CHECK(stages[0].header.entries()[1].line == 4);
}

TEST_CASE("a value ending in \\ continues on the next line; \\n\\ puts a newline", "[header]") {
  auto stages = Stages("Bootstrap: yum\nInclude: a \\\n   b \\\n c\nSetOpt: x=1\\n\\\ny=2\n");
  CHECK(stages[0].Include() == "a b c");
  CHECK(stages[0].SetOpt() == "x=1\ny=2");
  CHECK(stages[0].header.Find("include")->line == 2);
}

TEST_CASE("a continuation nothing continues is an error (Apptainer drops or crashes)", "[header]") {
  CHECK(Error("Bootstrap: docker\nFrom: a \\\n\n%post\n") ==
        "t.def:2: failed to parse deffile header: unterminated continuation: the value of "
        "\"from\" ends in '\\' but no header line continues it");
  CHECK(Error("Bootstrap: docker\nFrom: a \\\n# c\nStage: x\n") ==
        "t.def:2: failed to parse deffile header: unterminated continuation: the value of "
        "\"from\" ends in '\\' but no header line continues it");
  CHECK(Error("Bootstrap: docker\nFrom: a \\") ==
        "t.def:2: failed to parse deffile header: unterminated continuation: the value of "
        "\"from\" ends in '\\' but no header line continues it");
}

TEST_CASE("%files sections with the same args merge, in first-seen order", "[files]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\nStage: one\n%files\n  /a\nBootstrap: docker\nFrom: b\n"
      "%files from one\n  /x\n%files\n  # skipped\n  /h\n%files from one\n  /y /z\n");
  const auto& files = stages[1].files;
  REQUIRE(files.size() == 2);
  CHECK(files[0].args == "from one");
  CHECK(files[0].from_stage == "one");
  REQUIRE(files[0].files.size() == 2);
  CHECK(files[0].files[1].source == "/y");
  CHECK(files[0].files[1].destination == "/z");
  CHECK(files[0].files[1].line == 14);
  CHECK(files[1].from_stage.empty());
  CHECK(files[1].files[0].source == "/h");
}

TEST_CASE("%files lines: source, destination (empty: the same path), the rest dropped", "[files]") {
  auto stages =
      Stages("Bootstrap: docker\nFrom: a\n%files\n  /src\n  /src /dst extra words\n  /s # c\n");
  const auto& f = stages[0].files[0].files;
  REQUIRE(f.size() == 3);
  CHECK(f[0].destination.empty());
  CHECK(f[1].destination == "/dst");
  CHECK(f[2].destination == "#");  // the comment's '#' is the second token
}

TEST_CASE("%files: only double quotes are removed", "[files]") {
  auto stages =
      Stages("Bootstrap: docker\nFrom: a\n%files\n  \"a b\" \"c d\"\n  'a b' /dst\n  \"q\"x y\n");
  const auto& f = stages[0].files[0].files;
  CHECK(f[0].source == "a b");
  CHECK(f[0].destination == "c d");
  CHECK(f[1].source == "'a b");
  CHECK(f[1].destination == "' /dst");
  CHECK(f[2].source == "q");  // "q" then x: two tokens
  CHECK(f[2].destination == "x");
}

TEST_CASE("%files args: none copy from the host, 'from STAGE' from a stage, others fail",
          "[files]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%files from\n  /x\n") ==
        "t.def:3: %files from: expected no args (copy from the host) or \"from STAGE\"");
  CHECK(Error("Bootstrap: docker\nFrom: a\n%files from a b\n  /x\n") ==
        "t.def:3: %files from a b: expected no args (copy from the host) or \"from STAGE\"");
  auto stages = Stages("Bootstrap: docker\nFrom: a\n%files # just a comment\n  /x\n");
  CHECK(stages[0].files[0].from_stage.empty());
}

TEST_CASE("%files from an unknown stage", "[files]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%files from nowhere\n  /x\n") ==
        "t.def:3: stage nowhere was not found");
}

TEST_CASE("%labels split at the first space; the last duplicate wins", "[labels]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\n%labels\n  Author Jane Doe\n  Version=1.0\n  # c\n"
      "  Author John\n");
  CHECK(stages[0].labels.at("Author") == "John");
  CHECK(stages[0].labels.at("Version=1.0").empty());
  CHECK(stages[0].labels.size() == 2);
}

TEST_CASE("apps: sections by name, in the order the file names the apps", "[apps]") {
  auto stages = Stages(
      "Bootstrap: docker\nFrom: a\n%apprun zed\n  z\n%appinstall alpha\n  make\n"
      "%appinstall zed\n  build\n%apprun zed\n  z2\n");
  REQUIRE(stages[0].apps.size() == 2);
  CHECK(stages[0].apps[0].name == "zed");
  CHECK(stages[0].apps[0].line == 3);
  CHECK(*stages[0].apps[0].Find("apprun") == "  z\n  z2\n");
  CHECK(*stages[0].FindApp("alpha")->Find("appinstall") == "  make\n");
  CHECK(stages[0].FindApp("alpha")->Find("apprun") == nullptr);
}

TEST_CASE("app sections in upper case are not app sections", "[apps]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%APPRUN foo\n  x\n") ==
        "t.def:3: invalid section(s) specified: APPRUN foo");
}

TEST_CASE("app names that are no directory name are refused", "[apps]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%apprun ..\n") ==
        "t.def:3: app section apprun: app name \"..\" is not a directory name (no '/', '.', "
        "'..' or control characters)");
  CHECK(Error("Bootstrap: docker\nFrom: a\n%apphelp a/b\n").find("app name \"a/b\"") !=
        std::string::npos);
  CHECK(Error("Bootstrap: docker\nFrom: a\n%apprun  foo\n") ==
        "t.def:3: app section apprun: could not be split into section name and app name");
}
