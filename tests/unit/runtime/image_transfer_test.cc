// Moving an image between two stores as a worker fetching from the manager
// does: config and layers exported from store A, imported into an empty
// store B. Checks what the worker's runtime would see (the tag, the id, the
// files and modes in the layer dirs) and that bad layers are refused with
// their exact error and leave nothing behind.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "image_fs.h"
#include "layer_tar.h"
#include "skiff/runtime/image.h"
#include "tar_helpers.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;
using testing::gunzip;
using testing::TarEntry;
using testing::tarOf;

const std::string kHello = "#!fake hello binary\n";
const std::string kAbsent = "sha256:" + std::string(64, 'a');

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned modeOf(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0xffffffffu;
  return st.st_mode & 07777;
}

// Every entry below dir as "d 0750", "f 0644 <content>" or "l -> <target>".
std::map<std::string, std::string> describe(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string rel = e.path().lexically_relative(dir).string();
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", modeOf(e.path()));
    if (e.is_symlink()) {
      out[rel] = "l -> " + fs::read_symlink(e.path()).string();
    } else if (e.is_directory()) {
      out[rel] = std::string("d ") + mode;
    } else {
      out[rel] = std::string("f ") + mode + " " + slurp(e.path());
    }
  }
  return out;
}

size_t countEntries(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

class ImageTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-image-transfer-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ctx_ = base_ / "ctx";
    fs::create_directories(ctx_);
  }
  // Read-only directories in the stores would stop remove_all when the
  // tests do not run as root; this makes them writable first.
  void TearDown() override { layertar::removeUnpacked(base_.string()); }

  void write(const std::string& rel, const std::string& content, fs::perms mode = fs::perms(0644)) {
    fs::path p = ctx_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    fs::permissions(p, mode);
  }

  // Two layers: a site with a nested dir, modes 0755/0600/0750, a symlink,
  // and names whose canonical order differs from plain string order
  // ("conf/a.conf" comes before "conf-old" in the walk); then one binary.
  Result<ImageRecord> buildApp(ImageStore& store, const std::string& tag = "app:1") {
    write("app/index.html", "index\n");
    write("app/bin/run.sh", "#!/bin/sh\necho run\n", fs::perms(0755));
    write("app/secret.key", "s3cret\n", fs::perms(0600));
    write("app/conf/a.conf", "a=1\n");
    write("app/conf-old", "old\n");
    write("app/private/notes", "n\n");
    fs::permissions(ctx_ / "app" / "private", fs::perms(0750));
    fs::permissions(ctx_ / "app" / "bin", fs::perms(0755));
    fs::permissions(ctx_ / "app" / "conf", fs::perms(0755));
    fs::create_symlink("index.html", ctx_ / "app" / "home.html");
    write("hello", kHello, fs::perms(0755));
    write("Dockerfile", "FROM scratch\nCOPY app /app/\nCOPY hello /hello\nCMD [\"/hello\"]\n");
    return store.build(ctx_.string(), tag, nullptr);
  }

  // Exports every layer and the config from `from` and imports them into `to`.
  Result<ImageRecord> transfer(ImageStore& from, ImageStore& to, const ImageRecord& image, const std::string& tag) {
    for (const auto& layer : image.layers) {
      auto archive = from.exportLayer(layer);
      if (!archive.ok()) return archive.error();
      auto imported = to.importLayer(layer, *archive);
      if (!imported.ok()) return imported.error();
    }
    auto config = from.exportImageConfig(image.id);
    if (!config.ok()) return config.error();
    return to.importImage(*config, tag);
  }

  fs::path images(const std::string& store) const { return base_ / store / "images"; }

  fs::path base_, ctx_;
};

