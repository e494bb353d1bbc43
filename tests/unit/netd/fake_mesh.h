#pragma once
// A routing mesh that records what the orchestrator asks of it, for netd's
// tests: listeners, each listener's backend lists in order, drains (with the
// stop signals the launcher had sent at that moment, so a test can see that
// a drain came first), and the open connections and counters a test says a
// backend has.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "skiff/netd/mesh.h"
#include "skiff/runtime/container.h"

namespace skiff::netd::testing {

class FakeMesh : public Mesh {
 public:
  explicit FakeMesh(const runtime::FakeContainerLauncher* launcher = nullptr) : launcher_(launcher) {}

  struct Drain {
    std::string listener, backend;
    std::chrono::milliseconds grace;
    size_t signalsBefore;   // launcher->signals.size() when the drain was asked
    size_t launchedBefore;  // launcher->launched.size() then
    size_t historyBefore;   // history[listener].size() then
  };

  Status addListener(const proxy::ListenerConfig& config) override {
    if (listeners.count(config.name)) return Error::msg("listener " + config.name + " exists");
    if (!refusePort.empty() && config.name == refusePort)
      return Error::msg("port " + config.name + " is already in use by pid 1 (init)");
    listeners[config.name] = config;
    return okStatus();
  }
  Status removeListener(const std::string& name) override {
    listeners.erase(name);
    backends.erase(name);
    removed.push_back(name);
    return okStatus();
  }
  void setBackends(const std::string& listener, std::vector<proxy::Backend> list) override {
    history[listener].push_back(list);
    cleanedAt[listener].push_back(launcher_ != nullptr ? launcher_->cleanedUp.size() : 0);
    backends[listener] = std::move(list);
  }
  void drainBackend(const std::string& listener, const std::string& backendId,
                    std::chrono::milliseconds grace) override {
    drains.push_back({listener, backendId, grace, launcher_ != nullptr ? launcher_->signals.size() : 0,
                      launcher_ != nullptr ? launcher_->launched.size() : 0, history[listener].size()});
  }
  std::vector<proxy::Proxy::ListenerStats> stats() const override {
    statsCalls++;
    std::vector<proxy::Proxy::ListenerStats> out;
    for (const auto& [name, list] : backends) {
      proxy::Proxy::ListenerStats l;
      l.name = name;
      for (const auto& b : list) {
        proxy::Proxy::BackendStats s;
        s.id = b.id;
        auto a = active.find(b.id);
        s.activeConnections = a == active.end() ? 0 : a->second;
        s.ejected = ejected.count(b.id) > 0;
        if (auto c = counters.find({name, b.id}); c != counters.end()) {
          s.connections = c->second.connections;
          s.bytesIn = c->second.bytesIn;
          s.bytesOut = c->second.bytesOut;
        }
        l.backends.push_back(s);
      }
      // A drained backend leaves the list but keeps its open connections.
      for (const auto& d : drains) {
        if (d.listener != name) continue;
        bool listed = false;
        for (const auto& s : l.backends) listed = listed || s.id == d.backend;
        auto a = active.find(d.backend);
        if (!listed && a != active.end()) {
          proxy::Proxy::BackendStats s;
          s.id = d.backend;
          s.activeConnections = a->second;
          l.backends.push_back(s);
        }
      }
      out.push_back(l);
    }
    return out;
  }

  // Backend ids of a listener, in round-robin order.
  std::vector<std::string> ids(const std::string& listener) const {
    std::vector<std::string> out;
    auto it = backends.find(listener);
    if (it == backends.end()) return out;
    for (const auto& b : it->second) out.push_back(b.id);
    return out;
  }

  std::map<std::string, proxy::ListenerConfig> listeners;
  std::map<std::string, std::vector<proxy::Backend>> backends;
  std::map<std::string, std::vector<std::vector<proxy::Backend>>> history;
  // Per listener, per history entry: launcher->cleanedUp.size() at that moment.
  std::map<std::string, std::vector<size_t>> cleanedAt;
  std::vector<std::string> removed;
  std::vector<Drain> drains;
  std::map<std::string, uint64_t> active;  // backend id -> open connections
  // (listener, backend id) -> connections and bytes the proxy counted.
  std::map<std::pair<std::string, std::string>, proxy::Proxy::BackendStats> counters;
  std::string refusePort;         // a listener name whose port is "taken"
  std::set<std::string> ejected;  // backend ids the "proxy" ejected
  mutable int statsCalls = 0;

 private:
  const runtime::FakeContainerLauncher* launcher_;
};

}  // namespace skiff::netd::testing
