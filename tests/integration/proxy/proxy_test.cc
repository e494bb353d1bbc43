// Proxy behaviour a user checks, on 127.0.0.1 inside the test's own network
// namespace (see netns_main.cc): who answered, which bytes arrived, which
// connections failed, which fds are left.

#include "skiff/proxy/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "netns_testing.h"
#include "skiff/common/fd.h"
#include "test_servers.h"

namespace skiff::proxy {
namespace {

using namespace std::chrono_literals;
using testing::connectTo;
using testing::readAll;
using testing::readLine;
using testing::ServerMode;
using testing::TestServer;

// "r0", "r1", ...: appended in place, as "r" + std::to_string(i) trips GCC
// 12's false-positive -Wrestrict at -O3 (Release builds with -Werror).
std::string idOf(const char* prefix, int i) {
  std::string id = prefix;
  id += std::to_string(i);
  return id;
}

struct Fixture {
  std::vector<std::unique_ptr<TestServer>> servers;
  std::unique_ptr<Proxy> proxy;
  uint16_t port = 0;
  std::string name = "stack_web:0/tcp";

  void start(int n, ServerMode mode, ListenerConfig cfg = {}, unsigned threads = 2, bool withDead = false) {
    for (int i = 0; i < n; ++i) servers.push_back(std::make_unique<TestServer>(idOf("r", i), mode));
    auto p = Proxy::start(Options{threads});
    ASSERT_TRUE(p.ok()) << p.error().message;
    proxy = std::move(*p);
    cfg.name = name;
    cfg.bindHost = "127.0.0.1";
    auto s = proxy->addListener(cfg);
    ASSERT_TRUE(s.ok()) << s.error().message;
    port = proxy->boundPort(name);
    std::vector<Backend> backends;
    for (auto& srv : servers) backends.push_back(Backend{srv->id(), "127.0.0.1", srv->port()});
    if (withDead) backends.insert(backends.begin() + 1, Backend{"dead", "127.0.0.1", testing::deadPort()});
    proxy->setBackends(name, backends);
  }
  Proxy::BackendStats statsOf(const std::string& id) {
    for (auto& l : proxy->stats()) {
      for (auto& b : l.backends) {
        if (b.id == id) return b;
      }
    }
    return {};
  }
  Proxy::ListenerStats listenerStats() {
    for (auto& l : proxy->stats()) {
      if (l.name == name) return l;
    }
    return {};
  }
};

std::string greetingVia(uint16_t port) {
  int fd = connectTo(port);
  if (fd < 0) return "connect failed";
  std::string line = readLine(fd);
  ::close(fd);
  return line;
}

// The helpers themselves: a peer that neither sends nor closes is a hang,
// and a hang must fail the test instead of reading as an EOF.
TEST(ProxyTestHelpers, ReadAllAndReadLineFailTheTestWhenTheyTimeOut) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_TRUE(testing::writeAll(sv[1], "partial", 7));
  EXPECT_NONFATAL_FAILURE(EXPECT_EQ(readLine(sv[0], 100), "partial"), "readLine: no line within 100 ms");
  EXPECT_NONFATAL_FAILURE(EXPECT_EQ(readAll(sv[0], 100), ""), "readAll: no EOF within 100 ms");
  ASSERT_TRUE(testing::writeAll(sv[1], "line\nrest", 9));
  ::close(sv[1]);
  EXPECT_EQ(readLine(sv[0], 100), "line");
  EXPECT_EQ(readAll(sv[0], 100), "rest");
  ::close(sv[0]);
}

TEST(ProxyTcp, TenConnectionsOverFiveBackendsLandTwoByTwo) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(5, ServerMode{});
  std::map<std::string, int> hits;
  for (int i = 0; i < 10; ++i) ++hits[greetingVia(f.port)];
  EXPECT_EQ(hits, (std::map<std::string, int>{{"r0", 2}, {"r1", 2}, {"r2", 2}, {"r3", 2}, {"r4", 2}}));
  EXPECT_EQ(f.statsOf("r3").connections, 2u);
}

TEST(ProxyTcp, DeadBackendCostsNoFailedConnectionOver1000Connects) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(4, ServerMode{}, {}, 2, /*withDead=*/true);
  int failed = 0;
  std::map<std::string, int> hits;
  for (int i = 0; i < 1000; ++i) {
    std::string id = greetingVia(f.port);
    if (id.empty() || id[0] != 'r') ++failed;
    ++hits[id];
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(hits.size(), 4u);
  EXPECT_GE(f.statsOf("dead").connectErrors, 1u);
  EXPECT_EQ(f.statsOf("dead").connections, 0u);
  EXPECT_EQ(f.listenerStats().failedClientConnections, 0u);
}

TEST(ProxyTcp, NoBackendAtAllFailsTheClientAndCountsIt) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(0, ServerMode{});
  f.proxy->setBackends(f.name, {Backend{"dead", "127.0.0.1", testing::deadPort()}});
  int fd = connectTo(f.port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(readAll(fd), "");
  ::close(fd);
  EXPECT_EQ(f.listenerStats().failedClientConnections, 1u);
}

TEST(ProxyTcp, HalfCloseIsPropagated) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(1, ServerMode{.greet = false, .echo = true});
  int fd = connectTo(f.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::writeAll(fd, "hello, half-close", 17));
  ::shutdown(fd, SHUT_WR);  // the backend sees EOF, answers, then closes
  EXPECT_EQ(readAll(fd), "hello, half-close");
  ::close(fd);
}

