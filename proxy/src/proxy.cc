// The libuv side of the proxy: loops, listeners, TCP connections, UDP flows.
// See the design note in skiff/proxy/proxy.h.

#include "skiff/proxy/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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
// Zero-copy forwarding (splice through a pipe) starts for a direction once a
// read fills a whole buffer: a bulk transfer, not a request/response exchange
// (whose small reads gain nothing from a pipe and would pay for one).
constexpr int kPipeSize = 256 * 1024;
constexpr size_t kMaxPooledPipes = 32;

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct BackendState {
  Backend backend;
  sockaddr_storage addr{};
  std::atomic<uint64_t> connections{0}, active{0}, bytesIn{0}, bytesOut{0}, connectErrors{0};
  // Draining, and a mirror of health.ejectedUntil() for the lock-free pick.
  BackendGate gate;
  std::atomic<int> failures{0};
  std::mutex healthMu;
  HealthState health;

  void onConnectFailure() {
    connectErrors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(healthMu);
    health.onFailure(Clock::now());
    failures.store(health.consecutiveFailures(), std::memory_order_relaxed);
    gate.ejectedUntilNs.store(health.ejectedUntil().time_since_epoch().count() == 0
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
    gate.ejectedUntilNs.store(0, std::memory_order_relaxed);
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
  std::atomic<uint64_t> acceptErrors{0}, failedClients{0}, splicedBytes{0};
};

class Worker;
struct ListenerRt;

// A read buffer. Returned to the loop's pool once written.
struct Chunk {
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

// A pipe that moves one direction of a bulk connection without copying:
// splice(socket -> pipe), then splice(pipe -> socket). Empty pipes are kept
// for the next bulk connection; one with bytes left in it is closed.
struct Pipe {
  int r = -1, w = -1;
  explicit operator bool() const { return r >= 0; }
};

class PipePool {
 public:
  ~PipePool() {
    for (Pipe& p : free_) closePipe(p);
  }
  // An empty pipe, or none when pipes cannot be made (fd limit): the caller
  // then keeps copying.
  Pipe get() {
    if (!free_.empty()) {
      Pipe p = free_.back();
      free_.pop_back();
      return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    // A larger pipe halves the splice calls per MiB; the default (64 KiB)
    // stays when the system's pipe-max-size or pipe-user-pages refuse it.
    (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);
    return Pipe{fds[0], fds[1]};
  }
  void put(Pipe p, bool empty) {
    if (empty && free_.size() < kMaxPooledPipes) {
      free_.push_back(p);
    } else {
      closePipe(p);
    }
  }

 private:
  static void closePipe(Pipe& p) {
    ::close(p.r);
    ::close(p.w);
    p = {};
  }
  std::vector<Pipe> free_;
};

// TCP sockets bypass libuv's streams: each worker owns one edge-triggered
// epoll set and blocks on it (see Worker::run). A socket is registered
// once (IN|OUT|RDHUP, edge-triggered) and never touched with epoll_ctl again;
// close() removes it. That saves the per-connection epoll_ctl churn, the
// SO_ERROR read after connect and the extra read() to see EOF that libuv
// streams cost (96% of the proxy's CPU is in the kernel).
//
// Event tags are {generation, slot, side} rather than pointers: a socket whose
// fd was duplicated by a fork (netd starts replicas) stays registered after
// our close(), and its late events must not reach a recycled connection.
constexpr uint32_t kEpollEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr uint64_t kListenerTag = 1ull << 63;
constexpr uint64_t kLoopTag = ~0ull;  // libuv's own epoll fd
constexpr int kMaxEvents = 256;
constexpr int kMaxReadsPerWake = 16;    // then yield to other sockets (1 MiB)
constexpr int kMaxAcceptsPerWake = 64;  // then yield, resume next iteration

enum class Phase { kConnecting, kEstablished, kClosing };

struct PendingWrite {
  Chunk* chunk;
  uint32_t off, len;
};

struct TcpConn;

struct Side {
  TcpConn* c = nullptr;
  int fd = -1;
  uint32_t gen = 0;    // bumped whenever fd changes (see kListenerTag note)
  uint32_t flags = 0;  // epoll events seen so far (RDHUP/ERR/HUP are sticky)
  bool eof = false, paused = false, shut = false, readQueued = false;
  bool corked = false;  // last bytes sent with MSG_MORE: the shutdown must not wait
  std::vector<PendingWrite> q;  // bytes the kernel did not take yet
  size_t qHead = 0;
  // Bytes waiting to be written to this side: in q, or in the pipe once the
  // direction towards this side is spliced (then q stays empty).
  size_t queued = 0;
  Pipe pipe;
};

struct TcpConn {
  ListenerRt* l = nullptr;
  TcpConn* prev = nullptr;
  TcpConn* next = nullptr;
  uint32_t slot = 0;
  Side client, backend;
  uv_timer_t timer;
  std::shared_ptr<BackendState> be;
  std::vector<BackendState*> tried;
  Phase phase = Phase::kConnecting;
  bool counted = false;
  // EOF seen on one side: the other side is shut down (or, when both sides
  // are done, simply closed) at the end of this loop iteration; see
  // Worker::flushShutdowns.
  bool shutQueued = false;
  bool shutDelayed = false;  // the one-iteration grace below was used
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
  int fd = -1;  // TCP: listening socket in the worker's epoll set
  bool acceptQueued = false;
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
void onSideEvent(TcpConn* c, Side* s, uint32_t events);
void readSide(TcpConn* c, Side* s);
void acceptSome(ListenerRt* l);

// Work that did not fit one wake-up (a busy socket, a listener with a long
// backlog): resumed at the next loop iteration. Edge-triggered epoll would
// not report it again.
struct Deferred {
  TcpConn* c;  // nullptr: a listener
  Side* side;
  ListenerRt* l;
};

class Worker {
 public:
  Worker() = default;
  ~Worker() {
    for (TcpConn* c : slots_) delete c;
    if (epfd_ >= 0) ::close(epfd_);
    if (reserveFd_ >= 0) ::close(reserveFd_);
  }

  // Out of fds (EMFILE/ENFILE): the connection at the head of the backlog
  // would wait there until an fd frees up, and an edge-triggered listener
  // gets no new edge for it. The reserve fd is given up for a moment to
  // accept it and reset it at once, so the client learns instead of hanging
  // (libuv's and nginx's answer). False when no reserve fd is left.
  bool shedOne(int listenFd) {
    if (reserveFd_ < 0) return false;
    ::close(reserveFd_);
    int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      linger lg{1, 0};
      (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd);
    }
    reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    auto now = Clock::now();
    if (now - lastShedLog_ > std::chrono::seconds(10)) {
      lastShedLog_ = now;
      log::warn(kLog, "out of file descriptors: resetting new connections (raise the fd limit)");
    }
    return fd >= 0;
  }

  Status init() {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return Error::fromErrno("epoll_create1");
    reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int r = uv_loop_init(&loop_);
    if (r < 0) return Error::msg(std::string("uv_loop_init: ") + uv_strerror(r), -r);
    r = uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->runTasks(); });
    if (r < 0) {
      (void)uv_loop_close(&loop_);
      return Error::msg(std::string("uv_async_init: ") + uv_strerror(r), -r);
    }
    async_.data = this;
    // The thread blocks in epoll_wait on the socket set itself (a wake-up
    // straight from a socket keeps the scheduler's sync hint; through a nested
    // epoll it is lost, which cost 16% with two loops). libuv's own epoll fd
    // (async, UDP) is a member of that set, and libuv runs without blocking
    // only when it has something to do.
    epoll_event lev{};
    lev.events = EPOLLIN;
    lev.data.u64 = kLoopTag;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, uv_backend_fd(&loop_), &lev) != 0) {
      int err = errno;
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
      (void)uv_run(&loop_, UV_RUN_DEFAULT);
      (void)uv_loop_close(&loop_);
      return Error::fromErrno("epoll_ctl (loop fd)", err);
    }
    uv_idle_init(&loop_, &idle_);
    idle_.data = this;
    // The loop's data is its worker, so any callback can reach the buffer pool.
    loop_.data = this;
    thread_ = std::thread([this] {
      run();
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
      uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    });
    if (thread_.joinable()) thread_.join();
  }
  bool started() const { return thread_.joinable(); }

  uv_loop_t* loop() { return &loop_; }
  BufferPool& pool() { return pool_; }
  PipePool& pipes() { return pipes_; }

  // Registers a socket once for the rest of its life (edge-triggered).
  bool watch(int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = kEpollEvents;
    ev.data.u64 = tag;
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  bool watchListener(ListenerRt* l) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kListenerTag | reinterpret_cast<uintptr_t>(l);
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, l->fd, &ev) == 0;
  }
  // A listening fd may be shared with a forked child: remove it explicitly so
  // no event can name the deleted ListenerRt.
  void unwatch(int fd) { (void)::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }
  static uint64_t tagOf(const TcpConn* c, const Side* s) {
    return (static_cast<uint64_t>(s->gen & 0x7fffffffu) << 32) | (static_cast<uint64_t>(c->slot) << 1) |
           (s == &c->backend ? 1u : 0u);
  }

  // Connection objects live in a per-loop slab for the worker's lifetime: a
  // new connection per request costs no allocation, and a late event tagged
  // with a slot always lands on a valid object (then rejected by generation).
  TcpConn* newConn() {
    TcpConn* c = nullptr;
    if (freeSlots_.empty()) {
      c = new TcpConn;
      c->slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(c);
    } else {
      c = slots_[freeSlots_.back()];
      freeSlots_.pop_back();
    }
    c->client.c = c;
    c->backend.c = c;
    ++c->client.gen;
    return c;
  }
  void freeConn(TcpConn* c) {
    if (c->shutQueued) dropShutdown(c);
    for (Side* s : {&c->client, &c->backend}) {
      if (s->readQueued) dropDeferred(s);
    }
    auto tried = std::move(c->tried);
    tried.clear();
    auto cq = std::move(c->client.q), bq = std::move(c->backend.q);
    cq.clear();
    bq.clear();
    uint32_t slot = c->slot, cg = c->client.gen, bg = c->backend.gen;
    *c = TcpConn{};
    c->slot = slot;
    c->client.gen = cg + 1;  // late events for the old fds no longer match
    c->backend.gen = bg + 1;
    c->tried = std::move(tried);
    c->client.q = std::move(cq);
    c->backend.q = std::move(bq);
    freeSlots_.push_back(slot);
  }

  void defer(TcpConn* c, Side* s) {
    s->readQueued = true;
    deferred_.push_back(Deferred{c, s, nullptr});
    startIdle();
  }
  void deferAccept(ListenerRt* l) {
    l->acceptQueued = true;
    deferred_.push_back(Deferred{nullptr, nullptr, l});
    startIdle();
  }
  // An active idle handle makes the loop poll without blocking.
  void startIdle() {
    if (!stopping_) uv_idle_start(&idle_, [](uv_idle_t* h) { static_cast<Worker*>(h->data)->runDeferred(); });
  }
  void dropDeferredListener(ListenerRt* l) {
    for (auto* q : {&deferred_, &deferredBatch_}) {
      for (auto& d : *q) {
        if (d.l == l) d.l = nullptr;
      }
    }
    l->acceptQueued = false;
  }

  // Half-close propagation is deferred to the end of the loop iteration (after
  // the epoll batch, see run()): with a new connection per request both EOFs usually arrive
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

  // The loop: one epoll_wait on the socket set per iteration, with libuv's
  // timeout; libuv runs (timers, async tasks, UDP, close callbacks, idle)
  // only when its fd is ready or it has due work. Connections closed while
  // dispatching are freed in libuv's close phase, after the batch.
  void run() {
    epoll_event evs[kMaxEvents];
    while (uv_loop_alive(&loop_) != 0) {
      uv_update_time(&loop_);
      int n = ::epoll_wait(epfd_, evs, kMaxEvents, uv_backend_timeout(&loop_));
      bool runLoop = n <= 0;  // timed out (a timer is due) or interrupted
      for (int i = 0; i < n; ++i) {
        uint64_t tag = evs[i].data.u64;
        if (tag == kLoopTag) {
          runLoop = true;
          continue;
        }
        if ((tag & kListenerTag) != 0) {
          auto* l = reinterpret_cast<ListenerRt*>(static_cast<uintptr_t>(tag & ~kListenerTag));
          if (!l->acceptQueued) acceptSome(l);
          continue;
        }
        uint32_t slot = static_cast<uint32_t>(tag) >> 1;
        if (slot >= slots_.size()) continue;
        TcpConn* c = slots_[slot];
        Side* s = (tag & 1u) != 0 ? &c->backend : &c->client;
        if ((s->gen & 0x7fffffffu) != static_cast<uint32_t>(tag >> 32)) continue;  // a closed socket
        onSideEvent(c, s, evs[i].events);
      }
      flushShutdowns();
      uv_update_time(&loop_);
      if (runLoop || uv_backend_timeout(&loop_) == 0) (void)uv_run(&loop_, UV_RUN_NOWAIT);
    }
  }

  void runDeferred() {
    deferredBatch_.swap(deferred_);
    for (const Deferred& d : deferredBatch_) {
      if (d.c != nullptr) {
        if (!d.side->readQueued) continue;
        d.side->readQueued = false;
        readSide(d.c, d.side);
      } else if (d.l != nullptr) {
        d.l->acceptQueued = false;
        acceptSome(d.l);
      }
    }
    deferredBatch_.clear();
    if (deferred_.empty() && shutQueue_.empty()) uv_idle_stop(&idle_);
  }

  void dropDeferred(Side* s) {
    s->readQueued = false;  // runDeferred skips entries whose flag is clear
    for (auto* q : {&deferred_, &deferredBatch_}) {
      auto it = std::find_if(q->begin(), q->end(), [s](const Deferred& d) { return d.side == s; });
      if (it != q->end()) it->c = nullptr, it->side = nullptr;
    }
  }

  void dropShutdown(TcpConn* c) {
    c->shutQueued = false;
    for (auto* q : {&shutQueue_, &shutBatch_}) {
      auto it = std::find(q->begin(), q->end(), c);
      if (it != q->end()) *it = nullptr;
    }
  }

  int epfd_ = -1;
  int reserveFd_ = -1;
  Clock::time_point lastShedLog_{};
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_idle_t idle_{};
  std::vector<TcpConn*> shutQueue_, shutBatch_;
  std::vector<Deferred> deferred_, deferredBatch_;
  std::vector<TcpConn*> slots_;
  std::vector<uint32_t> freeSlots_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  BufferPool pool_;
  PipePool pipes_;
  std::map<std::string, ListenerRt*> listeners_;
  std::unordered_set<DrainTimer*> drains_;
  bool stopping_ = false;
};

