// The subordinate id files: Apptainer's parsing, range rules and messages,
// berth's safety refusals, and the `config fakeroot` editor. Pure text, no
// privilege needed.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "subid/range_choice.h"
#include "subid/subid_edit.h"
#include "subid/subid_file.h"

namespace subid = berth::subid;

namespace {

const subid::User kAlice{1000, "alice"};

absl::StatusOr<std::optional<subid::Range>> Choose(const std::string& text,
                                                   const subid::User& user = kAlice) {
  return subid::ChooseRange(subid::Parse(text), user, "/etc/subuid");
}

subid::Range Chosen(const std::string& text) {
  auto r = Choose(text);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  return **r;
}

std::string Refusal(const std::string& text, subid::Range r, uint32_t own = 1000) {
  absl::Status s =
      subid::CheckRangeIsSafe(subid::Parse(text), kAlice, r, own, "/etc/subuid", "uid");
  return std::string(s.message());
}

std::string Edit(const std::string& text, subid::EditOp op, const subid::User& user = kAlice) {
  auto out = subid::EditFile(text, op, user, "/etc/subuid");
  REQUIRE(out.ok());
  return *out;
}

}  // namespace

TEST_CASE("parsing follows Apptainer: fields, numbers, '!' and short lines") {
  subid::File f = subid::Parse(
      "alice:100000:65536\n"
      "# a comment\n"
      "\n"
      "!bob:200000:65536\n"
      "carol:300000:65536:extra\r\n"
      "dave:+5:65536\n"
      "erin: 5:65536\n"
      "frank:4294967296:1\n"
      "gina:0x10:1\n"
      "hank:5:0\n"
      ":5:5\n"
      "ivan:-1:5");
  REQUIRE(f.lines.size() == 12);
  REQUIRE(f.entries.size() == 10);  // the comment and the blank line are no entries
  CHECK(f.entries[0].valid);
  CHECK(f.entries[0].start == 100000);
  CHECK(f.entries[1].disabled);
  CHECK(f.entries[1].owner == "bob");
  CHECK(f.entries[1].valid);
  CHECK(f.entries[2].valid);  // extra fields and a trailing \r are ignored
  CHECK(f.entries[2].count == 65536);
  for (size_t i = 3; i < f.entries.size(); ++i) CHECK_FALSE(f.entries[i].valid);
  CHECK(subid::Join(f.lines).find("carol:300000:65536:extra\r\n") != std::string::npos);
}

TEST_CASE("owners are login names or numeric uids") {
  subid::File f = subid::Parse("1000:100000:65536\nalice:200000:65536\n1001:1:1\n");
  CHECK(subid::OwnedBy(f.entries[0], kAlice));
  CHECK(subid::OwnedBy(f.entries[1], kAlice));
  CHECK_FALSE(subid::OwnedBy(f.entries[2], kAlice));
  // A numeric owner is a uid even when a user has that name.
  CHECK_FALSE(subid::OwnedBy(f.entries[0], subid::User{5, "1000"}));
  CHECK_FALSE(subid::OwnedBy(f.entries[1], subid::User{1000, ""}));
}

TEST_CASE("an entry of exactly 65536 ids is chosen first") {
  subid::Range r = Chosen("alice:300000:131072\nalice:100000:65536\nalice:500000:65536\n");
  CHECK(r.start == 100000);
  CHECK(r.count == 65536);
}

TEST_CASE("otherwise the largest larger entry, the first of equals") {
  subid::Range r = Chosen("alice:200000:70000\nalice:300000:131072\nalice:600000:131072\n");
  CHECK(r.start == 300000);
  CHECK(r.count == 131072);
}

TEST_CASE("entries that are all too small give Apptainer's message") {
  auto r = Choose("alice:100000:1000\nalice:200000:65535\nbob:300000:65536\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() ==
        "mapping entries for user alice found in /etc/subuid but all with a range count lower "
        "than 65536");
}

TEST_CASE("a disabled entry gives Apptainer's message") {
  auto r = Choose("!alice:100000:65536\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "your fakeroot mapping has been disabled by the administrator");
  // The rules pick first, then look at the mark: a disabled exact entry wins
  // over an enabled larger one, as in Apptainer.
  CHECK_FALSE(Choose("alice:300000:131072\n!alice:100000:65536\n").ok());
}

TEST_CASE("no entry, or only broken ones, means not listed") {
  auto none = Choose("bob:100000:65536\n");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto broken = Choose("alice:x:65536\nalice:100000:0\nalice:100000\n");
  REQUIRE(broken.ok());
  CHECK_FALSE(broken->has_value());
  auto empty = Choose("");
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->has_value());
}

TEST_CASE("a numeric uid entry is the user's") {
  CHECK(Chosen("1000:400000:65536\n").start == 400000);
}

