// The TCP data path: accept, connect (retrying the next backend), forward
// (copy or splice), half-close, reset, backpressure, idle and connect
// timeouts, PROXY protocol header. Sockets are raw fds in the worker's
// edge-triggered epoll set; see the design note in skiff/proxy/proxy.h.

#include <fcntl.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "skiff/common/log.h"
#include "skiff/proxy/proxy_protocol.h"
#include "worker.h"

namespace skiff::proxy::detail {

void startConnect(TcpConn* c);

void linkConn(ListenerRt* l, TcpConn* c) {
  c->next = l->conns;
  if (l->conns != nullptr) l->conns->prev = c;
  l->conns = c;
}
void unlinkConn(ListenerRt* l, TcpConn* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (l->conns == c) l->conns = c->next;
  c->prev = c->next = nullptr;
}

Worker* workerOf(TcpConn* c) { return c->l->w; }
Side* peerOf(TcpConn* c, Side* s) { return s == &c->client ? &c->backend : &c->client; }

// The timer is the connection's only libuv handle; its close callback frees
// the connection (after the current epoll batch, so events later in the
// batch still find a valid object).
void onConnTimerClosed(uv_handle_t* h) {
  auto* c = static_cast<TcpConn*>(h->data);
  if (c->counted) c->be->active.fetch_sub(1, std::memory_order_relaxed);
  ListenerRt* l = c->l;
  unlinkConn(l, c);
  l->w->freeConn(c);
  Worker::maybeFinishListener(l);
}

void releaseSide(TcpConn* c, Side* s, bool reset) {
  BufferPool& pool = workerOf(c)->pool();
  for (size_t i = s->qHead; i < s->q.size(); ++i) pool.put(s->q[i].chunk);
  s->q.clear();
  s->qHead = 0;
  if (s->pipe) {
    workerOf(c)->pipes().put(s->pipe, s->queued == 0);
    s->pipe = {};
  }
  s->queued = 0;
  if (s->fd < 0) return;
  if (reset) resetOnClose(s->fd);
  // close() also drops the socket from the epoll set (no EPOLL_CTL_DEL).
  ::close(s->fd);
  s->fd = -1;
  ++s->gen;
}

void closeConn(TcpConn* c, bool reset) {
  if (c->phase == Phase::kClosing) return;
  // Bytes still queued for a side (idle timeout, end of a drain's grace, a
  // removed listener) would be lost behind a clean FIN that passes for a
  // complete answer: the peer gets a reset instead.
  if (c->client.queued > 0 || c->backend.queued > 0) reset = true;
  c->phase = Phase::kClosing;
  releaseSide(c, &c->client, reset);
  releaseSide(c, &c->backend, reset);
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), onConnTimerClosed);
}

// Side s reset (or failed with another socket error): counted against the
// side it came from, and passed on to the other as a reset.
void sideFailed(TcpConn* c, Side* s) {
  if (c->phase == Phase::kClosing) return;
  auto& counter = s == &c->client ? c->be->clientResets : c->be->backendResets;
  counter.fetch_add(1, std::memory_order_relaxed);
  closeConn(c, true);
}

void failClient(TcpConn* c) {
  c->l->shared->failedClients.fetch_add(1, std::memory_order_relaxed);
  log::debug(kLog, c->l->shared->config.name, ": no backend reachable for a client");
  closeConn(c, true);
}

bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// Sends n bytes of chunk to dst; takes ownership of chunk. Returns false when
// the connection was closed because of a write error.
bool forward(TcpConn* c, Side* dst, Chunk* chunk, size_t n, bool last = false) {
  size_t off = 0;
  if (dst->queued == 0) {
    // The source's last bytes (its FIN is already here): MSG_MORE holds them
    // back for the shutdown that follows in this iteration, so they leave in
    // one segment with the FIN (one packet and one wake-up less for the peer).
    ssize_t r = ::send(dst->fd, chunk->data, n, MSG_NOSIGNAL | (last ? MSG_MORE : 0));
    if (last && r > 0) dst->corked = true;
    if (r == static_cast<ssize_t>(n)) {
      workerOf(c)->pool().put(chunk);
      return true;
    }
    if (r > 0) {
      off = static_cast<size_t>(r);
    } else if (!wouldBlock(errno)) {
      workerOf(c)->pool().put(chunk);
      sideFailed(c, dst);
      return false;
    }
  }
  // The kernel's buffer is full: keep the rest; EPOLLOUT (registered from the
  // start) reports when there is room again.
  dst->q.push_back(PendingWrite{chunk, static_cast<uint32_t>(off), static_cast<uint32_t>(n)});
  dst->queued += n - off;
  return true;
}

