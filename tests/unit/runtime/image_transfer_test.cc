// Moving an image between two stores as a worker fetching from the manager
// does: config and layers exported from store A, imported into an empty
// store B. Checks what the worker's runtime would see (the tag, the id, the
// files and modes in the layer dirs) and that bad archives are refused with
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
#include "layer_archive.h"
#include "skiff/runtime/image.h"

namespace skiff::runtime {
namespace {

namespace fs = std::filesystem;
namespace la = layerarchive;

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
  void TearDown() override { la::removeUnpacked(base_.string()); }

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

TEST(LayerArchive, FormatOfAOneFileLayerIsExactlyThis) {
  const std::string archive = la::encode({{la::EntryType::kFile, 0755, "hello", "hi\n"}});
  const std::string expected = std::string("skiff-layer/1\n") +                 // magic and version
                               std::string("f\0\0\x01\xed", 5) +                // type, mode 0755
                               std::string("\0\0\0\x05", 4) + "hello" +         // path
                               std::string("\0\0\0\0\0\0\0\x03", 8) + "hi\n" +  // content
                               std::string("E\0\0\0\0\0\0\0\x01", 9);           // end, 1 entry
  EXPECT_EQ(archive, expected);
  auto parsed = la::parse(archive);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].path, "hello");
  EXPECT_EQ((*parsed)[0].mode, 0755u);
  EXPECT_EQ((*parsed)[0].data, "hi\n");
}

TEST(LayerArchive, CanonicalOrderComparesComponentByComponent) {
  EXPECT_TRUE(la::canonicalLess("a", "a/b"));
  EXPECT_TRUE(la::canonicalLess("a/b", "a-c")) << "the walk visits a's contents before a-c";
  EXPECT_TRUE(la::canonicalLess("a/z", "b"));
  EXPECT_FALSE(la::canonicalLess("a-c", "a/b"));
  EXPECT_FALSE(la::canonicalLess("a", "a"));
}

TEST(LayerArchive, RefusesEveryMalformedArchiveWithItsReason) {
  using T = la::EntryType;
  auto why = [](const std::string& archive) {
    auto r = la::parse(archive);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  EXPECT_EQ(why(la::encode({{T::kFile, 0644, "../x", "x"}})),
            "invalid layer archive: entry 1 (../x): path component \"..\" is not allowed");
  EXPECT_EQ(why(la::encode({{T::kFile, 0644, "/etc/x", "x"}})),
            "invalid layer archive: entry 1 (/etc/x): absolute path");
  EXPECT_EQ(why(la::encode({{T::kDir, 0755, "a", ""}, {T::kFile, 0644, "a/./x", ""}})),
            "invalid layer archive: entry 2 (a/./x): path component \".\" is not allowed");
  EXPECT_EQ(why(la::encode({{T::kDir, 0755, "a", ""}, {T::kFile, 0644, "a//x", ""}})),
            "invalid layer archive: entry 2 (a//x): empty path component");
  EXPECT_EQ(why(la::encode({{T::kSymlink, 0, "a", "/etc"}, {T::kFile, 0644, "a/passwd", "x"}})),
            "invalid layer archive: entry 2 (a/passwd): parent a is not a directory entry before it");
  EXPECT_EQ(why(la::encode({{T::kFile, 0644, "a/x", "x"}})),
            "invalid layer archive: entry 1 (a/x): parent a is not a directory entry before it");
  EXPECT_EQ(why(la::encode({{T::kDir, 0755, "a", ""}, {T::kDir, 0755, "a", ""}})),
            "invalid layer archive: entry 2 (a): duplicate entry");
  EXPECT_EQ(why(la::encode({{T::kFile, 0644, "b", ""}, {T::kFile, 0644, "a", ""}})),
            "invalid layer archive: entry 2 (a): out of canonical order (after b)");
  EXPECT_EQ(why(la::encode({{T::kDir, 0755, "a", ""}, {T::kFile, 0644, "a-c", ""}, {T::kFile, 0644, "a/b", ""}})),
            "invalid layer archive: entry 3 (a/b): out of canonical order (after a-c)");
  EXPECT_EQ(why(la::encode({{T::kSymlink, 0777, "l", "x"}})),
            "invalid layer archive: entry 1 (l): a symlink carries mode 0");
  EXPECT_EQ(why(la::encode({{T::kFile, 010644, "f", ""}})),
            "invalid layer archive: entry 1 (f): mode beyond permission bits");
  EXPECT_EQ(why(la::encode({{T::kDir, 0755, "d", "data"}})),
            "invalid layer archive: entry 1 (d): a directory carries no data");

  const std::string ok = la::encode({{T::kFile, 0644, "f", "x"}});
  EXPECT_EQ(why(ok + "x"), "invalid layer archive: 1 bytes of trailing data after the end record");
  EXPECT_EQ(why(ok.substr(0, ok.size() - 9)), "invalid layer archive: truncated: no end record after 1 entries");
  EXPECT_EQ(why(""), "invalid layer archive: not a skiff layer archive (no \"skiff-layer/1\" header)");
  EXPECT_EQ(why("skiff-layer/2\n"),
            "invalid layer archive: unsupported format version (this reader knows \"skiff-layer/1\")");
  std::string miscounted = ok;
  miscounted.back() = '\x02';
  EXPECT_EQ(why(miscounted), "invalid layer archive: end record counts 2 entries, the archive has 1");
  EXPECT_EQ(why(std::string(la::kMagic) + "Z"), "invalid layer archive: entry 1: unknown entry type 0x5a");

  // Absurd sizes are refused before anything is allocated or read.
  EXPECT_EQ(why(std::string(la::kMagic) + std::string("f\0\0\x01\xa4\xff\xff\xff\xff", 9)),
            "invalid layer archive: entry 1: path of 4294967295 bytes exceeds 4096");
  EXPECT_EQ(why(std::string(la::kMagic) + std::string("f\0\0\x01\xa4\0\0\0\x01", 9) + "x" + std::string(8, '\xff')),
            "invalid layer archive: entry 1 (x): truncated: 18446744073709551615 bytes of data, "
            "0 left in the archive");
}

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

TEST_F(ImageTransferTest, TamperedArchiveIsRefusedWithBothDigestsAndLeavesNothing) {
  write("hello", kHello, fs::perms(0755));
  write("Dockerfile", "FROM scratch\nCOPY hello /hello\n");
  ImageStore a((base_ / "a").string());
  auto built = a.build(ctx_.string(), "hello:1", nullptr);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string want = built->layers.at(0);
  auto archive = a.exportLayer(want);
  ASSERT_TRUE(archive.ok()) << archive.error().message;

  // One byte of content changed: "hello" -> "hellO".
  std::string tampered = *archive;
  size_t at = tampered.find(kHello);
  ASSERT_NE(at, std::string::npos);
  tampered[at + std::string("#!fake hell").size()] = 'O';
  // The digest the tampered files really have: the same layer built from them.
  write("hello", "#!fake hellO binary\n", fs::perms(0755));
  ImageStore c((base_ / "c").string());
  auto other = c.build(ctx_.string(), "", nullptr);
  ASSERT_TRUE(other.ok()) << other.error().message;
  const std::string got = other->layers.at(0);
  ASSERT_NE(got, want);

  ImageStore b((base_ / "b").string());
  auto st = b.importLayer(want, tampered);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "layer digest mismatch: want " + want + ", got " + got);
  EXPECT_FALSE(b.hasLayer(want));
  EXPECT_EQ(countEntries(images("b") / "layers"), 0u);
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u);

  // The untouched archive still goes in afterwards.
  ASSERT_TRUE(b.importLayer(want, *archive).ok());
  EXPECT_EQ(slurp(fs::path(b.layerDirs(*built)[0]) / "hello"), kHello);
}

