#include "skiff/netd/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
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

// The state holds every stack's environment and configs: the file is root's
// alone (0600), created so whatever the umask and tightened when an older
// netd left it 0644. SQLite creates its -wal and -shm files with the mode of
// the database file; ones left by an older netd are tightened here too.
Status restrictToOwner(const std::string& path) {
  auto failed = [](const std::string& what, int err) {
    return Error::msg("state store: " + what + ": " + std::strerror(err), err);
  };
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return failed("open " + path, errno);
  int rc = ::fchmod(fd, 0600);
  int err = errno;
  ::close(fd);
  if (rc != 0) return failed("chmod " + path, err);
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    std::string side = path + suffix;
    if (::chmod(side.c_str(), 0600) != 0 && errno != ENOENT) return failed("chmod " + side, errno);
  }
  return okStatus();
}

// The embedded store: one SQLite file, WAL mode; transactions are savepoints.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close(db_); }
  Status put(const std::string& kind, const std::string& key, const nlohmann::json& value) override;
  Result<std::optional<nlohmann::json>> get(const std::string& kind, const std::string& key) const override;
  Result<std::vector<std::pair<std::string, nlohmann::json>>> list(const std::string& kind) const override;
  Status erase(const std::string& kind, const std::string& key) override;
  Status eraseAll() override;
  Result<int> schemaVersion() const override;
  Status simulateFullDiskForTesting() override;
  Status refuseWritesForTesting() override;
  Status exec(const char* sql);
  Status migrate();

 protected:
  Status beginLevel(int level) override { return exec(("SAVEPOINT " + savepoint(level)).c_str()); }
  Status commitLevel(int level) override { return exec(("RELEASE " + savepoint(level)).c_str()); }
  void rollbackLevel(int level) override {
    // ROLLBACK TO keeps the savepoint open; RELEASE then ends it.
    (void)exec(("ROLLBACK TO " + savepoint(level)).c_str());
    (void)exec(("RELEASE " + savepoint(level)).c_str());
  }

 private:
  // Appended, not "t" + string: GCC 12 -O3 reports a false -Wrestrict on that.
  static std::string savepoint(int level) { return std::string(1, 't').append(std::to_string(level)); }
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  if (auto st = restrictToOwner(path); !st.ok()) return st.error();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    Error err = Error::msg("state store: open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return err;
  }
  auto store = std::make_unique<SqliteStore>(db);
  SKIFF_TRY(store->exec("PRAGMA journal_mode=WAL"));
  SKIFF_TRY(store->exec("PRAGMA synchronous=NORMAL"));
  if (auto st = store->migrate(); !st.ok()) return Error::msg("state store " + path + ": " + st.error().message);
  return std::unique_ptr<Store>(std::move(store));
}

// Migration steps: kMigrations[i] takes the layout from version i to i + 1.
// Version 0 is an empty file or one written before versions existed; the
// step is idempotent, so both end at v1 with their objects kept.
namespace {
const char* const kMigrations[] = {
    "CREATE TABLE IF NOT EXISTS objects ("
    " kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (kind, key))",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);
}  // namespace

Status SqliteStore::migrate() {
  SKIFF_TRY(exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  auto current = schemaVersion();
  if (!current.ok()) return current.error();
  if (*current > kSchemaVersion) {
    return Error::msg("schema version " + std::to_string(*current) + " is newer than this netd's (" +
                      std::to_string(kSchemaVersion) + "); run the netd that wrote it");
  }
  for (int v = *current; v < kSchemaVersion; v++) {
    auto step = [&]() -> Status {
      SKIFF_TRY(exec(kMigrations[v]));
      SKIFF_TRY(exec("DELETE FROM schema_version"));
      std::string set = "INSERT INTO schema_version(version) VALUES (" + std::to_string(v + 1) + ")";
      return exec(set.c_str());
    };
    if (auto st = transact(step); !st.ok()) return st;
  }
  return okStatus();
}

Result<int> SqliteStore::schemaVersion() const {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT MAX(version) FROM schema_version", -1, &st.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare schema version");
  }
  if (sqlite3_step(st.s) != SQLITE_ROW) return sqlError(db_, "read schema version");
  return sqlite3_column_type(st.s, 0) == SQLITE_NULL ? 0 : sqlite3_column_int(st.s, 0);
}

