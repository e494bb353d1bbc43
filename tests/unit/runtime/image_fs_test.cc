// Layer digests, .dockerignore matching and path cleaning of the image store.
#include "image_fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace skiff::runtime::imagefs {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/skiff-imagefs-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void put(const fs::path& p, const std::string& content, fs::perms mode = fs::perms(0644)) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
  fs::permissions(p, mode);
}

TEST(ImageFs, Sha256OfKnownInput) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ImageFs, TreeDigestDependsOnContentModeAndNamesOnly) {
  TempDir a, b;
  // Same tree created in a different order, at different times.
  put(a.path() / "x" / "one", "1");
  put(a.path() / "two", "2", fs::perms(0755));
  put(b.path() / "two", "2", fs::perms(0755));
  put(b.path() / "x" / "one", "1");
  fs::permissions(a.path() / "x", fs::perms(0755));
  fs::permissions(b.path() / "x", fs::perms(0755));
  auto ha = hashTree(a.path());
  auto hb = hashTree(b.path());
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(*ha, *hb);
  EXPECT_EQ(ha->size(), 64u);

  fs::permissions(b.path() / "two", fs::perms(0644));
  EXPECT_NE(*hashTree(b.path()), *ha) << "mode is content";
  fs::permissions(b.path() / "two", fs::perms(0755));
  put(b.path() / "x" / "one", "changed");
  EXPECT_NE(*hashTree(b.path()), *ha);
  put(b.path() / "x" / "one", "1");
  fs::rename(b.path() / "two", b.path() / "three");
  EXPECT_NE(*hashTree(b.path()), *ha) << "names are content";
  EXPECT_FALSE(hashTree((a.path() / "missing").string()).ok());
}

TEST(ImageFs, IgnoreMatcher) {
  IgnoreMatcher m("# comment\n\n*.md\n!README.md\nbuild/\n/secret\nsub/*.tmp\n**/*.log\n");
  EXPECT_TRUE(m.ignored("notes.md"));
  EXPECT_FALSE(m.ignored("README.md"));
  EXPECT_TRUE(m.ignored("build"));
  EXPECT_TRUE(m.ignored("build/out/a.o")) << "a matched directory hides its contents";
  EXPECT_TRUE(m.ignored("secret"));
  EXPECT_TRUE(m.ignored("sub/a.tmp"));
  EXPECT_FALSE(m.ignored("sub/deeper/a.tmp")) << "* does not cross /";
  EXPECT_TRUE(m.ignored("a/b/c.log"));
  EXPECT_FALSE(m.ignored("src/main.c"));
  EXPECT_FALSE(IgnoreMatcher("").ignored("anything"));
}

TEST(ImageFs, CleanRelative) {
  std::string out;
  ASSERT_TRUE(cleanRelative("./a/./b/../c/", &out));
  EXPECT_EQ(out, "a/c");
  ASSERT_TRUE(cleanRelative("/abs/path", &out));
  EXPECT_EQ(out, "abs/path");
  ASSERT_TRUE(cleanRelative(".", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(cleanRelative("../x", &out));
  EXPECT_FALSE(cleanRelative("a/../../x", &out));
}

}  // namespace
}  // namespace skiff::runtime::imagefs