TEST_F(ImageTransferTest, UnsafePathsAreRefusedAndNothingIsWritten) {
  using T = la::EntryType;
  fs::create_directories(base_ / "outside");
  ImageStore b((base_ / "b").string());
  const std::string prefix = "layer " + kAbsent + ": invalid layer archive: entry ";

  auto up = b.importLayer(kAbsent, la::encode({{T::kFile, 0644, "../x", "pwned"}}));
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().message, prefix + "1 (../x): path component \"..\" is not allowed");

  auto abs = b.importLayer(kAbsent, la::encode({{T::kFile, 0644, "/etc/x", "pwned"}}));
  ASSERT_FALSE(abs.ok());
  EXPECT_EQ(abs.error().message, prefix + "1 (/etc/x): absolute path");

  const std::string outside = (base_ / "outside").string();
  auto through = b.importLayer(kAbsent, la::encode({{T::kSymlink, 0, "a", outside}, {T::kFile, 0644, "a/x", "pwned"}}));
  ASSERT_FALSE(through.ok());
  EXPECT_EQ(through.error().message, prefix + "2 (a/x): parent a is not a directory entry before it");

  auto dup = b.importLayer(kAbsent, la::encode({{T::kFile, 0644, "x", "1"}, {T::kFile, 0644, "x", "2"}}));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, prefix + "2 (x): duplicate entry");

  EXPECT_EQ(countEntries(base_ / "outside"), 0u);
  EXPECT_FALSE(fs::exists(images("b") / "x"));
  EXPECT_FALSE(fs::exists(images("b") / "tmp" / "x"));
  EXPECT_EQ(countEntries(images("b") / "layers"), 0u);
  EXPECT_EQ(countEntries(images("b") / "tmp"), 0u);
}

TEST_F(ImageTransferTest, TruncatedArchiveIsRefusedAtEveryLength) {
  ImageStore a((base_ / "a").string());
  auto built = buildApp(a);
  ASSERT_TRUE(built.ok()) << built.error().message;
  const std::string layer = built->layers.at(0);  // the app dir: many entries
  auto archive = a.exportLayer(layer);
  ASSERT_TRUE(archive.ok()) << archive.error().message;

  ImageStore b((base_ / "b").string());
  for (size_t n = 0; n < archive->size(); ++n) {
    auto st = b.importLayer(layer, std::string_view(*archive).substr(0, n));
    ASSERT_FALSE(st.ok()) << "accepted the first " << n << " of " << archive->size() << " bytes";
    EXPECT_EQ(st.error().message.rfind("layer " + layer + ": invalid layer archive: ", 0), 0u) << st.error().message;
  }
  auto cut = b.importLayer(layer, std::string_view(*archive).substr(0, archive->size() - 9));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().message,
            "layer " + layer + ": invalid layer archive: truncated: no end record after 11 entries");
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
  EXPECT_EQ(countEntries(images("b") / "layers"), 2u);

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
  std::string tampered = *archive;
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