TEST_F(ImageTransferTest, ImageMovesToAnEmptyStoreWithTheSameIdFilesAndModes) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  ASSERT_EQ(built->layers.size(), 2u);

  ImageStore b((base_ / "b").string());
  for (const auto& layer : built->layers) EXPECT_FALSE(b.hasLayer(layer));
  auto moved = transfer(a, b, *built, "app:1");
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  for (const auto& layer : built->layers) EXPECT_TRUE(b.hasLayer(layer));

  auto resolved = b.resolve("app:1");
  ASSERT_TRUE(resolved.ok()) << resolved.error().message;
  EXPECT_EQ(resolved->id, built->id);
  EXPECT_EQ(resolved->tags, (std::vector<std::string>{"app:1"}));
  EXPECT_EQ(resolved->layers, built->layers);
  EXPECT_EQ(resolved->config.cmd, (std::vector<std::string>{"/hello"}));
  EXPECT_EQ(resolved->size, built->size);
  EXPECT_EQ(slurp(images("b") / "configs" / (built->id.substr(7) + ".json")),
            slurp(images("a") / "configs" / (built->id.substr(7) + ".json")));

  auto dirsA = a.layerDirs(*built);
  auto dirsB = b.layerDirs(*resolved);
  ASSERT_EQ(dirsB.size(), 2u);
  for (size_t i = 0; i < dirsA.size(); ++i) {
    EXPECT_EQ(describe(dirsB[i]), describe(dirsA[i])) << "layer " << i;
  }
  // What the runtime sees in the bottom layer, literally.
  const std::map<std::string, std::string> expectedApp = {
      {"app", "d 0755"},
      {"app/bin", "d 0755"},
      {"app/bin/run.sh", "f 0755 #!/bin/sh\necho run\n"},
      {"app/conf", "d 0755"},
      {"app/conf/a.conf", "f 0644 a=1\n"},
      {"app/conf-old", "f 0644 old\n"},
      {"app/home.html", "l -> index.html"},
      {"app/index.html", "f 0644 index\n"},
      {"app/private", "d 0750"},
      {"app/private/notes", "f 0644 n\n"},
      {"app/secret.key", "f 0600 s3cret\n"},
  };
  EXPECT_EQ(describe(dirsB[1]), expectedApp);
  EXPECT_EQ(describe(dirsB[0]), (std::map<std::string, std::string>{{"hello", "f 0755 " + kHello}}));
  EXPECT_EQ(modeOf(dirsB[0]), 0755u) << "a layer root is 0755 as build() leaves it";
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u) << "no import leftovers";
}

TEST_F(ImageTransferTest, ExportedConfigHashesToTheImageId) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  auto config = a.exportImageConfig("app:1");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ("sha256:" + imagefs::sha256Hex(*config), built->id);
  EXPECT_EQ(*config, slurp(images("a") / "configs" / (built->id.substr(7) + ".json")));

  auto missing = a.exportImageConfig("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "image nope:latest not found locally; build it with skiff image build");
}

TEST_F(ImageTransferTest, ExportOfAnUnknownLayerIsRefused) {
  ImageStore a((base_ / "a").string());
  auto r = a.exportLayer(kAbsent);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "layer " + kAbsent + " not found");
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_FALSE(a.hasLayer(kAbsent));

  auto bad = a.exportLayer("sha256:../../etc");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "invalid layer digest \"sha256:../../etc\": want sha256:<64 hex digits>");
}

TEST_F(ImageTransferTest, TamperedLayerIsRefusedWithBothDigestsAndLeavesNothing) {
  write("hello", kHello, fs::perms(0755));
  write("Dockerfile", "FROM scratch\nCOPY hello /hello\n");
  ImageStore a((base_ / "a").string());
  auto built = a.build(ctx_.string(), "hello:1", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string want = built->layers.at(0);
  auto blob = a.exportLayer(want);
  ASSERT_TRUE(blob.ok()) << blob.error().message;
  const std::string tar = gunzip(*blob);
  EXPECT_EQ("sha256:" + imagefs::sha256Hex(tar), want) << "the diff id is the sha256 of the tar";

  // One byte of content changed: "hello" -> "hellO" (a tar's checksum
  // covers only its headers: the reader cannot tell, the digest can).
  std::string tampered = tar;
  size_t at = tampered.find(kHello);
  ASSERT_NE(at, std::string::npos);
  tampered[at + std::string("#!fake hell").size()] = 'O';

  ImageStore b((base_ / "b").string());
  auto st = b.importLayer(want, tampered);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "layer digest mismatch: want " + want + ", got sha256:" + imagefs::sha256Hex(tampered));
  EXPECT_FALSE(b.hasLayer(want));
  EXPECT_EQ(countEntries(images("b") / "layers"), 0u);
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u);

  // The untouched blob still goes in afterwards, and so does the plain tar.
  ASSERT_TRUE(b.importLayer(want, *blob).ok());
  EXPECT_EQ(slurp(fs::path(b.layerDirs(*built)[0]) / "hello"), kHello);
  ImageStore c((base_ / "c").string());
  ASSERT_TRUE(c.importLayer(want, tar).ok());
  EXPECT_EQ(slurp(fs::path(c.layerDirs(*built)[0]) / "hello"), kHello);
}

