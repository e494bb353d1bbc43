#pragma once
// Store: netd's embedded state (SQLite, <data-root>/state.db). It keeps the
// desired state a user asked for — the swarm identity, each deployed stack's
// normalized spec, the IPAM allocations — so that a restarted netd brings
// the same stacks back. Actual state (running tasks) is not stored: it is
// re-derived by reconciling. Values are JSON documents under string keys in
// namespaced tables; every write is one transaction, and a change of several
// writes goes in transact() (or a Transaction) so that it lands whole or not
// at all.
//
// The layout has a version (table schema_version); open() brings an older
// file up to kSchemaVersion step by step and refuses a newer one.
//   v1: objects(kind, key, value) — the layout before versions existed.
//
// Thread: the daemon's loop thread only.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"

struct sqlite3;

namespace skiff::netd {

class Store {
 public:
  static constexpr int kSchemaVersion = 1;

  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // kind: "swarm", "stack", "ipam", "task"...; key unique within kind.
  Status put(const std::string& kind, const std::string& key, const nlohmann::json& value);
  Result<std::optional<nlohmann::json>> get(const std::string& kind, const std::string& key) const;
  Result<std::vector<std::pair<std::string, nlohmann::json>>> list(const std::string& kind) const;
  Status erase(const std::string& kind, const std::string& key);
  Status eraseAll();

  // A change of several writes: rolled back unless commit() succeeds. Nests
  // (a savepoint inside an outer transaction). Check ok() after making one.
  class Transaction {
   public:
    explicit Transaction(Store& store);
    ~Transaction();  // rolls back if not committed
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    [[nodiscard]] const Status& began() const { return began_; }
    [[nodiscard]] Status commit();

   private:
    Store& store_;
    std::string name_;
    Status began_;
    bool open_ = false;
  };
  // Runs fn in a Transaction: commits when fn returns ok, else rolls back
  // and returns fn's error.
  Status transact(const std::function<Status()>& fn);

  // The schema version the file is at (kSchemaVersion after open()).
  Result<int> schemaVersion() const;

  // Fault injection for tests: from now on the file cannot grow (SQLite's
  // max_page_count set to its current size), so a write that needs a new
  // page fails with SQLITE_FULL exactly as on a full disk.
  Status simulateFullDiskForTesting();
  // Fault injection for tests: every later write fails (PRAGMA query_only),
  // as on a file that became read-only.
  Status refuseWritesForTesting();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  Status migrate();
  sqlite3* db_;
  int savepoints_ = 0;  // names nested savepoints
};

}  // namespace skiff::netd
