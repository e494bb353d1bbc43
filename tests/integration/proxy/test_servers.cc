#include "test_servers.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace skiff::proxy::testing {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t boundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

struct Peer {
  std::string out;
  uint64_t bytes = 0;
  uint64_t hash = kFnvInit;
  uint64_t blastSent = 0;
  bool eof = false;
  bool shut = false;
};

}  // namespace

TestServer::TestServer(std::string id, ServerMode mode) : id_(std::move(id)), mode_(mode) {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback(0);
  ::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listenFd_, 4096);
  port_ = boundPort(listenFd_);
  epollFd_ = epoll_create1(EPOLL_CLOEXEC);
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listenFd_;
  epoll_ctl(epollFd_, EPOLL_CTL_ADD, listenFd_, &ev);
  ev.data.fd = stopFd_;
  epoll_ctl(epollFd_, EPOLL_CTL_ADD, stopFd_, &ev);
  thread_ = std::thread([this] { run(); });
}

TestServer::~TestServer() {
  uint64_t one = 1;
  (void)!::write(stopFd_, &one, sizeof one);
  thread_.join();
  ::close(epollFd_);
  ::close(stopFd_);
  ::close(listenFd_);
}

void TestServer::run() {
  std::unordered_map<int, Peer> peers;
  std::string buf(64 * 1024, '\0');
  auto closePeer = [&](int fd) {
    epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    peers.erase(fd);
  };
  // Sends what is pending; returns false when the peer is gone.
  auto flush = [&](int fd, Peer& p) -> bool {
    while (true) {
      if (p.out.empty() && mode_.blastBytes > p.blastSent) {
        size_t n = std::min<uint64_t>(64 * 1024, mode_.blastBytes - p.blastSent);
        p.out.resize(n);
        for (size_t i = 0; i < n; ++i) p.out[i] = patternByte(p.blastSent + i);
        p.blastSent += n;
      }
      if (p.out.empty()) break;
      ssize_t w = ::send(fd, p.out.data(), p.out.size(), MSG_NOSIGNAL);
      if (w < 0) return errno == EAGAIN;
      p.out.erase(0, static_cast<size_t>(w));
    }
    bool blastDone = mode_.blastBytes == p.blastSent;
    if (!p.shut && ((p.eof && blastDone) || (mode_.blastBytes > 0 && blastDone) || (mode_.closeAfterGreeting))) {
      ::shutdown(fd, SHUT_WR);
      p.shut = true;
    }
    return true;
  };
  epoll_event events[256];
  while (true) {
    int n = epoll_wait(epollFd_, events, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == stopFd_) {
        for (auto& [pfd, p] : peers) ::close(pfd);
        return;
      }
      if (fd == listenFd_) {
        while (true) {
          int c = ::accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          accepted_++;
          Peer& p = peers[c];
          if (mode_.greet) p.out = id_ + "\n";
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
          ev.data.fd = c;
          epoll_ctl(epollFd_, EPOLL_CTL_ADD, c, &ev);
          if (!flush(c, p)) {
            closePeer(c);
          } else if (mode_.resetAfterGreeting) {
            linger lg{1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            closePeer(c);
          }
        }
        continue;
      }
      auto it = peers.find(fd);
      if (it == peers.end()) continue;
      Peer& p = it->second;
      bool dead = false;
      while (!p.eof) {
        ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
        if (r > 0) {
          p.bytes += static_cast<uint64_t>(r);
          if (mode_.sumAtEof) p.hash = fnv(p.hash, buf.data(), static_cast<size_t>(r));
          if (mode_.echo) p.out.append(buf.data(), static_cast<size_t>(r));
        } else if (r == 0) {
          p.eof = true;
          if (mode_.sumAtEof) p.out += std::to_string(p.bytes) + " " + std::to_string(p.hash) + "\n";
        } else {
          if (errno != EAGAIN) dead = true;
          break;
        }
        if (!flush(fd, p)) {
          dead = true;
          break;
        }
      }
      if (dead || !flush(fd, p) || (p.eof && p.shut && p.out.empty())) closePeer(fd);
    }
  }
}

UdpIdServer::UdpIdServer(std::string id) : id_(std::move(id)) {
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto a = loopback(0);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  port_ = boundPort(fd_);
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] {
    char buf[2048];
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stopFd_, POLLIN, 0}};
    while (::poll(fds, 2, -1) >= 0 && (fds[1].revents & POLLIN) == 0) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t r = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
      if (r < 0) continue;
      std::string reply = id_ + ":" + std::string(buf, static_cast<size_t>(r));
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  });
}

UdpIdServer::~UdpIdServer() {
  uint64_t one = 1;
  (void)!::write(stopFd_, &one, sizeof one);
  thread_.join();
  ::close(fd_);
  ::close(stopFd_);
}