// Each refused with the entry's name and why; nothing lands outside the
// layer, nothing stays in the store.
TEST_F(ImageTransferTest, UnsafePathsAreRefusedAndNothingIsWritten) {
  const fs::path outside = base_ / "outside";
  fs::create_directories(outside);
  ImageStore b((base_ / "b").string());
  auto refusal = [&](const std::vector<TarEntry>& entries) {
    const std::string tar = tarOf(entries);
    const std::string id = "sha256:" + imagefs::sha256Hex(tar);
    auto st = b.importLayer(id, tar);
    if (st.ok()) return std::string("accepted");
    const std::string prefix = "layer " + id + ": ";
    const std::string& m = st.error().message;
    return m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m;
  };

  EXPECT_EQ(refusal({{TarEntry::kFile, "../x", "pwned"}}),
            "invalid layer: entry \"../x\": path climbs out of the layer");
  EXPECT_EQ(refusal({{TarEntry::kFile, "a/../../x", "pwned"}}),
            "invalid layer: entry \"a/../../x\": path climbs out of the layer");
  EXPECT_EQ(refusal({{TarEntry::kSymlink, "a", outside.string()}, {TarEntry::kFile, "a/x", "pwned"}}),
            "invalid layer: entry \"a/x\": path goes through \"a\", which is not a directory");
  EXPECT_EQ(refusal({{TarEntry::kSymlink, "a", "/"}, {TarEntry::kFile, "a/tmp/x", "pwned"}}),
            "invalid layer: entry \"a/tmp/x\": path goes through \"a\", which is not a directory");
  EXPECT_EQ(refusal({{TarEntry::kHardlink, "h", "../../etc/passwd"}}),
            "invalid layer: entry \"h\": hard link to outside the layer");
  EXPECT_EQ(refusal({{TarEntry::kSymlink, "s", outside.string()}, {TarEntry::kHardlink, "h", "s/secret"}}),
            "invalid layer: entry \"h\": hard link target \"s/secret\" is not in the layer");

  EXPECT_EQ(countEntries(outside), 0u);
  EXPECT_FALSE(fs::exists(images("b") / "x"));
  EXPECT_FALSE(fs::exists(images("b") / "tmp" / "x"));
  EXPECT_EQ(countEntries(images("b") / "layers"), 0u);
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u);

  // An absolute path is relative to the layer, as docker reads it.
  const std::string tar = tarOf({{TarEntry::kFile, "/etc/motd", "inside\n"}});
  const std::string id = "sha256:" + imagefs::sha256Hex(tar);
  ASSERT_TRUE(b.importLayer(id, tar).ok());
  EXPECT_EQ(slurp(images("b") / "layers" / id.substr(7) / "etc" / "motd"), "inside\n");
}

TEST_F(ImageTransferTest, TruncatedLayerIsRefusedAtEveryLength) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string layer = built->layers.at(0);  // the app dir: many entries
  auto blob = a.exportLayer(layer);
  ASSERT_TRUE(blob.ok()) << blob.error().message;

  ImageStore b((base_ / "b").string());
  for (size_t n = 0; n < blob->size(); ++n) {
    auto st = b.importLayer(layer, std::string_view(*blob).substr(0, n));
    ASSERT_FALSE(st.ok()) << "accepted the first " << n << " of " << blob->size() << " bytes";
    const std::string& m = st.error().message;
    EXPECT_TRUE(m.rfind("layer " + layer + ": invalid layer: ", 0) == 0 ||
                m.rfind("layer digest mismatch: want " + layer, 0) == 0)
        << m;
  }
  auto cut = b.importLayer(layer, std::string_view(*blob).substr(0, blob->size() - 4));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().message, "layer " + layer + ": invalid layer: gzip stream truncated");
  EXPECT_FALSE(b.hasLayer(layer));
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u);
}