void onEof(TcpConn* c, Side* s) {
  if (s->resetSeen) {
    sideFailed(c, s);
    return;
  }
  s->eof = true;
  workerOf(c)->queueShutdown(c);
}

void countBytes(TcpConn* c, Side* src, size_t n) {
  c->lastActivity = uv_now(workerOf(c)->loop());
  auto& counter = src == &c->client ? c->be->bytesIn : c->be->bytesOut;
  counter.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
}

// Moves what the pipe towards dst holds into dst. Returns false when the
// connection was closed because of a write error; dst->queued > 0 afterwards
// means dst is full (EPOLLOUT resumes it).
bool flushPipe(TcpConn* c, Side* dst) {
  while (dst->queued > 0) {
    ssize_t m = ::splice(dst->pipe.r, nullptr, dst->fd, nullptr, dst->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      dst->queued -= static_cast<size_t>(m);
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    sideFailed(c, dst);  // m == 0 cannot happen with bytes in the pipe
    return false;
  }
  return true;
}

// Empties the pipe towards dst before s is spliced again. False when s must
// stop: the connection was closed, or dst is full and s is paused until
// EPOLLOUT drains it (flushSide).
bool pipeEmptied(TcpConn* c, Side* s, Side* dst) {
  if (dst->queued > 0 && !flushPipe(c, dst)) return false;
  if (dst->queued == 0) return true;
  s->paused = true;
  return false;
}

// The spliced form of readSide: socket -> pipe -> socket, the bytes never
// cross into user space. The pipe is emptied into dst before every splice
// from s, so an EAGAIN from s always means s is drained (with bytes left in
// the pipe, EAGAIN could also mean a full pipe). A dst that cannot take the
// whole pipe pauses s until EPOLLOUT drains it (flushSide).
// moved counts what this turn of readSide forwarded (copied or spliced).
// Returns true when s is drained and the (empty) pipe went back to the pool,
// which happens when the burst was small (under a buffer: the transfer is
// over, and an idle connection should not hold a pipe) or urgent data is in
// the way (splice stops in front of it and says EAGAIN): the caller's copying
// read then takes it. A steady transfer keeps its pipe from turn to turn.
bool spliceSide(TcpConn* c, Side* s, Side* dst, size_t& moved) {
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    if (c->phase != Phase::kEstablished || s->eof || !pipeEmptied(c, s, dst)) return false;
    ssize_t n = ::splice(s->fd, nullptr, dst->pipe.w, nullptr, kPipeSize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      dst->queued += static_cast<size_t>(n);
      moved += static_cast<size_t>(n);
      countBytes(c, s, static_cast<size_t>(n));
      c->l->shared->splicedBytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      continue;
    }
    if (n == 0) {
      onEof(c, s);
      return false;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if (moved >= kBufSize && !s->urgent) return false;
      s->urgent = false;
      workerOf(c)->pipes().put(dst->pipe, true);
      dst->pipe = {};
      return true;
    }
    if (err == EINTR) continue;
    sideFailed(c, s);  // reset or error: propagate as a reset
    return false;
  }
  if (pipeEmptied(c, s, dst)) workerOf(c)->defer(c, s);  // budget used up; more is probably waiting
  return false;
}

// A read filled a whole buffer and nothing waits for dst: from now on the
// direction s -> dst is spliced. Without a pipe (fd limit) it keeps copying.
void maybeStartSplice(TcpConn* c, Side* dst) {
  if (!c->l->shared->config.splice || dst->pipe || dst->queued > 0) return;
  dst->pipe = workerOf(c)->pipes().get();
}

