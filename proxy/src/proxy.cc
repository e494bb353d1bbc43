// Proxy: the public face (skiff/proxy/proxy.h). It starts the workers and
// hands listener and backend changes to their loops; the data path lives in
// tcp.cc and udp.cc, the loop in worker.cc.

#include "skiff/proxy/proxy.h"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>

#include "port_owner.h"
#include "skiff/common/log.h"
#include "worker.h"

namespace skiff::proxy {

using namespace detail;

uint64_t raiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  uint64_t before = rl.rlim_cur;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      log::debug(kLog, "fd limit raised from ", before, " to ", static_cast<uint64_t>(rl.rlim_max));
    }
  }
  return before;
}

class Proxy::Impl {
 public:
  std::vector<std::unique_ptr<Worker>> workers;
  mutable std::mutex mu;  // guards listeners (not the data path)
  std::map<std::string, std::shared_ptr<ListenerShared>> listeners;

  ~Impl() {
    for (auto& w : workers) {
      if (w->started()) w->stop();
    }
  }
};

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Proxy::~Proxy() = default;

Result<std::unique_ptr<Proxy>> Proxy::start(const Options& options) {
  unsigned n = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  // A peer that closes while we write must cost an EPIPE, not the process.
  struct sigaction old {};
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    SKIFF_TRY(w->init());
    impl->workers.push_back(std::move(w));
  }
  log::debug(kLog, "started ", n, " loop thread(s)");
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

unsigned Proxy::threads() const { return static_cast<unsigned>(impl_->workers.size()); }

namespace {
// Swaps a listener's backend snapshot; the caller holds nothing.
void applyBackends(const std::string& name, ListenerShared& shared, const std::vector<Backend>& backends) {
  auto next = std::make_shared<Snapshot>();
  std::lock_guard lock(shared.mu);
  auto same = [](const std::shared_ptr<BackendState>& s, const Backend& b) {
    return s->backend.id == b.id && s->backend.host == b.host && s->backend.port == b.port;
  };
  for (const auto& b : backends) {
    std::shared_ptr<BackendState> state;
    for (const auto& old : shared.snapshot->backends) {
      if (same(old, b)) state = old;
    }
    for (auto r = shared.retired.begin(); !state && r != shared.retired.end(); ++r) {
      if (same(*r, b)) {
        state = *r;
        shared.retired.erase(r);
        break;
      }
    }
    if (!state) {
      auto addr = parseAddr(b.host, b.port);
      if (!addr) {
        log::warn(kLog, name, ": skipping backend ", b.id, ": ", addr.error().message);
        continue;
      }
      state = std::make_shared<BackendState>();
      state->backend = b;
      state->addr = *addr;
    }
    next->backends.push_back(std::move(state));
  }
  // Every backend that leaves is retired, not only those with open
  // connections: one still connecting holds it too (and counts as active).
  // stats() lets go of it when nothing else holds it.
  std::erase_if(shared.retired, [](const auto& b) { return b.use_count() == 1; });
  for (const auto& old : shared.snapshot->backends) {
    bool kept = std::find(next->backends.begin(), next->backends.end(), old) != next->backends.end();
    if (!kept) shared.retired.push_back(old);
  }
  shared.snapshot = std::move(next);
  shared.version.fetch_add(1, std::memory_order_release);
}
}  // namespace

Status Proxy::addListener(const ListenerConfig& config) {
  std::lock_guard lock(impl_->mu);
  if (impl_->listeners.count(config.name) != 0) {
    return Error::msg("listener " + config.name + " already exists", EEXIST);
  }
  if (config.proxyProtocol < 0 || config.proxyProtocol > 2) {
    return Error::msg("proxy protocol must be 0, 1 or 2", EINVAL);
  }
  if (config.udp && config.maxUdpFlows == 0) {
    return Error::msg("listener " + config.name + ": the UDP flow bound must be at least 1", EINVAL);
  }
  auto addr = parseAddr(config.bindHost, config.port);
  if (!addr) return Error::msg("listener " + config.name + ": bind address " + addr.error().message, EINVAL);
  const char* proto = config.udp ? "udp" : "tcp";
  auto inUse = [&](uint16_t port, const Error& e) -> Error {
    if (e.code == EADDRINUSE) {
      return Error::msg(
          "port " + std::to_string(port) + "/" + proto + " is already in use" + describePortOwner(port, config.udp),
          EADDRINUSE);
    }
    return Error::msg("listen on " + config.bindHost + ":" + std::to_string(port) + "/" + proto + ": " + e.message,
                      e.code);
  };
  // A probe without SO_REUSEPORT fails when anyone holds the port, even a
  // process that set SO_REUSEPORT itself, which our own sockets would join.
  if (config.port != 0) {
    auto probe = bindSocket(*addr, config.udp, false);
    if (!probe) return inUse(config.port, probe.error());
  }
  std::vector<UniqueFd> fds;
  sockaddr_storage bindAddr = *addr;
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    auto fd = bindSocket(bindAddr, config.udp, true);
    if (!fd) return inUse(fds.empty() ? config.port : portOf(fds.front().get()), fd.error());
    if (i == 0) {
      uint16_t port = portOf(fd->get());
      if (bindAddr.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&bindAddr)->sin6_port = htons(port);
      } else {
        reinterpret_cast<sockaddr_in*>(&bindAddr)->sin_port = htons(port);
      }
    }
    fds.push_back(std::move(*fd));
  }
  auto shared = std::make_shared<ListenerShared>();
  shared->config = config;
  shared->port = portOf(fds.front().get());
  if (config.udp) shared->udpFlows = std::make_unique<FlowLimit>(config.maxUdpFlows);
  shared->rr.share(config.sharedTurns);
  applyBackends(config.name, *shared, config.backends);
  Status result = okStatus();
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    Worker* w = impl_->workers[i].get();
    int fd = fds[i].release();
    w->runSync([&] {
      Status s = openListener(w, shared, fd);
      if (!s.ok() && result.ok()) result = s;
    });
  }
  if (!result.ok()) {
    for (auto& w : impl_->workers) {
      std::promise<void> done;
      w->post([&] {
        auto it = w->listeners().find(config.name);
        if (it == w->listeners().end()) {
          done.set_value();
        } else {
          w->closeListener(it->second, [&] { done.set_value(); });
        }
      });
      done.get_future().wait();
    }
    return result;
  }
  impl_->listeners[config.name] = shared;
  log::info(kLog, "listening on ", config.bindHost, ":", shared->port, "/", proto, " (", config.name, ", ",
            impl_->workers.size(), " loop(s))");
  return okStatus();
}

