// Worker: one loop thread. It blocks in epoll_wait on its own socket set
// (libuv's fd inside it), dispatches socket events to tcp.cc, runs libuv
// (timers, async tasks, UDP) when due, and owns the per-loop pools, the
// connection slab, deferred work and drain timers.

#include "worker.h"

#include <fcntl.h>

#include <future>

#include "skiff/common/log.h"

namespace skiff::proxy::detail {

Worker::~Worker() {
  for (TcpConn* c : slots_) delete c;
  if (epfd_ >= 0) ::close(epfd_);
  if (reserveFd_ >= 0) ::close(reserveFd_);
}

bool Worker::shedOne(int listenFd) {
  // Another thread may have taken the fd we gave up last time: try again.
  if (reserveFd_ < 0) openReserve();
  if (reserveFd_ < 0) return false;
  ::close(reserveFd_);
  int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) {
    resetOnClose(fd);
    ::close(fd);
  }
  openReserve();
  auto now = Clock::now();
  if (now - lastShedLog_ > std::chrono::seconds(10)) {
    lastShedLog_ = now;
    log::warn(kLog, "out of file descriptors: resetting new connections (raise the fd limit)");
  }
  return fd >= 0;
}

Status Worker::init() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) return Error::fromErrno("epoll_create1");
  openReserve();
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

void Worker::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uv_async_send(&async_);
}

void Worker::runSync(const std::function<void()>& fn) {
  std::promise<void> done;
  post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void Worker::stop() {
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

TcpConn* Worker::newConn() {
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

void Worker::freeConn(TcpConn* c) {
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

void Worker::dropDeferredListener(ListenerRt* l) {
  for (auto* q : {&deferred_, &deferredBatch_}) {
    for (auto& d : *q) {
      if (d.l == l) d.l = nullptr;
    }
  }
  l->acceptQueued = false;
}

void Worker::addDrain(const std::string& listener, std::shared_ptr<BackendState> target,
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

void Worker::finishDrain(DrainTimer* d) {
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
  uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), [](uv_handle_t* h) { delete static_cast<DrainTimer*>(h->data); });
}

void Worker::runTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& t : tasks) t();
}

void Worker::run() {
  epoll_event evs[kMaxEvents];
  while (uv_loop_alive(&loop_) != 0) {
    uv_update_time(&loop_);
    int n = ::epoll_wait(epfd_, evs, kMaxEvents, uv_backend_timeout(&loop_));
    // The events below arm timers (connect and idle timeouts) and stamp
    // activity with uv_now(): they must start from the time of the wake-up,
    // not from before a wait that may have lasted seconds (a stale clock made
    // the first connect after a pause "time out" at once and ejected a
    // healthy backend, and closed connections that had just been active).
    uv_update_time(&loop_);
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
    uv_update_time(&loop_);  // the batch took time too: timers due by now run below
    if (runLoop || uv_backend_timeout(&loop_) == 0) (void)uv_run(&loop_, UV_RUN_NOWAIT);
  }
}

void Worker::runDeferred() {
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

void Worker::dropDeferred(Side* s) {
  s->readQueued = false;  // runDeferred skips entries whose flag is clear
  for (auto* q : {&deferred_, &deferredBatch_}) {
    auto it = std::find_if(q->begin(), q->end(), [s](const Deferred& d) { return d.side == s; });
    if (it != q->end()) it->c = nullptr, it->side = nullptr;
  }
}

void Worker::dropShutdown(TcpConn* c) {
  c->shutQueued = false;
  for (auto* q : {&shutQueue_, &shutBatch_}) {
    auto it = std::find(q->begin(), q->end(), c);
    if (it != q->end()) *it = nullptr;
  }
}

}  // namespace skiff::proxy::detail
