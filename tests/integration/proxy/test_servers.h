#pragma once
// Small loopback servers and blocking clients for the proxy integration tests.
// TestServer runs one epoll thread, so one instance can hold 10,000
// connections. Behaviour per connection: optional greeting ("<id>\n"), echo,
// a summary "<bytes> <hash>\n" at EOF, or a blast of N pattern bytes; after
// the client's EOF the server sends what is pending, then shuts down.

#include <atomic>
#include <cstdint>
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

// Blocking client helpers; -1 / empty on failure. readAll and readLine return
// what arrived before EOF or an error (a reset); running out of time is a
// hang, not an end: it fails the current test (ADD_FAILURE) and returns what
// was read so far.
int connectTo(uint16_t port, int timeoutMs = 5000);
std::string readAll(int fd, int timeoutMs = 5000);   // until EOF
std::string readLine(int fd, int timeoutMs = 5000);  // up to and without '\n'
bool writeAll(int fd, const char* p, size_t n);
// Port that is closed (bound once, then released): connects get refused.
uint16_t deadPort();
int openFdCount();

}  // namespace skiff::proxy::testing
