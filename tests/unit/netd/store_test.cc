#include "skiff/netd/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
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

// Runs sql on the file through SQLite directly (as an older or newer netd would).
void rawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* msg = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg), SQLITE_OK) << (msg ? msg : "");
  sqlite3_free(msg);
  sqlite3_close(db);
}

TEST_F(StoreTest, ANewFileIsAtTheCurrentSchemaVersion) {
  auto store = Store::open((dir_ / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto v = (*store)->schemaVersion();
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(Store::kSchemaVersion, 1);
}

// A state.db written before versions existed is v1's layout: it migrates to
// v1 and keeps its objects.
TEST_F(StoreTest, AFileFromBeforeVersionsMigratesAndKeepsItsObjects) {
  std::string path = (dir_ / "state.db").string();
  rawExec(path,
          "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
          " PRIMARY KEY (kind, key));"
          "INSERT INTO objects VALUES ('stack', 'web', '{\"replicas\":5}')");
  auto store = Store::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(*(*store)->schemaVersion(), 1);
  auto web = (*store)->get("stack", "web");
  ASSERT_TRUE(web.ok() && web->has_value());
  EXPECT_EQ((**web)["replicas"], 5);
}

TEST_F(StoreTest, AFileFromANewerNetdIsRefused) {
  std::string path = (dir_ / "state.db").string();
  { ASSERT_TRUE(Store::open(path).ok()); }
  rawExec(path, "UPDATE schema_version SET version = 7");
  auto store = Store::open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message, "state store " + path +
                                       ": schema version 7 is newer than this netd's (1); run the "
                                       "netd that wrote it");
}

// The contract every Store keeps, the embedded one and the one in memory:
// transactions land whole or not at all and nest, faults answer with
// SQLite's words, values come back as JSON text reads them.
class StoreContract : public StoreTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::unique_ptr<Store> make() {
    if (GetParam() == "memory") return Store::inMemory();
    auto opened = Store::open((dir_ / "state.db").string());
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(*opened) : nullptr;
  }
};
INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::Values("sqlite", "memory"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(StoreContract, ListsInKeyOrderAndErases) {
  auto owned = make();
  ASSERT_NE(owned, nullptr);
  Store& store = *owned;
  ASSERT_TRUE(store.put("stack", "web", {{"replicas", 5}}).ok());
  ASSERT_TRUE(store.put("stack", "db", {{"replicas", 1}}).ok());
  ASSERT_TRUE(store.put("swarm", "self", {{"nodeId", "n1"}}).ok());
  auto stacks = store.list("stack");
  ASSERT_TRUE(stacks.ok());
  ASSERT_EQ(stacks->size(), 2u);
  EXPECT_EQ((*stacks)[0].first, "db");
  EXPECT_EQ((*stacks)[1].second.dump(), R"({"replicas":5})");
  ASSERT_TRUE(store.erase("stack", "web").ok());
  EXPECT_FALSE(store.get("stack", "web")->has_value());
  ASSERT_TRUE(store.eraseAll().ok());
  EXPECT_TRUE(store.list("swarm")->empty());
  EXPECT_EQ(*store.schemaVersion(), Store::kSchemaVersion);
}

TEST_P(StoreContract, TransactionsCommitWholeOrRollBackWhole) {
  auto owned = make();
  ASSERT_NE(owned, nullptr);
  Store& store = *owned;
  ASSERT_TRUE(store
                  .transact([&]() -> Status {
                    SKIFF_TRY(store.put("node", "a", {{"n", 1}}));
                    return store.put("swarm", "self", {{"nodeId", "a"}});
                  })
                  .ok());
  EXPECT_TRUE(store.get("node", "a")->has_value());
  EXPECT_TRUE(store.get("swarm", "self")->has_value());

  auto st = store.transact([&]() -> Status {
    SKIFF_TRY(store.erase("node", "a"));
    SKIFF_TRY(store.put("node", "b", {{"n", 2}}));
    return Error::msg("second step failed");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "second step failed");
  EXPECT_TRUE(store.get("node", "a")->has_value()) << "the erase was rolled back";
  EXPECT_FALSE(store.get("node", "b")->has_value()) << "the put was rolled back";

  {  // nested: the inner one rolls back alone, the outer commits
    Store::Transaction outer(store);
    ASSERT_TRUE(outer.began().ok());
    ASSERT_TRUE(store.put("node", "c", {{"n", 3}}).ok());
    {
      Store::Transaction inner(store);
      ASSERT_TRUE(inner.began().ok());
      ASSERT_TRUE(store.put("node", "d", {{"n", 4}}).ok());
    }
    ASSERT_TRUE(outer.commit().ok());
  }
  EXPECT_TRUE(store.get("node", "c")->has_value());
  EXPECT_FALSE(store.get("node", "d")->has_value());
}

TEST_P(StoreContract, AFullDiskMakesPutFailWithSqlitesWords) {
  auto owned = make();
  ASSERT_NE(owned, nullptr);
  Store& store = *owned;
  ASSERT_TRUE(store.simulateFullDiskForTesting().ok());
  auto st = store.put("stack", "big", {{"env", std::string(256 * 1024, 'x')}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "state store: put stack/big: database or disk is full");
  EXPECT_FALSE(store.get("stack", "big")->has_value());
}

TEST_P(StoreContract, ValuesThatAreNotUtf8AreStoredNotThrown) {
  auto owned = make();
  ASSERT_NE(owned, nullptr);
  ASSERT_TRUE(owned->put("container", "c", {{"task", "a\xff"}}).ok());
  EXPECT_EQ((*owned->get("container", "c"))->at("task"), "a\xEF\xBF\xBD");
}

TEST_P(StoreContract, AReadOnlyStoreRefusesEveryWriteWithSqlitesWords) {
  auto owned = make();
  ASSERT_NE(owned, nullptr);
  ASSERT_TRUE(owned->put("stack", "web", {{"a", 1}}).ok());
  ASSERT_TRUE(owned->refuseWritesForTesting().ok());
  auto st = owned->put("stack", "web", {{"a", 2}});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("attempt to write a readonly database"), std::string::npos) << st.error().message;
  EXPECT_FALSE(owned->erase("stack", "web").ok());
  EXPECT_EQ((**owned->get("stack", "web"))["a"], 1);
}

}  // namespace
}  // namespace skiff::netd
