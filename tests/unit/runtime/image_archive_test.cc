// `image save` / `image load`: a round trip into a clean store keeps the
// id, the tags and the files; what skiff saves is a docker-archive and an OCI
// layout at once, as docker 25's, and skopeo reads it both ways; an image
// umoci made and skopeo wrote as a docker-archive or as an OCI archive loads
// and has its files; an OCI layout's nested index is followed to its
// linux/amd64 image; a broken archive is refused naming what is missing, a
// tampered blob naming the blob, a layer that is not its diff id in either
// format, each leaving no image.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
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

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
constexpr char kOciLayerTar[] = "application/vnd.oci.image.layer.v1.tar";

// An OCI image layout as tar entries, blob by blob: archives no tool here
// writes (a nested index, a layer that is not its diff id, a zstd layer).
struct LayoutBuilder {
  std::vector<testing::TarEntry> entries{{testing::TarEntry::kFile, "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"}};

  json blob(const std::string& mediaType, const std::string& bytes) {
    const std::string hex = imagefs::sha256Hex(bytes);
    entries.push_back({testing::TarEntry::kFile, "blobs/sha256/" + hex, bytes});
    return {{"mediaType", mediaType}, {"digest", "sha256:" + hex}, {"size", bytes.size()}};
  }

  // A manifest of one layer per tar; the config lists diffIds, or the
  // tars' own diff ids when none are given.
  json image(const std::vector<std::string>& layers, std::vector<std::string> diffIds = {},
             const std::string& layerType = kOciLayerTar) {
    if (diffIds.empty()) {
      for (const auto& l : layers) diffIds.push_back("sha256:" + imagefs::sha256Hex(l));
    }
    const json config{{"architecture", "amd64"},
                      {"os", "linux"},
                      {"config", {{"Cmd", json::array({"/hello"})}}},
                      {"rootfs", {{"type", "layers"}, {"diff_ids", diffIds}}}};
    json manifest{{"schemaVersion", 2},
                  {"mediaType", kOciManifest},
                  {"config", blob(kOciConfig, config.dump())},
                  {"layers", json::array()}};
    for (const auto& l : layers) manifest["layers"].push_back(blob(layerType, l));
    return blob(kOciManifest, manifest.dump());
  }

