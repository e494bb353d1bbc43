#pragma once
// Internal to skiff_proxy (not installed): one Worker per loop thread and the
// state it shares with the TCP data path (tcp.cc), UDP flows (udp.cc) and
// listeners (listener.cc); proxy.cc is the public face. Unless a comment says
// otherwise, everything here runs on the owning worker's loop thread.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "skiff/common/fd.h"
#include "skiff/common/result.h"
#include "skiff/proxy/balancing.h"
#include "skiff/proxy/proxy.h"

namespace skiff::proxy::detail {

constexpr const char* kLog = "proxy";
constexpr size_t kBufSize = 64 * 1024;
// A side whose peer has more than this queued for writing stops being read.
constexpr size_t kMaxWriteQueue = 1024 * 1024;
constexpr size_t kMaxPooledChunks = 256;
constexpr int kBacklog = 4096;
constexpr std::chrono::milliseconds kDefaultUdpIdle{60000};
// Zero-copy forwarding (splice through a pipe) starts for a direction once a
// read fills a whole buffer: a bulk transfer, not a request/response exchange
// (whose small reads gain nothing from a pipe and would pay for one).
constexpr int kPipeSize = 256 * 1024;
constexpr size_t kMaxPooledPipes = 32;

// A zero linger makes the next close() of fd send RST instead of FIN.
inline void resetOnClose(int fd) {
  linger lg{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

inline int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct BackendState {
  Backend backend;
  sockaddr_storage addr{};
  std::atomic<uint64_t> connections{0}, active{0}, bytesIn{0}, bytesOut{0}, connectErrors{0};
  std::atomic<uint64_t> connectRetries{0};
  // Connections (UDP: flows) closed by the idle timeout, and TCP connections
  // that ended in a reset or socket error from the client's or the backend's side.
  std::atomic<uint64_t> idleTimeouts{0}, clientResets{0}, backendResets{0};
  // The connect duration histogram (see Proxy::kConnectBucketBoundsNs): one
  // relaxed increment per bucket hit and one add to the sum per connect.
  std::array<std::atomic<uint64_t>, Proxy::kConnectBucketBoundsNs.size() + 1> connectBuckets{};
  std::atomic<uint64_t> connectSumNs{0};

  void onConnectTime(int64_t ns) {
    if (ns < 0) ns = 0;
    connectBuckets[bucketOf(Proxy::kConnectBucketBoundsNs, ns)].fetch_add(1, std::memory_order_relaxed);
    connectSumNs.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
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
    gate.ejectedUntilNs.store(
        health.ejectedUntil().time_since_epoch().count() == 0
            ? 0
            : std::chrono::duration_cast<std::chrono::nanoseconds>(health.ejectedUntil().time_since_epoch()).count(),
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
  // Backends that left the snapshot (a drained replica of a service whose
  // port another took over, say): stats keep reporting those with open
  // connections, and forget one once nothing else holds it. Guarded by mu.
  std::vector<std::shared_ptr<BackendState>> retired;
  std::atomic<uint64_t> version{1};
  std::atomic<uint64_t> acceptErrors{0}, failedClients{0}, splicedBytes{0};
  std::atomic<uint64_t> udpFlowsRefused{0}, localErrors{0};
  // UDP: the open flows of every loop against config.maxUdpFlows.
  std::unique_ptr<FlowLimit> udpFlows;
};

class Worker;
struct ListenerRt;

// A read buffer. Returned to the loop's pool once written.
struct Chunk {
  char data[kBufSize];
};
inline Chunk* chunkOf(char* base) { return reinterpret_cast<Chunk*>(base - offsetof(Chunk, data)); }

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
// EPOLLPRI: urgent data, which a spliced direction must read by copying.
constexpr uint32_t kEpollEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
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
  bool corked = false;          // last bytes sent with MSG_MORE: the shutdown must not wait
  bool resetSeen = false;       // the peer reset: its EOF is passed on as a reset
  bool urgent = false;          // urgent (out-of-band) data arrived: stop splicing
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
  int64_t connectStartNs = 0;  // nowNs() at the current backend's connect()
  bool counted = false;        // in be->active: from the connect on (see startConnect)
  // EOF seen on one side: the other side is shut down (or, when both sides
  // are done, simply closed) at the end of this loop iteration; see
  // Worker::flushShutdowns.
  bool shutQueued = false;
  bool shutDelayed = false;   // the one-iteration grace below was used
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
  // Rate limits for the warnings of a full flow table and of local failures
  // (a flood must not become a flood of log lines).
  Clock::time_point lastFullLog{}, lastLocalErrorLog{};
  std::function<void()> onClosed;
};

struct DrainTimer {
  uv_timer_t timer;
  Worker* w = nullptr;
  std::string listener;
  std::shared_ptr<BackendState> target;
};

// Work that did not fit one wake-up (a busy socket, a listener with a long
// backlog): resumed at the next loop iteration. Edge-triggered epoll would
// not report it again.
struct Deferred {
  TcpConn* c;  // nullptr: a listener
  Side* side;
  ListenerRt* l;
};

// One loop thread. post(), runSync(), stop() and started() may be called from
// any other thread; everything else runs on the loop thread.
class Worker {
 public:
  Worker() = default;
  ~Worker();

  // Out of fds (EMFILE/ENFILE): the connection at the head of the backlog
  // would wait there until an fd frees up, and an edge-triggered listener
  // gets no new edge for it. The reserve fd is given up for a moment to
  // accept it and reset it at once, so the client learns instead of hanging
  // (libuv's and nginx's answer). False when no reserve fd is left.
  bool shedOne(int listenFd);

  Status init();

  void post(std::function<void()> task);

  // Runs fn on the loop thread and waits for it.
  void runSync(const std::function<void()>& fn);

  void stop();
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
  TcpConn* newConn();
  void freeConn(TcpConn* c);

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
  void dropDeferredListener(ListenerRt* l);

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

  void addDrain(const std::string& listener, std::shared_ptr<BackendState> target, std::chrono::milliseconds grace);

  void finishDrain(DrainTimer* d);

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
  void runTasks();

  // The loop: one epoll_wait on the socket set per iteration, with libuv's
  // timeout; libuv runs (timers, async tasks, UDP, close callbacks, idle)
  // only when its fd is ready or it has due work. Connections closed while
  // dispatching are freed in libuv's close phase, after the batch.
  void run();

  void runDeferred();

  void dropDeferred(Side* s);

  void dropShutdown(TcpConn* c);
  void openReserve() { reserveFd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

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

// ---- tcp.cc ----
void acceptSome(ListenerRt* l);  // a listener's backlog, bounded per wake-up
void onSideEvent(TcpConn* c, Side* s, uint32_t events);
void readSide(TcpConn* c, Side* s);
void closeConn(TcpConn* c, bool reset);  // reset: RST both sides
Side* peerOf(TcpConn* c, Side* s);
// ---- udp.cc ----
void udpAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
void onListenerRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned);
void onUdpTimer(uv_timer_t* t);
// ---- listener.cc ----
// The next backend for a new connection or flow of l (see pickBackend), or
// nullptr when none may take it.
std::shared_ptr<BackendState> nextBackend(ListenerRt* l, const std::vector<BackendState*>& tried);
// Opens a listener on the worker's loop around fd (takes ownership).
Status openListener(Worker* w, const std::shared_ptr<ListenerShared>& shared, int fd);
Result<sockaddr_storage> parseAddr(const std::string& host, uint16_t port);
Result<UniqueFd> bindSocket(const sockaddr_storage& addr, bool udp, bool reusePort);
uint16_t portOf(int fd);

}  // namespace skiff::proxy::detail
