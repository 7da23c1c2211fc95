// Unit tests for oci/manifest: strict parsing of hostile manifests, indexes
// and configs, platform selection and digest checks.
#include "oci/manifest.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace berth::oci {
namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');
const std::string kD3 = "sha256:" + std::string(64, 'c');

std::string OciManifest() {
  return absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")", kD1,
      R"(","size":123},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",)",
      R"("digest":")", kD2, R"(","size":456,"annotations":{"a":"b"}},)",
      R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")", kD3,
      R"(","size":0}],"annotations":{"org.opencontainers.image.title":"x"}})");
}

std::string Entry(const std::string& digest, const std::string& arch,
                  const std::string& variant = "",
                  const std::string& mt = "application/vnd.oci.image.manifest.v1+json") {
  std::string platform = absl::StrCat(R"({"os":"linux","architecture":")", arch, "\"");
  if (!variant.empty()) absl::StrAppend(&platform, R"(,"variant":")", variant, "\"");
  platform += "}";
  return absl::StrCat(R"({"mediaType":")", mt, R"(","digest":")", digest,
                      R"(","size":10,"platform":)", platform, "}");
}

std::string Index(const std::vector<std::string>& entries) {
  std::string joined;
  for (const auto& e : entries) absl::StrAppend(&joined, joined.empty() ? "" : ",", e);
  return absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
      joined, "]}");
}

TEST_CASE("OCI manifest parses with descriptors intact") {
  auto m = ParseImageManifest(OciManifest(), "application/vnd.oci.image.manifest.v1+json");
  REQUIRE(m.ok());
  CHECK(m->media_type == kMediaTypeOciManifest);
  CHECK(m->config.digest == kD1);
  CHECK(m->config.size == 123);
  REQUIRE(m->layers.size() == 2);
  CHECK(m->layers[0].annotations.at("a") == "b");
  CHECK(m->layers[1].size == 0);
  CHECK(m->annotations.at("org.opencontainers.image.title") == "x");
}

TEST_CASE("Content-Type parameters are ignored, generic types say nothing") {
  CHECK(
      ParseImageManifest(OciManifest(), "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
          .ok());
  CHECK(ParseImageManifest(OciManifest(), "application/json").ok());
  CHECK(ParseImageManifest(OciManifest(), "").ok());
}

TEST_CASE("Docker schema 2 manifest and list") {
  std::string m = absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)",
      R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":")",
      kD1,
      R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":9,"digest":")",
      kD2, R"("}]})");
  auto parsed = ParseManifestDocument(m, "application/vnd.docker.distribution.manifest.v2+json");
  REQUIRE(parsed.ok());
  REQUIRE(std::holds_alternative<ImageManifest>(*parsed));
  CHECK(std::get<ImageManifest>(*parsed).media_type == kMediaTypeDockerManifest);

  std::string list = absl::StrReplaceAll(
      Index({Entry(kD1, "amd64", "", std::string(kMediaTypeDockerManifest))}),
      {{std::string(kMediaTypeOciIndex), std::string(kMediaTypeDockerManifestList)}});
  auto idx = ParseImageIndex(list, "");
  REQUIRE(idx.ok());
  CHECK(idx->media_type == kMediaTypeDockerManifestList);
  CHECK(idx->manifests[0].platform->architecture == "amd64");
}