// The new-connection-per-request pattern (HTTP with Connection: close): the
// backend answers and closes first. Every client must get the whole answer
// and then a clean EOF, never a reset, and no connection may stay open.
TEST(ProxyTcp, BackendClosingFirstGivesEachClientAllBytesThenCleanEof) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(1, ServerMode{.greet = true, .closeAfterGreeting = true}, {}, 1);
  int clean = 0;
  for (int i = 0; i < 200; ++i) {
    int fd = connectTo(f.port);
    ASSERT_GE(fd, 0);
    std::string got;
    char buf[256];
    ssize_t r = 0;
    while ((r = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(r));
    if (r == 0 && got == "r0\n") ++clean;
    ::close(fd);
  }
  EXPECT_EQ(clean, 200);
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (f.statsOf("r0").activeConnections != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(f.statsOf("r0").activeConnections, 0u);
  EXPECT_EQ(f.statsOf("r0").connections, 200u);
}

// Bulk transfers are spliced (socket -> pipe -> socket) once a read fills a
// whole buffer; the same bytes must arrive with splice on and off.
void transferBothWays(bool splice) {
  constexpr uint64_t kBytes = 64ull << 20;
  ListenerConfig cfg;
  cfg.splice = splice;
  {
    Fixture f;
    f.start(1, ServerMode{.greet = false, .sumAtEof = true}, cfg);
    int fd = connectTo(f.port, 20000);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 20, '\0');
    uint64_t hash = testing::kFnvInit;
    for (uint64_t off = 0; off < kBytes; off += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = testing::patternByte(off + i);
      hash = testing::fnv(hash, chunk.data(), chunk.size());
      ASSERT_TRUE(testing::writeAll(fd, chunk.data(), chunk.size()));
    }
    ::shutdown(fd, SHUT_WR);
    EXPECT_EQ(readLine(fd, 20000), std::to_string(kBytes) + " " + std::to_string(hash));
    ::close(fd);
    EXPECT_EQ(f.statsOf("r0").bytesIn, kBytes);
    if (splice) {
      EXPECT_GT(f.listenerStats().splicedBytes, kBytes / 2) << "the upload was not spliced";
    } else {
      EXPECT_EQ(f.listenerStats().splicedBytes, 0u);
    }
  }
  {
    Fixture f;
    f.start(1, ServerMode{.greet = false, .blastBytes = kBytes}, cfg);
    int fd = connectTo(f.port, 20000);
    ASSERT_GE(fd, 0);
    ::shutdown(fd, SHUT_WR);
    std::string got = readAll(fd, 20000);
    ::close(fd);
    ASSERT_EQ(got.size(), kBytes);
    uint64_t mismatches = 0;
    for (uint64_t i = 0; i < kBytes; ++i) mismatches += got[i] != testing::patternByte(i);
    EXPECT_EQ(mismatches, 0u);
    EXPECT_EQ(f.statsOf("r0").bytesOut, kBytes);
    if (splice) {
      EXPECT_GT(f.listenerStats().splicedBytes, kBytes / 2) << "the download was not spliced";
    }
  }
}

TEST(ProxyTcp, LargeTransferIsByteExactBothWaysSpliced) {
  SKIFF_REQUIRE_ISOLATED();
  transferBothWays(true);
}

TEST(ProxyTcp, LargeTransferIsByteExactBothWaysCopied) {
  SKIFF_REQUIRE_ISOLATED();
  transferBothWays(false);
}

// The largest socket buffer the kernel may grow to (tcp_rmem/tcp_wmem max).
uint64_t sysctlMax(const char* path) {
  FILE* f = std::fopen(path, "r");
  unsigned long long lo = 0, def = 0, hi = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%llu %llu %llu", &lo, &def, &hi) != 3) hi = 0;
    std::fclose(f);
  }
  return hi != 0 ? hi : 8ull << 20;
}

// A slow reader: the spliced direction must stop reading the backend while
// the client does not read (the client's receive buffer, the proxy's send
// buffer and the pipe are the bound), then deliver every byte once it reads.
TEST(ProxyTcp, SplicedDownloadWaitsForASlowReader) {
  SKIFF_REQUIRE_ISOLATED();
  const uint64_t bound = sysctlMax("/proc/sys/net/ipv4/tcp_rmem") + sysctlMax("/proc/sys/net/ipv4/tcp_wmem") +
                         (2ull << 20);  // two pipes' worth of slack
  const uint64_t kBytes = 3 * bound;
  Fixture f;
  f.start(1, ServerMode{.greet = false, .blastBytes = kBytes});
  int fd = connectTo(f.port, 20000);
  ASSERT_GE(fd, 0);
  ::shutdown(fd, SHUT_WR);
  std::this_thread::sleep_for(300ms);  // the backend blasts; nobody reads
  uint64_t forwarded = f.statsOf("r0").bytesOut;
  EXPECT_LT(forwarded, bound) << "the proxy read far more than the client took";
  std::string got = readAll(fd, 20000);
  ::close(fd);
  ASSERT_EQ(got.size(), kBytes);
  uint64_t mismatches = 0;
  for (uint64_t i = 0; i < kBytes; ++i) mismatches += got[i] != testing::patternByte(i);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(f.listenerStats().splicedBytes, kBytes / 2) << "the download was not spliced";
}