  std::string tar(const std::vector<json>& manifests) {
    entries.push_back({testing::TarEntry::kFile, "index.json",
                       json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", manifests}}.dump()});
    return testing::tarOf(entries);
  }
};

json named(json descriptor, const std::string& name, const std::string& refName) {
  descriptor["annotations"] = {{"io.containerd.image.name", name}, {"org.opencontainers.image.ref.name", refName}};
  return descriptor;
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

  // An image umoci makes (gzip layers, as OCI tools write them): /srv/hello
  // "from umoci\n", cmd /srv/hello, at <base>/oci:v1. umoci unpacks as root.
  bool umociLayout() {
    const std::string layout = (base_ / "oci").string();
    const std::string bundle = (base_ / "bundle").string();
    int status = 0;
    run("umoci init --layout " + layout + " && umoci new --image " + layout + ":v1 && umoci unpack --image " + layout +
            ":v1 " + bundle + " && mkdir -p " + bundle + "/rootfs/srv && printf 'from umoci\\n' > " + bundle +
            "/rootfs/srv/hello && umoci repack --image " + layout + ":v1 " + bundle + " && umoci config --image " +
            layout + ":v1 --config.cmd /srv/hello >/dev/null 2>&1",
        &status);
    return status == 0;
  }

  // umociLayout()'s image as skopeo copies it into an archive (transport
  // "docker-archive" or "oci-archive") naming `ref`; "" when a tool failed.
  std::string umociArchive(const std::string& transport, const std::string& ref) {
    if (!umociLayout()) return "";
    const std::string file = (base_ / (transport + ".tar")).string();
    int status = 0;
    run("skopeo copy oci:" + (base_ / "oci").string() + ":v1 " + transport + ":" + file + ":" + ref +
            " >/dev/null 2>&1",
        &status);
    return status == 0 ? file : "";
  }

  // `file` loads into `store` as umoci's image named `name`, with its files.
  static void expectLoadsUmociImage(ImageStore& store, const std::string& file, const std::string& name) {
    auto lines = store.load(file);
    ASSERT_TRUE(lines.ok()) << lines.error().message;
    EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image: " + name}));
    auto image = store.resolve(name);
    ASSERT_TRUE(image.ok()) << image.error().message;
    EXPECT_EQ(image->config.cmd, (std::vector<std::string>{"/srv/hello"}));
    EXPECT_TRUE(hasUmociHello(store, *image)) << "srv/hello in none of the loaded layers";
  }

  static bool hasUmociHello(const ImageStore& store, const ImageRecord& image) {
    for (const auto& dir : store.layerDirs(image)) {
      if (slurp(fs::path(dir) / "srv" / "hello") == "from umoci\n") return true;
    }
    return false;
  }

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
  EXPECT_EQ(manifest[0]["Config"], "blobs/sha256/" + built->id.substr(7));
  EXPECT_EQ(manifest[0]["RepoTags"], json({"friendlyhello:latest"}));
  EXPECT_EQ(manifest[0]["Layers"],
            json({"blobs/sha256/" + built->layers[0].substr(7), "blobs/sha256/" + built->layers[1].substr(7)}));
  json config = json::parse(
      run("skopeo inspect --config docker-archive:" + file + ":alice/get-started:part2 2>&1", &status), nullptr, false);
  ASSERT_EQ(status, 0) << config;
  EXPECT_EQ(config["rootfs"]["diff_ids"], json(built->layers));
  EXPECT_EQ(config["config"]["Cmd"], json({"/hello"}));
}

TEST_F(ImageArchiveTest, AnImageUmociMadeAndSkopeoSavedLoadsWithItsFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "umoci unpacks as root";
  const std::string file = umociArchive("docker-archive", "umoci/app:v1");
  ASSERT_FALSE(file.empty()) << "umoci or skopeo failed";
  ImageStore b((base_ / "b").string());
  expectLoadsUmociImage(b, file, "umoci/app:v1");
}

TEST_F(ImageArchiveTest, AnOciArchiveSkopeoWroteFromAnUmociImageLoadsWithItsTagAndFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "umoci unpacks as root";
  const std::string file = umociArchive("oci-archive", "hello:1");
  ASSERT_FALSE(file.empty()) << "umoci or skopeo failed";
  const auto names = linesOf(run("tar -tf " + file));
  ASSERT_EQ(std::count(names.begin(), names.end(), "index.json"), 1) << "not an OCI layout";
  ASSERT_EQ(std::count(names.begin(), names.end(), "manifest.json"), 0) << "a docker-archive too";

  ImageStore b((base_ / "b").string());
  expectLoadsUmociImage(b, file, "hello:1");
  auto image = b.resolve("hello:1");
  ASSERT_TRUE(image.ok()) << image.error().message;
  // Kept as the gzip blob umoci wrote: a push sends the manifest's digest.
  json manifest = json::parse(run("skopeo inspect --raw oci:" + (base_ / "oci").string() + ":v1"), nullptr, false);
  ASSERT_TRUE(manifest.is_object()) << manifest;
  auto blob = b.exportLayer(image->layers.back());
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  EXPECT_EQ("sha256:" + imagefs::sha256Hex(*blob), manifest["layers"].back()["digest"]);
}

TEST_F(ImageArchiveTest, SaveWritesAnOciLayoutTooThatSkopeoReadsAsOciAndAsADockerArchive) {
  ImageStore a((base_ / "a").string());
  auto built = a.build((base_ / "ctx").string(), "friendlyhello", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  ASSERT_TRUE(a.tag("friendlyhello", "127.0.0.1:5000/alice/x:part2").ok());
  const std::string file = (base_ / "hello.tar").string();
  ASSERT_TRUE(a.save({"friendlyhello", "127.0.0.1:5000/alice/x:part2"}, file).ok());

  EXPECT_EQ(run("tar -xOf " + file + " oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  json index = json::parse(run("tar -xOf " + file + " index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object()) << index;
  EXPECT_EQ(index["schemaVersion"], 2);
  EXPECT_EQ(index["mediaType"], kOciIndex);
  ASSERT_EQ(index["manifests"].size(), 2u) << index;
  EXPECT_EQ(index["manifests"][0]["annotations"],
            json({{"io.containerd.image.name", "docker.io/library/friendlyhello:latest"},
                  {"org.opencontainers.image.ref.name", "latest"}}));
  EXPECT_EQ(index["manifests"][1]["annotations"], json({{"io.containerd.image.name", "127.0.0.1:5000/alice/x:part2"},
                                                        {"org.opencontainers.image.ref.name", "part2"}}));
  EXPECT_EQ(index["manifests"][0]["digest"], index["manifests"][1]["digest"]);
  // Every blob once: the config, two layers, one manifest.
  const auto names = linesOf(run("tar -tf " + file));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.rfind("blobs/", 0) == 0; }),
            4);

  int status = 0;
  json oci = json::parse(run("skopeo inspect --raw oci-archive:" + file + ":part2 2>&1", &status), nullptr, false);
  ASSERT_EQ(status, 0) << oci;
  EXPECT_EQ(oci["mediaType"], kOciManifest);
  EXPECT_EQ(oci["config"]["mediaType"], kOciConfig);
  EXPECT_EQ(oci["config"]["digest"], built->id);
  ASSERT_EQ(oci["layers"].size(), 2u) << oci;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(oci["layers"][i]["mediaType"], kOciLayerTar);
    EXPECT_EQ(oci["layers"][i]["digest"], built->layers[i]);  // a plain tar: its digest is the diff id
  }
  json docker =
      json::parse(run("skopeo inspect --raw docker-archive:" + file + ":127.0.0.1:5000/alice/x:part2 2>&1", &status),
                  nullptr, false);
  ASSERT_EQ(status, 0) << docker;
  EXPECT_EQ(docker["config"]["digest"], built->id);

