// oras/: references, WWW-Authenticate challenges, credential files and the
// SIF artifact manifest (the network parts are tested against real
// registries in tests/registry).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "oras/auth_challenge.h"
#include "oras/credentials.h"
#include "oras/http.h"
#include "oras/reference.h"
#include "oras/sif_artifact.h"

using namespace berth::oras;

TEST_CASE("references parse by Docker's rules", "[oras]") {
  auto r = ParseReference("oras://127.0.0.1:5000/ci/img:v1");
  REQUIRE(r.ok());
  CHECK(r->transport == Transport::kOras);
  CHECK(r->registry == "127.0.0.1:5000");
  CHECK(r->repository == "ci/img");
  CHECK(r->tag == "v1");
  auto hub = ParseReference("docker://alpine");
  REQUIRE(hub.ok());
  CHECK(hub->registry == "index.docker.io");
  CHECK(hub->ApiHost() == "registry-1.docker.io");
  CHECK(hub->repository == "library/alpine");
  CHECK(hub->tag == "latest");
  std::string d = "sha256:" + std::string(64, 'a');
  auto byd = ParseReference("docker://localhost:5000/x/y@" + d);
  REQUIRE(byd.ok());
  CHECK(byd->digest == d);
  CHECK(byd->ManifestRef() == d);
  CHECK(ParseReference("oras:///reg.example/x:1").ok());
}

TEST_CASE("hostile references are refused", "[oras]") {
  for (const char* bad :
       {"oras://", "http://x/y", "oras://reg.io/../x:1", "oras://reg.io/x@sha256:../../etc",
        "oras://reg.io/x@sha256:ABCDEF", "oras://reg.io/X:1", "oras://reg.io/x:t%2f",
        "oras://reg.io/x:", "oras://re g.io/x:1", "docker://reg.io/a//b"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseReference(bad).ok());
  }
  CHECK_FALSE(ParseReference("oras://r.io/" + std::string(5000, 'a')).ok());
  CHECK(IsValidDigest("sha256:" + std::string(64, '0')));
  CHECK_FALSE(IsValidDigest("sha256:" + std::string(63, '0')));
  CHECK_FALSE(IsValidDigest("sha512:" + std::string(64, '0')));
}

