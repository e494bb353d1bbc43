// The libuv side of the proxy: loops, listeners, TCP connections, UDP flows.
// See the design note in skiff/proxy/proxy.h.

#include "skiff/proxy/proxy.h"

#include <arpa/inet.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "port_owner.h"
#include "skiff/common/fd.h"
#include "skiff/common/log.h"
#include "skiff/proxy/balancing.h"
#include "skiff/proxy/proxy_protocol.h"

namespace skiff::proxy {
namespace {

constexpr const char* kLog = "proxy";
constexpr size_t kBufSize = 64 * 1024;
// A side whose peer has more than this queued for writing stops being read.
constexpr size_t kMaxWriteQueue = 1024 * 1024;
constexpr size_t kMaxPooledChunks = 256;
constexpr size_t kMaxPooledConns = 1024;
constexpr int kBacklog = 4096;
constexpr std::chrono::milliseconds kDefaultUdpIdle{60000};

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct BackendState {
  Backend backend;
  sockaddr_storage addr{};
  std::atomic<uint64_t> connections{0}, active{0}, bytesIn{0}, bytesOut{0}, connectErrors{0};
  std::atomic<bool> draining{false};
  // Mirror of health.ejectedUntil() for the lock-free pick path.
  std::atomic<int64_t> ejectedUntilNs{0};
  std::atomic<int> failures{0};
  std::mutex healthMu;
  HealthState health;

  bool eligible(int64_t now) const {
    return !draining.load(std::memory_order_relaxed) && ejectedUntilNs.load(std::memory_order_relaxed) <= now;
  }
  void onConnectFailure() {
    connectErrors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(healthMu);
    health.onFailure(Clock::now());
    failures.store(health.consecutiveFailures(), std::memory_order_relaxed);
    ejectedUntilNs.store(health.ejectedUntil().time_since_epoch().count() == 0
                             ? 0
                             : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   health.ejectedUntil().time_since_epoch())
                                   .count(),
                         std::memory_order_relaxed);
  }
  void onConnectSuccess() {
    if (failures.load(std::memory_order_relaxed) == 0) return;  // common case: no lock
    std::lock_guard lock(healthMu);
    health.onSuccess();
    failures.store(0, std::memory_order_relaxed);
    ejectedUntilNs.store(0, std::memory_order_relaxed);
  }
};

struct Snapshot {
  std::vector<std::shared_ptr<BackendState>> backends;
};

struct ListenerShared {
  ListenerConfig config;
  uint16_t port = 0;
  RoundRobin rr;
  mutable std::mutex mu;
  std::shared_ptr<const Snapshot> snapshot = std::make_shared<Snapshot>();
  std::atomic<uint64_t> version{1};
  std::atomic<uint64_t> acceptErrors{0}, failedClients{0};
};

class Worker;
struct ListenerRt;

// A read buffer; its write request travels with it so forwarding costs no
// extra allocation. Returned to the loop's pool when written.
struct Chunk {
  uv_write_t req;
  char data[kBufSize];
};
Chunk* chunkOf(char* base) { return reinterpret_cast<Chunk*>(base - offsetof(Chunk, data)); }

class BufferPool {
 public:
  ~BufferPool() {
    for (Chunk* c : free_) delete c;
  }
  Chunk* get() {
    if (free_.empty()) return new Chunk;
    Chunk* c = free_.back();
    free_.pop_back();
    return c;
  }
  void put(Chunk* c) {
    if (free_.size() < kMaxPooledChunks) {
      free_.push_back(c);
    } else {
      delete c;
    }
  }