Blackhole::Blackhole() {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(0);
  ::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listenFd_, 0);
  port_ = boundPort(listenFd_);
  fillerFd_ = connectTo(port_);
}

Blackhole::~Blackhole() {
  if (fillerFd_ >= 0) ::close(fillerFd_);
  ::close(listenFd_);
}

namespace {

int connectWith(int fd, uint16_t port, int timeoutMs) {
  timeval tv{timeoutMs / 1000, (timeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  auto a = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int connectTo(uint16_t port, int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  return connectWith(fd, port, timeoutMs);
}

int connectFrom(uint16_t localPort, uint16_t port, int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;  // the port may still be in TIME_WAIT towards another peer
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto local = loopback(localPort);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    ::close(fd);
    return -1;
  }
  return connectWith(fd, port, timeoutMs);
}

std::string describe(const Read& r) {
  static const char* const kNames[] = {"line", "EOF", "reset", "error", "TIMEOUT"};
  std::string out = kNames[static_cast<int>(r.ending)];
  out += " after " + std::to_string(r.bytes.size()) + " bytes \"";
  for (size_t i = 0; i < r.bytes.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(r.bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    }
  }
  out += r.bytes.size() > 80 ? "\"..." : "\"";
  return out;
}

void PrintTo(const Read& r, std::ostream* os) { *os << describe(r); }

namespace {

// Waits until fd is readable (data, EOF or an error) or the deadline passes;
// false on timeout. poll() bounds the wait whatever SO_RCVTIMEO says.
bool waitReadable(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let recv() report the error
  }
}

Ending endingOf(ssize_t r, int err) {
  return r == 0 ? Ending::kEof : err == ECONNRESET ? Ending::kReset : Ending::kError;
}

}  // namespace

Read readAll(int fd, int timeoutMs) {
  Read out;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    if (!waitReadable(fd, deadline)) {
      out.ending = Ending::kTimeout;  // a hang, not an end
      return out;
    }
    ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) {
      out.ending = endingOf(r, errno);
      return out;
    }
    out.bytes.append(buf, static_cast<size_t>(r));
  }
}

Read readLine(int fd, int timeoutMs) {
  Read out;
  char c;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    if (!waitReadable(fd, deadline)) {
      out.ending = Ending::kTimeout;
      return out;
    }
    ssize_t r = ::recv(fd, &c, 1, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) {
      out.ending = endingOf(r, errno);  // before the newline
      return out;
    }
    if (c == '\n') {
      out.ending = Ending::kLine;
      return out;
    }
    out.bytes.push_back(c);
  }
}

bool writeAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

namespace {

// Calls fn(localPort, remotePort, state, txQueue, rxQueue) for each line of
// /proc/net/tcp or /proc/net/udp (IPv4; the tests use 127.0.0.1 only).
template <typename Fn>
void forEachSocket(const char* path, Fn fn) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return;
  char line[512];
  if (std::fgets(line, sizeof line, f) == nullptr) {  // the header
    std::fclose(f);
    return;
  }
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned localAddr = 0, localPort = 0, remoteAddr = 0, remotePort = 0, state = 0;
    unsigned long long tx = 0, rx = 0;
    if (std::sscanf(line, " %*d: %8x:%4x %8x:%4x %2x %llx:%llx", &localAddr, &localPort, &remoteAddr, &remotePort,
                    &state, &tx, &rx) == 7) {
      fn(static_cast<uint16_t>(localPort), static_cast<uint16_t>(remotePort), state, tx, rx);
    }
  }
  std::fclose(f);
}

constexpr unsigned kTcpEstablished = 0x01, kTcpListen = 0x0a;

}  // namespace

TcpSocketInfo establishedSocket(uint16_t localPort, uint16_t remotePort) {
  TcpSocketInfo info;
  forEachSocket("/proc/net/tcp", [&](uint16_t lp, uint16_t rp, unsigned state, uint64_t tx, uint64_t rx) {
    if (lp == localPort && rp == remotePort && state == kTcpEstablished) info = {true, tx, rx};
  });
  return info;
}

bool tcpListening(uint16_t port) {
  bool found = false;
  forEachSocket("/proc/net/tcp", [&](uint16_t lp, uint16_t, unsigned state, uint64_t, uint64_t) {
    found = found || (lp == port && state == kTcpListen);
  });
  return found;
}

bool udpBound(uint16_t port) {
  bool found = false;
  forEachSocket("/proc/net/udp",
                [&](uint16_t lp, uint16_t, unsigned, uint64_t, uint64_t) { found = found || lp == port; });
  return found;
}

uint16_t deadPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  uint16_t port = boundPort(fd);
  ::close(fd);
  return port;
}

int openFdCount() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the DIR's own fd
}

}  // namespace skiff::proxy::testing
