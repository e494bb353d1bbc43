// Store::inMemory(): the desired state in a map, for tests and tools. A
// transaction level keeps a copy of the data it began with and puts it back
// on rollback; the fault injection refuses writes with SQLite's own words,
// so callers see what the embedded store would say.
#include <map>
#include <vector>

#include "skiff/netd/store.h"

namespace skiff::netd {
namespace {

class MemoryStore final : public Store {
 public:
  Status put(const std::string& kind, const std::string& key, const nlohmann::json& value) override {
    const bool grows = !data_[kind].count(key);
    if (auto refused = refuse("put " + kind + "/" + key, grows)) return *refused;
    // Stored as the embedded store keeps it: as JSON text (bytes that are
    // not UTF-8 become U+FFFD) read back.
    data_[kind][key] = nlohmann::json::parse(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return okStatus();
  }
  Result<std::optional<nlohmann::json>> get(const std::string& kind, const std::string& key) const override {
    auto k = data_.find(kind);
    if (k == data_.end()) return std::optional<nlohmann::json>();
    auto v = k->second.find(key);
    if (v == k->second.end()) return std::optional<nlohmann::json>();
    return std::optional<nlohmann::json>(v->second);
  }
  Result<std::vector<std::pair<std::string, nlohmann::json>>> list(const std::string& kind) const override {
    std::vector<std::pair<std::string, nlohmann::json>> out;
    if (auto k = data_.find(kind); k != data_.end()) out.assign(k->second.begin(), k->second.end());
    return out;
  }
  Status erase(const std::string& kind, const std::string& key) override {
    if (auto refused = refuse("erase " + kind + "/" + key, false)) return *refused;
    if (auto k = data_.find(kind); k != data_.end()) k->second.erase(key);
    return okStatus();
  }
  Status eraseAll() override {
    if (auto refused = refuse("erase all", false)) return *refused;
    data_.clear();
    return okStatus();
  }
  Result<int> schemaVersion() const override { return kSchemaVersion; }
  Status simulateFullDiskForTesting() override {
    full_ = true;
    return okStatus();
  }
  Status refuseWritesForTesting() override {
    readOnly_ = true;
    return okStatus();
  }

 protected:
  Status beginLevel(int level) override {
    saved_.resize(static_cast<size_t>(level));
    saved_.push_back(data_);
    return okStatus();
  }
  Status commitLevel(int level) override {
    saved_.resize(static_cast<size_t>(level));
    return okStatus();
  }
  void rollbackLevel(int level) override {
    data_ = saved_.at(static_cast<size_t>(level));
    saved_.resize(static_cast<size_t>(level));
  }

 private:
  using Data = std::map<std::string, std::map<std::string, nlohmann::json>>;
  std::optional<Error> refuse(const std::string& what, bool grows) const {
    if (readOnly_) return Error::msg("state store: " + what + ": attempt to write a readonly database");
    if (full_ && grows) return Error::msg("state store: " + what + ": database or disk is full");
    return std::nullopt;
  }
  Data data_;
  std::vector<Data> saved_;  // per open transaction level: the data it began with
  bool full_ = false, readOnly_ = false;
};

}  // namespace

std::unique_ptr<Store> Store::inMemory() { return std::make_unique<MemoryStore>(); }

}  // namespace skiff::netd