 private:
  std::vector<Chunk*> free_;
};

enum class Phase { kConnecting, kRetrying, kEstablished, kClosing };

struct TcpConn {
  ListenerRt* l = nullptr;
  TcpConn* prev = nullptr;
  TcpConn* next = nullptr;
  uv_tcp_t client;
  uv_tcp_t backend;
  uv_timer_t timer;
  uv_connect_t connectReq;
  uv_shutdown_t shutClient;
  uv_shutdown_t shutBackend;
  std::shared_ptr<BackendState> be;
  std::vector<BackendState*> tried;
  Phase phase = Phase::kConnecting;
  int openHandles = 0;
  int pendingShutdowns = 0;
  bool backendOpen = false;
  bool clientEof = false, backendEof = false;
  bool clientPaused = false, backendPaused = false;
  bool counted = false;
  // EOF seen on one side: the other side is shut down (or, when both sides
  // are done, simply closed) at the end of this loop iteration; see
  // Worker::flushShutdowns.
  bool shutQueued = false;
  bool clientShut = false, backendShut = false;
  uint64_t lastActivity = 0;  // uv_now() ms
};

struct UdpFlow {
  ListenerRt* l = nullptr;
  uv_udp_t sock;
  std::string key;
  sockaddr_storage client{};
  std::shared_ptr<BackendState> be;
  bool closing = false;
};

struct ListenerRt {
  Worker* w = nullptr;
  std::shared_ptr<ListenerShared> shared;
  std::shared_ptr<const Snapshot> snapshot;
  uint64_t version = 0;
  uv_tcp_t tcp;
  uv_udp_t udp;
  uv_timer_t udpTimer;
  int openHandles = 0;
  bool closing = false;
  TcpConn* conns = nullptr;  // intrusive list head
  size_t liveFlows = 0;
  FlowTable<std::string, UdpFlow*> flows{kDefaultUdpIdle};
  std::function<void()> onClosed;
};

struct DrainTimer {
  uv_timer_t timer;
  Worker* w = nullptr;
  std::string listener;
  std::shared_ptr<BackendState> target;
};

void closeConn(TcpConn* c, bool reset);
void startConnect(TcpConn* c);

class Worker {
 public:
  Worker() = default;
  ~Worker() {
    for (TcpConn* c : freeConns_) delete c;
  }