TEST_CASE("mediaType omitted: the shape decides") {
  std::string m = absl::StrReplaceAll(
      OciManifest(), {{R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)", ""}});
  auto parsed = ParseManifestDocument(m, "");
  REQUIRE(parsed.ok());
  CHECK(std::get<ImageManifest>(*parsed).media_type == kMediaTypeOciManifest);
}

TEST_CASE("Ambiguous and mismatched documents are refused") {
  // Both manifests and layers (CVE-2021-41190).
  std::string both = absl::StrReplaceAll(
      OciManifest(), {{R"("annotations":{"org)", R"("manifests":[],"annotations":{"org)"}});
  CHECK(!ParseManifestDocument(both, "").ok());
  // Served as an index, says it is a manifest.
  auto r = ParseManifestDocument(OciManifest(), "application/vnd.oci.image.index.v1+json");
  REQUIRE(!r.ok());
  CHECK(std::string(r.status().message()).find("differs") != std::string::npos);
  // Declares an index but has layers.
  std::string lying = absl::StrReplaceAll(OciManifest(), {{"manifest.v1+json", "index.v1+json"}});
  CHECK(!ParseManifestDocument(lying, "").ok());
  // Wrong kind asked for.
  CHECK(!ParseImageIndex(OciManifest(), "").ok());
  CHECK(!ParseImageManifest(Index({Entry(kD1, "amd64")}), "").ok());
}

TEST_CASE("Hostile JSON is refused with one error") {
  CHECK(!ParseManifestDocument("", "").ok());
  CHECK(!ParseManifestDocument("{", "").ok());
  CHECK(!ParseManifestDocument("[]", "").ok());
  CHECK(!ParseManifestDocument(R"({"schemaVersion":1})", "").ok());
  CHECK(!ParseManifestDocument(R"({"schemaVersion":"2"})", "").ok());
  // Duplicate keys: two parsers could see two different images.
  std::string dup = absl::StrReplaceAll(
      OciManifest(), {{R"("schemaVersion":2,)", R"("schemaVersion":2,"schemaVersion":2,)"}});
  auto d = ParseManifestDocument(dup, "");
  REQUIRE(!d.ok());
  CHECK(std::string(d.status().message()).find("duplicate key") != std::string::npos);
  // Deep nesting.
  std::string deep =
      R"({"schemaVersion":2,"x":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  auto deep_r = ParseManifestDocument(deep, "");
  REQUIRE(!deep_r.ok());
  CHECK(std::string(deep_r.status().message()).find("deeply") != std::string::npos);
  // Oversize.
  std::string big = OciManifest();
  big.insert(1, std::string(kMaxManifestBytes, ' '));
  auto big_r = ParseManifestDocument(big, "");
  REQUIRE(!big_r.ok());
  CHECK(big_r.status().code() == absl::StatusCode::kResourceExhausted);
  // Unknown document type.
  CHECK(!ParseManifestDocument(R"({"schemaVersion":2,"mediaType":"text/plain"})", "").ok());
}

TEST_CASE("Descriptor fields are validated") {
  auto with = [](const std::string& from, const std::string& to) {
    return ParseImageManifest(absl::StrReplaceAll(OciManifest(), {{from, to}}), "");
  };
  CHECK(!with(R"("size":123)", R"("size":-1)").ok());
  CHECK(!with(R"("size":123)", R"("size":"123")").ok());
  CHECK(!with(R"("size":123)", R"("size":1.5)").ok());
  CHECK(!with(R"("size":123)", R"("size":18446744073709551615)").ok());
  CHECK(!with(R"(,"size":123)", "").ok());
  CHECK(!with(kD1, "sha256:" + std::string(64, 'A')).ok());
  CHECK(!with(kD1, "sha256:" + std::string(63, 'a')).ok());
  CHECK(!with(kD1, "md5:" + std::string(32, 'a')).ok());
  CHECK(!with(kD1, "sha256:../../etc/passwd").ok());
  CHECK(!with(R"("application/vnd.oci.image.config.v1+json")", R"("no slash")").ok());
  CHECK(!with(R"("application/vnd.oci.image.config.v1+json")", "5").ok());
  CHECK(!with(R"({"a":"b"})", R"({"a":1})").ok());
  CHECK(with(kD1, "sha512:" + std::string(128, '0')).ok());
}

TEST_CASE("Embedded data must match size and digest") {
  // "{}" (the ORAS SIF config).
  std::string ok = absl::StrCat(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.sylabs.sif.config.v1+json","size":2,)",
      R"("digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","data":"e30="},"layers":[]})");
  auto m = ParseImageManifest(ok, "");
  REQUIRE(m.ok());
  CHECK(m->config.data == "{}");
  CHECK(!ParseImageManifest(absl::StrReplaceAll(ok, {{"e30=", "fX0="}}), "").ok());
  CHECK(!ParseImageManifest(absl::StrReplaceAll(ok, {{"e30=", "!!"}}), "").ok());
}

TEST_CASE("Too many layers are refused") {
  std::string layers;
  for (size_t i = 0; i <= kMaxLayers; ++i) {
    absl::StrAppend(&layers, i ? "," : "",
                    R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")", kD2,
                    R"(","size":1})");
  }
  std::string m = absl::StrCat(R"({"schemaVersion":2,"config":{"mediaType":"a/b","digest":")", kD1,
                               R"(","size":1},"layers":[)", layers, "]}");
  CHECK(!ParseImageManifest(m, "").ok());
}

TEST_CASE("Platform selection") {
  ImageIndex idx = *ParseImageIndex(
      Index({Entry(kD1, "amd64"), Entry(kD2, "arm64", "v8"), Entry(kD3, "arm", "v7"),
             R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + kD1 +
                 R"(","size":1,"platform":{"os":"unknown","architecture":"unknown"}})"}),
      "");
  CHECK(SelectPlatform(idx, {"linux", "amd64", ""})->digest == kD1);
  CHECK(SelectPlatform(idx, *ParsePlatformSpec("aarch64"))->digest == kD2);
  CHECK(SelectPlatform(idx, *ParsePlatformSpec("linux/arm64/v8"))->digest == kD2);
  CHECK(SelectPlatform(idx, *ParsePlatformSpec("linux/arm/v7"))->digest == kD3);
  CHECK(SelectPlatform(idx, *ParsePlatformSpec("armhf"))->digest == kD3);
  auto none = SelectPlatform(idx, *ParsePlatformSpec("s390x"));
  REQUIRE(!none.ok());
  CHECK(none.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(none.status().message()).find("linux/arm64/v8") != std::string::npos);
  CHECK(!SelectPlatform(idx, *ParsePlatformSpec("linux/arm/v6")).ok());
  // arm64 entry without a variant counts as v8.
  ImageIndex bare = *ParseImageIndex(Index({Entry(kD2, "arm64")}), "");
  CHECK(SelectPlatform(bare, *ParsePlatformSpec("linux/arm64/v8"))->digest == kD2);
  // Nested indexes are not candidates.
  ImageIndex nested =
      *ParseImageIndex(Index({Entry(kD1, "amd64", "", std::string(kMediaTypeOciIndex))}), "");
  CHECK(!SelectPlatform(nested, {"linux", "amd64", ""}).ok());
  // Default: the host.
  ImageIndex host = *ParseImageIndex(
      Index({Entry(kD1, HostPlatform().architecture, HostPlatform().variant)}), "");
  CHECK(SelectPlatform(host, PlatformSpec{})->digest == kD1);
}

