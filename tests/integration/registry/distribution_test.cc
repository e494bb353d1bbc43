// skiff push and pull against a real Docker Registry 2.8, checked by what a
// user and other tools see: the image pulled into a clean store has the
// pushed id and files; skopeo reads skiff's manifest and config; an image
// umoci made and skopeo pushed runs under skiff's store; a re-push sends
// only what is missing; a wrong password, an unknown tag and a corrupted
// blob are refused and leave no image behind. The registry runs in this
// binary's own network namespace, on loopback.
#include "skiff/registry/distribution.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "netns_testing.h"
#include "registry_server.h"
#include "skiff/registry/registry.h"
#include "skiff/runtime/image.h"

namespace skiff::registry {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// stdout of a shell command; its exit status in *status.
std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = ::pclose(f);
  if (status != nullptr) *status = st;
  return out;
}

class DistributionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::isolated()) return;
    dir_ = new fs::path(fs::temp_directory_path() / ("skiff-distribution-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    registry_ = new Registry(*dir_ / "registry", 5000, false);
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    SKIFF_REQUIRE_ISOLATED();
    ASSERT_TRUE(registry_->up()) << "docker-registry did not start (is it installed? scripts/install-deps)";
    base_ = *dir_ / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(base_ / "ctx");
  }

  std::unique_ptr<Client> client(const std::string& password = "secret") {
    ClientOptions o;
    o.scheme = "http";
    o.credentials = Credentials{"alice", password};
    transports_.push_back(makeCurlTransport({}));
    return std::make_unique<Client>(*transports_.back(), registry_->host(), o);
  }

  // The seed's image, built in `store`: one COPY layer, then (with two) a
  // second on top.
  runtime::ImageRecord build(runtime::ImageStore& store, const std::string& tag, bool two = false) {
    std::ofstream(base_ / "ctx" / "app.py", std::ios::binary) << "print('hello')\n";
    std::ofstream(base_ / "ctx" / "requirements.txt") << "Flask\nRedis\n";
    std::string dockerfile = "FROM scratch\nCOPY app.py /app/app.py\nCMD [\"/app/app.py\"]\n";
    if (two) dockerfile += "COPY requirements.txt /app/\n";
    std::ofstream(base_ / "ctx" / "Dockerfile") << dockerfile;
    auto built = store.build((base_ / "ctx").string(), tag, nullptr);
    EXPECT_TRUE(built.ok()) << built.error().message;
    return built.ok() ? *built : runtime::ImageRecord{};
  }

  Reference ref(const std::string& text) {
    auto r = parseReference(text);
    EXPECT_TRUE(r.ok()) << text;
    return r.ok() ? *r : Reference{};
  }

  static fs::path* dir_;
  static Registry* registry_;
  fs::path base_;
  std::vector<std::unique_ptr<Transport>> transports_;
};
fs::path* DistributionTest::dir_ = nullptr;
Registry* DistributionTest::registry_ = nullptr;

TEST_F(DistributionTest, PushThenPullIntoACleanStoreGivesTheSameImage) {
  runtime::ImageStore a((base_ / "a").string());
  const std::string name = registry_->host() + "/alice/get-started:part2";
  auto built = build(a, name);
  ASSERT_EQ(built.layers.size(), 1u);

  std::vector<std::string> lines;
  auto pushed = push(a, *client(), ref(name), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  const std::string layerDigest = sha256Digest(*a.exportLayer(built.layers[0]));
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "The push refers to repository [" + registry_->host() + "/alice/get-started]",
                       layerDigest.substr(7, 12) + ": Pushed",
                       "part2: digest: " + pushed->digest + " size: " + std::to_string(pushed->size),
                   }));

  runtime::ImageStore b((base_ / "b").string());
  lines.clear();
  auto pulled = pull(b, *client(), ref(name), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(pulled.ok()) << pulled.error().message;
  EXPECT_EQ(pulled->id, built.id) << "the same config bytes, the same image id";
  EXPECT_EQ(pulled->digest, pushed->digest);
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "part2: Pulling from alice/get-started",
                       layerDigest.substr(7, 12) + ": Pull complete",
                       "Digest: " + pushed->digest,
                       "Status: Downloaded newer image for " + name,
                   }));
  auto there = b.resolve(name);
  ASSERT_TRUE(there.ok()) << there.error().message;
  EXPECT_EQ(there->config.cmd, (std::vector<std::string>{"/app/app.py"}));
  EXPECT_EQ(slurp(fs::path(b.layerDirs(*there)[0]) / "app" / "app.py"), "print('hello')\n");

  // Again: nothing to fetch.
  lines.clear();
  auto again = pull(b, *client(), ref(name), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->downloaded);
  EXPECT_EQ(lines.at(1), layerDigest.substr(7, 12) + ": Already exists");
  EXPECT_EQ(lines.back(), "Status: Image is up to date for " + name);
}