  Status init() {
    int r = uv_loop_init(&loop_);
    if (r < 0) return Error::msg(std::string("uv_loop_init: ") + uv_strerror(r), -r);
    r = uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->runTasks(); });
    if (r < 0) {
      (void)uv_loop_close(&loop_);
      return Error::msg(std::string("uv_async_init: ") + uv_strerror(r), -r);
    }
    async_.data = this;
    uv_check_init(&loop_, &check_);
    check_.data = this;
    uv_check_start(&check_, [](uv_check_t* h) { static_cast<Worker*>(h->data)->flushShutdowns(); });
    uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
    // The loop's data is its worker, so any callback can reach the buffer pool.
    loop_.data = this;
    thread_ = std::thread([this] {
      uv_run(&loop_, UV_RUN_DEFAULT);
      int rc = uv_loop_close(&loop_);
      if (rc != 0) log::warn(kLog, "loop closed with open handles: ", uv_strerror(rc));
    });
    return okStatus();
  }

  void post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    uv_async_send(&async_);
  }

  // Runs fn on the loop thread and waits for it.
  void runSync(const std::function<void()>& fn) {
    std::promise<void> done;
    post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  void stop() {
    post([this] {
      stopping_ = true;
      std::vector<ListenerRt*> open;
      for (auto& [name, l] : listeners_) open.push_back(l);
      for (ListenerRt* l : open) closeListener(l, nullptr);
      for (DrainTimer* d : drains_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&d->timer),
                 [](uv_handle_t* h) { delete static_cast<DrainTimer*>(h->data); });
      }
      drains_.clear();
      uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    });
    if (thread_.joinable()) thread_.join();
  }
  bool started() const { return thread_.joinable(); }

  uv_loop_t* loop() { return &loop_; }
  BufferPool& pool() { return pool_; }

  // Connection objects are recycled per loop: a new connection per request
  // would otherwise cost a heap allocation and free each.
  TcpConn* newConn() {
    if (freeConns_.empty()) return new TcpConn;
    TcpConn* c = freeConns_.back();
    freeConns_.pop_back();
    return c;
  }
  void freeConn(TcpConn* c) {
    if (c->shutQueued) dropShutdown(c);
    if (freeConns_.size() >= kMaxPooledConns) {
      delete c;
      return;
    }
    auto tried = std::move(c->tried);
    tried.clear();
    *c = TcpConn{};
    c->tried = std::move(tried);
    freeConns_.push_back(c);
  }

  // Half-close propagation is deferred to the end of the loop iteration (a
  // check handle): with a new connection per request both EOFs usually arrive
  // in the same iteration, and then a plain close() of both sockets replaces
  // two shutdown() calls (close sends the FIN itself).
  void queueShutdown(TcpConn* c) {
    if (c->shutQueued) return;
    c->shutQueued = true;
    shutQueue_.push_back(c);
  }
  void flushShutdowns();
  std::map<std::string, ListenerRt*>& listeners() { return listeners_; }

  void addDrain(const std::string& listener, std::shared_ptr<BackendState> target,
                std::chrono::milliseconds grace) {
    if (stopping_) return;
    auto* d = new DrainTimer;
    d->w = this;
    d->listener = listener;
    d->target = std::move(target);
    uv_timer_init(&loop_, &d->timer);
    d->timer.data = d;
    drains_.insert(d);
    uv_timer_start(
        &d->timer,
        [](uv_timer_t* t) {
          auto* dt = static_cast<DrainTimer*>(t->data);
          dt->w->finishDrain(dt);
        },
        static_cast<uint64_t>(grace.count()), 0);
  }

  void finishDrain(DrainTimer* d) {
    auto it = listeners_.find(d->listener);
    if (it != listeners_.end()) {
      ListenerRt* l = it->second;
      size_t closed = 0;
      for (TcpConn* c = l->conns; c != nullptr;) {
        TcpConn* next = c->next;
        if (c->be == d->target && c->phase != Phase::kClosing) {
          closeConn(c, false);
          ++closed;
        }
        c = next;
      }
      std::vector<std::string> flowKeys;
      l->flows.forEach([&](const std::string& key, UdpFlow* f) {
        if (f->be == d->target) flowKeys.push_back(key);
      });
      for (const auto& key : flowKeys) closeFlowByKey(l, key);
      if (closed + flowKeys.size() > 0) {
        log::info(kLog, d->listener, ": drain of ", d->target->backend.id, " closed ", closed + flowKeys.size(),
                  " connection(s) after grace");
      }
    }
    drains_.erase(d);
    uv_close(reinterpret_cast<uv_handle_t*>(&d->timer),
             [](uv_handle_t* h) { delete static_cast<DrainTimer*>(h->data); });
  }

  static void closeFlow(UdpFlow* f);
  void closeFlowByKey(ListenerRt* l, const std::string& key) {
    UdpFlow** fp = l->flows.find(key, Clock::now());
    if (fp == nullptr) return;
    UdpFlow* f = *fp;
    l->flows.erase(key);
    closeFlow(f);
  }

  void closeListener(ListenerRt* l, std::function<void()> onClosed);
  static void maybeFinishListener(ListenerRt* l);

 private:
  void runTasks() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
  }

  void dropShutdown(TcpConn* c) {
    c->shutQueued = false;
    for (auto* q : {&shutQueue_, &shutBatch_}) {
      auto it = std::find(q->begin(), q->end(), c);
      if (it != q->end()) *it = nullptr;
    }
  }

  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_check_t check_{};
  std::vector<TcpConn*> shutQueue_, shutBatch_;
  std::vector<TcpConn*> freeConns_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  BufferPool pool_;
  std::map<std::string, ListenerRt*> listeners_;
  std::unordered_set<DrainTimer*> drains_;
  bool stopping_ = false;
};

// ---- picking -------------------------------------------------------------

