// Listeners on a worker's loop: opening and closing them, binding sockets,
// and picking the backend for a new connection or flow.

#include <algorithm>
#include <cerrno>

#include "skiff/common/log.h"
#include "worker.h"

namespace skiff::proxy::detail {

std::shared_ptr<BackendState> nextBackend(ListenerRt* l, const std::vector<BackendState*>& tried) {
  uint64_t v = l->shared->version.load(std::memory_order_acquire);
  if (v != l->version) {
    std::lock_guard lock(l->shared->mu);
    l->snapshot = l->shared->snapshot;
    l->version = l->shared->version.load(std::memory_order_relaxed);
  }
  const auto& list = l->snapshot->backends;
  auto idx = pickBackend(
      l->shared->rr, list.size(), [&](size_t i) -> const BackendGate& { return list[i]->gate; },
      [&](size_t i) { return std::find(tried.begin(), tried.end(), list[i].get()) != tried.end(); }, nowNs());
  if (!idx) return nullptr;
  return list[*idx];
}

void onListenerHandleClosed(uv_handle_t* h) {
  auto* l = static_cast<ListenerRt*>(h->data);
  --l->openHandles;
  Worker::maybeFinishListener(l);
}

void Worker::maybeFinishListener(ListenerRt* l) {
  if (!l->closing || l->openHandles > 0 || l->conns != nullptr || l->liveFlows > 0) return;
  auto done = std::move(l->onClosed);
  delete l;
  if (done) done();
}

void Worker::closeListener(ListenerRt* l, std::function<void()> onClosed) {
  listeners_.erase(l->shared->config.name);
  l->closing = true;
  l->onClosed = std::move(onClosed);
  if (l->shared->config.udp) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->udp), onListenerHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->udpTimer), onListenerHandleClosed);
    for (auto& [key, f] : l->flows.clear()) closeFlow(f);
  } else {
    if (l->fd >= 0) {
      unwatch(l->fd);
      ::close(l->fd);
      l->fd = -1;
    }
    dropDeferredListener(l);
    for (TcpConn* c = l->conns; c != nullptr;) {
      TcpConn* next = c->next;
      closeConn(c, false);
      c = next;
    }
  }
  // Nothing may have been open (never happens for a started listener), so check now.
  maybeFinishListener(l);
}

// Opens a listener handle on the worker's loop around fd (takes ownership).
Status openListener(Worker* w, const std::shared_ptr<ListenerShared>& shared, int fd) {
  auto* l = new ListenerRt;
  l->w = w;
  l->shared = shared;
  const auto& cfg = shared->config;
  int r = 0;
  if (cfg.udp) {
    auto idle = cfg.idleTimeout.count() > 0 ? cfg.idleTimeout : kDefaultUdpIdle;
    l->flows = FlowTable<std::string, UdpFlow*>(idle);
    uv_udp_init(w->loop(), &l->udp);
    l->udp.data = l;
    uv_timer_init(w->loop(), &l->udpTimer);
    l->udpTimer.data = l;
    l->openHandles = 2;
    r = uv_udp_open(&l->udp, fd);
    if (r != 0) ::close(fd);
    if (r == 0) r = uv_udp_recv_start(&l->udp, udpAlloc, onListenerRecv);
    uint64_t tick = static_cast<uint64_t>(std::clamp<int64_t>(idle.count() / 4, 10, 1000));
    uv_timer_start(&l->udpTimer, onUdpTimer, tick, tick);
  } else {
    // bindSocket already listens. The socket joins the worker's epoll set.
    l->fd = fd;
    if (!w->watchListener(l)) r = uv_translate_sys_error(errno);
  }
  w->listeners()[cfg.name] = l;
  if (r != 0) {
    w->closeListener(l, nullptr);
    return Error::msg("listen " + cfg.name + ": " + uv_strerror(r), -r);
  }
  return okStatus();
}

Result<sockaddr_storage> parseAddr(const std::string& host, uint16_t port) {
  sockaddr_storage ss{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) == 0) return ss;
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) return ss;
  return Error::msg("not an IP address: " + host, EINVAL);
}

Result<UniqueFd> bindSocket(const sockaddr_storage& addr, bool udp, bool reusePort) {
  UniqueFd fd(::socket(addr.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::fromErrno("socket");
  int one = 1;
  if (!udp) {
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // Accepted sockets inherit TCP_NODELAY on Linux: one call here instead of
    // one per accepted connection.
    (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (reusePort && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return Error::fromErrno("setsockopt SO_REUSEPORT");
  }
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) return Error::fromErrno("bind");
  if (!udp && reusePort && ::listen(fd.get(), kBacklog) != 0) return Error::fromErrno("listen");
  return fd;
}

uint16_t portOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace skiff::proxy::detail