TEST_CASE("Platform spec parsing") {
  auto p = ParsePlatformSpec("x86_64");
  REQUIRE(p.ok());
  CHECK(p->os == "linux");
  CHECK(p->architecture == "amd64");
  CHECK(ParsePlatformSpec("linux/arm64")->variant == "v8");
  CHECK(!ParsePlatformSpec("").ok());
  CHECK(!ParsePlatformSpec("a/b/c/d").ok());
  CHECK(!ParsePlatformSpec("linux//v8").ok());
  CHECK(!ParsePlatformSpec("linux/am d64").ok());
}

TEST_CASE("Image config") {
  std::string cfg = absl::StrCat(
      R"({"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",)",
      R"("config":{"User":"1000:1000","Env":["PATH=/usr/bin:/bin","A=b=c"],"Entrypoint":["/bin/sh","-c"],)",
      R"("Cmd":null,"WorkingDir":"/work","Labels":{"k":"v"},"StopSignal":"SIGTERM"},)",
      R"("rootfs":{"type":"layers","diff_ids":[")", kD1, R"("]},"history":[{"created_by":"x"}]})");
  auto c = ParseImageConfig(cfg);
  REQUIRE(c.ok());
  CHECK(c->user == "1000:1000");
  CHECK(c->env == std::vector<std::string>{"PATH=/usr/bin:/bin", "A=b=c"});
  CHECK(c->entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(c->cmd.empty());
  CHECK(c->working_dir == "/work");
  CHECK(c->labels.at("k") == "v");
  CHECK(c->diff_ids == std::vector<std::string>{kD1});
  CHECK(ParseImageConfig(R"({})").ok());
  CHECK(ParseImageConfig(R"({"config":null})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"Env":["NOEQUALS"]}})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"Env":["=x"]}})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"Env":"A=b"}})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"Cmd":[1]}})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"WorkingDir":"/a\u0000b"}})").ok());
  CHECK(!ParseImageConfig(R"({"config":{"Labels":{"a":1}}})").ok());
  CHECK(!ParseImageConfig(R"({"rootfs":{"diff_ids":["sha1:00"]}})").ok());
  CHECK(!ParseImageConfig(R"({"os":"linux","os":"windows"})").ok());
  CHECK(!ParseImageConfig("nope").ok());
}

TEST_CASE("Digests") {
  CHECK(Sha256Digest("{}") ==
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  CHECK(VerifyDigest("{}", Sha256Digest("{}")).ok());
  auto bad = VerifyDigest("{} ", Sha256Digest("{}"));
  REQUIRE(!bad.ok());
  CHECK(bad.code() == absl::StatusCode::kDataLoss);
  CHECK(!VerifyDigest("{}", "sha256:xyz").ok());
  CHECK(ValidateDigest(kD1).ok());
  CHECK(!ValidateDigest("").ok());
  CHECK(!ValidateDigest("sha256").ok());
  CHECK(!ValidateDigest("sha256:").ok());
}

TEST_CASE("Layer media types") {
  CHECK(*LayerCompressionOf("application/vnd.oci.image.layer.v1.tar") == LayerCompression::kNone);
  CHECK(*LayerCompressionOf("application/vnd.oci.image.layer.v1.tar+gzip") ==
        LayerCompression::kGzip);
  CHECK(*LayerCompressionOf("application/vnd.oci.image.layer.v1.tar+zstd") ==
        LayerCompression::kZstd);
  CHECK(*LayerCompressionOf("application/vnd.docker.image.rootfs.diff.tar.gzip") ==
        LayerCompression::kGzip);
  CHECK(
      LayerCompressionOf("application/vnd.oci.image.layer.v1.tar+gzip+encrypted").status().code() ==
      absl::StatusCode::kUnimplemented);
  CHECK(!LayerCompressionOf("application/vnd.sylabs.sif.layer.v1.sif").ok());
}

}  // namespace
}  // namespace berth::oci