// Urgent (out-of-band) data in the middle of a spliced download: splice stops
// in front of it, so the proxy must read past it by copying, or the bytes
// after it (here the last ones before the backend waits) would never arrive.
TEST(ProxyTcp, UrgentDataDoesNotStallASplicedDownload) {
  SKIFF_REQUIRE_ISOLATED();
  constexpr size_t kBulk = 8 << 20;
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));  // outlives the thread below
  int lfd = listener.get();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  socklen_t alen = sizeof a;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen);
  std::thread backend([lfd] {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return;  // bounded: the test may have failed early
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string bulk(kBulk, 'x');
    (void)testing::writeAll(fd, bulk.data(), bulk.size());
    (void)::send(fd, "!", 1, MSG_OOB | MSG_NOSIGNAL);
    (void)testing::writeAll(fd, "tail\n", 5);
    char c;
    while (::recv(fd, &c, 1, 0) > 0) {  // until the client closes
    }
    ::close(fd);
  });
  struct Join {
    std::thread& t;
    ~Join() { t.join(); }
  } join{backend};
  Fixture f;
  f.start(0, ServerMode{}, {}, 1);
  f.proxy->setBackends(f.name, {Backend{"oob", "127.0.0.1", ntohs(a.sin_port)}});
  int fd = connectTo(f.port, 10000);
  ASSERT_GE(fd, 0);
  std::string got;
  char buf[65536];
  while (got.size() < kBulk + 5) {
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;  // EOF, or the 10 s receive timeout: stalled
    got.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  ASSERT_GE(got.size(), kBulk + 5) << "the download stalled at the urgent byte";
  EXPECT_EQ(got.substr(got.size() - 5), "tail\n");
  EXPECT_GT(f.listenerStats().splicedBytes, 0u);
}

TEST(ProxyTcp, IdleTimeoutClosesBothSides) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  ListenerConfig cfg;
  cfg.idleTimeout = 200ms;
  f.start(1, ServerMode{.greet = false, .echo = true}, cfg);
  int fd = connectTo(f.port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::writeAll(fd, "x", 1));
  char c;
  ASSERT_EQ(::recv(fd, &c, 1, 0), 1);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(readAll(fd), "");  // EOF from the proxy, not the 5s receive timeout
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 2s);
  ::close(fd);
}

// Regression (issue 7, point 1): a loop that slept in epoll_wait longer than
// the connect timeout armed the connect timer from its clock of before the
// wait, so the first connect after an idle pause "timed out" at once and a
// healthy backend was ejected. Strict turns must survive a pause, on both
// loops, with no connect error counted.
TEST(ProxyTcp, RoundRobinStaysExactAcrossAPauseLongerThanTheConnectTimeout) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  ListenerConfig cfg;
  cfg.connectTimeout = 400ms;
  f.start(3, ServerMode{}, cfg, 2);
  const std::vector<std::string> expected{"r0", "r1", "r2", "r0", "r1", "r2"};
  std::vector<std::string> first, second;
  for (size_t i = 0; i < expected.size(); ++i) first.push_back(greetingVia(f.port));
  EXPECT_EQ(first, expected);
  std::this_thread::sleep_for(2 * cfg.connectTimeout);  // both loops idle in epoll_wait
  for (size_t i = 0; i < expected.size(); ++i) second.push_back(greetingVia(f.port));
  EXPECT_EQ(second, expected) << "the round after the pause";
  for (const char* id : {"r0", "r1", "r2"}) {
    EXPECT_EQ(f.statsOf(id).connectErrors, 0u) << id << " was blamed for a connect timeout it did not cause";
    EXPECT_EQ(f.statsOf(id).connections, 4u) << id;
  }
  EXPECT_EQ(f.listenerStats().failedClientConnections, 0u);
}

// Regression (issue 7, point 1): bytes that arrive after a long epoll_wait
// count as activity at their arrival, not at the time the loop went to sleep.
// The loop sleeps from the connection's start until the client writes (70% of
// the idle timeout later; the backend only reads, so nothing else wakes it);
// the connection must then stay open for a full idle timeout after that write.
TEST(ProxyTcp, IdleTimeoutCountsFromTheLastBytesAfterALongEpollWait) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  ListenerConfig cfg;
  cfg.idleTimeout = 1000ms;
  f.start(1, ServerMode{.greet = false}, cfg, 1);  // a sink: reads, never answers
  int fd = connectTo(f.port);
  ASSERT_GE(fd, 0);
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (f.statsOf("r0").activeConnections == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(f.statsOf("r0").activeConnections, 1u) << "the proxy did not connect to the backend";
  std::this_thread::sleep_for(700ms);
  ASSERT_TRUE(testing::writeAll(fd, "ping", 4));
  auto wrote = std::chrono::steady_clock::now();
  // Still open 600 ms after the write (the old clock closed it ~300 ms after).
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  int ready = ::poll(&p, 1, 600);
  EXPECT_EQ(ready, 0)
      << "closed "
      << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - wrote).count()
      << " ms after the client's last bytes; the idle timeout is 1000 ms";
  // ...and closed once the idle timeout has passed since the write.
  EXPECT_EQ(readAll(fd, 3000), "");
  auto closedAfter = std::chrono::steady_clock::now() - wrote;
  EXPECT_GE(closedAfter, 900ms);
  EXPECT_LT(closedAfter, 2500ms);
  ::close(fd);
}

TEST(ProxyTcp, DrainLetsOpenConnectionFinishWhileNewOnesGoElsewhere) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(2, ServerMode{.greet = true, .echo = true});
  int held = connectTo(f.port);
  ASSERT_GE(held, 0);
  ASSERT_EQ(readLine(held), "r0");
  f.proxy->drainBackend(f.name, "r0", 500ms);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(greetingVia(f.port), "r1");
  // The drained backend's open connection still works during the grace period.
  ASSERT_TRUE(testing::writeAll(held, "still here\n", 11));
  EXPECT_EQ(readLine(held), "still here");
  // ...and is closed once the grace period is over.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(readAll(held), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ::close(held);
}