TEST_CASE("many entries and huge counts are handled") {
  std::string text;
  for (int i = 0; i < 100000; ++i) absl::StrAppend(&text, "user", i, ":", 70000 + i, ":1\n");
  absl::StrAppend(&text, "alice:4294000000:4294967295\n");
  subid::Range r = Chosen(text);
  CHECK(r.count == 4294967295u);
  CHECK_THAT(Refusal(text, r), Catch::Contains("runs past the last valid uid 4294967294"));
}

TEST_CASE("a range containing uid 0 is refused") {
  std::string text = "alice:0:65536\n";
  CHECK(Refusal(text, Chosen(text)) ==
        "/etc/subuid: the range 0-65535 of user alice includes uid 0, the host's root, which "
        "fakeroot never maps: give the user a range above 65535 (berth config fakeroot --add "
        "allocates one)");
}

TEST_CASE("a range containing the user's own uid is refused") {
  std::string text = "alice:100000:65536\n";
  CHECK_THAT(Refusal(text, Chosen(text), 100500),
             Catch::Contains("includes the user's own uid 100500, which fakeroot already maps"));
  CHECK(Refusal(text, Chosen(text), 165536).empty());  // just past the end
  CHECK(Refusal(text, Chosen(text), 99999).empty());
}

TEST_CASE("a range overlapping another user's entry is refused") {
  std::string text = "alice:100000:65536\nbob:165535:65536\n";
  CHECK(Refusal(text, Chosen(text)) ==
        "/etc/subuid: the range 100000-165535 of user alice overlaps 165535-231070 of bob "
        "(line 2): each user's fakeroot ids must be theirs alone; fix one of the entries");
  // Adjacent ranges, and the user's own other entries, are fine.
  std::string fine = "alice:100000:65536\nbob:165536:65536\nalice:120000:10\n";
  CHECK(Refusal(fine, Chosen(fine)).empty());
  // A disabled entry still holds its ids.
  std::string held = "alice:100000:65536\n!bob:100000:65536\n";
  CHECK_THAT(Refusal(held, Chosen(held)), Catch::Contains("overlaps"));
}

TEST_CASE("add allocates from the top down, as Apptainer does") {
  std::string one = Edit("", subid::EditOp::kAdd);
  CHECK(one == "1000:4294836224:65536\n");
  std::string two = Edit(one, subid::EditOp::kAdd, {1001, "bob"});
  CHECK(two == "1000:4294836224:65536\n1001:4294770688:65536\n");
}

TEST_CASE("add leaves a user who has an entry alone, disabled or not") {
  std::string text = "# keep me\nalice:100000:65536\n";
  CHECK(Edit(text, subid::EditOp::kAdd) == text);
  CHECK(Edit("!alice:100000:65536\n", subid::EditOp::kAdd) == "!alice:100000:65536\n");
}

TEST_CASE("add gives a user with only a small entry a full range") {
  CHECK(Edit("alice:100000:10", subid::EditOp::kAdd) == "alice:100000:10\n1000:4294836224:65536\n");
}

TEST_CASE("add never hands out ids another entry holds") {
  // Apptainer would take 4294836224, whose range contains this entry.
  CHECK(Edit("bob:4294836230:10\n", subid::EditOp::kAdd) ==
        "bob:4294836230:10\n1000:4294770688:65536\n");
  auto full = subid::EditFile("bob:1:4294967294\n", subid::EditOp::kAdd, kAlice, "/etc/subuid");
  REQUIRE_FALSE(full.ok());
  CHECK(full.status().message() == "no range available");
}

TEST_CASE("remove, enable and disable change only the chosen line") {
  std::string text = "# admins: keep sorted\nbob:200000:65536\nalice:100000:65536\n\n";
  CHECK(Edit(text, subid::EditOp::kRemove) == "# admins: keep sorted\nbob:200000:65536\n\n");
  std::string off = Edit(text, subid::EditOp::kDisable);
  CHECK(off == "# admins: keep sorted\nbob:200000:65536\n!alice:100000:65536\n\n");
  CHECK(Edit(off, subid::EditOp::kDisable) == off);
  CHECK(Edit(off, subid::EditOp::kEnable) == text);
  CHECK(Edit(text, subid::EditOp::kEnable) == text);
}

TEST_CASE("remove, enable and disable without an entry give Apptainer's message") {
  for (subid::EditOp op :
       {subid::EditOp::kRemove, subid::EditOp::kEnable, subid::EditOp::kDisable}) {
    auto out = subid::EditFile("bob:1:65536\n", op, kAlice, "/etc/subuid");
    REQUIRE_FALSE(out.ok());
    CHECK(out.status().message() == "no mapping entry found in /etc/subuid for alice");
  }
}