// Reads s until its receive queue is empty (a short read: edge-triggered,
// any later arrival raises a new event), EOF, backpressure, or the per-wake
// budget. EOF is learned from EPOLLRDHUP without a read returning 0.
void readSide(TcpConn* c, Side* s) {
  Side* dst = peerOf(c, s);
  Worker* w = workerOf(c);
  size_t moved = 0;
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    if (c->phase != Phase::kEstablished || s->eof) return;
    if (dst->pipe) {
      if (!spliceSide(c, s, dst, moved)) return;
      continue;  // drained: one copying read (usually EAGAIN) ends the turn
    }
    if (dst->queued > kMaxWriteQueue) {
      s->paused = true;  // resumed by flushSide once dst has drained
      return;
    }
    Chunk* chunk = w->pool().get();
    ssize_t n = ::read(s->fd, chunk->data, kBufSize);
    if (n > 0) {
      moved += static_cast<size_t>(n);
      countBytes(c, s, static_cast<size_t>(n));
      // A short read drained s. With RDHUP seen, everything before the FIN
      // has been read: these are the last bytes.
      bool drained = static_cast<size_t>(n) < kBufSize && (s->flags & (EPOLLERR | EPOLLHUP)) == 0;
      bool last = drained && (s->flags & EPOLLRDHUP) != 0;
      if (!forward(c, dst, chunk, static_cast<size_t>(n), last)) return;
      if (drained) {
        if (last) onEof(c, s);
        if (dst->queued > kMaxWriteQueue) s->paused = true;
        return;
      }
      if (static_cast<size_t>(n) == kBufSize) maybeStartSplice(c, dst);
      continue;
    }
    int err = errno;
    w->pool().put(chunk);
    if (n == 0) {
      onEof(c, s);
      return;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR) continue;
    sideFailed(c, s);  // reset or error: propagate as a reset
    return;
  }
  w->defer(c, s);  // budget used up; more is probably waiting
}

// Writes what is queued for s; resumes its peer when the queue has drained
// below half the bound (a pipe: once it is empty).
void flushSide(TcpConn* c, Side* s) {
  BufferPool& pool = workerOf(c)->pool();
  while (s->qHead < s->q.size()) {
    PendingWrite& p = s->q[s->qHead];
    ssize_t r = ::send(s->fd, p.chunk->data + p.off, p.len - p.off, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      sideFailed(c, s);
      return;
    }
    p.off += static_cast<uint32_t>(r);
    s->queued -= static_cast<size_t>(r);
    if (p.off < p.len) break;  // the kernel is full again: wait for EPOLLOUT
    pool.put(p.chunk);
    ++s->qHead;
  }
  if (s->qHead == s->q.size()) {
    s->q.clear();
    s->qHead = 0;
  }
  if (s->pipe && s->q.empty() && !flushPipe(c, s)) return;
  Side* src = peerOf(c, s);
  if (s->queued == 0 && src->eof) workerOf(c)->queueShutdown(c);
  size_t resumeBelow = s->pipe ? 0 : kMaxWriteQueue / 2;
  if (src->paused && s->queued <= resumeBelow) {
    src->paused = false;
    if (!src->eof) readSide(c, src);
  }
}

void onTimer(uv_timer_t* t);

void armIdle(TcpConn* c, uint64_t ms) { uv_timer_start(&c->timer, onTimer, ms, 0); }