TEST_F(DistributionTest, ARepushSendsOnlyTheLayersTheRegistryLacks) {
  runtime::ImageStore a((base_ / "a").string());
  const std::string one = registry_->host() + "/alice/layers:1";
  const std::string two = registry_->host() + "/alice/layers:2";
  auto first = build(a, one);
  auto second = build(a, two, /*two=*/true);
  ASSERT_EQ(second.layers.size(), 2u);
  ASSERT_EQ(second.layers[0], first.layers[0]);
  ASSERT_TRUE(push(a, *client(), ref(one), nullptr).ok());

  std::vector<std::string> lines;
  auto pushed = push(a, *client(), ref(two), [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[1], sha256Digest(*a.exportLayer(second.layers[0])).substr(7, 12) + ": Layer already exists");
  EXPECT_EQ(lines[2], sha256Digest(*a.exportLayer(second.layers[1])).substr(7, 12) + ": Pushed");
}

TEST_F(DistributionTest, SkopeoReadsWhatSkiffPushed) {
  runtime::ImageStore a((base_ / "a").string());
  const std::string name = registry_->host() + "/alice/skopeo-reads:1";
  auto built = build(a, name, /*two=*/true);
  auto pushed = push(a, *client(), ref(name), nullptr);
  ASSERT_TRUE(pushed.ok()) << pushed.error().message;

  const std::string skopeo = "skopeo inspect --tls-verify=false --creds alice:secret ";
  int status = 0;
  json inspect = json::parse(run(skopeo + "docker://" + name + " 2>&1", &status), nullptr, false);
  ASSERT_EQ(status, 0) << inspect;
  ASSERT_FALSE(inspect.is_discarded());
  EXPECT_EQ(inspect["Digest"], pushed->digest);
  EXPECT_EQ(inspect["Architecture"], "amd64");
  EXPECT_EQ(inspect["Os"], "linux");
  std::vector<std::string> blobs;
  for (const auto& l : built.layers) blobs.push_back(sha256Digest(*a.exportLayer(l)));
  EXPECT_EQ(inspect["Layers"], json(blobs));

  json config = json::parse(run(skopeo + "--config docker://" + name, &status), nullptr, false);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(config["rootfs"]["diff_ids"], json(built.layers));
  EXPECT_EQ(config["config"]["Cmd"], json({"/app/app.py"}));
  EXPECT_EQ("sha256:" + std::string(run(skopeo + "--raw --config docker://" + name + " | sha256sum").substr(0, 64)),
            built.id);
}

TEST_F(DistributionTest, AnImageUmociMadeAndSkopeoPushedIsPulledWithItsFiles) {
  const std::string layout = (base_ / "oci").string();
  const std::string bundle = (base_ / "bundle").string();
  const std::string name = registry_->host() + "/alice/umoci:v1";
  int status = 0;
  run("umoci init --layout " + layout + " && umoci new --image " + layout + ":v1 && umoci unpack --image " + layout +
          ":v1 " + bundle + " && mkdir -p " + bundle + "/rootfs/srv && printf 'from umoci\\n' > " + bundle +
          "/rootfs/srv/hello && umoci repack --image " + layout + ":v1 " + bundle + " && umoci config --image " +
          layout + ":v1 --config.cmd /srv/hello --config.env GREETING=hi" +
          " && skopeo copy --dest-tls-verify=false --dest-creds alice:secret oci:" + layout + ":v1 docker://" + name +
          " >/dev/null 2>&1",
      &status);
  ASSERT_EQ(status, 0) << "umoci or skopeo failed";

  runtime::ImageStore b((base_ / "b").string());
  auto pulled = pull(b, *client(), ref(name), nullptr);
  ASSERT_TRUE(pulled.ok()) << pulled.error().message;
  auto image = b.resolve(name);
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_EQ(image->config.cmd, (std::vector<std::string>{"/srv/hello"}));
  EXPECT_NE(std::find(image->config.env.begin(), image->config.env.end(), "GREETING=hi"), image->config.env.end());
  bool found = false;
  for (const auto& dir : b.layerDirs(*image)) {
    if (fs::exists(fs::path(dir) / "srv" / "hello")) {
      EXPECT_EQ(slurp(fs::path(dir) / "srv" / "hello"), "from umoci\n");
      found = true;
    }
  }
  EXPECT_TRUE(found) << "srv/hello in none of the pulled layers";
}

TEST_F(DistributionTest, RefusalsLeaveNoImage) {
  runtime::ImageStore a((base_ / "a").string());
  const std::string name = registry_->host() + "/alice/refused:1";
  auto built = build(a, name, /*two=*/true);
  ASSERT_TRUE(push(a, *client(), ref(name), nullptr).ok());
  runtime::ImageStore b((base_ / "b").string());

  auto wrong = pull(b, *client("wrong"), ref(name), nullptr);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("unauthorized"), std::string::npos) << wrong.error().message;

  auto unknown = pull(b, *client(), ref(registry_->host() + "/alice/refused:nope"), nullptr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("manifest unknown"), std::string::npos) << unknown.error().message;

  auto missing = push(a, *client(), ref(registry_->host() + "/alice/never-built:1"), nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "An image does not exist locally with the tag: " + registry_->host() + "/alice/never-built");

  // The registry's copy of the top layer is corrupted on its disk: the pull
  // fails on that blob, and no image (tag or id) is left in the store.
  const std::string top = sha256Digest(*a.exportLayer(built.layers[1])).substr(7);
  const fs::path blob =
      *dir_ / "registry" / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / top.substr(0, 2) / top / "data";
  ASSERT_TRUE(fs::exists(blob)) << blob;
  std::string bytes = slurp(blob);
  bytes[bytes.size() / 2] ^= 0x20;
  std::ofstream(blob, std::ios::binary | std::ios::trunc) << bytes;
  auto corrupt = pull(b, *client(), ref(name), nullptr);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message.find("digest mismatch"), std::string::npos) << corrupt.error().message;
  EXPECT_TRUE(b.list().empty()) << "no half image in image ls";
  EXPECT_FALSE(b.hasLayer(built.layers[1]));
}

}  // namespace
}  // namespace skiff::registry