TEST_CASE("WWW-Authenticate challenges", "[oras]") {
  auto c = ParseChallenge(
      R"(Bearer realm="http://127.0.0.1:5003/token",service="ci-registry",scope="repository:ci/x:pull")");
  REQUIRE(c.ok());
  CHECK(c->scheme == "bearer");
  CHECK(c->Param("realm") == "http://127.0.0.1:5003/token");
  CHECK(c->Param("service") == "ci-registry");
  CHECK(c->Param("scope") == "repository:ci/x:pull");
  auto b = ParseChallenge(R"(Basic realm="basic-realm")");
  REQUIRE(b.ok());
  CHECK(b->scheme == "basic");
  auto q = ParseChallenge(R"(Bearer realm="a\"b", scope=x)");
  REQUIRE(q.ok());
  CHECK(q->Param("realm") == "a\"b");
  CHECK(q->Param("scope") == "x");
  CHECK_FALSE(ParseChallenge(R"(Bearer realm="unterminated)").ok());
  CHECK_FALSE(ParseChallenge("").ok());
  CHECK_FALSE(ParseChallenge(std::string(10000, 'a')).ok());
}

TEST_CASE("the SIF manifest is Apptainer's, byte for byte", "[oras]") {
  SifLayer layer{"sha256:" + std::string(64, 'b'), 1234, "a<b>&c.sif"};
  std::string json = BuildSifManifest(layer);
  CHECK(json ==
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.sylabs.sif.config.v1+json\",\"size\":2,"
        "\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\","
        "\"data\":\"e30=\"},\"layers\":[{\"mediaType\":\"application/vnd.sylabs.sif.layer.v1.sif\","
        "\"size\":1234,\"digest\":\"sha256:" +
            std::string(64, 'b') +
            "\",\"annotations\":{\"org.opencontainers.image.title\":\"a\\u003cb\\u003e\\u0026c."
            "sif\"}}]}");
  auto back = SifLayerOf(json, 1 << 20);
  REQUIRE(back.ok());
  CHECK(back->digest == layer.digest);
  CHECK(back->size == 1234);
  CHECK(back->title == "a<b>&c.sif");
  std::string with = BuildSifManifest(layer, {{"z", "1"}, {"a", "2"}});
  CHECK(with.find(",\"annotations\":{\"a\":\"2\",\"z\":\"1\"}}") != std::string::npos);
}

TEST_CASE("pulled manifests must be SIF artifacts", "[oras]") {
  std::string d = "sha256:" + std::string(64, 'c');
  auto manifest = [&](const std::string& layers) {
    return "{\"schemaVersion\":2,\"layers\":[" + layers + "]}";
  };
  std::string legacy =
      "{\"mediaType\":\"appliciation/vnd.sylabs.sif.layer.tar\",\"size\":5,\"digest\":\"" + d +
      "\"}";
  CHECK(SifLayerOf(manifest(legacy), 100).ok());
  std::string good =
      "{\"mediaType\":\"application/vnd.sylabs.sif.layer.v1.sif\",\"size\":5,\"digest\":\"" + d +
      "\"}";
  CHECK_FALSE(SifLayerOf(manifest(good + "," + good), 100).ok());
  CHECK_FALSE(SifLayerOf(manifest(""), 100).ok());
  CHECK_FALSE(SifLayerOf(manifest(good), 4).ok());  // larger than allowed
  CHECK_FALSE(SifLayerOf("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"application/"
                         "vnd.sylabs.sif.layer.v1.sif\",\"size\":5,\"digest\":\"sha256:../x\"}]}",
                         100)
                  .ok());
  CHECK_FALSE(SifLayerOf("[]", 100).ok());
  CHECK_FALSE(SifLayerOf("{", 100).ok());
}

TEST_CASE("credential files in the docker-config format", "[oras]") {
  char dir[] = "/tmp/berth-creds-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  std::string file = std::string(dir) + "/sub/config.json";
  REQUIRE(StoreCredentials(file, "reg.example:5000", {"alice", "pw:with:colons", ""}).ok());
  auto found = FindCredentials({std::string(dir) + "/missing.json", file}, "reg.example:5000");
  REQUIRE(found.ok());
  REQUIRE(found->has_value());
  CHECK((*found)->username == "alice");
  CHECK((*found)->password == "pw:with:colons");
  auto none = FindCredentials({file}, "other.example");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  auto list = ListCredentialRegistries(file);
  REQUIRE(list.ok());
  CHECK(*list == std::vector<std::string>{"reg.example:5000"});
  CHECK(RemoveCredentials(file, "reg.example:5000").ok());
  CHECK_FALSE(RemoveCredentials(file, "reg.example:5000").ok());
  std::ofstream(std::string(dir) + "/bad.json") << "{not json";
  CHECK_FALSE(FindCredentials({std::string(dir) + "/bad.json"}, "x").ok());
  std::ofstream(std::string(dir) + "/hub.json")
      << R"({"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}})";
  auto hub = FindCredentials({std::string(dir) + "/hub.json"}, "index.docker.io");
  REQUIRE(hub.ok());
  REQUIRE(hub->has_value());
  CHECK((*hub)->username == "u");
  std::string cmd = std::string("rm -rf ") + dir;
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("redirect origins and relative Locations", "[oras]") {
  CHECK(OriginOf("http://127.0.0.1:5000/v2/") == "http://127.0.0.1:5000");
  CHECK(OriginOf("https://Reg.Example/v2/") == "https://reg.example:443");
  CHECK(OriginOf("http://reg.example:80/x") == OriginOf("http://reg.example/y"));
  CHECK(OriginOf("http://reg.example/x") != OriginOf("https://reg.example/x"));
  auto rel =
      ResolveUrl("http://127.0.0.1:5000/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/abc?_state=1");
  REQUIRE(rel.ok());
  CHECK(*rel == "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?_state=1");
  CHECK_FALSE(ResolveUrl("http://a/", "file:///etc/passwd").ok());
}
