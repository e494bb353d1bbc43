#include "skiff/netd/store.h"

#include <sqlite3.h>

#include <memory>

namespace skiff::netd {
namespace {

Error sqlError(sqlite3* db, const std::string& what) {
  return Error::msg("state store: " + what + ": " + sqlite3_errmsg(db));
}

// Owns a prepared statement.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Error err = Error::msg("state store: open " + path + ": " +
                           (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return err;
  }
  std::unique_ptr<Store> store(new Store(db));
  SKIFF_TRY(store->exec("PRAGMA journal_mode=WAL"));
  SKIFF_TRY(store->exec("PRAGMA synchronous=NORMAL"));
  SKIFF_TRY(
      store->exec("CREATE TABLE IF NOT EXISTS objects ("
                  " kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
                  " PRIMARY KEY (kind, key))"));
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Error err = Error::msg(std::string("state store: ") + sql + ": " + (msg ? msg : "?"));
    sqlite3_free(msg);
    return err;
  }
  return okStatus();
}

Status Store::put(const std::string& kind, const std::string& key, const nlohmann::json& value) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO objects(kind, key, value) VALUES (?, ?, ?)",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare put");
  }
  std::string text = value.dump();
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db_, "put " + kind + "/" + key);
  return okStatus();
}

Result<std::optional<nlohmann::json>> Store::get(const std::string& kind,
                                                 const std::string& key) const {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM objects WHERE kind = ? AND key = ?", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare get");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::optional<nlohmann::json>();
  if (rc != SQLITE_ROW) return sqlError(db_, "get " + kind + "/" + key);
  const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
  auto parsed = nlohmann::json::parse(text ? text : "null", nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return Error::msg("state store: " + kind + "/" + key + " is not valid JSON");
  return std::optional<nlohmann::json>(std::move(parsed));
}

Result<std::vector<std::pair<std::string, nlohmann::json>>> Store::list(
    const std::string& kind) const {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM objects WHERE kind = ? ORDER BY key", -1,
                         &st.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare list");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::pair<std::string, nlohmann::json>> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    const char* key = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    auto parsed = nlohmann::json::parse(text ? text : "null", nullptr, false);
    if (parsed.is_discarded())
      return Error::msg("state store: " + kind + "/" + key + " is not valid JSON");
    out.emplace_back(key ? key : "", std::move(parsed));
  }
  if (rc != SQLITE_DONE) return sqlError(db_, "list " + kind);
  return out;
}

Status Store::erase(const std::string& kind, const std::string& key) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "DELETE FROM objects WHERE kind = ? AND key = ?", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare erase");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db_, "erase " + kind + "/" + key);
  return okStatus();
}

Status Store::eraseAll() { return exec("DELETE FROM objects"); }

}  // namespace skiff::netd