std::shared_ptr<BackendState> pickBackend(ListenerRt* l, const std::vector<BackendState*>& tried) {
  uint64_t v = l->shared->version.load(std::memory_order_acquire);
  if (v != l->version) {
    std::lock_guard lock(l->shared->mu);
    l->snapshot = l->shared->snapshot;
    l->version = l->shared->version.load(std::memory_order_relaxed);
  }
  const auto& list = l->snapshot->backends;
  int64_t now = nowNs();
  auto notTried = [&](size_t i) { return std::find(tried.begin(), tried.end(), list[i].get()) == tried.end(); };
  auto idx = l->shared->rr.pick(list.size(), [&](size_t i) { return list[i]->eligible(now) && notTried(i); });
  if (!idx) {
    // Every live backend is ejected: trying one beats refusing the client.
    idx = l->shared->rr.pick(list.size(), [&](size_t i) {
      return !list[i]->draining.load(std::memory_order_relaxed) && notTried(i);
    });
  }
  if (!idx) return nullptr;
  return list[*idx];
}

// ---- TCP -----------------------------------------------------------------

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

void onConnHandleClosed(uv_handle_t* h) {
  auto* c = static_cast<TcpConn*>(h->data);
  if (h == reinterpret_cast<uv_handle_t*>(&c->backend)) c->backendOpen = false;
  if (--c->openHandles > 0) return;
  if (c->counted) c->be->active.fetch_sub(1, std::memory_order_relaxed);
  ListenerRt* l = c->l;
  unlinkConn(l, c);
  l->w->freeConn(c);
  Worker::maybeFinishListener(l);
}

void closeTcp(uv_tcp_t* h, bool reset) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) return;
  if (reset && uv_tcp_close_reset(h, onConnHandleClosed) == 0) return;
  uv_close(reinterpret_cast<uv_handle_t*>(h), onConnHandleClosed);
}

void closeConn(TcpConn* c, bool reset) {
  if (c->phase == Phase::kClosing) return;
  c->phase = Phase::kClosing;
  uv_timer_stop(&c->timer);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->timer))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), onConnHandleClosed);
  }
  closeTcp(&c->client, reset);
  if (c->backendOpen) closeTcp(&c->backend, reset);
}

void failClient(TcpConn* c) {
  c->l->shared->failedClients.fetch_add(1, std::memory_order_relaxed);
  log::debug(kLog, c->l->shared->config.name, ": no backend reachable for a client");
  closeConn(c, true);
}

void allocCb(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<TcpConn*>(h->data);
  Chunk* chunk = c->l->w->pool().get();
  *buf = uv_buf_init(chunk->data, kBufSize);
}

void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

void startReading(uv_tcp_t* side) {
  uv_read_start(reinterpret_cast<uv_stream_t*>(side), allocCb, onRead);
}

void onWrite(uv_write_t* req, int status) {
  Chunk* chunk = reinterpret_cast<Chunk*>(req);
  auto* c = static_cast<TcpConn*>(req->data);
  c->l->w->pool().put(chunk);
  if (c->phase == Phase::kClosing) return;
  if (status < 0) {
    closeConn(c, true);
    return;
  }
  // Resume a side paused for backpressure once its peer's queue has drained.
  uv_tcp_t* dst = reinterpret_cast<uv_tcp_t*>(req->handle);
  if (dst->write_queue_size > kMaxWriteQueue / 2) return;
  if (dst == &c->backend && c->clientPaused && !c->clientEof) {
    c->clientPaused = false;
    startReading(&c->client);
  } else if (dst == &c->client && c->backendPaused && !c->backendEof) {
    c->backendPaused = false;
    startReading(&c->backend);
  }
}

// Sends n bytes of chunk to dst; takes ownership of chunk. Returns false when
// the connection was closed because of a write error.
bool forward(TcpConn* c, uv_tcp_t* dst, Chunk* chunk, size_t n) {
  auto* stream = reinterpret_cast<uv_stream_t*>(dst);
  size_t off = 0;
  if (dst->write_queue_size == 0) {
    uv_buf_t b = uv_buf_init(chunk->data, static_cast<unsigned>(n));
    int r = uv_try_write(stream, &b, 1);
    if (r == static_cast<int>(n)) {
      c->l->w->pool().put(chunk);
      return true;
    }
    if (r > 0) {
      off = static_cast<size_t>(r);
    } else if (r != UV_EAGAIN) {
      c->l->w->pool().put(chunk);
      closeConn(c, true);
      return false;
    }
  }
  chunk->req.data = c;
  uv_buf_t b = uv_buf_init(chunk->data + off, static_cast<unsigned>(n - off));
  int r = uv_write(&chunk->req, stream, &b, 1, onWrite);
  if (r < 0) {
    c->l->w->pool().put(chunk);
    closeConn(c, true);
    return false;
  }
  return true;
}

void onShutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<TcpConn*>(req->data);
  --c->pendingShutdowns;
  if (c->phase == Phase::kClosing) return;
  if (status < 0) {
    closeConn(c, true);
    return;
  }
  if (c->clientEof && c->backendEof && c->pendingShutdowns == 0) closeConn(c, false);
}

void shutdownSide(TcpConn* c, uv_tcp_t* side) {
  // Nothing queued for this side: shut it now. uv_shutdown would wait for
  // POLLOUT first (two epoll_ctl calls and a loop iteration). Nothing writes
  // to this side afterwards (its source hit EOF), so libuv need not know.
  uv_os_fd_t fd = -1;
  if (side->write_queue_size == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(side), &fd) == 0) {
    if (::shutdown(fd, SHUT_WR) != 0) {
      closeConn(c, true);
    } else if (c->clientEof && c->backendEof && c->pendingShutdowns == 0) {
      closeConn(c, false);
    }
    return;
  }
  uv_shutdown_t* req = side == &c->client ? &c->shutClient : &c->shutBackend;
  req->data = c;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(side), onShutdown) == 0) {
    ++c->pendingShutdowns;
  } else {
    closeConn(c, false);
  }
}

// Runs at the end of the loop iteration in which a side hit EOF.
void propagateEof(TcpConn* c) {
  if (c->phase != Phase::kEstablished) return;
  if (c->clientEof && c->backendEof && c->pendingShutdowns == 0 && c->client.write_queue_size == 0 &&
      c->backend.write_queue_size == 0) {
    // Both directions are finished and everything written is in the kernel:
    // close() sends the FINs, no shutdown() needed. Both receive queues were
    // read up to EOF, so close() sends no RST.
    closeConn(c, false);
    return;
  }
  if (c->clientEof && !c->backendShut) {
    c->backendShut = true;
    shutdownSide(c, &c->backend);
  }
  if (c->phase == Phase::kEstablished && c->backendEof && !c->clientShut) {
    c->clientShut = true;
    shutdownSide(c, &c->client);
  }
}

void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<TcpConn*>(s->data);
  Chunk* chunk = buf->base != nullptr ? chunkOf(buf->base) : nullptr;
  bool fromClient = s == reinterpret_cast<uv_stream_t*>(&c->client);
  if (nread <= 0 || c->phase != Phase::kEstablished) {
    if (chunk != nullptr) c->l->w->pool().put(chunk);
    if (nread == 0 || c->phase != Phase::kEstablished) return;
    if (nread == UV_EOF) {
      uv_read_stop(s);
      (fromClient ? c->clientEof : c->backendEof) = true;
      c->l->w->queueShutdown(c);
      return;
    }
    closeConn(c, true);  // reset or error: propagate as a reset
    return;
  }
  c->lastActivity = uv_now(s->loop);
  uv_tcp_t* dst = fromClient ? &c->backend : &c->client;
  if (fromClient) {
    c->be->bytesIn.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
  } else {
    c->be->bytesOut.fetch_add(static_cast<uint64_t>(nread), std::memory_order_relaxed);
  }
  if (!forward(c, dst, chunk, static_cast<size_t>(nread))) return;
  if (dst->write_queue_size > kMaxWriteQueue) {
    uv_read_stop(s);
    (fromClient ? c->clientPaused : c->backendPaused) = true;
  }
}

void onTimer(uv_timer_t* t);

void armIdle(TcpConn* c, uint64_t ms) { uv_timer_start(&c->timer, onTimer, ms, 0); }