TEST_F(ImageTransferTest, ImportImageNamesTheFirstMissingLayer) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  ImageStore b((base_ / "b").string());
  auto config = a.exportImageConfig("app:1");
  ASSERT_TRUE(config.ok()) << config.error().message;

  auto none = b.importImage(*config, "app:1");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "layer " + built->layers[0] + " not found (needed by image " + built->id + ")");
  EXPECT_EQ(none.error().code, ENOENT);

  auto bottom = a.exportLayer(built->layers[0]);
  ASSERT_TRUE(bottom.ok()) << bottom.error().message;
  ASSERT_TRUE(b.importLayer(built->layers[0], *bottom).ok());
  auto one = b.importImage(*config, "app:1");
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().message, "layer " + built->layers[1] + " not found (needed by image " + built->id + ")");

  EXPECT_FALSE(b.resolve("app:1").ok()) << "no tag for an image that is not complete";
  EXPECT_EQ(countEntries(images("b") / "configs"), 0u);
}

TEST_F(ImageTransferTest, ImportImageRefusesWhatIsNotAnImageConfig) {
  ImageStore b((base_ / "b").string());
  auto junk = b.importImage("not json", "app:1");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().message, "invalid image config sha256:" + imagefs::sha256Hex("not json"));

  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  auto config = nlohmann::json::parse(*a.exportImageConfig("app:1"));
  config["rootfs"]["diff_ids"] = {"sha256:../../etc"};
  const std::string evil = config.dump();
  auto refused = b.importImage(evil, "app:1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "invalid image config sha256:" + imagefs::sha256Hex(evil) +
                                         ": invalid layer digest \"sha256:../../etc\": want sha256:<64 hex digits>");

  auto badTag = b.importImage(*a.exportImageConfig("app:1"), "App");
  ASSERT_FALSE(badTag.ok());
  EXPECT_EQ(badTag.error().message, "invalid reference format: repository name (App) must be lowercase");
}

TEST_F(ImageTransferTest, ReimportIsANoOp) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  ImageStore b((base_ / "b").string());
  auto first = transfer(a, b, *built, "app:1");
  ASSERT_TRUE(first.ok()) << first.error().message;

  const fs::path layerDir = b.layerDirs(*first)[0];
  struct stat before {};
  ASSERT_EQ(::stat(layerDir.c_str(), &before), 0);
  auto archive = a.exportLayer(built->layers[1]);
  ASSERT_TRUE(archive.ok());
  EXPECT_TRUE(b.importLayer(built->layers[1], *archive).ok());
  EXPECT_TRUE(b.importLayer(built->layers[1], "not even an archive").ok()) << "a present layer is not read again";
  struct stat after {};
  ASSERT_EQ(::stat(layerDir.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the stored layer dir was not replaced";

  auto second = transfer(a, b, *built, "app:1");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->id, first->id);
  EXPECT_EQ(second->created, first->created);
  EXPECT_EQ(b.list().size(), 1u);
  EXPECT_EQ(countEntries(images("b") / "layers"), 4u) << "two layer dirs, two blobs";

  // Importing again under another name only adds the name, as `image tag` does.
  auto third = b.importImage(*a.exportImageConfig("app:1"), "app:2");
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(third->tags, (std::vector<std::string>{"app:1", "app:2"}));
}

TEST_F(ImageTransferTest, ReadOnlyDirectoriesArriveReadOnlyAndAFailedImportStillCleansUp) {
  write("ro/file", "x\n", fs::perms(0444));
  fs::permissions(ctx_ / "ro", fs::perms(0555));
  write("Dockerfile", "FROM scratch\nCOPY ro /ro/\n");
  ImageStore a((base_ / "a").string());
  auto built = a.build(ctx_.string(), "ro:1", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string layer = built->layers.at(0);
  auto archive = a.exportLayer(layer);
  ASSERT_TRUE(archive.ok()) << archive.error().message;

  ImageStore b((base_ / "b").string());
  ASSERT_TRUE(b.importLayer(layer, *archive).ok());
  EXPECT_EQ(describe(b.layerDirs(*built)[0]),
            (std::map<std::string, std::string>{{"ro", "d 0555"}, {"ro/file", "f 0444 x\n"}}));

  // Unpacked completely (read-only dir included), then refused: the temp
  // tree must still go.
  std::string tampered = gunzip(*archive);
  size_t at = tampered.rfind("x\n");
  ASSERT_NE(at, std::string::npos);
  tampered[at] = 'y';
  ImageStore c((base_ / "c").string());
  auto st = c.importLayer(layer, tampered);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind("layer digest mismatch: want " + layer + ", got sha256:", 0), 0u)
      << st.error().message;
  EXPECT_EQ(countEntries(images("c") / "tmp"), 0u);
  EXPECT_EQ(countEntries(images("c") / "layers"), 0u);
}

}  // namespace
}  // namespace skiff::runtime
