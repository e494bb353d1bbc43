#pragma once
// Pure balancing logic of the proxy, kept apart from libuv and the kernel so
// it can be unit-tested with a fake clock:
//  - RoundRobin: strict round robin over a snapshot of N backends, shared by
//    every loop thread of a listener (one atomic counter, advanced with CAS to
//    just past the chosen backend so skipped backends do not make the next one
//    get two turns in a row).
//  - HealthState: passive health. A backend whose connects fail is ejected for
//    a back-off that doubles per consecutive failure (capped); a success
//    re-admits it and resets the back-off.
//  - BackendGate + pickBackend: which backends may take a new connection
//    (not draining, not ejected, not already tried by this connection), with
//    the fallback when every live one is ejected.
//  - FlowTable: UDP flows keyed by client address, expired after an idle time.
//    Touching a flow moves it to the back of an intrusive LRU list, so expiry
//    pops from the front in O(expired).
//  - FlowLimit: the bound on a UDP listener's open flows, shared by its loops.
//  - blamesBackend: which errors of a UDP flow say its backend is bad.
//  - bucketOf: the bucket of a histogram with fixed bounds a value falls in.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace skiff::proxy {

using Clock = std::chrono::steady_clock;

// The index of the first bound that value does not exceed (bounds ascending),
// or bounds.size() when it exceeds them all: the bucket of a histogram whose
// buckets are counted apart (not cumulatively), the last one unbounded.
template <typename Bounds>
size_t bucketOf(const Bounds& bounds, int64_t value) {
  size_t i = 0;
  while (i < bounds.size() && value > bounds[i]) ++i;
  return i;
}

// The counter may be shared with BPF programs, which add to it atomically:
// atomic_ref must be a real atomic instruction on it, never a lock.
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

class RoundRobin {
 public:
  // Returns the index of the next backend among n for which eligible(i) is
  // true, or nullopt when none is. Thread-safe; lock-free.
  template <typename Eligible>
  std::optional<size_t> pick(size_t n, Eligible&& eligible) {
    if (n == 0) return std::nullopt;
    std::atomic_ref<uint64_t> next(*counter_.load(std::memory_order_acquire));
    uint64_t cur = next.load(std::memory_order_relaxed);
    for (;;) {
      std::optional<size_t> chosen;
      size_t offset = 0;
      for (; offset < n; ++offset) {
        size_t i = static_cast<size_t>((cur + offset) % n);
        if (eligible(i)) {
          chosen = i;
          break;
        }
      }
      if (!chosen) return std::nullopt;
      if (next.compare_exchange_weak(cur, cur + offset + 1, std::memory_order_relaxed)) {
        return chosen;
      }
      // cur was reloaded by the failed CAS; another thread picked meanwhile.
    }
  }
  uint64_t position() const { return std::atomic_ref<uint64_t>(*counter_.load(std::memory_order_acquire)).load(); }
  // Takes turns from another counter from now on (the socket load
  // balancer's, which its programs advance by one per connect), so both
  // paths share one rotation; nullptr goes back to this one's own. The
  // counter must outlive its use here.
  void share(uint64_t* counter) { counter_.store(counter != nullptr ? counter : &own_, std::memory_order_release); }

 private:
  alignas(8) uint64_t own_ = 0;
  std::atomic<uint64_t*> counter_{&own_};
};

struct HealthPolicy {
  int failuresToEject = 1;  // a single failed connect already costs a retry
  std::chrono::milliseconds baseBackoff{1000};
  std::chrono::milliseconds maxBackoff{30000};
};

// Not thread-safe on its own; the proxy guards it with a per-backend mutex and
// mirrors ejectedUntil() into an atomic for the lock-free accept path.
class HealthState {
 public:
  explicit HealthState(HealthPolicy policy = {}) : policy_(policy) {}

  void onFailure(Clock::time_point now) {
    ++consecutiveFailures_;
    if (consecutiveFailures_ < policy_.failuresToEject) return;
    int doublings = consecutiveFailures_ - policy_.failuresToEject;
    auto backoff = policy_.baseBackoff;
    for (int i = 0; i < doublings && backoff < policy_.maxBackoff; ++i) backoff *= 2;
    if (backoff > policy_.maxBackoff) backoff = policy_.maxBackoff;
    ejectedUntil_ = now + backoff;
    ++ejections_;
  }
  void onSuccess() {
    consecutiveFailures_ = 0;
    ejectedUntil_ = Clock::time_point{};
  }
  bool ejected(Clock::time_point now) const { return now < ejectedUntil_; }
  Clock::time_point ejectedUntil() const { return ejectedUntil_; }
  int consecutiveFailures() const { return consecutiveFailures_; }
  uint64_t ejections() const { return ejections_; }

 private:
  HealthPolicy policy_;
  int consecutiveFailures_ = 0;
  uint64_t ejections_ = 0;
  Clock::time_point ejectedUntil_{};
};

