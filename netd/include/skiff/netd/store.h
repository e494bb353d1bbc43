#pragma once
// Store: netd's embedded state (SQLite, <data-root>/state.db). It keeps the
// desired state a user asked for — the swarm identity, each deployed stack's
// normalized spec, the IPAM allocations — so that a restarted netd brings
// the same stacks back. Actual state (running tasks) is not stored: it is
// re-derived by reconciling. Values are JSON documents under string keys in
// namespaced tables; every write is one transaction.
//
// Thread: the daemon's loop thread only.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"

struct sqlite3;

namespace skiff::netd {

class Store {
 public:
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

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const char* sql);
  sqlite3* db_;
};

}  // namespace skiff::netd