// A backend that resets its connection: the client sees a reset too, not a
// clean EOF that would pass for a complete answer.
TEST(ProxyTcp, BackendResetReachesTheClientAsReset) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(1, ServerMode{.greet = true, .resetAfterGreeting = true});
  int fd = connectTo(f.port);
  ASSERT_GE(fd, 0);
  std::string got;
  char buf[256];
  ssize_t r = 0;
  while ((r = ::recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(r));
  int err = errno;
  ::close(fd);
  EXPECT_EQ(got, "r0\n") << "the bytes before the reset";
  EXPECT_EQ(r, -1);
  EXPECT_EQ(err, ECONNRESET) << std::strerror(err);
  // The backend did answer: its reset is not a failed connect.
  EXPECT_EQ(f.statsOf("r0").connectErrors, 0u);
  EXPECT_EQ(f.statsOf("r0").connections, 1u);
}

// A backend that never answers the SYN costs the client the connect timeout
// once, then the next backend answers; afterwards the silent one is ejected.
TEST(ProxyTcp, ConnectTimeoutMovesToTheNextBackend) {
  SKIFF_REQUIRE_ISOLATED();
  testing::Blackhole hole;
  Fixture f;
  ListenerConfig cfg;
  cfg.connectTimeout = 300ms;
  f.start(1, ServerMode{}, cfg, 1);
  f.proxy->setBackends(f.name,
                       {Backend{"silent", "127.0.0.1", hole.port()}, Backend{"r0", "127.0.0.1", f.servers[0]->port()}});
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(greetingVia(f.port), "r0");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms) << "the first pick was not the silent backend";
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(f.statsOf("silent").connectErrors, 1u);
  // Ejected for a back-off (1 s): the next connections go straight to r0.
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(greetingVia(f.port), "r0");
  if (std::chrono::steady_clock::now() - t1 < 900ms) {  // else the back-off may have ended
    EXPECT_EQ(f.statsOf("silent").connectErrors, 1u);
  }
  EXPECT_EQ(f.listenerStats().failedClientConnections, 0u);
}

// PROXY protocol: the backend (an echo server) receives the header first, so
// it learns the client's address and port. Returns the client's fd and port.
int connectThroughProxyProtocol(Fixture& f, int version, uint16_t* clientPort) {
  ListenerConfig cfg;
  cfg.proxyProtocol = version;
  f.start(1, ServerMode{.greet = false, .echo = true}, cfg);
  int fd = connectTo(f.port);
  sockaddr_in me{};
  socklen_t len = sizeof me;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len);
  *clientPort = ntohs(me.sin_port);
  return fd;
}

TEST(ProxyTcp, ProxyProtocolV1TellsTheBackendWhoConnected) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  uint16_t cport = 0;
  int fd = connectThroughProxyProtocol(f, 1, &cport);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::writeAll(fd, "hello\n", 6));
  EXPECT_EQ(readLine(fd),
            "PROXY TCP4 127.0.0.1 127.0.0.1 " + std::to_string(cport) + " " + std::to_string(f.port) + "\r");
  EXPECT_EQ(readLine(fd), "hello");
  ::close(fd);
}

TEST(ProxyTcp, ProxyProtocolV2TellsTheBackendWhoConnected) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  uint16_t cport = 0;
  int fd = connectThroughProxyProtocol(f, 2, &cport);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::writeAll(fd, "hello", 5));
  ::shutdown(fd, SHUT_WR);
  std::string got = readAll(fd);
  ::close(fd);
  // 12-byte signature, version 2 + PROXY, TCP over IPv4, 12 address bytes.
  std::string expect("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  expect += std::string("\x7f\x00\x00\x01\x7f\x00\x00\x01", 8);
  expect += {static_cast<char>(cport >> 8), static_cast<char>(cport & 0xff), static_cast<char>(f.port >> 8),
             static_cast<char>(f.port & 0xff)};
  EXPECT_EQ(got, expect + "hello");
}

TEST(ProxyTcp, PortInUseNamesTheOwner) {
  SKIFF_REQUIRE_ISOLATED();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  auto p = Proxy::start(Options{1});
  ASSERT_TRUE(p.ok());
  ListenerConfig cfg;
  cfg.name = "x";
  cfg.bindHost = "127.0.0.1";
  cfg.port = port;
  auto s = (*p)->addListener(cfg);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "port " + std::to_string(port) + "/tcp is already in use by pid " +
                                   std::to_string(::getpid()) + " (proxy_integrati)");
  ::close(fd);
}

// Pipe helpers for the forked helpers below (the socket ones use recv/send).
bool pipeWrite(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}
// A line without '\n'; empty on timeout or EOF.
std::string pipeReadLine(int fd, int timeoutMs) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
    char c;
    if (::read(fd, &c, 1) != 1) return "";
    if (c == '\n') return out;
    out.push_back(c);
  }
}

