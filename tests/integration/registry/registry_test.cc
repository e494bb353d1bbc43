// skiff's registry client against a real Docker Registry 2.8: push and pull
// blobs and an OCI manifest, layers the registry has are skipped, a blob is
// mounted across repositories, and the registry's refusals (wrong password,
// unknown tag) reach the user in its words. Over HTTP, and over HTTPS with a
// CA made here (and refused without it). The registry runs in this binary's
// own network namespace, on loopback, and is killed when the suite ends.
#include "skiff/registry/registry.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "netns_testing.h"
#include "registry_server.h"

namespace skiff::registry {
namespace {
namespace fs = std::filesystem;

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::isolated()) return;
    dir_ = new fs::path(fs::temp_directory_path() / ("skiff-registry-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    plain_ = new Registry(*dir_ / "http", 5000, false);
    tls_ = new Registry(*dir_ / "https", 5443, true);
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete tls_;
    plain_ = tls_ = nullptr;
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    SKIFF_REQUIRE_ISOLATED();
    ASSERT_TRUE(plain_->up()) << "docker-registry did not start (is it installed? scripts/install-deps)";
    ASSERT_TRUE(tls_->up()) << "docker-registry with TLS did not start";
  }

  static ClientOptions http(const std::string& user = "alice", const std::string& password = "secret") {
    ClientOptions o;
    o.scheme = "http";
    o.credentials = Credentials{user, password};
    return o;
  }

  // A small image: a config blob, a layer blob and the OCI manifest naming them.
  struct Image {
    std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    std::string layer = "not really a tar, but bytes with a digest";
    std::string manifest() const {
      return std::string(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)") +
             R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + sha256Digest(config) +
             R"(","size":)" + std::to_string(config.size()) +
             R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
             sha256Digest(layer) + R"(","size":)" + std::to_string(layer.size()) + "}]}";
    }
  };

  static fs::path* dir_;
  static Registry* plain_;
  static Registry* tls_;
};
fs::path* RegistryTest::dir_ = nullptr;
Registry* RegistryTest::plain_ = nullptr;
Registry* RegistryTest::tls_ = nullptr;

TEST_F(RegistryTest, PushThenPullGivesTheSameDigestsAndASecondPushSendsNothing) {
  auto transport = makeCurlTransport({});
  Client c(*transport, plain_->host(), http());
  ASSERT_TRUE(c.ping().ok());
  Image img;
  auto sent = c.pushBlob("alice/get-started", sha256Digest(img.layer), img.layer);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_TRUE(*sent);
  sent = c.pushBlob("alice/get-started", sha256Digest(img.config), img.config);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  auto digest = c.putManifest("alice/get-started", "part2", std::string(kOciManifest), img.manifest());
  ASSERT_TRUE(digest.ok()) << digest.error().message;
  EXPECT_EQ(*digest, sha256Digest(img.manifest()));

  // A fresh client (no cached auth), as another host would pull.
  Client puller(*transport, plain_->host(), http());
  auto m = puller.getManifest("alice/get-started", "part2");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->digest, *digest);
  EXPECT_EQ(m->mediaType, kOciManifest);
  auto layer = puller.getBlob("alice/get-started", sha256Digest(img.layer));
  ASSERT_TRUE(layer.ok()) << layer.error().message;
  EXPECT_EQ(*layer, img.layer);

  // Re-run of the push: the registry has every blob, no bytes go up.
  sent = c.pushBlob("alice/get-started", sha256Digest(img.layer), img.layer);
  ASSERT_TRUE(sent.ok());
  EXPECT_FALSE(*sent);
}

TEST_F(RegistryTest, ABlobIsMountedFromAnotherRepository) {
  auto transport = makeCurlTransport({});
  Client c(*transport, plain_->host(), http());
  const std::string base = "shared base layer " + std::to_string(::getpid());
  ASSERT_TRUE(c.pushBlob("alice/base", sha256Digest(base), base).ok());
  auto has = c.hasBlob("alice/app", sha256Digest(base));
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  auto sent = c.pushBlob("alice/app", sha256Digest(base), base, "alice/base");
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_FALSE(*sent) << "the registry should have mounted it";
  has = c.hasBlob("alice/app", sha256Digest(base));
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
}

TEST_F(RegistryTest, TheRegistrysRefusalsAreNamed) {
  auto transport = makeCurlTransport({});
  Client wrong(*transport, plain_->host(), http("alice", "wrong"));
  auto st = wrong.ping();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, plain_->host() + ": unauthorized: authentication required");
  Image img;
  auto pushed = wrong.pushBlob("alice/nope", sha256Digest(img.layer), img.layer);
  ASSERT_FALSE(pushed.ok());
  EXPECT_NE(pushed.error().message.find("unauthorized: authentication required"), std::string::npos)
      << pushed.error().message;

  Client c(*transport, plain_->host(), http());
  auto m = c.getManifest("alice/get-started", "no-such-tag");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, plain_->host() + ": alice/get-started:no-such-tag: manifest unknown: manifest unknown");

  // Nothing listens there: a clear error, well within 10 s.
  const auto start = std::chrono::steady_clock::now();
  Client none(*transport, "127.0.0.1:5999", http());
  st = none.ping();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind("127.0.0.1:5999: ", 0), 0u) << st.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(RegistryTest, HttpsWorksWithTheCaAndIsRefusedWithoutIt) {
  TransportOptions withCa;
  withCa.caFile = tls_->caFile();
  auto trusted = makeCurlTransport(withCa);
  ClientOptions o = http();
  o.scheme = "https";
  Client c(*trusted, tls_->host(), o);
  ASSERT_TRUE(c.ping().ok());
  Image img;
  ASSERT_TRUE(c.pushBlob("alice/tls", sha256Digest(img.layer), img.layer).ok());
  auto back = c.getBlob("alice/tls", sha256Digest(img.layer));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, img.layer);

  auto untrusted = makeCurlTransport({});
  Client refused(*untrusted, tls_->host(), o);
  auto st = refused.ping();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind(tls_->host() + ": ", 0), 0u) << st.error().message;
  EXPECT_NE(st.error().message.find("certificate"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace skiff::registry
