// `image save` / `image load` in docker-archive format: a round trip into a
// clean store keeps the id, the tags and the files; skopeo reads what skiff
// saved; an image umoci made and skopeo wrote as a docker-archive loads and
// has its files; a broken archive is refused naming what is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "image_fs.h"
#include "layer_tar.h"
#include "skiff/runtime/image.h"
#include "tar_helpers.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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

class ImageArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-image-archive-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    fs::create_directories(base_ / "ctx");
    std::ofstream(base_ / "ctx" / "hello", std::ios::binary) << "hello binary\n";
    std::ofstream(base_ / "ctx" / "index.html") << "<h1>hi</h1>\n";
    std::ofstream(base_ / "ctx" / "Dockerfile")
        << "FROM scratch\nCOPY hello /hello\nCOPY index.html /srv/\nCMD [\"/hello\"]\nEXPOSE 80\n";
  }
  void TearDown() override { layertar::removeUnpacked(base_.string()); }

  fs::path base_;
};

TEST_F(ImageArchiveTest, SaveThenLoadIntoACleanStoreKeepsIdTagsAndFiles) {
  ImageStore a((base_ / "a").string());
  auto built = a.build((base_ / "ctx").string(), "friendlyhello", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  ASSERT_TRUE(a.tag("friendlyhello", "alice/get-started:part2").ok());
  const std::string file = (base_ / "hello.tar").string();
  ASSERT_TRUE(a.save({"friendlyhello", "alice/get-started:part2"}, file).ok());

  ImageStore b((base_ / "b").string());
  auto lines = b.load(file);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines,
            (std::vector<std::string>{"Loaded image: friendlyhello:latest", "Loaded image: alice/get-started:part2"}));
  auto loaded = b.resolve("alice/get-started:part2");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->id, built->id);
  EXPECT_EQ(loaded->tags, (std::vector<std::string>{"alice/get-started:part2", "friendlyhello:latest"}));
  EXPECT_EQ(loaded->config.exposedPorts, (std::vector<std::string>{"80/tcp"}));
  auto dirs = b.layerDirs(*loaded);
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(slurp(fs::path(dirs[1]) / "hello"), "hello binary\n");
  EXPECT_EQ(slurp(fs::path(dirs[0]) / "srv" / "index.html"), "<h1>hi</h1>\n");
  // The layers are kept as the blobs a push sends: the same bytes as built.
  for (const auto& l : built->layers) EXPECT_EQ(*b.exportLayer(l), *a.exportLayer(l));

  // What other tools read: manifest.json as docker writes it, and skopeo.
  int status = 0;
  json manifest = json::parse(run("tar -xOf " + file + " manifest.json"), nullptr, false);
  ASSERT_TRUE(manifest.is_array()) << manifest;
  ASSERT_EQ(manifest.size(), 2u);
  EXPECT_EQ(manifest[0]["Config"], built->id.substr(7) + ".json");
  EXPECT_EQ(manifest[0]["RepoTags"], json({"friendlyhello:latest"}));
  EXPECT_EQ(manifest[0]["Layers"],
            json({built->layers[0].substr(7) + "/layer.tar", built->layers[1].substr(7) + "/layer.tar"}));
  json config = json::parse(
      run("skopeo inspect --config docker-archive:" + file + ":alice/get-started:part2 2>&1", &status), nullptr, false);
  ASSERT_EQ(status, 0) << config;
  EXPECT_EQ(config["rootfs"]["diff_ids"], json(built->layers));
  EXPECT_EQ(config["config"]["Cmd"], json({"/hello"}));
}

TEST_F(ImageArchiveTest, AnImageUmociMadeAndSkopeoSavedLoadsWithItsFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "umoci unpacks as root";
  const std::string layout = (base_ / "oci").string();
  const std::string bundle = (base_ / "bundle").string();
  const std::string file = (base_ / "umoci.tar").string();
  int status = 0;
  run("umoci init --layout " + layout + " && umoci new --image " + layout + ":v1 && umoci unpack --image " + layout +
          ":v1 " + bundle + " && mkdir -p " + bundle + "/rootfs/srv && printf 'from umoci\\n' > " + bundle +
          "/rootfs/srv/hello && umoci repack --image " + layout + ":v1 " + bundle + " && umoci config --image " +
          layout + ":v1 --config.cmd /srv/hello && skopeo copy oci:" + layout + ":v1 docker-archive:" + file +
          ":umoci/app:v1 >/dev/null 2>&1",
      &status);
  ASSERT_EQ(status, 0) << "umoci or skopeo failed";

  ImageStore b((base_ / "b").string());
  auto lines = b.load(file);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image: umoci/app:v1"}));
  auto image = b.resolve("umoci/app:v1");
  ASSERT_TRUE(image.ok()) << image.error().message;
  EXPECT_EQ(image->config.cmd, (std::vector<std::string>{"/srv/hello"}));
  bool found = false;
  for (const auto& dir : b.layerDirs(*image)) {
    if (fs::exists(fs::path(dir) / "srv" / "hello")) found = slurp(fs::path(dir) / "srv" / "hello") == "from umoci\n";
  }
  EXPECT_TRUE(found) << "srv/hello in none of the loaded layers";
}

TEST_F(ImageArchiveTest, ABrokenArchiveIsRefusedNamingWhatIsMissingAndLeavesNoImage) {
  ImageStore b((base_ / "b").string());
  const fs::path file = base_ / "broken.tar";
  auto refusal = [&](const std::vector<testing::TarEntry>& entries) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << testing::tarOf(entries);
    auto r = b.load(file.string());
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  const std::string prefix = "invalid image archive " + file.string() + ": ";
  EXPECT_EQ(refusal({{testing::TarEntry::kFile, "repositories", "{}"}}),
            prefix + "no manifest.json (not what docker save writes)");
  EXPECT_EQ(refusal({{testing::TarEntry::kFile, "manifest.json", R"([{"Config": "abc.json", "Layers": []}])"}}),
            prefix + "it does not hold abc.json, which manifest.json names");
  EXPECT_EQ(refusal({{testing::TarEntry::kFile, "manifest.json",
                      R"([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}])"},
                     {testing::TarEntry::kFile, "c.json",
                      R"({"rootfs": {"type": "layers", "diff_ids": ["sha256:)" + std::string(64, 'a') + R"("]}})"}}),
            prefix + "it does not hold l/layer.tar, which manifest.json names");
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "version: 0.1\n";
  auto notTar = b.load(file.string());
  ASSERT_FALSE(notTar.ok());
  EXPECT_EQ(notTar.error().message.rfind(prefix, 0), 0u) << notTar.error().message;
  EXPECT_TRUE(b.list().empty());
  auto missing = b.load((base_ / "nope.tar").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.tar"), std::string::npos) << missing.error().message;
}

}  // namespace
}  // namespace skiff::runtime
