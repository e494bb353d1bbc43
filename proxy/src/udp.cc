// UDP: a flow table per loop keyed by client address; each flow is a
// connected socket to its backend, and replies leave from the published port.

#include "worker.h"

#include <cstring>

namespace skiff::proxy::detail {

void udpAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);

void Worker::closeFlow(UdpFlow* f) {
  if (f->closing) return;
  f->closing = true;
  f->be->active.fetch_sub(1, std::memory_order_relaxed);
  uv_close(reinterpret_cast<uv_handle_t*>(&f->sock), [](uv_handle_t* h) {
    auto* flow = static_cast<UdpFlow*>(h->data);
    ListenerRt* l = flow->l;
    --l->liveFlows;
    delete flow;
    maybeFinishListener(l);
  });
}

void udpAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  // The listener and the flows keep different data pointers; the loop's data
  // is always the worker, which owns the pool.
  auto* w = static_cast<Worker*>(h->loop->data);
  Chunk* chunk = w->pool().get();
  *buf = uv_buf_init(chunk->data, kBufSize);
}

void onFlowRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr*, unsigned) {
  auto* f = static_cast<UdpFlow*>(h->data);
  auto* w = static_cast<Worker*>(h->loop->data);
  if (nread > 0 && !f->closing) {
    f->l->flows.touch(f->key, Clock::now());
    uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
    int r = uv_udp_try_send(&f->l->udp, &out, 1, reinterpret_cast<const sockaddr*>(&f->client));
    if (r >= 0) f->be->bytesOut.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
  } else if (nread < 0 && !f->closing) {
    // ICMP port unreachable from a dead backend: count it against the backend.
    f->be->onConnectFailure();
  }
  if (buf->base != nullptr) w->pool().put(chunkOf(buf->base));
}

void onListenerRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
  auto* l = static_cast<ListenerRt*>(h->data);
  auto* w = l->w;
  auto release = [&] {
    if (buf->base != nullptr) w->pool().put(chunkOf(buf->base));
  };
  if (nread <= 0 || addr == nullptr || l->closing) {
    if (nread < 0) l->shared->acceptErrors.fetch_add(1, std::memory_order_relaxed);
    release();
    return;
  }
  socklen_t alen = addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::string key(reinterpret_cast<const char*>(addr), alen);
  auto now = Clock::now();
  UdpFlow** fp = l->flows.find(key, now);
  UdpFlow* f = fp != nullptr ? *fp : nullptr;
  if (f == nullptr) {
    std::vector<BackendState*> none;
    auto be = nextBackend(l, none);
    if (!be) {
      l->shared->failedClients.fetch_add(1, std::memory_order_relaxed);
      release();
      return;
    }
    f = new UdpFlow;
    f->l = l;
    f->key = key;
    std::memcpy(&f->client, addr, alen);
    f->be = std::move(be);
    uv_udp_init(w->loop(), &f->sock);
    f->sock.data = f;
    ++l->liveFlows;
    f->be->connections.fetch_add(1, std::memory_order_relaxed);
    f->be->active.fetch_add(1, std::memory_order_relaxed);
    l->flows.insert(key, f, now);
    if (uv_udp_connect(&f->sock, reinterpret_cast<const sockaddr*>(&f->be->addr)) != 0 ||
        uv_udp_recv_start(&f->sock, udpAlloc, onFlowRecv) != 0) {
      f->be->onConnectFailure();
      l->shared->failedClients.fetch_add(1, std::memory_order_relaxed);
      l->flows.erase(key);
      Worker::closeFlow(f);
      release();
      return;
    }
  }
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
  int r = uv_udp_try_send(&f->sock, &out, 1, nullptr);
  if (r >= 0) {
    f->be->bytesIn.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
  } else {
    f->be->connectErrors.fetch_add(1, std::memory_order_relaxed);
  }
  release();
}

void onUdpTimer(uv_timer_t* t) {
  auto* l = static_cast<ListenerRt*>(t->data);
  for (auto& [key, f] : l->flows.expire(Clock::now())) Worker::closeFlow(f);
}

}  // namespace skiff::proxy::detail
