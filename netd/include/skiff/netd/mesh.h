#pragma once
// Mesh: the routing mesh as netd drives it, the one seam between the
// orchestrator and the proxy. The orchestrator opens a listener per
// published port, keeps its backends equal to the running replicas (in slot
// order), drains a replica before it stops it, and reads the open
// connections of a draining one. ProxyMesh is the real one (skiff::proxy's
// libuv proxy); tests use a fake that records what was asked.
//
// Thread: the caller's (the daemon's loop thread); the proxy's own threads
// are behind it.

#include <chrono>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/proxy/proxy.h"

namespace skiff::netd {

class Mesh {
 public:
  virtual ~Mesh() = default;
  // Opens a published port; fails (with the owner of a taken port) as the
  // proxy does.
  virtual Status addListener(const proxy::ListenerConfig& config) = 0;
  virtual Status removeListener(const std::string& name) = 0;
  // The whole backend list of a listener, in the order round robin takes.
  virtual void setBackends(const std::string& listener, std::vector<proxy::Backend> backends) = 0;
  // No new connections for the backend; its open ones may run up to grace.
  virtual void drainBackend(const std::string& listener, const std::string& backendId,
                            std::chrono::milliseconds grace) = 0;
  // Thread-safe: a metrics scrape calls it from its own thread.
  virtual std::vector<proxy::Proxy::ListenerStats> stats() const = 0;
  // What serves a published port: "proxy", or "socket-lb+proxy" when the
  // kernel connects this node's clients straight to a backend (KernelMesh).
  virtual std::string pathOf(const std::string& /*listener*/) const { return "proxy"; }
};

// The mesh on skiff's proxy.
class ProxyMesh : public Mesh {
 public:
  explicit ProxyMesh(proxy::Proxy& proxy) : proxy_(proxy) {}
  Status addListener(const proxy::ListenerConfig& config) override { return proxy_.addListener(config); }
  Status removeListener(const std::string& name) override { return proxy_.removeListener(name); }
  void setBackends(const std::string& listener, std::vector<proxy::Backend> backends) override {
    proxy_.setBackends(listener, std::move(backends));
  }
  void drainBackend(const std::string& listener, const std::string& backendId,
                    std::chrono::milliseconds grace) override {
    proxy_.drainBackend(listener, backendId, grace);
  }
  std::vector<proxy::Proxy::ListenerStats> stats() const override { return proxy_.stats(); }

 private:
  proxy::Proxy& proxy_;
};

}  // namespace skiff::netd
