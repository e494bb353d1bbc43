// docker's config.json: entries written and read back, other keys kept,
// mode 0600, a file others can read refused.
#include "skiff/registry/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "skiff/common/file.h"

namespace skiff::registry {
namespace {
namespace fs = std::filesystem;

class CredentialStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("skiff-creds-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "config.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::string path_;
};

TEST_F(CredentialStoreTest, AnEntryIsWrittenInDockersFormatWithMode0600) {
  CredentialStore store(path_);
  auto none = store.get("127.0.0.1:5000");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store.put("127.0.0.1:5000", {"alice", "p:ss"}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = readFile(path_);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("\"auth\": \"YWxpY2U6cDpzcw==\""), std::string::npos) << *text;
  auto got = store.get("127.0.0.1:5000");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "alice");
  EXPECT_EQ((*got)->password, "p:ss");  // only the first ':' separates
  auto erased = store.erase("127.0.0.1:5000");
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(*erased);
  EXPECT_FALSE(store.get("127.0.0.1:5000")->has_value());
  EXPECT_FALSE(*store.erase("127.0.0.1:5000"));
}

TEST_F(CredentialStoreTest, OtherKeysAreKeptAndAReadableFileIsRefused) {
  ASSERT_TRUE(writeFileAtomic(path_, R"({"credsStore":"none","auths":{"other:1":{"auth":"eDp5"}}})", 0600).ok());
  CredentialStore store(path_);
  ASSERT_TRUE(store.put("r:5000", {"u", "p"}).ok());
  auto text = readFile(path_);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("credsStore"), std::string::npos);
  EXPECT_EQ((*store.get("other:1"))->username, "x");
  ::chmod(path_.c_str(), 0644);
  auto refused = store.get("r:5000");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, path_ + " is readable by others (mode 0644); chmod 600 it");
}

TEST_F(CredentialStoreTest, ABrokenFileIsNamed) {
  ASSERT_TRUE(writeFileAtomic(path_, "{not json", 0600).ok());
  auto r = CredentialStore(path_).get("r:5000");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind(path_ + ": invalid JSON", 0), 0u) << r.error().message;
}

}  // namespace
}  // namespace skiff::registry