  const std::string dir = (base_ / "copied").string();
  std::string out = run("skopeo copy oci-archive:" + file + ":latest oci:" + dir + ":copied 2>&1", &status);
  ASSERT_EQ(status, 0) << out;
  json copied = json::parse(run("skopeo inspect --raw oci:" + dir + ":copied 2>&1", &status), nullptr, false);
  ASSERT_EQ(status, 0) << copied;
  EXPECT_EQ(copied["config"]["digest"], built->id);
}

TEST_F(ImageArchiveTest, AnUntaggedSaveListsItsImageWithoutANameAndLoadsById) {
  ImageStore a((base_ / "a").string());
  auto built = a.build((base_ / "ctx").string(), "", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string file = (base_ / "untagged.tar").string();
  ASSERT_TRUE(a.save({built->id}, file).ok());
  json index = json::parse(run("tar -xOf " + file + " index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object()) << index;
  ASSERT_EQ(index["manifests"].size(), 1u) << index;
  EXPECT_FALSE(index["manifests"][0].contains("annotations")) << index;

  ImageStore b((base_ / "b").string());
  auto lines = b.load(file);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image ID: " + built->id}));
}

TEST_F(ImageArchiveTest, AnOciArchiveIsNamedByAWholeReferenceNameAndNotByATagAlone) {
  ImageStore a((base_ / "a").string());
  auto built = a.build((base_ / "ctx").string(), "friendlyhello", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string saved = (base_ / "saved.tar").string();
  ASSERT_TRUE(a.save({"friendlyhello"}, saved).ok());
  // skopeo writes only the reference name, whatever follows the path.
  const std::string byName = (base_ / "by-name.tar").string();
  const std::string byTag = (base_ / "by-tag.tar").string();
  int status = 0;
  std::string out = run("skopeo copy oci-archive:" + saved + " oci-archive:" + byName +
                            ":127.0.0.1:5000/alice/x:part2 2>&1 && skopeo copy oci-archive:" + saved +
                            " oci-archive:" + byTag + ":latest 2>&1",
                        &status);
  ASSERT_EQ(status, 0) << out;

  ImageStore b((base_ / "b").string());
  auto lines = b.load(byName);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image: 127.0.0.1:5000/alice/x:part2"}));
  auto loaded = b.resolve("127.0.0.1:5000/alice/x:part2");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->id, built->id);
  auto dirs = b.layerDirs(*loaded);
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(slurp(fs::path(dirs[0]) / "srv" / "index.html"), "<h1>hi</h1>\n");

  ImageStore c((base_ / "c").string());
  lines = c.load(byTag);
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image ID: " + built->id}));
  EXPECT_FALSE(c.resolve("latest").ok());
}

TEST_F(ImageArchiveTest, ANestedIndexLoadsItsLinuxAmd64Image) {
  LayoutBuilder l;
  json arm64 = l.image({testing::tarOf({{testing::TarEntry::kFile, "arch", "arm64\n"}})});
  json amd64 = l.image({testing::tarOf({{testing::TarEntry::kFile, "arch", "amd64\n"}})});
  arm64["platform"] = {{"architecture", "arm64"}, {"os", "linux"}};
  amd64["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
  json nested =
      l.blob(kOciIndex, json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {arm64, amd64}}}.dump());
  const fs::path file = base_ / "multi.tar";
  std::ofstream(file, std::ios::binary) << l.tar({named(nested, "docker.io/library/multi:1", "1")});

  ImageStore b((base_ / "b").string());
  auto lines = b.load(file.string());
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  EXPECT_EQ(*lines, (std::vector<std::string>{"Loaded image: multi:1"}));
  auto image = b.resolve("multi:1");
  ASSERT_TRUE(image.ok()) << image.error().message;
  ASSERT_EQ(b.layerDirs(*image).size(), 1u);
  EXPECT_EQ(slurp(fs::path(b.layerDirs(*image)[0]) / "arch"), "amd64\n");
  EXPECT_EQ(b.list().size(), 1u);
}

TEST_F(ImageArchiveTest, ATamperedBlobInAnOciArchiveIsRefusedNamingItAndLeavesNoImage) {
  ImageStore a((base_ / "a").string());
  auto built = a.build((base_ / "ctx").string(), "friendlyhello", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string saved = (base_ / "saved.tar").string();
  ASSERT_TRUE(a.save({"friendlyhello"}, saved).ok());
  // The saved archive as an OCI layout alone, one byte of its top layer changed.
  const fs::path dir = base_ / "layout";
  fs::create_directories(dir);
  int status = 0;
  run("tar -xf " + saved + " -C " + dir.string() + " && rm " + (dir / "manifest.json").string(), &status);
  ASSERT_EQ(status, 0);
  const std::string top = built->layers[1];
  const fs::path blob = dir / "blobs" / "sha256" / top.substr(7);
  std::string bytes = slurp(blob);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(blob, std::ios::binary | std::ios::trunc) << bytes;
  const std::string file = (base_ / "tampered.tar").string();
  run("tar -cf " + file + " -C " + dir.string() + " .", &status);
  ASSERT_EQ(status, 0);

  ImageStore b((base_ / "b").string());
  auto r = b.load(file);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "invalid image archive " + file + ": blob " + top + " does not match its digest");
  EXPECT_TRUE(b.list().empty());
  EXPECT_FALSE(b.hasLayer(built->layers[0])) << "the untampered layer was stored before the check";
}

TEST_F(ImageArchiveTest, ALayerThatIsNotItsDiffIdIsRefusedInBothFormatsAndLeavesNoImage) {
  const std::string layer = testing::tarOf({{testing::TarEntry::kFile, "a", "1"}});
  const std::string claimed = "sha256:" + imagefs::sha256Hex(testing::tarOf({{testing::TarEntry::kFile, "a", "2"}}));
  const std::string got = "sha256:" + imagefs::sha256Hex(layer);
  const fs::path file = base_ / "mismatch.tar";
  const std::string want =
      "invalid image archive " + file.string() + ": layer digest mismatch: want " + claimed + ", got " + got;

  ImageStore b((base_ / "b").string());
  const json config{{"rootfs", {{"type", "layers"}, {"diff_ids", {claimed}}}}};
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      << testing::tarOf({{testing::TarEntry::kFile, "manifest.json",
                          R"([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l.tar"]}])"},
                         {testing::TarEntry::kFile, "c.json", config.dump()},
                         {testing::TarEntry::kFile, "l.tar", layer}});
  auto docker = b.load(file.string());
  ASSERT_FALSE(docker.ok());
  EXPECT_EQ(docker.error().message, want);

  LayoutBuilder l;
  json image = l.image({layer}, {claimed});
  std::ofstream(file, std::ios::binary | std::ios::trunc) << l.tar({named(image, "docker.io/library/x:1", "1")});
  auto oci = b.load(file.string());
  ASSERT_FALSE(oci.ok());
  EXPECT_EQ(oci.error().message, want);
  EXPECT_TRUE(b.list().empty());
}

TEST_F(ImageArchiveTest, AZstdLayerIsRefusedNamingItsMediaType) {
  const std::string layer = testing::tarOf({{testing::TarEntry::kFile, "a", "1"}});
  LayoutBuilder l;
  json image = l.image({layer}, {}, "application/vnd.oci.image.layer.v1.tar+zstd");
  const fs::path file = base_ / "zstd.tar";
  std::ofstream(file, std::ios::binary) << l.tar({image});
  ImageStore b((base_ / "b").string());
  auto r = b.load(file.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "invalid image archive " + file.string() +
                                   ": layer sha256:" + imagefs::sha256Hex(layer) +
                                   " is application/vnd.oci.image.layer.v1.tar+zstd, which skiff cannot read (a "
                                   "layer loads as a gzip or plain tar)");
  EXPECT_TRUE(b.list().empty());
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
            prefix + "no manifest.json or index.json (not what docker save or an OCI layout holds)");
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
