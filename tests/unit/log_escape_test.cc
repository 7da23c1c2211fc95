// EscapeForLog: what a caller sends cannot start a log line of its own or
// hide what a line says (review finding 9).
#include "common/log_escape.h"

#include <catch2/catch.hpp>

namespace berth {
namespace {

TEST_CASE("printable text and UTF-8 pass unchanged", "[log]") {
  CHECK(EscapeForLog("/scratch/alice/my image.sif") == "/scratch/alice/my image.sif");
  CHECK(EscapeForLog("/données/été.sif") == "/données/été.sif");
  CHECK(EscapeForLog("") == "");
}

TEST_CASE("line breaks and control characters are escaped", "[log][hostile]") {
  CHECK(EscapeForLog("a\nb") == "a\\nb");
  CHECK(EscapeForLog("a\r\tb") == "a\\r\\tb");
  CHECK(EscapeForLog("\x1b[2Jx") == "\\e[2Jx");
  CHECK(EscapeForLog(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(EscapeForLog("\x7f") == "\\x7f");
  std::string forged = EscapeForLog("x.sif\n[2026-12-02 10:00:00.000] [berthd] [info] forged");
  CHECK(forged.find('\n') == std::string::npos);
}

TEST_CASE("an escape cannot be forged: the backslash is escaped", "[log][hostile]") {
  CHECK(EscapeForLog("a\\nb") == "a\\\\nb");
}

TEST_CASE("invalid UTF-8, C1 controls and reordering characters are escaped", "[log][hostile]") {
  CHECK(EscapeForLog("\xff\xfe") == "\\xff\\xfe");
  CHECK(EscapeForLog("\xc0\xaf") == "\\xc0\\xaf");                           // overlong '/'
  CHECK(EscapeForLog("\xed\xa0\x80") == "\\xed\\xa0\\x80");                  // a surrogate
  CHECK(EscapeForLog("\xe2\x82") == "\\xe2\\x82");                           // truncated
  CHECK(EscapeForLog("a\xc2\x85z") == "a\\u{0085}z");                        // NEL
  CHECK(EscapeForLog("\xe2\x80\xa8") == "\\u{2028}");                        // line separator
  CHECK(EscapeForLog("evil\xe2\x80\xaeslf.sif") == "evil\\u{202e}slf.sif");  // RLO
}

}  // namespace
}  // namespace berth