void sendProxyHeader(TcpConn* c) {
  sockaddr_storage peer{}, local{};
  int plen = sizeof peer, llen = sizeof local;
  if (uv_tcp_getpeername(&c->client, reinterpret_cast<sockaddr*>(&peer), &plen) != 0 ||
      uv_tcp_getsockname(&c->client, reinterpret_cast<sockaddr*>(&local), &llen) != 0) {
    peer.ss_family = AF_UNSPEC;
    local.ss_family = AF_UNSPEC;
  }
  std::string header = buildProxyHeader(c->l->shared->config.proxyProtocol, reinterpret_cast<sockaddr*>(&peer),
                                        reinterpret_cast<sockaddr*>(&local));
  Chunk* chunk = c->l->w->pool().get();
  std::memcpy(chunk->data, header.data(), header.size());
  (void)forward(c, &c->backend, chunk, header.size());
}

// Returns false when the connection was closed.
bool readClientNow(TcpConn* c) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->client), &fd) != 0) return true;
  Chunk* chunk = c->l->w->pool().get();
  ssize_t n = ::read(fd, chunk->data, kBufSize);
  if (n > 0) {
    c->be->bytesIn.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    return forward(c, &c->backend, chunk, static_cast<size_t>(n));
  }
  int err = errno;
  c->l->w->pool().put(chunk);
  if (n == 0) {
    c->clientEof = true;
    c->l->w->queueShutdown(c);
    return true;
  }
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return true;
  closeConn(c, true);  // reset or error: propagate as a reset
  return false;
}

void onEstablished(TcpConn* c) {
  c->phase = Phase::kEstablished;
  uv_timer_stop(&c->timer);
  c->be->onConnectSuccess();
  c->be->connections.fetch_add(1, std::memory_order_relaxed);
  c->be->active.fetch_add(1, std::memory_order_relaxed);
  c->counted = true;
  uv_tcp_nodelay(&c->backend, 1);
  c->lastActivity = uv_now(c->l->w->loop());
  if (c->l->shared->config.proxyProtocol != 0) {
    sendProxyHeader(c);
    if (c->phase != Phase::kEstablished) return;
  }
  // The client is read only now: until a backend answered, the kernel's socket
  // buffer holds its bytes, so a retry on another backend loses nothing.
  // Usually the request is already there: read it now rather than one loop
  // iteration later (costs one EAGAIN read when the server speaks first).
  if (!readClientNow(c)) return;
  if (!c->clientEof) startReading(&c->client);
  auto idle = c->l->shared->config.idleTimeout.count();
  if (idle > 0) armIdle(c, static_cast<uint64_t>(idle));
}

void onBackendClosedForRetry(uv_handle_t* h) {
  auto* c = static_cast<TcpConn*>(h->data);
  if (c->phase == Phase::kClosing) {
    onConnHandleClosed(h);  // the client went away meanwhile: the usual teardown
    return;
  }
  c->backendOpen = false;
  --c->openHandles;
  startConnect(c);
}

void connectFailed(TcpConn* c) {
  c->be->onConnectFailure();
  log::debug(kLog, c->l->shared->config.name, ": connect to ", c->be->backend.id, " failed; trying the next");
  c->tried.push_back(c->be.get());
  c->phase = Phase::kRetrying;
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->backend), onBackendClosedForRetry);
}

void onConnect(uv_connect_t* req, int status) {
  auto* c = static_cast<TcpConn*>(req->data);
  if (c->phase != Phase::kConnecting) return;  // cancelled by a timeout or a close
  if (status < 0) {
    connectFailed(c);
    return;
  }
  onEstablished(c);
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
    closeConn(c, false);
  } else {
    armIdle(c, idle - elapsed);
  }
}

