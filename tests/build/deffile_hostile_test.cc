// Hostile definition files: each gets a one-line error naming its line, and
// none makes the parser crash, hang or take more than linear time (the
// limits are in deffile.h). Sizes are chosen to cross the limits, not to
// time anything.
#include <catch2/catch.hpp>
#include <string>

#include "deffile/deffile.h"
#include "tests/build/deffile_test_util.h"

using namespace berth::deffile;
using berth::deffile::testing::Error;
using berth::deffile::testing::Parse;

namespace {

std::string Repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST_CASE("a 10 MB line", "[hostile]") {
  std::string def = "Bootstrap: scratch\n%post\n  echo " + std::string(10 << 20, 'x') + "\n";
  CHECK(Error(def) ==
        "t.def:3: line is longer than 1 MiB (the limit for one line of a definition file)");
}

TEST_CASE("a file over the size limit", "[hostile]") {
  std::string def = "Bootstrap: scratch\n%post\n" +
                    Repeat("  echo " + std::string(90, 'x') + "\n", kMaxFileBytes / 97 + 1);
  CHECK(Error(def) == "t.def: larger than 8 MiB (the limit for a definition file)");
}

TEST_CASE("NUL bytes", "[hostile]") {
  CHECK(Error(std::string("Bootstrap: scratch\n%post\n  echo a") + '\0' + "b\n") ==
        "t.def:3: NUL byte: a definition file is text");
}

TEST_CASE("10,000 stages", "[hostile]") {
  CHECK(Error(Repeat("Bootstrap: scratch\n%post\n  true\n", 10000)) ==
        "t.def:385: more than 128 stages (the limit per file)");
  // Exactly at the limit is fine.
  auto parsed = Parse(Repeat("Bootstrap: scratch\n", kMaxStages));
  REQUIRE(parsed.ok());
  CHECK(parsed->stages.size() == kMaxStages);
}

TEST_CASE("tens of thousands of sections", "[hostile]") {
  CHECK(Error("Bootstrap: scratch\n" + Repeat("%post\n  true\n", 20000)) ==
        "t.def:20002: more than 10000 sections (the limit per file)");
}

TEST_CASE("an unknown section among thousands of valid ones", "[hostile]") {
  CHECK(Error("Bootstrap: scratch\n" + Repeat("%post\n", 5000) + "%evil\n") ==
        "t.def:5002: invalid section(s) specified: evil");
}

TEST_CASE("build args that refer to themselves cannot loop or grow", "[hostile]") {
  // Apptainer re-replaces the text a replacement made: 30 such references
  // in one value would grow it to 2^30 copies.
  std::string refs = Repeat("{{ A }}", 30);
  auto parsed = Parse("Bootstrap: scratch\n%post\n  " + refs + "\n", {"A=" + refs});
  REQUIRE(parsed.ok());
  CHECK(parsed->stages[0].post.script.size() == 2 + 30 * 30 * 30 * 7 + 1);
}

TEST_CASE("build args that would expand past the size limit", "[hostile]") {
  std::string def = "Bootstrap: scratch\n%post\n" + Repeat("  {{ A }}\n", 10000);
  CHECK(Error(def, {"A=" + std::string(4096, 'v')}) ==
        "t.def:2049: build var A makes the definition file larger than 8 MiB");
}

TEST_CASE("many commented-out templates on one long line stay linear", "[hostile]") {
  std::string def = "Bootstrap: scratch\n%post\n  # " + Repeat("{{ A }}", 140000) + "\n";
  auto parsed = Parse(def);
  REQUIRE(parsed.ok());
}

TEST_CASE("pathological %files lines stay linear", "[hostile]") {
  std::string braces = "  " + std::string(900000, '{') + "\n";
  std::string templates = "  a" + Repeat("{{a}", 200000) + "\n";
  std::string quote = "  \"" + std::string(900000, ' ') + "x\n";
  auto parsed = Parse("Bootstrap: scratch\n%files\n" + braces + templates + quote);
  REQUIRE(parsed.ok());
  const auto& files = parsed->stages[0].files[0].files;
  REQUIRE(files.size() == 3);
  CHECK(files[1].source.size() == 1 + 4 * 200000);  // kept whole, as Apptainer's regexp does
  CHECK(files[2].source == "x");
}

TEST_CASE("hundreds of thousands of header keys", "[hostile]") {
  std::string def = "Bootstrap: zypper\nMirrorURL: m\n";
  for (int i = 0; i < 200000; ++i) def += "OtherURL" + std::to_string(i) + ": u\n";
  auto parsed = Parse(def);
  REQUIRE(parsed.ok());
  auto urls = parsed->stages[0].OtherUrls();
  CHECK(urls.size() == 200000);
}

TEST_CASE("control characters in names stay on one line", "[hostile]") {
  CHECK(Error("Bootstrap: docker\nFrom: a\n%bad\x1b[31mname\n") ==
        "t.def:3: invalid section(s) specified: bad\\x1b[31mname");
  CHECK(Error("Bootstrap: docker\nFr\rom: a\n") ==
        "t.def:2: failed to parse deffile header: invalid header keyword found: fr\\x0dom");
}

TEST_CASE("newlines in build arg names and in the file name stay escaped", "[hostile]") {
  BuildArgs args;
  REQUIRE(AddBuildArg(args, "A\nB=1").ok());
  auto parsed = ParseDefinitionFile("Bootstrap: scratch\n", "t\n.def", args);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().message() ==
        "unused build args: A\\nB. Use option --warn-unused-build-args to show a warning "
        "instead of a fatal message");
  parsed = ParseDefinitionFile("Bootstrap: scratch\n%bad\n", "t\n.def", args);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().message() == "t\\n.def:2: invalid section(s) specified: bad");
}