void sendProxyHeader(TcpConn* c) {
  sockaddr_storage peer{}, local{};
  socklen_t plen = sizeof peer, llen = sizeof local;
  if (::getpeername(c->client.fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
      ::getsockname(c->client.fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0) {
    peer.ss_family = AF_UNSPEC;
    local.ss_family = AF_UNSPEC;
  }
  std::string header = buildProxyHeader(c->l->shared->config.proxyProtocol, reinterpret_cast<sockaddr*>(&peer),
                                        reinterpret_cast<sockaddr*>(&local));
  Chunk* chunk = workerOf(c)->pool().get();
  std::memcpy(chunk->data, header.data(), header.size());
  (void)forward(c, &c->backend, chunk, header.size());
}

void onEstablished(TcpConn* c) {
  c->phase = Phase::kEstablished;
  uv_timer_stop(&c->timer);
  c->be->onConnectTime(nowNs() - c->connectStartNs);
  c->be->onConnectSuccess();
  c->be->connections.fetch_add(1, std::memory_order_relaxed);
  c->lastActivity = uv_now(workerOf(c)->loop());
  if (c->l->shared->config.proxyProtocol != 0) {
    sendProxyHeader(c);
    if (c->phase != Phase::kEstablished) return;
  }
  // The client is read only now: until a backend answered, the kernel's socket
  // buffer holds its bytes, so a retry on another backend loses nothing.
  // Usually the request is already there (its edge was recorded in flags).
  readSide(c, &c->client);
  if (c->phase != Phase::kEstablished) return;
  if ((c->backend.flags & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0) {
    readSide(c, &c->backend);  // a server that speaks first
    if (c->phase != Phase::kEstablished) return;
  }
  auto idle = c->l->shared->config.idleTimeout.count();
  if (idle > 0) armIdle(c, static_cast<uint64_t>(idle));
}

void connectFailed(TcpConn* c) {
  c->be->onConnectFailure();
  c->be->active.fetch_sub(1, std::memory_order_relaxed);  // the next backend counts it
  c->counted = false;
  log::debug(kLog, c->l->shared->config.name, ": connect to ", c->be->backend.id, " failed; trying the next");
  c->tried.push_back(c->be.get());
  uv_timer_stop(&c->timer);
  releaseSide(c, &c->backend, false);
  startConnect(c);
}

void onSideEvent(TcpConn* c, Side* s, uint32_t events) {
  if (c->phase == Phase::kClosing) return;
  s->flags |= events;
  if ((events & EPOLLPRI) != 0) s->urgent = true;  // see spliceSide
  if (c->phase == Phase::kConnecting) {
    // Client events wait (recorded in flags) until the backend answers.
    if (s != &c->backend) return;
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
      int err = 0;
      socklen_t len = sizeof err;
      (void)::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == ECONNRESET || err == EPIPE) {
        // It did connect, then answered and reset before we looked (one
        // event for all three): its bytes go to the client, then the reset.
        // Reading SO_ERROR consumed the error, so it is kept here.
        s->resetSeen = true;
        onEstablished(c);
        return;
      }
      log::debug(kLog, c->l->shared->config.name, ": connect: ", std::strerror(err));
      connectFailed(c);
    } else if ((events & EPOLLOUT) != 0) {
      onEstablished(c);  // the first EPOLLOUT is the connect's success
    }
    return;
  }
  if ((events & EPOLLOUT) != 0 && s->queued > 0) {
    flushSide(c, s);
    if (c->phase != Phase::kEstablished) return;
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0 && !s->eof && !s->paused && !s->readQueued) {
    readSide(c, s);
  }
}

void onTimer(uv_timer_t* t) {
  auto* c = static_cast<TcpConn*>(t->data);
  if (c->phase == Phase::kConnecting) {
    connectFailed(c);  // connect timeout
    return;
  }
  if (c->phase != Phase::kEstablished) return;
  uint64_t idle = static_cast<uint64_t>(c->l->shared->config.idleTimeout.count());
  uint64_t elapsed = uv_now(t->loop) - c->lastActivity;
  if (elapsed >= idle) {
    log::debug(kLog, c->l->shared->config.name, ": closing an idle connection");
    c->be->idleTimeouts.fetch_add(1, std::memory_order_relaxed);
    closeConn(c, false);
  } else {
    armIdle(c, idle - elapsed);
  }
}

void startConnect(TcpConn* c) {
  Worker* w = workerOf(c);
  c->be = nextBackend(c->l, c->tried);
  if (!c->be) {
    failClient(c);
    return;
  }
  c->phase = Phase::kConnecting;
  // Active from the connect on, not from its answer: a drain waits for the
  // backend's active connections to end before its stop signal, and one
  // still connecting would otherwise meet a replica that is exiting.
  c->be->active.fetch_add(1, std::memory_order_relaxed);
  c->counted = true;
  if (!c->tried.empty()) c->be->connectRetries.fetch_add(1, std::memory_order_relaxed);
  Side* s = &c->backend;
  s->flags = 0;
  const sockaddr* addr = reinterpret_cast<const sockaddr*>(&c->be->addr);
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  // Out of fds, ports or memory is this host's trouble, not the backend's:
  // the client fails, the backend keeps its health.
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failClient(c);
    return;
  }
  s->fd = fd;
  ++s->gen;
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->connectStartNs = nowNs();
  if (::connect(fd, addr, len) != 0 && errno != EINPROGRESS) {
    int err = errno;
    if (err == EADDRNOTAVAIL || err == ENOBUFS || err == ENOMEM || err == EMFILE || err == ENFILE) {
      failClient(c);
    } else {
      connectFailed(c);  // unreachable and the like: try the next backend
    }
    return;
  }
  if (!w->watch(fd, Worker::tagOf(c, s))) {
    failClient(c);
    return;
  }
  uv_timer_start(&c->timer, onTimer, static_cast<uint64_t>(c->l->shared->config.connectTimeout.count()), 0);
}