Store::Transaction::Transaction(Store& store) : store_(store), level_(store.levels_) {
  began_ = store_.beginLevel(level_);
  if (began_.ok()) {
    open_ = true;
    store_.levels_++;
  }
}

Store::Transaction::~Transaction() {
  if (!open_) return;
  store_.rollbackLevel(level_);
  store_.levels_--;
}

Status Store::Transaction::commit() {
  if (!open_) {
    if (!began_.ok()) return began_;
    return Error::msg("state store: transaction already ended");
  }
  SKIFF_TRY(store_.commitLevel(level_));
  open_ = false;
  store_.levels_--;
  return okStatus();
}

Status Store::transact(const std::function<Status()>& fn) {
  Transaction txn(*this);
  SKIFF_TRY(txn.began());
  SKIFF_TRY(fn());
  return txn.commit();
}

Status SqliteStore::simulateFullDiskForTesting() {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "PRAGMA page_count", -1, &st.s, nullptr) != SQLITE_OK ||
      sqlite3_step(st.s) != SQLITE_ROW) {
    return sqlError(db_, "page_count");
  }
  std::string cap = "PRAGMA max_page_count = " + std::to_string(sqlite3_column_int64(st.s, 0));
  return exec(cap.c_str());
}

Status SqliteStore::refuseWritesForTesting() { return exec("PRAGMA query_only = 1"); }

Status SqliteStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Error err = Error::msg(std::string("state store: ") + sql + ": " + (msg ? msg : "?"));
    sqlite3_free(msg);
    return err;
  }
  return okStatus();
}

Status SqliteStore::put(const std::string& kind, const std::string& key, const nlohmann::json& value) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO objects(kind, key, value) VALUES (?, ?, ?)", -1, &st.s,
                         nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare put");
  }
  // Never throw on bytes that are not UTF-8 (they become U+FFFD).
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db_, "put " + kind + "/" + key);
  return okStatus();
}

Result<std::optional<nlohmann::json>> SqliteStore::get(const std::string& kind, const std::string& key) const {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT value FROM objects WHERE kind = ? AND key = ?", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    return sqlError(db_, "prepare get");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::optional<nlohmann::json>();
  if (rc != SQLITE_ROW) return sqlError(db_, "get " + kind + "/" + key);
  const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
  auto parsed = nlohmann::json::parse(text ? text : "null", nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Error::msg("state store: " + kind + "/" + key + " is not valid JSON");
  return std::optional<nlohmann::json>(std::move(parsed));
}

Result<std::vector<std::pair<std::string, nlohmann::json>>> SqliteStore::list(const std::string& kind) const {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "SELECT key, value FROM objects WHERE kind = ? ORDER BY key", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    return sqlError(db_, "prepare list");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::pair<std::string, nlohmann::json>> out;
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    const char* key = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0));
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    auto parsed = nlohmann::json::parse(text ? text : "null", nullptr, false);
    if (parsed.is_discarded()) return Error::msg("state store: " + kind + "/" + key + " is not valid JSON");
    out.emplace_back(key ? key : "", std::move(parsed));
  }
  if (rc != SQLITE_DONE) return sqlError(db_, "list " + kind);
  return out;
}

Status SqliteStore::erase(const std::string& kind, const std::string& key) {
  Stmt st;
  if (sqlite3_prepare_v2(db_, "DELETE FROM objects WHERE kind = ? AND key = ?", -1, &st.s, nullptr) != SQLITE_OK) {
    return sqlError(db_, "prepare erase");
  }
  sqlite3_bind_text(st.s, 1, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) return sqlError(db_, "erase " + kind + "/" + key);
  return okStatus();
}

Status SqliteStore::eraseAll() { return exec("DELETE FROM objects"); }

}  // namespace skiff::netd
