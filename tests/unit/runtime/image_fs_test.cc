// sha256, .dockerignore matching and path cleaning of the image store.
#include "image_fs.h"

#include <gtest/gtest.h>

namespace skiff::runtime::imagefs {
namespace {

TEST(ImageFs, Sha256OfKnownInput) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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