// A forked helper process talking over two pipes, one line per message.
// Killed and reaped on every exit path; dies with the test (PDEATHSIG).
class Child {
 public:
  // body(in, out) runs in the child, which then _exits with its result.
  template <typename Body>
  explicit Child(Body body) {
    int down[2], up[2];
    if (::pipe2(down, O_CLOEXEC) != 0) return;
    if (::pipe2(up, O_CLOEXEC) != 0) {
      ::close(down[0]);
      ::close(down[1]);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(down[1]);
      ::close(up[0]);
      ::_exit(body(down[0], up[1]));
    }
    ::close(down[0]);
    ::close(up[1]);
    to_ = down[1];
    from_ = up[0];
  }
  ~Child() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      // Closing its input is the child's signal to finish; kill it if it lingers.
      for (int i = 0; i < 200 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
      if (::kill(pid_, SIGKILL) == 0) ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  bool ok() const { return pid_ > 0; }
  bool send(const std::string& line) const { return pipeWrite(to_, line + "\n"); }
  std::string receive(int timeoutMs) const { return pipeReadLine(from_, timeoutMs); }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
};

// Out of file descriptors: connections the proxy cannot take are reset at
// once (the reserve fd trick) instead of hanging in the backlog, the ones it
// holds keep working, and it serves again once fds are free.
TEST(ProxyTcp, OutOfFdsResetsNewClientsInsteadOfHanging) {
  SKIFF_REQUIRE_ISOLATED();
  constexpr int kClients = 12;
  // Backend and clients in their own processes: only the proxy's fds count
  // against this process's limit. Fork before any thread exists.
  Child backend([](int in, int out) {
    TestServer server("r0", ServerMode{.greet = true});
    if (!pipeWrite(out, std::to_string(server.port()) + "\n")) return 1;
    char c;
    while (::read(in, &c, 1) > 0) {
    }
    return 0;
  });
  Child clients([](int in, int out) {
    std::string portLine = pipeReadLine(in, 10000);
    if (portLine.empty()) return 1;
    uint16_t port = static_cast<uint16_t>(std::stoi(portLine));
    int greeted = 0, reset = 0, eof = 0, hung = 0;
    std::vector<int> fds;
    for (int i = 0; i < kClients; ++i) {
      int fd = connectTo(port, 3000);
      if (fd < 0) {
        ++reset;
        continue;
      }
      fds.push_back(fd);
      char buf[16];
      ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        ++greeted;
      } else if (r == 0) {
        ++eof;
      } else if (errno == ECONNRESET) {
        ++reset;
      } else {
        ++hung;  // the 3 s receive timeout: stuck in the backlog
      }
    }
    std::string report =
        std::to_string(greeted) + " " + std::to_string(reset) + " " + std::to_string(eof) + " " + std::to_string(hung);
    if (!pipeWrite(out, report + "\n")) return 1;
    (void)pipeReadLine(in, 20000);  // hold the connections until told
    for (int fd : fds) ::close(fd);
    return pipeWrite(out, "closed\n") ? 0 : 1;
  });
  ASSERT_TRUE(backend.ok() && clients.ok());
  std::string backendPort = backend.receive(10000);
  ASSERT_FALSE(backendPort.empty());
  Fixture f;
  f.start(0, ServerMode{}, {}, 1);
  f.proxy->setBackends(f.name, {Backend{"r0", "127.0.0.1", static_cast<uint16_t>(std::stoi(backendPort))}});
  rlimit saved{};
  getrlimit(RLIMIT_NOFILE, &saved);
  // Room for 4 proxied connections (2 fds each) above what is open now.
  rlimit tight{static_cast<rlim_t>(testing::openFdCount() + 3 + 8), saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  ASSERT_TRUE(clients.send(std::to_string(f.port)));
  std::string report = clients.receive(60000);
  setrlimit(RLIMIT_NOFILE, &saved);
  int greeted = -1, reset = -1, eof = -1, hung = -1;
  ASSERT_EQ(std::sscanf(report.c_str(), "%d %d %d %d", &greeted, &reset, &eof, &hung), 4) << report;
  EXPECT_EQ(hung, 0) << "clients were left hanging in the backlog";
  EXPECT_GE(greeted, 1);
  EXPECT_LT(greeted, kClients);
  EXPECT_EQ(greeted + reset + eof, kClients);
  auto ls = f.listenerStats();
  EXPECT_GE(ls.acceptErrors + ls.failedClientConnections, static_cast<uint64_t>(kClients - greeted));
  EXPECT_EQ(f.statsOf("r0").connectErrors, 0u) << "a local fd shortage was blamed on the backend";
  ASSERT_TRUE(clients.send("close"));
  EXPECT_EQ(clients.receive(20000), "closed");
  EXPECT_EQ(greetingVia(f.port), "r0") << "the proxy did not recover";
}

void raiseFdLimit() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rlimit want{std::min<rlim_t>(65536, rl.rlim_max), rl.rlim_max};
  (void)setrlimit(RLIMIT_NOFILE, &want);
}

