// Unit tests of `berth inspect`'s output forms against Apptainer's: Go's JSON
// escaping and MarshalIndent layout, the text sections, and Go's decoding
// rules for labels.json and inspect-metadata.json.
#include "client/inspect/inspect_metadata.h"

#include <catch2/catch.hpp>
#include <string>

namespace berth::inspect {
namespace {

TEST_CASE("strings are escaped as Go's encoding/json escapes them", "[inspect]") {
  CHECK(GoJsonQuote("plain") == "\"plain\"");
  CHECK(GoJsonQuote("a\"b\\c\nd\re\tf") == "\"a\\\"b\\\\c\\nd\\re\\tf\"");
  CHECK(GoJsonQuote("<&>") == "\"\\u003c\\u0026\\u003e\"");
  CHECK(GoJsonQuote(std::string("\x01\x1f\x7f", 3)) == "\"\\u0001\\u001f\x7f\"");
  CHECK(GoJsonQuote(std::string("\b\f", 2)) == "\"\\b\\f\"");
  CHECK(GoJsonQuote(std::string("\0", 1)) == "\"\\u0000\"");
  CHECK(GoJsonQuote("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(GoJsonQuote("\xe2\x80\xa8\xe2\x80\xa9") == "\"\\u2028\\u2029\"");
  // Invalid UTF-8: one replacement per bad byte (overlong, surrogate, stray).
  CHECK(GoJsonQuote("\xc0\x80") == "\"\\ufffd\\ufffd\"");
  CHECK(GoJsonQuote("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
  CHECK(GoJsonQuote("a\xff") == "\"a\\ufffd\"");
  CHECK(GoJsonQuote("\xe2\x82") == "\"\\ufffd\\ufffd\"");
}

TEST_CASE("JSON has MarshalIndent's layout and omits empty fields", "[inspect]") {
  Attributes empty;
  CHECK(RenderJson(empty) ==
        "{\n\t\"data\": {\n\t\t\"attributes\": {}\n\t},\n\t\"type\": \"container\"\n}\n");
  Attributes a;
  a.apps["bar"];
  a.apps["foo"].helpfile = "help";
  a.labels = {{"b", "2"}, {"a", "1"}};
  a.runscript = "#!/bin/sh";
  a.startscript = "start";
  CHECK(RenderJson(a) ==
        "{\n"
        "\t\"data\": {\n"
        "\t\t\"attributes\": {\n"
        "\t\t\t\"apps\": {\n"
        "\t\t\t\t\"bar\": {},\n"
        "\t\t\t\t\"foo\": {\n"
        "\t\t\t\t\t\"helpfile\": \"help\"\n"
        "\t\t\t\t}\n"
        "\t\t\t},\n"
        "\t\t\t\"labels\": {\n"
        "\t\t\t\t\"a\": \"1\",\n"
        "\t\t\t\t\"b\": \"2\"\n"
        "\t\t\t},\n"
        "\t\t\t\"runscript\": \"#!/bin/sh\",\n"
        "\t\t\t\"startscript\": \"start\"\n"
        "\t\t}\n"
        "\t},\n"
        "\t\"type\": \"container\"\n"
        "}\n");
}

TEST_CASE("text sections come in Apptainer's order, app values as fallback", "[inspect]") {
  Attributes a;
  a.deffile = "Bootstrap: scratch\n";
  a.test = "t";
  a.environment = {{"/.singularity.d/env/90-environment.sh", "export A=1"}};
  a.labels = {{"z", "1"}, {"Z", "2"}};
  a.apps["foo"].runscript = "foo run";
  a.apps["foo"].test = "foo test";
  CHECK(RenderText(a, "foo", false) ==
        "Bootstrap: scratch\n\n"
        "foo run\n"
        "t\n"
        "=== /.singularity.d/env/90-environment.sh ===\nexport A=1\n\n"
        "Z: 2\nz: 1\n");
  CHECK(RenderText(a, "", true).rfind("foo\nBootstrap", 0) == 0);
  CHECK(RenderText(Attributes(), "", false).empty());
}

TEST_CASE("labels decode as Go's json.Unmarshal into map[string]string", "[inspect]") {
  ParsedLabels ok =
      ParseLabels("{\n\t\"b\": \"2\",\n\t\"a\": \"1\", \"a\": \"again\", \"n\": null}\n");
  CHECK(ok.warning.empty());
  CHECK(ok.labels == StringMap{{"a", "again"}, {"b", "2"}, {"n", ""}});
  ParsedLabels mixed = ParseLabels("{\"a\": \"1\", \"n\": 5, \"o\": {}, \"z\": \"26\"}");
  CHECK(mixed.labels == StringMap{{"a", "1"}, {"z", "26"}});
  CHECK(mixed.warning == "json: cannot unmarshal number into Go value of type string");
  CHECK(ParseLabels("").warning == "unexpected end of JSON input");
  CHECK(ParseLabels("{\"a\":").labels.empty());
  CHECK(ParseLabels("[1]").warning ==
        "json: cannot unmarshal array into Go value of type map[string]string");
  CHECK(ParseLabels("null").warning.empty());
}

TEST_CASE("inspect-metadata.json decodes, and a wrong shape is an error", "[inspect]") {
  auto m = ParseInspectMetadata(
      R"({"data":{"attributes":{"labels":{"a":"b"},"deffile":"def","apps":{"x":{"test":"t"}}}},)"
      R"("type":"container","extra":1})");
  REQUIRE(m.ok());
  CHECK(m->labels == StringMap{{"a", "b"}});
  CHECK(m->deffile == "def");
  CHECK(m->apps.at("x").test == "t");
  CHECK_FALSE(ParseInspectMetadata("{\"data\": ").ok());
  auto wrong = ParseInspectMetadata(R"({"data":{"attributes":{"runscript":5}}})");
  CHECK_FALSE(wrong.ok());
  CHECK(wrong.status().message() ==
        "while decoding inspect metadata: cannot unmarshal number into runscript of type string");
  CHECK_FALSE(ParseInspectMetadata(R"({"data":{"attributes":{"labels":{"a":[]}}}})").ok());
  CHECK(ParseInspectMetadata("{}").ok());
}

}  // namespace
}  // namespace berth::inspect