// ---- picking -------------------------------------------------------------

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
  if (reset) {
    // A zero linger makes close() send RST: the peer learns of the reset.
    linger lg{1, 0};
    (void)::setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  // close() also drops the socket from the epoll set (no EPOLL_CTL_DEL).
  ::close(s->fd);
  s->fd = -1;
  ++s->gen;
}

void closeConn(TcpConn* c, bool reset) {
  if (c->phase == Phase::kClosing) return;
  c->phase = Phase::kClosing;
  releaseSide(c, &c->client, reset);
  releaseSide(c, &c->backend, reset);
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), onConnTimerClosed);
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
      closeConn(c, true);
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
    closeConn(c, true);  // m == 0 cannot happen with bytes in the pipe
    return false;
  }
  return true;
}

// The spliced form of readSide: socket -> pipe -> socket, the bytes never
// cross into user space. The pipe is emptied into dst before every splice
// from s, so an EAGAIN from s always means s is drained (with bytes left in
// the pipe, EAGAIN could also mean a full pipe). A dst that cannot take the
// whole pipe pauses s until EPOLLOUT drains it (flushSide).
void spliceSide(TcpConn* c, Side* s, Side* dst) {
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    if (c->phase != Phase::kEstablished || s->eof) return;
    if (dst->queued > 0) {
      if (!flushPipe(c, dst)) return;
      if (dst->queued > 0) {
        s->paused = true;
        return;
      }
    }
    ssize_t n = ::splice(s->fd, nullptr, dst->pipe.w, nullptr, kPipeSize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      dst->queued += static_cast<size_t>(n);
      countBytes(c, s, static_cast<size_t>(n));
      c->l->shared->splicedBytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      continue;
    }
    if (n == 0) {
      onEof(c, s);
      return;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR) continue;
    closeConn(c, true);  // reset or error: propagate as a reset
    return;
  }
  if (dst->queued > 0 && !flushPipe(c, dst)) return;
  if (dst->queued > 0) {
    s->paused = true;
    return;
  }
  workerOf(c)->defer(c, s);  // budget used up; more is probably waiting
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
  for (int i = 0; i < kMaxReadsPerWake; ++i) {
    if (c->phase != Phase::kEstablished || s->eof) return;
    if (dst->pipe) {
      spliceSide(c, s, dst);
      return;
    }
    if (dst->queued > kMaxWriteQueue) {
      s->paused = true;  // resumed by flushSide once dst has drained
      return;
    }
    Chunk* chunk = w->pool().get();
    ssize_t n = ::read(s->fd, chunk->data, kBufSize);
    if (n > 0) {
      countBytes(c, s, static_cast<size_t>(n));
      bool last = static_cast<size_t>(n) < kBufSize && (s->flags & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) == EPOLLRDHUP;
      if (!forward(c, dst, chunk, static_cast<size_t>(n), last)) return;
      if (static_cast<size_t>(n) < kBufSize && (s->flags & (EPOLLERR | EPOLLHUP)) == 0) {
        // Drained. With RDHUP seen, everything before the FIN has been read.
        if ((s->flags & EPOLLRDHUP) != 0) onEof(c, s);
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
    closeConn(c, true);  // reset or error: propagate as a reset
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
      closeConn(c, true);
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
  c->be->onConnectSuccess();
  c->be->connections.fetch_add(1, std::memory_order_relaxed);
  c->be->active.fetch_add(1, std::memory_order_relaxed);
  c->counted = true;
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
  log::debug(kLog, c->l->shared->config.name, ": connect to ", c->be->backend.id, " failed; trying the next");
  c->tried.push_back(c->be.get());
  uv_timer_stop(&c->timer);
  releaseSide(c, &c->backend, false);
  startConnect(c);
}

void onSideEvent(TcpConn* c, Side* s, uint32_t events) {
  if (c->phase == Phase::kClosing) return;
  s->flags |= events;
  if (c->phase == Phase::kConnecting) {
    // Client events wait (recorded in flags) until the backend answers.
    if (s != &c->backend) return;
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
      int err = 0;
      socklen_t len = sizeof err;
      (void)::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
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
        closeConn(c, true);
        break;
      }
    }
  }
  shutBatch_.clear();
  // Delayed ones: the next iteration must not block in epoll_wait.
  if (!shutQueue_.empty()) startIdle();
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

}  // namespace

// ---- Proxy ---------------------------------------------------------------

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