void startConnect(TcpConn* c) {
  c->be = pickBackend(c->l, c->tried);
  if (!c->be) {
    failClient(c);
    return;
  }
  c->phase = Phase::kConnecting;
  uv_tcp_init(c->l->w->loop(), &c->backend);
  c->backend.data = c;
  c->backendOpen = true;
  ++c->openHandles;
  c->connectReq.data = c;
  int r = uv_tcp_connect(&c->connectReq, &c->backend, reinterpret_cast<const sockaddr*>(&c->be->addr), onConnect);
  if (r < 0) {
    connectFailed(c);
    return;
  }
  // Reading starts with the connect, so the socket is registered with epoll
  // once (IN|OUT) instead of ADD, then ADD/EEXIST/MOD when established. libuv
  // finishes the connect before it reads; onRead ignores everything until
  // the connection is established.
  startReading(&c->backend);
  uv_timer_start(&c->timer, onTimer, static_cast<uint64_t>(c->l->shared->config.connectTimeout.count()), 0);
}

void onAccept(uv_stream_t* server, int status) {
  auto* l = static_cast<ListenerRt*>(server->data);
  if (status < 0) {
    l->shared->acceptErrors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (l->closing) return;
  TcpConn* c = l->w->newConn();
  c->l = l;
  linkConn(l, c);
  uv_tcp_init(l->w->loop(), &c->client);
  c->client.data = c;
  uv_timer_init(l->w->loop(), &c->timer);
  c->timer.data = c;
  c->openHandles = 2;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->client)) != 0) {
    l->shared->acceptErrors.fetch_add(1, std::memory_order_relaxed);
    closeConn(c, false);
    return;
  }
  // TCP_NODELAY is inherited from the listening socket (set in bindSocket).
  startConnect(c);
}

void Worker::flushShutdowns() {
  if (shutQueue_.empty()) return;
  shutBatch_.swap(shutQueue_);
  for (TcpConn* c : shutBatch_) {
    if (c == nullptr) continue;
    c->shutQueued = false;
    propagateEof(c);
  }
  shutBatch_.clear();
}

// ---- UDP -----------------------------------------------------------------

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
    auto be = pickBackend(l, none);
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

// ---- listeners -----------------------------------------------------------

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
    uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), onListenerHandleClosed);
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
    uv_tcp_init(w->loop(), &l->tcp);
    l->tcp.data = l;
    l->openHandles = 1;
    r = uv_tcp_open(&l->tcp, fd);
    if (r != 0) ::close(fd);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), kBacklog, onAccept);
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

}  // namespace

// ---- Proxy ---------------------------------------------------------------

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

Status Proxy::addListener(const ListenerConfig& config) {
  std::lock_guard lock(impl_->mu);
  if (impl_->listeners.count(config.name) != 0) {
    return Error::msg("listener " + config.name + " already exists", EEXIST);
  }
  if (config.proxyProtocol < 0 || config.proxyProtocol > 2) {
    return Error::msg("proxy protocol must be 0, 1 or 2", EINVAL);
  }
  auto addr = parseAddr(config.bindHost, config.port);
  if (!addr) return Error::msg("listener " + config.name + ": bind address " + addr.error().message, EINVAL);
  const char* proto = config.udp ? "udp" : "tcp";
  auto inUse = [&](uint16_t port, const Error& e) -> Error {
    if (e.code == EADDRINUSE) {
      return Error::msg("port " + std::to_string(port) + "/" + proto + " is already in use" +
                            describePortOwner(port, config.udp),
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
  auto next = std::make_shared<Snapshot>();
  std::lock_guard lock(shared->mu);
  for (auto& b : backends) {
    std::shared_ptr<BackendState> state;
    for (const auto& old : shared->snapshot->backends) {
      if (old->backend.id == b.id && old->backend.host == b.host && old->backend.port == b.port) state = old;
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
  shared->snapshot = std::move(next);
  shared->version.fetch_add(1, std::memory_order_release);
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
  }
  if (!target) return;
  target->draining.store(true, std::memory_order_relaxed);
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
    std::shared_ptr<const Snapshot> snap;
    {
      std::lock_guard l(shared->mu);
      snap = shared->snapshot;
    }
    for (const auto& b : snap->backends) {
      ls.backends.push_back(BackendStats{b->backend.id, b->connections.load(), b->active.load(), b->bytesIn.load(),
                                         b->bytesOut.load(), b->connectErrors.load()});
    }
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