// Clients and backends live in forked processes, so this process holds only
// the proxy's two fds per connection: without CAP_SYS_RESOURCE the hard
// RLIMIT_NOFILE (20000 in the CI sandbox) then allows (20000-256)/2 = 9872
// connections rather than a quarter of it. The test says so when it is short
// of 10,000.
TEST(ProxyTcp, TenThousandConcurrentConnectionsLeakNoFds) {
  SKIFF_REQUIRE_ISOLATED();
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  raiseFdLimit();
  rlimit now{};
  getrlimit(RLIMIT_NOFILE, &now);
  const int kConns = static_cast<int>(std::min<rlim_t>(10000, (now.rlim_cur - 256) / 2));
  if (kConns < 10000) {
    std::printf(
        "note: RLIMIT_NOFILE %llu (hard limit) and 2 proxy fds per connection allow %d concurrent "
        "connections, not 10000 (clients and backends run in child processes)\n",
        static_cast<unsigned long long>(now.rlim_cur), kConns);
  }
  RecordProperty("connections", kConns);
  // Fork before any thread exists in this process (the proxy starts below).
  Child backends([](int in, int out) {
    raiseFdLimit();
    std::vector<std::unique_ptr<TestServer>> servers;
    std::string ports;
    for (int i = 0; i < 5; ++i) {
      servers.push_back(std::make_unique<TestServer>(idOf("r", i), ServerMode{.greet = true}));
      ports += std::to_string(servers.back()->port()) + " ";
    }
    if (!pipeWrite(out, ports + "\n")) return 1;
    char c;
    while (::read(in, &c, 1) > 0) {
    }
    return 0;
  });
  Child clients([kConns](int in, int out) {
    raiseFdLimit();
    std::string portLine = pipeReadLine(in, 30000);
    if (portLine.empty()) return 1;
    uint16_t port = static_cast<uint16_t>(std::stoi(portLine));
    auto deadline = std::chrono::steady_clock::now() + 40s;
    std::vector<int> fds;
    fds.reserve(static_cast<size_t>(kConns));
    for (int i = 0; i < kConns && std::chrono::steady_clock::now() < deadline; ++i) {
      int fd = connectTo(port);
      if (fd < 0) break;
      fds.push_back(fd);
    }
    int greeted = 0;
    for (int fd : fds) greeted += readLine(fd).size() == 2;
    if (!pipeWrite(out, std::to_string(fds.size()) + " " + std::to_string(greeted) + "\n")) return 1;
    if (pipeReadLine(in, 30000) != "close") return 1;
    for (int fd : fds) ::close(fd);
    return pipeWrite(out, "closed\n") ? 0 : 1;
  });
  ASSERT_TRUE(backends.ok() && clients.ok());
  std::string ports = backends.receive(10000);
  ASSERT_FALSE(ports.empty()) << "the backend process did not start";
  auto deadline = std::chrono::steady_clock::now() + 60s;
  {
    auto p = Proxy::start(Options{2});
    ASSERT_TRUE(p.ok()) << p.error().message;
    std::unique_ptr<Proxy> proxy = std::move(*p);
    ListenerConfig cfg;
    cfg.name = "stack_web:0/tcp";
    cfg.bindHost = "127.0.0.1";
    ASSERT_TRUE(proxy->addListener(cfg).ok());
    std::vector<Backend> list;
    size_t pos = 0;
    for (int i = 0; i < 5; ++i) {
      size_t end = ports.find(' ', pos);
      list.push_back(
          Backend{idOf("r", i), "127.0.0.1", static_cast<uint16_t>(std::stoi(ports.substr(pos, end - pos)))});
      pos = end + 1;
    }
    proxy->setBackends(cfg.name, list);
    auto active = [&] {
      uint64_t n = 0;
      for (auto& l : proxy->stats()) {
        for (auto& b : l.backends) n += b.activeConnections;
      }
      return n;
    };
    int before = testing::openFdCount();
    ASSERT_TRUE(clients.send(std::to_string(proxy->boundPort(cfg.name))));
    std::string report = clients.receive(50000);
    EXPECT_EQ(report, std::to_string(kConns) + " " + std::to_string(kConns)) << "connected, greeted";
    EXPECT_EQ(active(), static_cast<uint64_t>(kConns));
    EXPECT_EQ(testing::openFdCount(), before + 2 * kConns);
    ASSERT_TRUE(clients.send("close"));
    EXPECT_EQ(clients.receive(20000), "closed");
    // The proxy closes its sides; wait until every fd is back.
    while (testing::openFdCount() != before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(testing::openFdCount(), before);
    while (active() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(active(), 0u);
  }
  setrlimit(RLIMIT_NOFILE, &rl);
}

TEST(ProxyUdp, FlowsStickToOneBackendAndSpreadRoundRobin) {
  SKIFF_REQUIRE_ISOLATED();
  std::vector<std::unique_ptr<testing::UdpIdServer>> servers;
  std::vector<Backend> backends;
  for (int i = 0; i < 3; ++i) {
    servers.push_back(std::make_unique<testing::UdpIdServer>(idOf("u", i)));
    backends.push_back(Backend{idOf("u", i), "127.0.0.1", servers.back()->port()});
  }
  auto p = Proxy::start(Options{2});
  ASSERT_TRUE(p.ok());
  ListenerConfig cfg;
  cfg.name = "dns:0/udp";
  cfg.bindHost = "127.0.0.1";
  cfg.udp = true;
  ASSERT_TRUE((*p)->addListener(cfg).ok());
  (*p)->setBackends(cfg.name, backends);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons((*p)->boundPort(cfg.name));
  std::map<std::string, int> flowsPerBackend;
  for (int client = 0; client < 6; ++client) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string first;
    for (int i = 0; i < 3; ++i) {
      std::string msg = "q" + std::to_string(i);
      ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      char buf[256];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t r = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      ASSERT_GT(r, 0) << "client " << client << " got no reply";
      EXPECT_EQ(from.sin_port, to.sin_port);  // replies come from the published port
      std::string reply(buf, static_cast<size_t>(r));
      auto colon = reply.find(':');
      EXPECT_EQ(reply.substr(colon + 1), msg);
      std::string id = reply.substr(0, colon);
      if (i == 0) first = id;
      EXPECT_EQ(id, first) << "flow of client " << client << " moved";
    }
    ++flowsPerBackend[first];
    ::close(fd);
  }
  EXPECT_EQ(flowsPerBackend, (std::map<std::string, int>{{"u0", 2}, {"u1", 2}, {"u2", 2}}));
}

TEST(ProxyUdp, IdleFlowsExpire) {
  SKIFF_REQUIRE_ISOLATED();
  testing::UdpIdServer server("u0");
  auto p = Proxy::start(Options{1});
  ASSERT_TRUE(p.ok());
  ListenerConfig cfg;
  cfg.name = "u:0/udp";
  cfg.bindHost = "127.0.0.1";
  cfg.udp = true;
  cfg.idleTimeout = 100ms;
  ASSERT_TRUE((*p)->addListener(cfg).ok());
  (*p)->setBackends(cfg.name, {Backend{"u0", "127.0.0.1", server.port()}});
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons((*p)->boundPort(cfg.name));
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::sendto(fd, "a", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  char buf[64];
  ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);
  auto active = [&] { return (*p)->stats().at(0).backends.at(0).activeConnections; };
  EXPECT_EQ(active(), 1u);
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (active() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(active(), 0u);
  ::close(fd);
}

// One UDP client: a socket bound to 127.0.0.<host> (any 127/8 address is
// local inside the test's namespace), so each instance is a flow of its own
// (the proxy keys flows by source address and port).
class UdpClient {
 public:
  explicit UdpClient(int host) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl((127u << 24) | static_cast<uint32_t>(host));
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~UdpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpClient(const UdpClient&) = delete;
  UdpClient& operator=(const UdpClient&) = delete;
  bool ok() const { return fd_ >= 0; }
  bool send(uint16_t port, const std::string& msg) const {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    return ::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) ==
           static_cast<ssize_t>(msg.size());
  }
  // The next reply ("<backend>:<payload>"), or "" when none came in time.
  std::string receive(int timeoutMs) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeoutMs) <= 0) return "";
    char buf[256];
    ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
    return r > 0 ? std::string(buf, static_cast<size_t>(r)) : "";
  }

 private:
  int fd_ = -1;
};

