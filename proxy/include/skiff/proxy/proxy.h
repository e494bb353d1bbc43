#pragma once
// skiff::proxy — the routing-mesh L4 load balancer behind every published port.
//
// Design note. The proxy owns N libuv loops, one per thread. Each listener has
// one SO_REUSEPORT socket per loop, so the kernel spreads accepts over the
// loops and no accept path takes a lock. The backend set of a listener is an
// immutable snapshot swapped by setBackends(); a loop notices a new snapshot
// through a version counter (one atomic load per accept). Round robin is
// strict per listener across loops (one shared atomic counter).
//
// TCP: accept, connect to the picked backend (TCP_NODELAY both sides), and
// retry a failed connect (refused, timeout, unreachable) on the next backend
// before any byte is forwarded: the client is not read until a backend
// answered, so its bytes wait in the kernel and a retry loses nothing.
// Half-close is propagated with shutdown() (a source's last bytes go with
// MSG_MORE, so they share a segment with the FIN), resets with RST, a side
// whose peer's write queue is over a bound stops being read (backpressure),
// and an optional idle timeout closes both sides. A backend whose connects
// fail is ejected for a doubling back-off (passive health). Buffers come from
// a per-loop pool. A direction whose read fills a whole buffer (a bulk
// transfer) switches to splice() through a pipe from a per-loop pool, so its
// bytes never cross into user space. TCP sockets are raw fds in one
// edge-triggered epoll set per loop, which the loop thread blocks on (libuv's
// own epoll fd is a member): registered once, never modified, EOF taken from
// EPOLLRDHUP. libuv streams cost ~5 more syscalls per connection. Out of fds,
// a reserve fd lets the loop accept and reset the clients it cannot serve.
// UDP: a flow table per loop keyed by client address and port, each flow a
// connected socket to its backend; replies leave from the published port.
// Every flow holds an fd and a local port, so a listener holds at most
// maxUdpFlows of them: one atomic count over all its loops (exact whichever
// loop the SO_REUSEPORT hash gives a source, where a per-loop share would
// refuse on a busy loop beside an idle one). At the bound the datagram of a
// new source is dropped and counted, open flows go on; only flows already
// past their idle time are reaped early to make room, live ones are never
// evicted (a flood of spoofed sources would otherwise break them in turn).
// A backend is ejected only for errors that say it is bad (ICMP port/host
// unreachable, no route); this host's shortages (EMFILE, EADDRNOTAVAIL,
// ENOBUFS...) are counted as local errors and blame no one.
//
// Nothing on the data path throws or aborts; every handled error is counted.
//
// Files: src/worker.{h,cc} (a loop thread: epoll, pools, connection slab,
// deferred work, drains), src/tcp.cc, src/udp.cc, src/listener.cc (binding,
// picking), src/proxy.cc (this class); the pure parts are in balancing.h.
//
// Threads: every public method is thread-safe and may be called from any
// thread except the proxy's own loop threads (netd calls it from its loop).
// addListener/removeListener wait until every loop has applied the change.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::proxy {

struct Backend {
  std::string id;  // replica/container id, used as the metrics label
  std::string host;
  uint16_t port = 0;
  // A replica on this node: its main process (0 elsewhere). The proxy does
  // not use it; the kernel path in front of it (netd's KernelMesh) checks
  // the replica's socket in that process's network namespace.
  int pid = 0;
};

struct ListenerConfig {
  std::string name;  // e.g. "getstartedlab_web:4000/tcp"; also the metrics label
  std::string bindHost = "0.0.0.0";
  uint16_t port = 0;  // 0 = ephemeral (tests); see Proxy::boundPort
  bool udp = false;
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds idleTimeout{0};  // 0 = none (TCP); UDP flows default to 60s
  int proxyProtocol = 0;                     // 0 none, 1 v1, 2 v2 (TCP only)
  bool splice = true;                        // zero-copy forwarding of bulk transfers (TCP), see above
  // UDP: the most flows this listener holds at once, over all its loops (each
  // flow holds one fd and one local port). At the bound a datagram from a new
  // source is dropped and counted (udpFlowsRefused); existing flows go on.
  // Must be at least 1.
  size_t maxUdpFlows = 16384;
  // The backends it starts with, in place before it accepts anything (a
  // listener whose backends are known up front serves its first connection);
  // setBackends replaces them.
  std::vector<Backend> backends;
  // A round-robin counter to take turns from instead of the listener's own:
  // the socket load balancer's for this port (socklb's turns()), so a client
  // on the node and one from elsewhere share one rotation. Must outlive the
  // listener.
  uint64_t* sharedTurns = nullptr;
};