// Accepts until the backlog is empty (edge-triggered), at most a bounded
// number per wake-up so one listener cannot starve the loop.
void acceptSome(ListenerRt* l) {
  Worker* w = l->w;
  for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
    if (l->closing) return;
    // TCP_NODELAY is inherited from the listening socket (set in bindSocket).
    int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      l->shared->acceptErrors.fetch_add(1, std::memory_order_relaxed);
      if ((err == EMFILE || err == ENFILE) && w->shedOne(l->fd)) continue;
      return;  // ENOBUFS/ENOMEM: the next connection raises a new edge
    }
    TcpConn* c = w->newConn();
    c->l = l;
    linkConn(l, c);
    uv_timer_init(w->loop(), &c->timer);
    c->timer.data = c;
    c->client.fd = fd;
    if (!w->watch(fd, Worker::tagOf(c, &c->client))) {
      l->shared->acceptErrors.fetch_add(1, std::memory_order_relaxed);
      closeConn(c, false);
      continue;
    }
    startConnect(c);
  }
  w->deferAccept(l);
}

void Worker::flushShutdowns() {
  if (shutQueue_.empty()) return;
  shutBatch_.swap(shutQueue_);
  for (TcpConn* c : shutBatch_) {
    if (c == nullptr) continue;
    c->shutQueued = false;
    if (c->phase != Phase::kEstablished) continue;
    Side* cl = &c->client;
    Side* be = &c->backend;
    if (cl->eof && be->eof && cl->queued == 0 && be->queued == 0) {
      // Both directions are finished and everything written is in the kernel:
      // close() sends the FINs, no shutdown() needed. Both receive queues were
      // read up to EOF, so close() sends no RST.
      closeConn(c, false);
      continue;
    }
    // Shut a side once its source hit EOF and what it was sent is written.
    // With EOF learned from EPOLLRDHUP, the backend's FIN of a
    // request/response exchange is seen an iteration before the client's:
    // wait one iteration, and usually close() replaces the shutdown().
    bool needShut = false;
    for (Side* s : {be, cl}) needShut |= peerOf(c, s)->eof && !s->shut && s->queued == 0;
    bool corked = cl->corked || be->corked;
    if (needShut && !c->shutDelayed && !corked) {
      c->shutDelayed = true;
      queueShutdown(c);
      continue;
    }
    for (Side* s : {be, cl}) {
      if (!peerOf(c, s)->eof || s->shut || s->queued > 0) continue;
      s->shut = true;
      if (::shutdown(s->fd, SHUT_WR) != 0) {
        sideFailed(c, s);
        break;
      }
    }
  }
  shutBatch_.clear();
  // Delayed ones: the next iteration must not block in epoll_wait.
  if (!shutQueue_.empty()) startIdle();
}

}  // namespace skiff::proxy::detail
