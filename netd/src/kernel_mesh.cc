#include "skiff/netd/kernel_mesh.h"

#include <algorithm>

#include "skiff/common/log.h"

namespace skiff::netd {

KernelMesh::KernelMesh(Mesh& inner, std::unique_ptr<socklb::SocketLb> lb,
                       std::function<std::vector<std::string>()> localAddresses)
    : inner_(inner), lb_(std::move(lb)), localAddresses_(std::move(localAddresses)) {}

KernelMesh::~KernelMesh() = default;

namespace {

// What the proxy's stats say of one listener's backends: those it ejected,
// and all it still knows (draining ones included).
struct ProxyView {
  std::set<std::string> ejected, known;
};
ProxyView viewOf(const std::vector<proxy::Proxy::ListenerStats>& all, const std::string& listener) {
  ProxyView v;
  for (const auto& l : all) {
    if (l.name != listener) continue;
    for (const auto& b : l.backends) {
      v.known.insert(b.id);
      if (b.ejected) v.ejected.insert(b.id);
    }
  }
  return v;
}

std::string endpointKey(const proxy::Backend& b) { return b.host + ":" + std::to_string(b.port); }

}  // namespace

socklb::Service KernelMesh::wanted(const Port& p, const std::set<std::string>& ejected) const {
  socklb::Service s;
  s.protocol = p.config.udp ? socklb::Protocol::kUdp : socklb::Protocol::kTcp;
  s.frontends = socklb::frontendsOf(p.config.bindHost, p.config.port, localAddresses_);
  for (const auto& b : p.backends) {
    if (p.draining.count(b.id) || ejected.count(b.id)) continue;
    s.backends.push_back({b.host, b.port, b.pid});
  }
  return s;
}

void KernelMesh::program(const std::string& name, Port& p, const std::set<std::string>& ejected) {
  socklb::Service next = wanted(p, ejected);
  if (p.programmed && p.programmed->frontends == next.frontends && p.programmed->backends == next.backends) return;
  // The kernel's connections reach a backend without the PROXY protocol
  // header the proxy would send: such a port is the proxy's alone.
  auto st = p.config.proxyProtocol != 0
                ? Status(Error::msg("the port sends a PROXY protocol header, which only the proxy can"))
                : lb_->setService(name, next);
  if (!st.ok()) {
    // Left to the proxy. The service stays in the kernel with nothing to
    // serve, so it keeps its round-robin counter, which the proxy's
    // listener may already share.
    if (p.error != st.error().message)
      log::warn("mesh", name, ": clients on this node are proxied: ", st.error().message);
    p.error = st.error().message;
    socklb::Service none;
    none.protocol = next.protocol;
    if (!lb_->setService(name, none).ok()) (void)lb_->removeService(name);
    p.programmed.reset();
  } else {
    if (!p.error.empty()) log::info("mesh", name, ": the kernel serves this node's clients again");
    p.error.clear();
    log::debug("mesh", name, ": kernel list ", next.backends.size(), " backends");
    p.programmed = std::move(next);
  }
  std::lock_guard lock(mu_);
  if (p.programmed) {
    served_.insert(name);
  } else {
    served_.erase(name);
  }
}

Status KernelMesh::addListener(const proxy::ListenerConfig& config) {
  // A name in use: the proxy refuses it; the kernel's entry is another
  // listener's and stays as it is.
  if (ports_.count(config.name)) return inner_.addListener(config);
  Port p;
  p.config = config;
  p.backends = config.backends;
  program(config.name, p, {});
  proxy::ListenerConfig withTurns = config;
  withTurns.sharedTurns = lb_->turns(config.name);  // also while the kernel does not serve it
  auto st = inner_.addListener(withTurns);
  if (!st.ok()) {
    (void)lb_->removeService(config.name);
    std::lock_guard lock(mu_);
    served_.erase(config.name);
    return st;
  }
  {
    std::lock_guard lock(mu_);
    auto& ids = idsByEndpoint_[config.name];
    ids.clear();
    for (const auto& b : p.backends) ids[endpointKey(b)] = b.id;
  }
  ports_[config.name] = std::move(p);
  return okStatus();
}

Status KernelMesh::removeListener(const std::string& name) {
  // The kernel first: from now on every client reaches the proxy, which
  // still owns the counter the kernel shared until the listener is gone.
  (void)lb_->removeService(name);
  ports_.erase(name);
  {
    std::lock_guard lock(mu_);
    served_.erase(name);
    idsByEndpoint_.erase(name);
  }
  return inner_.removeListener(name);
}

void KernelMesh::setBackends(const std::string& listener, std::vector<proxy::Backend> backends) {
  auto it = ports_.find(listener);
  if (it != ports_.end()) {
    Port& p = it->second;
    p.backends = backends;
    std::erase_if(p.draining, [&](const std::string& id) {
      return std::none_of(backends.begin(), backends.end(), [&](const proxy::Backend& b) { return b.id == id; });
    });
    // Removals reach the kernel before the proxy: no client on this node is
    // connected to a replica that just left.
    ProxyView seen = viewOf(inner_.stats(), listener);
    program(listener, p, seen.ejected);
    std::lock_guard lock(mu_);
    auto& ids = idsByEndpoint_[listener];
    // Kept while the proxy still knows them (draining), for their counters.
    std::erase_if(ids, [&](const auto& kv) { return !seen.known.count(kv.second); });
    for (const auto& b : backends) ids[endpointKey(b)] = b.id;
  }
  inner_.setBackends(listener, std::move(backends));
}

void KernelMesh::drainBackend(const std::string& listener, const std::string& backendId,
                              std::chrono::milliseconds grace) {
  auto it = ports_.find(listener);
  if (it != ports_.end()) {
    it->second.draining.insert(backendId);
    program(listener, it->second, viewOf(inner_.stats(), listener).ejected);
  }
  inner_.drainBackend(listener, backendId, grace);
}

void KernelMesh::refresh() {
  auto all = inner_.stats();
  for (auto& [name, p] : ports_) program(name, p, viewOf(all, name).ejected);
}

std::vector<proxy::Proxy::ListenerStats> KernelMesh::stats() const {
  auto out = inner_.stats();
  auto picks = lb_->picks();
  std::lock_guard lock(mu_);
  for (auto& l : out) {
    auto kernel = picks.find(l.name);
    auto ids = idsByEndpoint_.find(l.name);
    if (kernel == picks.end() || ids == idsByEndpoint_.end()) continue;
    std::map<std::string, uint64_t> byId;
    for (const auto& [ep, n] : kernel->second) {
      auto id = ids->second.find(ep.str());
      if (id != ids->second.end()) byId[id->second] += n;
    }
    for (auto& b : l.backends) {
      auto n = byId.find(b.id);
      if (n != byId.end()) b.connections += n->second;
    }
  }
  return out;
}

std::string KernelMesh::pathOf(const std::string& listener) const {
  std::lock_guard lock(mu_);
  return served_.count(listener) ? "socket-lb+proxy" : "proxy";
}

}  // namespace skiff::netd