Status Proxy::removeListener(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->listeners.find(name);
  if (it == impl_->listeners.end()) return Error::msg("no listener named " + name, ENOENT);
  for (auto& w : impl_->workers) {
    std::promise<void> done;
    Worker* worker = w.get();
    worker->post([&] {
      auto l = worker->listeners().find(name);
      if (l == worker->listeners().end()) {
        done.set_value();
      } else {
        worker->closeListener(l->second, [&] { done.set_value(); });
      }
    });
    done.get_future().wait();
  }
  impl_->listeners.erase(it);
  log::info(kLog, "stopped listening: ", name);
  return okStatus();
}

void Proxy::setBackends(const std::string& name, std::vector<Backend> backends) {
  std::shared_ptr<ListenerShared> shared;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->listeners.find(name);
    if (it == impl_->listeners.end()) {
      log::warn(kLog, "setBackends: no listener named ", name);
      return;
    }
    shared = it->second;
  }
  applyBackends(name, *shared, backends);
}

void Proxy::drainBackend(const std::string& name, const std::string& backendId, std::chrono::milliseconds grace) {
  std::shared_ptr<ListenerShared> shared;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->listeners.find(name);
    if (it == impl_->listeners.end()) return;
    shared = it->second;
  }
  std::shared_ptr<BackendState> target;
  {
    std::lock_guard lock(shared->mu);
    for (const auto& b : shared->snapshot->backends) {
      if (b->backend.id == backendId) target = b;
    }
    // One that already left the list may still hold connections to close.
    for (const auto& b : shared->retired) {
      if (!target && b->backend.id == backendId) target = b;
    }
  }
  if (!target) return;
  target->gate.draining.store(true, std::memory_order_relaxed);
  log::info(kLog, name, ": draining ", backendId, " (grace ", grace.count(), "ms)");
  for (auto& w : impl_->workers) {
    Worker* worker = w.get();
    worker->post([worker, name, target, grace] { worker->addDrain(name, target, grace); });
  }
}

std::vector<Proxy::ListenerStats> Proxy::stats() const {
  std::vector<ListenerStats> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, shared] : impl_->listeners) {
    ListenerStats ls;
    ls.name = name;
    ls.acceptErrors = shared->acceptErrors.load(std::memory_order_relaxed);
    ls.failedClientConnections = shared->failedClients.load(std::memory_order_relaxed);
    ls.splicedBytes = shared->splicedBytes.load(std::memory_order_relaxed);
    ls.udpFlowsRefused = shared->udpFlowsRefused.load(std::memory_order_relaxed);
    ls.localErrors = shared->localErrors.load(std::memory_order_relaxed);
    std::shared_ptr<const Snapshot> snap;
    std::vector<std::shared_ptr<BackendState>> retired;
    {
      std::lock_guard l(shared->mu);
      snap = shared->snapshot;
      // Held only here: no connection, flow, drain or loop's snapshot has it.
      std::erase_if(shared->retired, [](const auto& b) { return b.use_count() == 1; });
      for (const auto& b : shared->retired) {
        if (b->active.load(std::memory_order_relaxed) > 0) retired.push_back(b);
      }
    }
    int64_t now = nowNs();
    auto add = [&](const BackendState& b, bool left) {
      BackendStats s;
      s.id = b.backend.id;
      s.connections = b.connections.load(std::memory_order_relaxed);
      s.activeConnections = b.active.load(std::memory_order_relaxed);
      s.bytesIn = b.bytesIn.load(std::memory_order_relaxed);
      s.bytesOut = b.bytesOut.load(std::memory_order_relaxed);
      s.connectErrors = b.connectErrors.load(std::memory_order_relaxed);
      s.connectRetries = b.connectRetries.load(std::memory_order_relaxed);
      s.idleTimeouts = b.idleTimeouts.load(std::memory_order_relaxed);
      s.clientResets = b.clientResets.load(std::memory_order_relaxed);
      s.backendResets = b.backendResets.load(std::memory_order_relaxed);
      s.ejected = b.gate.ejected(now);
      s.draining = left || b.gate.isDraining();
      for (size_t i = 0; i < s.connectDurationBuckets.size(); ++i) {
        s.connectDurationBuckets[i] = b.connectBuckets[i].load(std::memory_order_relaxed);
      }
      s.connectDurationSumNs = b.connectSumNs.load(std::memory_order_relaxed);
      ls.backends.push_back(std::move(s));
    };
    for (const auto& b : snap->backends) add(*b, false);
    for (const auto& b : retired) add(*b, true);
    out.push_back(std::move(ls));
  }
  return out;
}

uint16_t Proxy::boundPort(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->listeners.find(name);
  return it == impl_->listeners.end() ? 0 : it->second->port;
}

}  // namespace skiff::proxy