// A UDP port nobody listens on: datagrams to it get ICMP port unreachable.
uint16_t deadUdpPort() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct UdpFixture {
  std::vector<std::unique_ptr<testing::UdpIdServer>> servers;
  std::unique_ptr<Proxy> proxy;
  std::string name = "dns:0/udp";
  uint16_t port = 0;

  // Backends u0..u<n-1>, with a dead one ("dead") first when withDead.
  void start(int n, ListenerConfig cfg, unsigned threads, bool withDead = false) {
    std::vector<Backend> backends;
    if (withDead) backends.push_back(Backend{"dead", "127.0.0.1", deadUdpPort()});
    for (int i = 0; i < n; ++i) {
      servers.push_back(std::make_unique<testing::UdpIdServer>(idOf("u", i)));
      backends.push_back(Backend{idOf("u", i), "127.0.0.1", servers.back()->port()});
    }
    auto p = Proxy::start(Options{threads});
    ASSERT_TRUE(p.ok()) << p.error().message;
    proxy = std::move(*p);
    cfg.name = name;
    cfg.bindHost = "127.0.0.1";
    cfg.udp = true;
    auto s = proxy->addListener(cfg);
    ASSERT_TRUE(s.ok()) << s.error().message;
    port = proxy->boundPort(name);
    proxy->setBackends(name, backends);
  }
  Proxy::ListenerStats stats() const {
    for (auto& l : proxy->stats()) {
      if (l.name == name) return l;
    }
    return {};
  }
  Proxy::BackendStats statsOf(const std::string& id) const {
    for (auto& b : stats().backends) {
      if (b.id == id) return b;
    }
    return {};
  }
  uint64_t total(uint64_t Proxy::BackendStats::*field) const {
    uint64_t n = 0;
    for (auto& b : stats().backends) n += b.*field;
    return n;
  }
  // Waits (bounded) until pred() holds; the counters are updated on the loop threads.
  template <typename Pred>
  bool eventually(Pred pred, std::chrono::milliseconds limit = 3s) const {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
};

// Spoofed sources must not exhaust fds or ports: at maxUdpFlows the datagram
// of a new source is dropped and counted, the flows already open go on (on
// the same backend), and once they expire new sources get flows again. Two
// loops: the bound is per listener, not per loop.
TEST(ProxyUdp, AtTheFlowBoundNewSourcesAreDroppedAndCountedWhileOpenFlowsKeepWorking) {
  SKIFF_REQUIRE_ISOLATED();
  constexpr int kBound = 8, kSources = 20;
  UdpFixture f;
  ListenerConfig cfg;
  cfg.maxUdpFlows = kBound;
  cfg.idleTimeout = 1500ms;
  f.start(2, cfg, 2);
  std::vector<std::unique_ptr<UdpClient>> clients;
  for (int i = 0; i < kSources; ++i) {
    clients.push_back(std::make_unique<UdpClient>(10 + i));  // 127.0.0.10 .. 127.0.0.29
    ASSERT_TRUE(clients.back()->ok());
  }
  std::vector<std::string> backendOf(kSources);
  for (int i = 0; i < kBound; ++i) {
    ASSERT_TRUE(clients[i]->send(f.port, "a"));
    std::string reply = clients[i]->receive(2000);
    ASSERT_EQ(reply.substr(reply.find(':') + 1), "a") << "source " << i << " got no reply";
    backendOf[i] = reply.substr(0, reply.find(':'));
  }
  for (int i = kBound; i < kSources; ++i) ASSERT_TRUE(clients[i]->send(f.port, "b"));
  EXPECT_TRUE(f.eventually([&] { return f.stats().udpFlowsRefused >= kSources - kBound; }))
      << "refused: " << f.stats().udpFlowsRefused;
  for (int i = kBound; i < kSources; ++i) {
    EXPECT_EQ(clients[i]->receive(i == kBound ? 300 : 20), "") << "source " << i << " got a flow over the bound";
  }
  EXPECT_EQ(f.stats().udpFlowsRefused, static_cast<uint64_t>(kSources - kBound));
  EXPECT_EQ(f.total(&Proxy::BackendStats::connections), static_cast<uint64_t>(kBound));
  EXPECT_EQ(f.total(&Proxy::BackendStats::activeConnections), static_cast<uint64_t>(kBound));
  for (int i = 0; i < kBound; ++i) {
    ASSERT_TRUE(clients[i]->send(f.port, "c"));
    EXPECT_EQ(clients[i]->receive(2000), backendOf[i] + ":c") << "open flow " << i << " broke at the bound";
  }
  // The open flows expire after 1.5 s idle; then new sources are admitted up
  // to the bound again, and the rest refused.
  EXPECT_TRUE(f.eventually([&] { return f.total(&Proxy::BackendStats::activeConnections) == 0; }, 6s));
  int answered = 0;
  for (int i = kBound; i < kSources; ++i) {
    ASSERT_TRUE(clients[i]->send(f.port, "d"));
    std::string reply = clients[i]->receive(i < 2 * kBound ? 2000 : 200);
    if (!reply.empty()) {
      EXPECT_EQ(reply.substr(reply.find(':') + 1), "d");
      ++answered;
    }
  }
  EXPECT_EQ(answered, kBound);
  EXPECT_EQ(f.stats().udpFlowsRefused, static_cast<uint64_t>(2 * (kSources - kBound) - kBound));
  EXPECT_EQ(f.stats().localErrors, 0u);
  EXPECT_EQ(f.total(&Proxy::BackendStats::connectErrors), 0u);
}

// A flow the proxy cannot open for a reason of its own (here no fd left:
// socket() fails with EMFILE) is dropped and counted as a local error; the
// backend it was meant for is not blamed, stays in the rotation, and takes
// the next flows in its turn.
TEST(ProxyUdp, OutOfFdsForANewFlowDoesNotEjectTheBackend) {
  SKIFF_REQUIRE_ISOLATED();
  UdpFixture f;
  f.start(2, ListenerConfig{}, 1);
  UdpClient a(10), b(11), c(12);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  // Every fd below the lowest free one is taken, so with the limit there no
  // new fd fits: socket() fails with EMFILE. (A limit of 0 would also make
  // the test servers' poll() of 2 fds fail with EINVAL.)
  int lowestFree = ::dup(0);
  ASSERT_GE(lowestFree, 2);
  ::close(lowestFree);
  rlimit none{static_cast<rlim_t>(lowestFree), saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none), 0);
  bool sent = a.send(f.port, "x");
  bool seen = f.eventually([&] {
    auto ls = f.stats();
    return ls.failedClientConnections + ls.localErrors + f.statsOf("u0").connectErrors > 0;
  });
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_TRUE(sent);
  ASSERT_TRUE(seen) << "the proxy never tried to open the flow";
  EXPECT_EQ(a.receive(100), "");
  EXPECT_EQ(f.stats().localErrors, 1u);
  EXPECT_EQ(f.statsOf("u0").connectErrors, 0u) << "a local fd shortage was blamed on the backend";
  EXPECT_FALSE(f.statsOf("u0").ejected);
  // Round robin goes on from where the failed flow left it: u1, then u0.
  ASSERT_TRUE(b.send(f.port, "y"));
  EXPECT_EQ(b.receive(2000), "u1:y");
  ASSERT_TRUE(c.send(f.port, "z"));
  EXPECT_EQ(c.receive(2000), "u0:z") << "u0 was taken out of the rotation";
  ASSERT_TRUE(a.send(f.port, "again"));
  EXPECT_EQ(a.receive(2000), "u1:again");
}