// The admission state of one backend, read lock-free by every loop on each
// pick. Draining is final for this backend object (netd removes it after its
// connections finish); ejection ends at a time (nanoseconds on Clock, mirrored
// from HealthState by the proxy).
struct BackendGate {
  std::atomic<bool> draining{false};
  std::atomic<int64_t> ejectedUntilNs{0};

  bool isDraining() const { return draining.load(std::memory_order_relaxed); }
  bool ejected(int64_t nowNs) const { return ejectedUntilNs.load(std::memory_order_relaxed) > nowNs; }
};

// Picks the backend for a new connection among n: round robin over those
// neither draining nor ejected nor tried(i). When every live one is ejected,
// round robin over the ejected ones, since trying one beats refusing the client
// (a whole service restarting). A draining backend is never picked.
// gate(i) returns the BackendGate of backend i.
template <typename GateOf, typename Tried>
std::optional<size_t> pickBackend(RoundRobin& rr, size_t n, GateOf&& gate, Tried&& tried, int64_t nowNs) {
  auto idx = rr.pick(n, [&](size_t i) {
    const BackendGate& g = gate(i);
    return !g.isDraining() && !g.ejected(nowNs) && !tried(i);
  });
  if (idx) return idx;
  return rr.pick(n, [&](size_t i) { return !gate(i).isDraining() && !tried(i); });
}

// The open flows of one UDP listener, counted against a bound across all its
// loops: each loop keeps its own FlowTable, but one counter makes the bound
// exact per listener whichever loop the kernel's SO_REUSEPORT hash gives a
// source (a bound split per loop would refuse sources on a busy loop while
// another sits empty). One CAS per flow opened and one decrement per flow
// closed, never per datagram. Thread-safe; lock-free.
class FlowLimit {
 public:
  explicit FlowLimit(size_t max) : max_(max) {}
  // Takes a slot for a new flow; false at the bound (nothing taken).
  bool tryAcquire() {
    size_t n = open_.load(std::memory_order_relaxed);
    while (n < max_) {
      if (open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  void release() { open_.fetch_sub(1, std::memory_order_relaxed); }
  size_t open() const { return open_.load(std::memory_order_relaxed); }
  size_t max() const { return max_; }

 private:
  const size_t max_;
  std::atomic<size_t> open_{0};
};

// True when a UDP flow's error (a positive errno, from connect, send or
// receive on its connected socket) says the backend or the way to it is bad:
// an ICMP port or host unreachable came back, or there is no route to it.
// Everything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL, EAGAIN...)
// is this host's own shortage, and ejecting a healthy backend for it would
// turn a local hiccup into lost capacity.
inline bool blamesBackend(int err) {
  switch (err) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
      return true;
    default:
      return false;
  }
}

// Single-threaded (one per loop). Value is typically a pointer to a flow.
template <typename Key, typename Value, typename Hash = std::hash<Key>>
class FlowTable {
 public:
  explicit FlowTable(std::chrono::milliseconds idle) : idle_(idle) {}

  // Finds a flow and marks it active at now.
  Value* find(const Key& key, Clock::time_point now) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    it->second->lastActive = now;
    lru_.splice(lru_.end(), lru_, it->second);
    return &it->second->value;
  }
  // Marks an existing flow active without a lookup by key (backend replies).
  void touch(const Key& key, Clock::time_point now) { (void)find(key, now); }

  Value& insert(const Key& key, Value value, Clock::time_point now) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->value = std::move(value);
      it->second->lastActive = now;
      lru_.splice(lru_.end(), lru_, it->second);
      return it->second->value;
    }
    lru_.push_back(Entry{key, std::move(value), now});
    auto last = std::prev(lru_.end());
    index_.emplace(key, last);
    return last->value;
  }

  bool erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    lru_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Removes every flow idle for at least the idle time and returns them.
  std::vector<std::pair<Key, Value>> expire(Clock::time_point now) {
    std::vector<std::pair<Key, Value>> out;
    while (!lru_.empty() && now - lru_.front().lastActive >= idle_) {
      index_.erase(lru_.front().key);
      out.emplace_back(std::move(lru_.front().key), std::move(lru_.front().value));
      lru_.pop_front();
    }
    return out;
  }

  // Removes and returns everything (shutdown).
  std::vector<std::pair<Key, Value>> clear() {
    std::vector<std::pair<Key, Value>> out;
    for (auto& e : lru_) out.emplace_back(std::move(e.key), std::move(e.value));
    lru_.clear();
    index_.clear();
    return out;
  }

  // Visits every flow (oldest first); fn must not modify the table.
  template <typename Fn>
  void forEach(Fn&& fn) {
    for (auto& e : lru_) fn(e.key, e.value);
  }

  size_t size() const { return index_.size(); }
  std::chrono::milliseconds idle() const { return idle_; }

 private:
  struct Entry {
    Key key;
    Value value;
    Clock::time_point lastActive;
  };
  std::chrono::milliseconds idle_;
  std::list<Entry> lru_;
  std::unordered_map<Key, typename std::list<Entry>::iterator, Hash> index_;
};

}  // namespace skiff::proxy
