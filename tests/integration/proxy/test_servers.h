#pragma once
// Small loopback servers and blocking clients for the proxy integration tests.
// TestServer runs one epoll thread, so one instance can hold 10,000
// connections. Behaviour per connection: optional greeting ("<id>\n"), echo,
// a summary "<bytes> <hash>\n" at EOF, or a blast of N pattern bytes; after
// the client's EOF the server sends what is pending, then shuts down.

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>

namespace skiff::proxy::testing {

struct ServerMode {
  bool greet = true;
  bool echo = false;
  bool sumAtEof = false;
  uint64_t blastBytes = 0;
  bool closeAfterGreeting = false;
  bool resetAfterGreeting = false;  // close with RST (SO_LINGER 0) once the greeting is out
};

class TestServer {
 public:
  TestServer(std::string id, ServerMode mode);
  ~TestServer();
  uint16_t port() const { return port_; }
  const std::string& id() const { return id_; }
  uint64_t accepted() const { return accepted_.load(); }

 private:
  void run();
  std::string id_;
  ServerMode mode_;
  int listenFd_ = -1;
  int epollFd_ = -1;
  int stopFd_ = -1;
  uint16_t port_ = 0;
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

// UDP server answering every datagram with "<id>:<payload>".
class UdpIdServer {
 public:
  explicit UdpIdServer(std::string id);
  ~UdpIdServer();
  uint16_t port() const { return port_; }

 private:
  std::string id_;
  int fd_ = -1;
  int stopFd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A port whose SYNs go unanswered: a listener with a backlog of 0, filled by
// one connection nobody accepts, so the kernel drops every further SYN. A
// connect to it hangs until its timeout (loopback only).
class Blackhole {
 public:
  Blackhole();
  ~Blackhole();
  uint16_t port() const { return port_; }

 private:
  int listenFd_ = -1, fillerFd_ = -1;
  uint16_t port_ = 0;
};

// FNV-1a over a byte stream.
inline uint64_t fnv(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t kFnvInit = 14695981039346656037ull;
// Deterministic pattern byte i (the blast content).
inline char patternByte(uint64_t i) { return static_cast<char>((i * 2654435761u) >> 13); }

// How a read ended. A hang (the timeout ran out) is never an end: the
// callers compare the whole Read, so a test that expects an EOF fails when
// the connection merely went quiet, and one that expects a connection to stay
// open can say so (Timeout).
enum class Ending { kLine, kEof, kReset, kError, kTimeout };
struct Read {
  std::string bytes;  // what arrived (for kLine: the line without '\n')
  Ending ending = Ending::kTimeout;
  bool operator==(const Read& o) const { return bytes == o.bytes && ending == o.ending; }
  bool operator!=(const Read& o) const { return !(*this == o); }
};
inline Read Line(std::string s) { return {std::move(s), Ending::kLine}; }
inline Read Eof(std::string s) { return {std::move(s), Ending::kEof}; }
inline Read Reset(std::string s) { return {std::move(s), Ending::kReset}; }
inline Read Timeout(std::string s) { return {std::move(s), Ending::kTimeout}; }
// gtest's printer: the ending and the first bytes, escaped (reads can be 64 MiB).
void PrintTo(const Read& r, std::ostream* os);
std::string describe(const Read& r);

// Blocking client helpers; -1 on failure.
int connectTo(uint16_t port, int timeoutMs = 5000);
// The same from a chosen local port on 127.0.0.1 (tests that steer
// SO_REUSEPORT groups by source port), -1 on failure.
int connectFrom(uint16_t localPort, uint16_t port, int timeoutMs = 5000);
// Until EOF (kEof), a reset (kReset), another error (kError) or the timeout
// (kTimeout), with the bytes read before.
Read readAll(int fd, int timeoutMs = 5000);
// Up to '\n' (kLine), or what came before EOF, an error or the timeout.
Read readLine(int fd, int timeoutMs = 5000);
bool writeAll(int fd, const char* p, size_t n);
// What /proc/net/tcp of this network namespace says about a TCP socket.
// txQueue: bytes written and not yet acknowledged by the peer; rxQueue:
// bytes received and not yet read by the socket's owner (for a listener:
// the accept backlog).
struct TcpSocketInfo {
  bool found = false;
  uint64_t txQueue = 0, rxQueue = 0;
};
// The established socket with local port localPort and remote port remotePort.
TcpSocketInfo establishedSocket(uint16_t localPort, uint16_t remotePort);
// Whether a TCP socket of this namespace listens on port, or a UDP socket is bound to it.
bool tcpListening(uint16_t port);
bool udpBound(uint16_t port);
// Port that is closed (bound once, then released): connects get refused.
uint16_t deadPort();
int openFdCount();

}  // namespace skiff::proxy::testing
