// The trust library and the ECL policy without a daemon: ecl.toml parsing
// (one line naming the line), the three modes' decisions, the signed-JSON
// round trip, and the build-time "all must have signed" check against the
// reference images with real gpg.
#define CATCH_CONFIG_MAIN
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "daemon/policy/ecl.h"
#include "sif/image.h"
#include "trust/image_metadata.h"
#include "trust/keyring_file.h"
#include "trust/pgp.h"
#include "trust/verify.h"

namespace berth {
namespace {

using daemon::policy::EclDenial;
using daemon::policy::EclMode;
using daemon::policy::ExecGroup;
using daemon::policy::ParseEcl;

const std::string kA = "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84";
const std::string kB = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333";

std::string EclError(const std::string& text) {
  auto ecl = ParseEcl(text, "ecl.toml");
  REQUIRE_FALSE(ecl.ok());
  std::string msg(ecl.status().message());
  CHECK(msg.find('\n') == std::string::npos);
  return msg;
}

TEST_CASE("ecl.toml: Apptainer's schema parses", "[ecl]") {
  auto ecl = ParseEcl(R"(activated = true
legacyinsecure = false
[[execgroup]]
  tagname = "group1"
  mode = "whitelist"
  dirpath = ""
  keyfp = ["12045c8c0b1004d058de4beda20c27ee7ff7ba84"]
)",
                      "ecl.toml");
  REQUIRE(ecl.ok());
  CHECK(ecl->activated);
  REQUIRE(ecl->groups.size() == 1);
  CHECK(ecl->groups[0].keyfp == std::vector<std::string>{kA});  // upper-cased
  CHECK(ParseEcl("", "ecl.toml").ok());
  CHECK_FALSE(ParseEcl("", "ecl.toml")->activated);
}

TEST_CASE("ecl.toml: each mistake is one line naming the line", "[ecl]") {
  CHECK(EclError("activated = true\nbogus = 1\n").find("ecl.toml:2: unknown setting 'bogus'") !=
        std::string::npos);
  CHECK(EclError("activated = \"yes\"\n").find("ecl.toml:1: activated must be true or false") !=
        std::string::npos);
  CHECK(EclError("[[execgroup]]\nmode = \"greylist\"\n").find("ecl.toml:2: mode 'greylist'") !=
        std::string::npos);
  CHECK(EclError("[[execgroup]]\nmode = \"whitelist\"\nkeyfp = [\"1234\"]\n")
            .find("ecl.toml:3: keyfp entries must be 40 hex digits") != std::string::npos);
  CHECK(EclError("[[execgroup]]\nmode = \"whitelist\"\ndirpath = \"relative\"\n")
            .find("ecl.toml:3: dirpath 'relative'") != std::string::npos);
  CHECK(EclError("[[execgroup]]\nmode = \"whitelist\"\ndirpath = \"/tmp/\"\n").find("ecl.toml:3") !=
        std::string::npos);
  CHECK(EclError("[[execgroup]]\nmode = \"whitelist\"\ndirpath = \"/tmp\"\n"
                 "[[execgroup]]\nmode = \"blacklist\"\ndirpath = \"/tmp\"\n")
            .find("ecl.toml:4: dirpath '/tmp' is used by execgroup") != std::string::npos);
  CHECK(EclError("activated = true\n[x\n").find("ecl.toml:2") != std::string::npos);
}

TEST_CASE("ECL modes decide like Apptainer's", "[ecl]") {
  daemon::policy::EclSigners by_a{{kA}, {kA}, {}};
  daemon::policy::EclSigners by_both{{kA, kB}, {kA, kB}, {}};
  daemon::policy::EclSigners none{};
  daemon::policy::EclSigners a_unvalidated{{kA}, {kA}, {kA}};
  ExecGroup white{"w", EclMode::kWhitelist, "", {kA, kB}};
  ExecGroup strict{"s", EclMode::kWhitestrict, "", {kA, kB}};
  ExecGroup black{"b", EclMode::kBlacklist, "", {kB}};
  CHECK(EclDenial(white, by_a).empty());
  CHECK(EclDenial(white, by_both).empty());
  CHECK_FALSE(EclDenial(white, none).empty());
  CHECK_FALSE(EclDenial(white, a_unvalidated).empty());
  CHECK_FALSE(EclDenial(strict, by_a).empty());
  CHECK(EclDenial(strict, by_both).empty());
  CHECK(EclDenial(black, by_a).empty());
  CHECK_FALSE(EclDenial(black, by_both).empty());
  // Two object groups, A signed one and B the other: each signed some group,
  // neither signed every group.
  daemon::policy::EclSigners split{{}, {kA, kB}, {}};
  CHECK_FALSE(EclDenial(ExecGroup{"w", EclMode::kWhitelist, "", {kA}}, split).empty());
  CHECK_FALSE(EclDenial(white, split).empty());
  CHECK_FALSE(EclDenial(strict, split).empty());
  CHECK_FALSE(EclDenial(black, split).empty());
  CHECK(EclDenial(ExecGroup{"b", EclMode::kBlacklist, "", {"C"}}, split).empty());
  const std::string why = EclDenial(strict, by_a);
  CHECK(why.find("execgroup 's' (whitestrict)") != std::string::npos);
  CHECK(why.find(kB) != std::string::npos);
}

TEST_CASE("image metadata JSON round-trips and refuses junk", "[trust]") {
  auto image = sif::Image::Open(std::string(BERTH_TESTDATA) + "/sif/one-group.sif",
                                sif::OpenMode::kReadOnly);
  REQUIRE(image.ok());
  auto m = trust::ComputeMetadata(*image, image->GroupMembers(1), "sha256");
  REQUIRE(m.ok());
  const std::string json = trust::MetadataToJson(*m);
  // The reference's digests of the same image (one-group-signed-pgp.sif's JSON).
  CHECK(json.find("sha256:635fa0a14a8ef0c0351ed3e985799ed1d4f75ce973dea3cc76c99710795cc3f1") !=
        std::string::npos);
  auto back = trust::MetadataFromJson(json);
  REQUIRE(back.ok());
  CHECK(trust::MetadataToJson(*back) == json);
  CHECK_FALSE(trust::MetadataFromJson("{").ok());
  CHECK_FALSE(trust::MetadataFromJson(R"({"version":2,"header":{"digest":"sha256:00"}})").ok());
  CHECK_FALSE(trust::ParseDigest("md5:d41d8cd98f00b204e9800998ecf8427e").ok());
  CHECK_FALSE(trust::ParseDigest("sha256:XYZ").ok());
}

TEST_CASE("VerifySignedByAll: the build-time check", "[trust]") {
  char home_tmpl[] = "/tmp/berth-trust-unit-XXXXXX";
  REQUIRE(mkdtemp(home_tmpl) != nullptr);
  const std::string home = home_tmpl;
  auto gpg = trust::GpgContext::Open(home);
  REQUIRE(gpg.ok());
  auto key = trust::ReadKeyringFile(std::string(BERTH_TESTDATA) + "/sif/keys-private.asc");
  REQUIRE(key.ok());
  REQUIRE(trust::ImportKeys(*gpg, *key).ok());
  auto signed_image = sif::Image::Open(
      std::string(BERTH_TESTDATA) + "/sif/two-groups-signed-pgp.sif", sif::OpenMode::kReadOnly);
  auto unsigned_image = sif::Image::Open(std::string(BERTH_TESTDATA) + "/sif/two-groups.sif",
                                         sif::OpenMode::kReadOnly);
  REQUIRE(signed_image.ok());
  REQUIRE(unsigned_image.ok());
  CHECK(trust::VerifySignedByAll(*signed_image, *gpg, {kA}).ok());
  CHECK(trust::VerifySignedByAll(*signed_image, *gpg,
                                 {"12045c8c 0b1004d0 58de4bed a20c27ee 7ff7ba84"})
            .ok());
  absl::Status missing = trust::VerifySignedByAll(*signed_image, *gpg, {kA, kB});
  CHECK(std::string(missing.message()).find("image not signed by required entities") !=
        std::string::npos);
  absl::Status unsigned_status = trust::VerifySignedByAll(*unsigned_image, *gpg, {kA});
  CHECK(std::string(unsigned_status.message()).find("image not signed by required entities") !=
        std::string::npos);
  std::system(("gpgconf --homedir " + home + " --kill all 2>/dev/null").c_str());
  std::filesystem::remove_all(home);
}

}  // namespace
}  // namespace berth
