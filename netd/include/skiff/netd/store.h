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
// Store is the interface the manager's desired state lives behind: open()
// gives the embedded SQLite store netd runs on, inMemory() one that keeps
// nothing on disk (tests, tools); a store shared by several managers (etcd)
// is another implementation of the same calls.
//
// Thread: the daemon's loop thread only.

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::netd {

class Store {
 public:
  static constexpr int kSchemaVersion = 1;

  // The embedded store at path (created 0600).
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  // A store in memory, at kSchemaVersion, with the same transactions and
  // the same fault injection.
  static std::unique_ptr<Store> inMemory();

  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // kind: "swarm", "stack", "network", "node", "container"...; key unique within kind.
  virtual Status put(const std::string& kind, const std::string& key, const nlohmann::json& value) = 0;
  virtual Result<std::optional<nlohmann::json>> get(const std::string& kind, const std::string& key) const = 0;
  // Ordered by key.
  virtual Result<std::vector<std::pair<std::string, nlohmann::json>>> list(const std::string& kind) const = 0;
  virtual Status erase(const std::string& kind, const std::string& key) = 0;
  virtual Status eraseAll() = 0;

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
    int level_;
    Status began_;
    bool open_ = false;
  };
  // Runs fn in a Transaction: commits when fn returns ok, else rolls back
  // and returns fn's error.
  Status transact(const std::function<Status()>& fn);

  // The schema version the store is at (kSchemaVersion after open()).
  virtual Result<int> schemaVersion() const = 0;

  // Fault injection for tests: from now on the store cannot grow, so a write
  // that needs room fails as on a full disk ("database or disk is full").
  virtual Status simulateFullDiskForTesting() = 0;
  // Fault injection for tests: every later write fails, as on a file that
  // became read-only ("attempt to write a readonly database").
  virtual Status refuseWritesForTesting() = 0;

 protected:
  Store() = default;
  // Transaction levels: 0 is the outermost; a level ends (commit or
  // rollback) before the one that holds it.
  virtual Status beginLevel(int level) = 0;
  virtual Status commitLevel(int level) = 0;
  virtual void rollbackLevel(int level) = 0;

 private:
  int levels_ = 0;  // transactions open
};

}  // namespace skiff::netd
