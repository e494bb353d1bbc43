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

int connectTo(uint16_t port, int timeoutMs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

}  // namespace

std::string readAll(int fd, int timeoutMs) {
  std::string out;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    if (!waitReadable(fd, deadline)) {
      // A hang is not an EOF: it must not pass for a closed connection.
      ADD_FAILURE() << "readAll: no EOF within " << timeoutMs << " ms (" << out.size() << " bytes read)";
      return out;
    }
    ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;  // EOF, or an error such as a reset
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

std::string readLine(int fd, int timeoutMs) {
  std::string out;
  char c;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    if (!waitReadable(fd, deadline)) {
      ADD_FAILURE() << "readLine: no line within " << timeoutMs << " ms (got \"" << out << "\")";
      return out;
    }
    ssize_t r = ::recv(fd, &c, 1, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r != 1) return out;  // EOF or an error before the newline
    if (c == '\n') return out;
    out.push_back(c);
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
