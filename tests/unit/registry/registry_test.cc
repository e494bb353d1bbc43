// The registry client against a scripted registry (a fake Transport): the
// v2 exchanges, both auth flows, digests verified, the registry's errors
// named. The real registry is in tests/integration/registry.
#include "skiff/registry/registry.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>

#include "skiff/common/base64.h"

namespace skiff::registry {
namespace {

TEST(Reference, SplitsAsDockerDoes) {
  auto r = parseReference("127.0.0.1:5000/alice/get-started:part2");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "alice/get-started");
  EXPECT_EQ(r->tag, "part2");
  EXPECT_EQ(r->str(), "127.0.0.1:5000/alice/get-started:part2");

  r = parseReference("friendlyhello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "library/friendlyhello");
  EXPECT_EQ(r->tag, "latest");

  r = parseReference("localhost/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "localhost");
  EXPECT_EQ(r->repository, "app");

  const std::string digest = "sha256:" + std::string(64, 'a');
  r = parseReference("reg.example:443/a/b@" + digest);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, digest);
}

TEST(Reference, BadInputIsNamed) {
  auto r = parseReference("127.0.0.1:5000/Alice/app");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "invalid reference \"127.0.0.1:5000/Alice/app\": repository name must be lowercase letters, digits and "
            "separators (\"Alice\")");
  EXPECT_NE(parseReference("app:").error().message.find("empty tag"), std::string::npos);
  EXPECT_NE(parseReference("app@sha256:12").error().message.find("digest must be sha256:<64 hex>"), std::string::npos);
  EXPECT_FALSE(parseReference("a//b").ok());
  EXPECT_FALSE(parseReference("a/-b").ok());
  EXPECT_FALSE(parseReference("a/b..c").ok());
  EXPECT_TRUE(parseReference("a/b__c-d--e.f").ok());
  EXPECT_FALSE(parseReference("").ok());
}

TEST(Challenge, BearerWithQuotedParameters) {
  auto c = parseChallenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");

  c = parseChallenge("Basic realm=\"Registry Realm\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "Registry Realm");

  EXPECT_FALSE(parseChallenge(""));
  EXPECT_FALSE(parseChallenge("Bearer realm=\"unterminated"));
  c = parseChallenge(R"(Bearer realm="a\"b")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->params["realm"], "a\"b");
}

TEST(Digest, Sha256OfBytes) {
  EXPECT_EQ(sha256Digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(validDigest(sha256Digest("x")));
  EXPECT_FALSE(validDigest("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  EXPECT_FALSE(validDigest("md5:abc"));
}

// A registry answering from a script; records what it was sent.
class ScriptedRegistry : public Transport {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  Handler handler;
  std::vector<HttpRequest> sent;
  Result<HttpResponse> send(const HttpRequest& r) override {
    sent.push_back(r);
    return handler(r);
  }
  static std::string authOf(const HttpRequest& r) {
    for (const auto& [k, v] : r.headers)
      if (k == "Authorization") return v;
    return "";
  }
};

HttpResponse answer(int status, std::string body = "", std::map<std::string, std::string> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

const std::string kUnauthorized = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";

TEST(Client, BasicAuthIsSentAfterTheChallengeAndWrongCredentialsAreRefused) {
  ScriptedRegistry reg;
  const std::string good = "Basic " + base64Encode("alice:secret");
  reg.handler = [&](const HttpRequest& r) {
    if (ScriptedRegistry::authOf(r) == good) return answer(200, "{}");
    return answer(401, kUnauthorized, {{"www-authenticate", "Basic realm=\"Registry Realm\""}});
  };
  ClientOptions o;
  o.scheme = "http";
  o.credentials = Credentials{"alice", "secret"};
  Client ok(reg, "127.0.0.1:5000", o);
  EXPECT_TRUE(ok.ping().ok());
  ASSERT_EQ(reg.sent.size(), 2u);
  EXPECT_EQ(reg.sent[0].url, "http://127.0.0.1:5000/v2/");
  EXPECT_EQ(ScriptedRegistry::authOf(reg.sent[0]), "");

  o.credentials = Credentials{"alice", "wrong"};
  Client bad(reg, "127.0.0.1:5000", o);
  auto st = bad.ping();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "127.0.0.1:5000: unauthorized: authentication required");
  EXPECT_EQ(st.error().message.find("wrong"), std::string::npos);

  o.credentials.reset();
  Client anonymous(reg, "127.0.0.1:5000", o);
  EXPECT_EQ(anonymous.ping().error().message, "127.0.0.1:5000: unauthorized: authentication required");
}

TEST(Client, BearerTokensAreFetchedPerScopeWithTheUsersCredentials) {
  ScriptedRegistry reg;
  std::vector<std::string> tokenUrls;
  reg.handler = [&](const HttpRequest& r) {
    if (r.url.rfind("https://auth.test/token", 0) == 0) {
      tokenUrls.push_back(r.url);
      if (ScriptedRegistry::authOf(r) != "Basic " + base64Encode("bob:pw")) return answer(401);
      return answer(200, R"({"token":"T-)" + std::to_string(tokenUrls.size()) + "\"}");
    }
    std::string auth = ScriptedRegistry::authOf(r);
    if (auth.rfind("Bearer T-", 0) == 0)
      return answer(404, R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})");
    return answer(401, kUnauthorized,
                  {{"www-authenticate",
                    R"(Bearer realm="https://auth.test/token",service="reg.test",scope="repository:bob/app:pull")"}});
  };
  ClientOptions o;
  o.credentials = Credentials{"bob", "pw"};
  Client c(reg, "reg.test", o);
  const std::string digest = sha256Digest("layer");
  auto has = c.hasBlob("bob/app", digest);
  ASSERT_TRUE(has.ok()) << has.error().message;
  EXPECT_FALSE(*has);
  ASSERT_EQ(tokenUrls.size(), 1u);
  EXPECT_EQ(tokenUrls[0], "https://auth.test/token?service=reg.test&scope=repository%3Abob%2Fapp%3Apull");
  // The token is kept for its scope: a second call asks the registry only.
  reg.sent.clear();
  ASSERT_TRUE(c.hasBlob("bob/app", digest).ok());
  EXPECT_EQ(reg.sent.size(), 1u);
  EXPECT_EQ(ScriptedRegistry::authOf(reg.sent[0]), "Bearer T-1");
}

TEST(Client, ABlobWhoseBytesDoNotMatchItsDigestIsRefused) {
  ScriptedRegistry reg;
  reg.handler = [&](const HttpRequest&) { return answer(200, "tampered"); };
  ClientOptions o;
  o.scheme = "http";
  Client c(reg, "r:5000", o);
  const std::string digest = sha256Digest("original");
  auto blob = c.getBlob("a/b", digest);
  ASSERT_FALSE(blob.ok());
  EXPECT_EQ(blob.error().message, "r:5000: blob " + digest + " digest mismatch: got " + sha256Digest("tampered"));
}

TEST(Client, PushSkipsABlobTheRegistryHasAndMountsFromAnotherRepository) {
  ScriptedRegistry reg;
  const std::string have = sha256Digest("have"), fresh = sha256Digest("fresh"), shared = sha256Digest("shared");
  std::string uploaded;
  reg.handler = [&](const HttpRequest& r) {
    if (r.method == "HEAD") return answer(r.url.find(have) != std::string::npos ? 200 : 404);
    if (r.method == "POST" && r.url.find("mount=" + shared) != std::string::npos) return answer(201);
    if (r.method == "POST") return answer(202, "", {{"location", "/v2/a/b/blobs/uploads/u1?_state=x"}});
    if (r.method == "PUT") {
      uploaded = r.url;
      return answer(r.body == "fresh" ? 201 : 400);
    }
    return answer(500);
  };
  ClientOptions o;
  o.scheme = "http";
  Client c(reg, "r:5000", o);
  auto sent = c.pushBlob("a/b", have, "have");
  ASSERT_TRUE(sent.ok());
  EXPECT_FALSE(*sent);
  EXPECT_EQ(reg.sent.size(), 1u);  // HEAD only

  sent = c.pushBlob("a/b", shared, "shared", "a/base");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_FALSE(*sent);
  EXPECT_EQ(reg.sent.back().url, "http://r:5000/v2/a/b/blobs/uploads/?mount=" + shared + "&from=a%2Fbase");

  sent = c.pushBlob("a/b", fresh, "fresh");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_TRUE(*sent);
  EXPECT_EQ(uploaded, "http://r:5000/v2/a/b/blobs/uploads/u1?_state=x&digest=sha256%3A" + fresh.substr(7));

  EXPECT_EQ(c.pushBlob("a/b", fresh, "not fresh").error().message, "blob " + fresh + ": the bytes have another digest");
}

TEST(Client, AnIndexIsResolvedToLinuxAmd64AndUnknownTagsAreNamed) {
  ScriptedRegistry reg;
  const std::string image = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
  const std::string arm = sha256Digest("arm");
  const std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                            R"({"digest":")" +
                            arm +
                            R"(","platform":{"os":"linux","architecture":"arm64"}},)"
                            R"({"digest":")" +
                            sha256Digest(image) + R"(","platform":{"os":"linux","architecture":"amd64"}}]})";
  reg.handler = [&](const HttpRequest& r) {
    if (r.url.ends_with("/manifests/v1")) return answer(200, index, {{"content-type", std::string(kOciIndex)}});
    if (r.url.ends_with("/manifests/" + sha256Digest(image))) return answer(200, image);
    return answer(404,
                  R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]})");
  };
  ClientOptions o;
  o.scheme = "http";
  Client c(reg, "r:5000", o);
  auto m = c.getManifest("a/b", "v1");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->bytes, image);
  EXPECT_EQ(m->mediaType, kOciManifest);
  EXPECT_EQ(m->digest, sha256Digest(image));
  std::string accept;
  for (const auto& [k, v] : reg.sent[0].headers)
    if (k == "Accept") accept = v;
  for (auto type : {kOciIndex, kDockerManifestList, kOciManifest, kDockerManifest})
    EXPECT_NE(accept.find(type), std::string::npos) << accept;

  auto missing = c.getManifest("a/b", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "r:5000: a/b:nope: manifest unknown: manifest unknown");
}

}  // namespace
}  // namespace skiff::registry