// What does say a backend is bad still ejects it: a datagram to a closed port
// comes back as ICMP port unreachable (ECONNREFUSED on the flow's socket).
TEST(ProxyUdp, PortUnreachableFromABackendEjectsIt) {
  SKIFF_REQUIRE_ISOLATED();
  UdpFixture f;
  f.start(1, ListenerConfig{}, 1, /*withDead=*/true);
  UdpClient a(10), b(11), c(12);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(a.send(f.port, "x"));  // its flow goes to "dead"
  EXPECT_TRUE(f.eventually([&] { return f.statsOf("dead").connectErrors > 0; }));
  EXPECT_TRUE(f.statsOf("dead").ejected);
  ASSERT_TRUE(b.send(f.port, "y"));
  EXPECT_EQ(b.receive(2000), "u0:y");
  ASSERT_TRUE(c.send(f.port, "z"));
  EXPECT_EQ(c.receive(2000), "u0:z") << "an ejected backend got a new flow";
  // The flow to the dead backend was closed: the client's retry goes to a
  // live one instead of sticking to "dead" for the idle time.
  ASSERT_TRUE(a.send(f.port, "retry"));
  EXPECT_EQ(a.receive(2000), "u0:retry");
  EXPECT_EQ(f.stats().localErrors, 0u);
}

TEST(ProxyLifecycle, RemoveListenerFreesThePortAndClosesConnections) {
  SKIFF_REQUIRE_ISOLATED();
  Fixture f;
  f.start(1, ServerMode{.greet = true, .echo = true});
  int held = connectTo(f.port);
  ASSERT_EQ(readLine(held), "r0");
  ASSERT_TRUE(f.proxy->removeListener(f.name).ok());
  EXPECT_EQ(readAll(held), "");
  ::close(held);
  EXPECT_LT(connectTo(f.port, 1000), 0);
  EXPECT_FALSE(f.proxy->removeListener(f.name).ok());
}

}  // namespace
}  // namespace skiff::proxy
