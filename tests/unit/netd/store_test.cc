#include "skiff/netd/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace skiff::netd {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("skiff-store-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StoreTest, ValuesSurviveReopen) {
  std::string path = (dir_ / "state.db").string();
  {
    auto store = Store::open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->put("stack", "web", {{"replicas", 5}}).ok());
    ASSERT_TRUE((*store)->put("stack", "db", {{"replicas", 1}}).ok());
    ASSERT_TRUE((*store)->put("swarm", "self", {{"nodeId", "n1"}}).ok());
  }
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok());
  auto web = (*store)->get("stack", "web");
  ASSERT_TRUE(web.ok());
  ASSERT_TRUE(web->has_value());
  EXPECT_EQ((**web)["replicas"], 5);
  auto stacks = (*store)->list("stack");
  ASSERT_TRUE(stacks.ok());
  ASSERT_EQ(stacks->size(), 2u);
  EXPECT_EQ((*stacks)[0].first, "db");
  EXPECT_EQ((*stacks)[1].first, "web");
}

TEST_F(StoreTest, EraseAndMissing) {
  auto store = Store::open((dir_ / "state.db").string());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->put("stack", "web", {{"a", 1}}).ok());
  ASSERT_TRUE((*store)->put("stack", "web", {{"a", 2}}).ok());  // replaces
  EXPECT_EQ((**(*store)->get("stack", "web"))["a"], 2);
  ASSERT_TRUE((*store)->erase("stack", "web").ok());
  auto gone = (*store)->get("stack", "web");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(StoreTest, OpenFailureNamesThePath) {
  auto store = Store::open("/nonexistent-dir-for-skiff/state.db");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("/nonexistent-dir-for-skiff/state.db"), std::string::npos);
}

}  // namespace
}  // namespace skiff::netd
