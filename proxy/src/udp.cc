// UDP: a flow table per loop keyed by client address; each flow is a
// connected socket to its backend, and replies leave from the published port.
//
// Bound: every flow holds an fd and a local port, so a listener holds at most
// maxUdpFlows flows over all its loops (one FlowLimit per listener). At the
// bound the datagram of a new source is dropped and counted (udpFlowsRefused);
// open flows go on. Live flows are never evicted to make room: under a flood
// of new, possibly spoofed, sources that would break every open flow in turn
// (and move it to another backend), while refusing the newcomers keeps the
// established ones working. Only flows already past their idle time, which
// the timer would reap at its next tick, are closed early for a newcomer.
//
// Blame: an error that says the backend is bad (ICMP port or host
// unreachable, no route: blamesBackend) ejects it like a failed TCP connect
// and closes the flow, so the client's next datagram goes to a live backend.
// A shortage of this host (out of fds, ports or buffers) is counted as a
// local error and logged, and no backend is ejected for it.

#include <cstring>

#include "skiff/common/log.h"
#include "worker.h"

namespace skiff::proxy::detail {

void udpAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);

namespace {

constexpr std::chrono::seconds kWarnEvery{10};

// Counts a failure of this host; warns at most every kWarnEvery per loop.
void localError(ListenerRt* l, const char* what, const std::string& backendId, int uvErr) {
  l->shared->localErrors.fetch_add(1, std::memory_order_relaxed);
  auto now = Clock::now();
  if (now - l->lastLocalErrorLog < kWarnEvery) return;
  l->lastLocalErrorLog = now;
  log::warn(kLog, l->shared->config.name, ": ", what, " (backend ", backendId, "): ", uv_strerror(uvErr),
            "; datagram dropped, backend not blamed");
}

// An error of a flow's socket. Returns true when it closed the flow (the
// backend was blamed); f must not be used then.
bool flowError(UdpFlow* f, const char* what, int uvErr) {
  if (!blamesBackend(-uvErr)) {
    localError(f->l, what, f->be->backend.id, uvErr);
    return false;
  }
  f->be->onConnectFailure();
  log::debug(kLog, f->l->shared->config.name, ": ", what, " (backend ", f->be->backend.id, "): ", uv_strerror(uvErr),
             "; backend ejected, flow closed");
  f->l->w->closeFlowByKey(f->l, f->key);
  return true;
}

// Closes the flows idle past the timeout, each counted against its backend.
void expireIdleFlows(ListenerRt* l, Clock::time_point now) {
  for (auto& [key, f] : l->flows.expire(now)) {
    f->be->idleTimeouts.fetch_add(1, std::memory_order_relaxed);
    Worker::closeFlow(f);
  }
}

// Takes a flow slot for a new source of l (see the bound above).
bool admitFlow(ListenerRt* l, Clock::time_point now) {
  FlowLimit& limit = *l->shared->udpFlows;
  if (limit.tryAcquire()) return true;
  expireIdleFlows(l, now);
  if (limit.tryAcquire()) return true;
  l->shared->udpFlowsRefused.fetch_add(1, std::memory_order_relaxed);
  if (now - l->lastFullLog >= kWarnEvery) {
    l->lastFullLog = now;
    log::warn(kLog, l->shared->config.name, ": ", limit.max(),
              " UDP flows open (the bound): dropping datagrams from new sources");
  }
  return false;
}

}  // namespace

void Worker::closeFlow(UdpFlow* f) {
  if (f->closing) return;
  f->closing = true;
  f->be->active.fetch_sub(1, std::memory_order_relaxed);
  // uv_close closes the fd at once: the slot is free for the next source now.
  f->l->shared->udpFlows->release();
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
    f->be->onConnectSuccess();  // it answers: re-admitted if it was ejected
    uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
    int r = uv_udp_try_send(&f->l->udp, &out, 1, reinterpret_cast<const sockaddr*>(&f->client));
    if (r >= 0) {
      f->be->bytesOut.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
    } else {
      localError(f->l, "reply to client", f->be->backend.id, r);
    }
  } else if (nread < 0 && !f->closing) {
    // Typically ECONNREFUSED: an ICMP port unreachable from a dead backend.
    (void)flowError(f, "receive from backend", static_cast<int>(nread));
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
    // The slot is taken before the pick, so refused sources do not move the
    // round robin.
    if (!admitFlow(l, now)) {
      release();
      return;
    }
    std::vector<BackendState*> none;
    auto be = nextBackend(l, none);
    if (!be) {
      l->shared->udpFlows->release();
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
    // uv_udp_connect makes the socket (EMFILE, ENFILE, ENOBUFS), binds a
    // local port (EADDRNOTAVAIL, EAGAIN) and connects (ENETUNREACH).
    const char* what = "open a flow";
    int r = uv_udp_connect(&f->sock, reinterpret_cast<const sockaddr*>(&f->be->addr));
    if (r == 0) {
      what = "watch a flow";
      r = uv_udp_recv_start(&f->sock, udpAlloc, onFlowRecv);
    }
    if (r != 0) {
      l->shared->failedClients.fetch_add(1, std::memory_order_relaxed);
      if (!flowError(f, what, r)) w->closeFlowByKey(l, key);
      release();
      return;
    }
  }
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
  int r = uv_udp_try_send(&f->sock, &out, 1, nullptr);
  if (r >= 0) {
    f->be->bytesIn.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
  } else {
    // ECONNREFUSED here is an earlier datagram's ICMP error; EAGAIN or
    // ENOBUFS a full socket buffer of ours.
    (void)flowError(f, "send to backend", r);
  }
  release();
}

void onUdpTimer(uv_timer_t* t) {
  auto* l = static_cast<ListenerRt*>(t->data);
  expireIdleFlows(l, Clock::now());
}

}  // namespace skiff::proxy::detail