struct Options {
  unsigned threads = 0;  // 0 = number of cores
};

// Raises this process's soft RLIMIT_NOFILE to its hard limit (each proxied
// TCP connection holds two fds; the usual soft default of 1024 would cap a
// published port near 500 connections). Returns the soft limit before.
// Process-wide: mains call it once at start, before any thread exists.
uint64_t raiseFdLimit();

class Proxy {
 public:
  static Result<std::unique_ptr<Proxy>> start(const Options& options);
  ~Proxy();  // stops the loops and closes every listener and connection
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Binds one SO_REUSEPORT socket per loop. On EADDRINUSE the message reads
  // "port 4000/tcp is already in use by pid 1234 (nginx)" (owner when /proc
  // shows it). Fails when the name already exists.
  Status addListener(const ListenerConfig& config);
  // Closes the listener and all of its connections/flows.
  Status removeListener(const std::string& name);
  // Atomically swaps the backend snapshot. Backends keep their counters,
  // health and drain state across swaps when id, host and port are unchanged.
  // An unknown name is ignored (logged).
  void setBackends(const std::string& name, std::vector<Backend> backends);
  // The backend gets no new connections; its open ones may run up to grace,
  // then they are closed.
  void drainBackend(const std::string& name, const std::string& backendId, std::chrono::milliseconds grace);

  // Upper bounds (inclusive, nanoseconds) of the buckets of the TCP connect
  // duration histogram, 100 us to 2 s; one more bucket takes what is slower.
  static constexpr std::array<int64_t, 14> kConnectBucketBoundsNs{
      100'000,    250'000,    500'000,     1'000'000,   2'500'000,   5'000'000,     10'000'000,
      25'000'000, 50'000'000, 100'000'000, 250'000'000, 500'000'000, 1'000'000'000, 2'000'000'000};

  struct BackendStats {
    std::string id;
    // activeConnections counts a connection from its connect to the backend on, so
    // a drain that waits for 0 never stops a replica a connect is on its way to.
    uint64_t connections = 0, activeConnections = 0, bytesIn = 0, bytesOut = 0, connectErrors = 0;
    // TCP: connects to this backend that retried a client's failed connect to
    // another one (the retry itself may fail too).
    uint64_t connectRetries = 0;
    // Connections (UDP: flows) the idle timeout closed; TCP connections that
    // ended in a reset (or another socket error) from the client's side or
    // the backend's (each then gets a reset from the proxy).
    uint64_t idleTimeouts = 0, clientResets = 0, backendResets = 0;
    bool ejected = false;  // passive health: out of the rotation for a back-off
    // Takes no new connections: drained, or left the backend list while
    // connections to it are still open.
    bool draining = false;
    // TCP: successful connects by duration (from connect() to the backend's
    // answer), one count per bucket of kConnectBucketBoundsNs (not
    // cumulative), the last for those slower than 2 s; and their sum.
    std::array<uint64_t, kConnectBucketBoundsNs.size() + 1> connectDurationBuckets{};
    uint64_t connectDurationSumNs = 0;
  };
  struct ListenerStats {
    std::string name;
    std::vector<BackendStats> backends;
    uint64_t acceptErrors = 0, failedClientConnections = 0;
    uint64_t splicedBytes = 0;  // of all bytes forwarded, those moved by splice()
    // UDP: datagrams from new sources dropped because maxUdpFlows flows were
    // open, and flows (or datagrams) lost to a failure of this host (out of
    // fds, local ports or buffers), which no backend is blamed for.
    uint64_t udpFlowsRefused = 0, localErrors = 0;
  };
  // bytesIn = client -> backend, bytesOut = backend -> client.
  std::vector<ListenerStats> stats() const;

  // The port actually bound (useful with port 0), or 0 for an unknown name.
  uint16_t boundPort(const std::string& name) const;
  unsigned threads() const;

  class Impl;

 private:
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::proxy
