// The socket-LB on a real kernel, in this binary's own network namespace
// and a cgroup2 directory the fixture makes and removes: the test process
// moves itself into it, so the programs see only its sockets (and filter
// on this namespace's cookie besides). Backends are listeners on
// 127.0.0.2-4; which one a connect reached is read off their accept queues.

#include "skiff/socklb/socklb.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "netns_testing.h"
#include "skiff/common/fd.h"

#ifdef SKIFF_SOCKLB
#include <bpf/bpf.h>
#endif

namespace skiff::socklb {
namespace {

sockaddr_in addrOf(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

std::string str(const sockaddr_in& a) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a.sin_port));
}

UniqueFd bound(const std::string& ip, uint16_t port, int type) {
  UniqueFd fd(socket(AF_INET, type | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = addrOf(ip, port);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  if (type == SOCK_STREAM && listen(fd.get(), 64) != 0) return UniqueFd();
  return fd;
}

bool readable(int fd, int timeoutMs) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeoutMs) == 1;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

const Endpoint kFront{"127.0.0.1", 4000};
const std::vector<Endpoint> kBackends = {{"127.0.0.2", 8001}, {"127.0.0.3", 8001}, {"127.0.0.4", 8001}};

class SocketLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_ISOLATED();
    if (!builtWithBpf()) GTEST_SKIP() << "built without libbpf/clang: no kernel path to test";
    auto root = cgroup2Root();
    ASSERT_TRUE(root.ok()) << root.error().message;
    root_ = *root;
    cgroup_ = root_ + "/skiff-socklb-test-" + std::to_string(getpid());
    ASSERT_EQ(mkdir(cgroup_.c_str(), 0755), 0) << cgroup_ << ": " << std::strerror(errno);
    ASSERT_TRUE(writeFile(cgroup_ + "/cgroup.procs", std::to_string(getpid())));
    moved_ = true;
    for (const auto& b : kBackends) {
      tcp_.push_back(bound(b.ip, b.port, SOCK_STREAM));
      udp_.push_back(bound(b.ip, b.port, SOCK_DGRAM));
      ASSERT_TRUE(tcp_.back() && udp_.back()) << b.str() << ": " << std::strerror(errno);
    }
  }
  void TearDown() override {
    lb_.reset();
    if (moved_) (void)writeFile(root_ + "/cgroup.procs", std::to_string(getpid()));
    if (!cgroup_.empty()) rmdir(cgroup_.c_str());
  }

  void open() {
    auto lb = SocketLb::open(Options{cgroup_});
    ASSERT_TRUE(lb.ok()) << lb.error().message;
    lb_ = std::move(*lb);
  }
  Service tcpService(std::vector<Endpoint> backends = kBackends) {
    Service s;
    s.frontends = {kFront};
    s.backends = std::move(backends);
    return s;
  }

  // Connects to the frontend; the index of the backend whose queue got the
  // connection (-1: none), and the client socket in *client.
  int connectTcp(UniqueFd* client = nullptr) {
    UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = addrOf(kFront.ip, kFront.port);
    if (connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    for (size_t i = 0; i < tcp_.size(); ++i) {
      if (!readable(tcp_[i].get(), 0)) continue;
      UniqueFd accepted(accept4(tcp_[i].get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client != nullptr) *client = std::move(c);
      return static_cast<int>(i);
    }
    return -1;
  }

  std::string root_, cgroup_;
  bool moved_ = false;
  std::vector<UniqueFd> tcp_, udp_;
  std::unique_ptr<SocketLb> lb_;
};

TEST_F(SocketLbTest, ConnectsToThePublishedAddressLandOnBackendsTwoByTwo) {
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  std::vector<int> got;
  for (int i = 0; i < 6; ++i) got.push_back(connectTcp());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 0, 1, 2}));
  auto picks = lb_->picks();
  for (const auto& b : kBackends) EXPECT_EQ(picks["lab_web"][b], 2u) << b.str();
}

TEST_F(SocketLbTest, TheClientSeesTheAddressItDialled) {
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  UniqueFd client;
  ASSERT_EQ(connectTcp(&client), 0);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(getpeername(client.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  EXPECT_EQ(str(peer), "127.0.0.1:4000");
}

TEST_F(SocketLbTest, TheRotationIsOneCounterSharedWithTheProxy) {
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  uint64_t* turns = lb_->turns("lab_web");
  ASSERT_NE(turns, nullptr);
  EXPECT_EQ(connectTcp(), 0);
  // The proxy takes the next turn (backend 1) for a client from elsewhere.
  EXPECT_EQ(std::atomic_ref<uint64_t>(*turns).fetch_add(1), 1u);
  EXPECT_EQ(connectTcp(), 2);
  EXPECT_EQ(std::atomic_ref<uint64_t>(*turns).load(), 3u);
  EXPECT_EQ(lb_->turns("no_such_service"), nullptr);
}

TEST_F(SocketLbTest, ABackendTakenOutIsNeverChosen) {
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  ASSERT_TRUE(lb_->setService("lab_web", tcpService({kBackends[0], kBackends[2]})).ok());
  for (int i = 0; i < 10; ++i) EXPECT_NE(connectTcp(), 1);
}

TEST_F(SocketLbTest, ALocalBackendWhoseSocketIsGoneIsPassedOverAtOnce) {
  // What a replica that died looks like before netd has heard of it: still
  // in the map, its listening socket closed.
  open();
  std::vector<Endpoint> local;
  for (auto b : kBackends) {
    b.pid = getpid();
    local.push_back(b);
  }
  ASSERT_TRUE(lb_->setService("lab_web", tcpService(local)).ok());
  tcp_[1].reset();
  std::vector<int> got;
  for (int i = 0; i < 6; ++i) got.push_back(connectTcp());
  // Each pass over the dead one takes its turn, as the proxy's pick does.
  EXPECT_EQ(got, (std::vector<int>{0, 2, 0, 2, 0, 2}));
  // UDP too: a flow is not sent to a socket that is gone.
  udp_[1].reset();
  Service s = tcpService(local);
  s.protocol = Protocol::kUdp;
  ASSERT_TRUE(lb_->setService("lab_dns", s).ok());
  auto front = addrOf(kFront.ip, kFront.port);
  for (int i = 0; i < 3; ++i) {
    UniqueFd c(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(sendto(c.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&front), sizeof front), 1);
    EXPECT_TRUE(readable(udp_[0].get(), 200) || readable(udp_[2].get(), 200)) << "datagram " << i << " lost";
    for (int b : {0, 2}) {
      char buf[8];
      while (readable(udp_[b].get(), 0)) (void)!recv(udp_[b].get(), buf, sizeof buf, 0);
    }
  }
}

// A replica in a network namespace of its own, as netd's are: a child
// process in a new netns behind a veth. The programs look for its socket
// there (by the namespace's id, which socklb assigns over rtnetlink).
TEST_F(SocketLbTest, AReplicaInItsOwnNamespaceIsCheckedThere) {
  int down[2], up[2];
  ASSERT_EQ(pipe2(down, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(up, O_CLOEXEC), 0);
  UniqueFd toChild(down[1]), fromParent(down[0]), toParent(up[1]), fromChild(up[0]);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto say = [&](char c) { (void)!write(toParent.get(), &c, 1); };
    auto hear = [&] {
      char c = 0;
      return read(fromParent.get(), &c, 1) == 1 ? c : 'q';
    };
    if (unshare(CLONE_NEWNET) != 0) _exit(10);
    say('u');
    if (hear() != 'c') _exit(11);
    if (std::system("ip addr add 10.201.0.2/24 dev sklbt1 && ip link set sklbt1 up") != 0) _exit(12);
    UniqueFd l = bound("10.201.0.2", 8001, SOCK_STREAM);
    if (!l) _exit(13);
    say('l');
    while (char c = hear()) {
      if (c == 'x') {
        l.reset();
        say('d');
      } else {
        _exit(0);
      }
    }
  }
  toParent.reset();
  fromParent.reset();
  auto hear = [&] {
    char c = 0;
    return read(fromChild.get(), &c, 1) == 1 ? c : '?';
  };
  auto say = [&](char c) { ASSERT_EQ(write(toChild.get(), &c, 1), 1); };
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reap{child};
  ASSERT_EQ(hear(), 'u');
  std::string veth = "ip link add sklbt0 type veth peer name sklbt1 netns ";
  veth += std::to_string(child);
  veth += " && ip addr add 10.201.0.1/24 dev sklbt0 && ip link set sklbt0 up";
  ASSERT_EQ(std::system(veth.c_str()), 0);
  say('c');
  ASSERT_EQ(hear(), 'l') << "the child could not listen on 10.201.0.2:8001";

  open();
  ASSERT_TRUE(
      lb_->setService("lab_web", tcpService({{"10.201.0.2", 8001, child}, {"127.0.0.2", 8001, getpid()}})).ok());
  auto front = addrOf(kFront.ip, kFront.port);
  auto dial = [&] {
    UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(c.get(), reinterpret_cast<sockaddr*>(&front), sizeof front) != 0) return std::string("refused");
    if (readable(tcp_[0].get(), 0)) {
      UniqueFd(accept4(tcp_[0].get(), nullptr, nullptr, SOCK_CLOEXEC));
      return std::string("local");
    }
    return std::string("child");
  };
  EXPECT_EQ(dial(), "child");
  EXPECT_EQ(dial(), "local");
  say('x');
  ASSERT_EQ(hear(), 'd');
  // Its socket is gone, it is still in the map: every connect lands here.
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) got.push_back(dial());
  EXPECT_EQ(got, (std::vector<std::string>{"local", "local", "local", "local"}));
}

TEST_F(SocketLbTest, WithoutBackendsOrOnceRemovedTheProxyGetsTheClient) {
  UniqueFd proxy = bound(kFront.ip, kFront.port, SOCK_STREAM);
  ASSERT_TRUE(proxy);
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService({})).ok());
  EXPECT_EQ(connectTcp(), -1);
  EXPECT_TRUE(readable(proxy.get(), 1000)) << "the proxy's listener got no connection";
  UniqueFd(accept4(proxy.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  EXPECT_EQ(connectTcp(), 0);
  ASSERT_TRUE(lb_->removeService("lab_web").ok());
  EXPECT_EQ(connectTcp(), -1);
  EXPECT_TRUE(readable(proxy.get(), 1000));
}

TEST_F(SocketLbTest, AClientInAnotherNamespaceIsNotRewritten) {
  open();
  ASSERT_TRUE(lb_->setService("lab_web", tcpService()).ok());
  // The child shares this cgroup, so the programs run for its connect, but
  // its namespace is not the one served: it must reach its own listener.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNET) != 0) _exit(10);
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_UP;
    if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) _exit(11);
    UniqueFd own = bound(kFront.ip, kFront.port, SOCK_STREAM);
    if (!own) _exit(12);
    UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = addrOf(kFront.ip, kFront.port);
    if (connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(13);
    _exit(readable(own.get(), 1000) ? 0 : 14);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 unshare, 11 lo up, 12 bind, 13 connect rewritten, 14 not accepted";
  for (const auto& l : tcp_) EXPECT_FALSE(readable(l.get(), 0));
  EXPECT_TRUE(lb_->picks().empty());
}

// Receives one datagram on backend i and answers it with "b<i>".
bool answer(int backendFd, int i) {
  if (!readable(backendFd, 1000)) return false;
  char buf[64];
  sockaddr_in from{};
  socklen_t len = sizeof from;
  if (recvfrom(backendFd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len) < 0) return false;
  std::string reply = "b";
  reply += std::to_string(i);
  return sendto(backendFd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len) ==
         static_cast<ssize_t>(reply.size());
}

TEST_F(SocketLbTest, UdpRepliesSeemToComeFromThePublishedAddress) {
  open();
  Service s = tcpService();
  s.protocol = Protocol::kUdp;
  ASSERT_TRUE(lb_->setService("lab_dns", s).ok());
  auto front = addrOf(kFront.ip, kFront.port);
  std::vector<int> got;
  for (int client = 0; client < 3; ++client) {
    UniqueFd c(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // Two datagrams from one socket: one flow, one backend.
    for (int n = 0; n < 2; ++n) {
      ASSERT_EQ(sendto(c.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&front), sizeof front), 1);
      int which = -1;
      for (size_t i = 0; i < udp_.size(); ++i) {
        if (readable(udp_[i].get(), 0) || (i + 1 == udp_.size() && which < 0 && readable(udp_[i].get(), 200))) {
          ASSERT_TRUE(answer(udp_[i].get(), static_cast<int>(i)));
          which = static_cast<int>(i);
          break;
        }
      }
      ASSERT_GE(which, 0) << "no backend got the datagram";
      if (n == 1) {
        EXPECT_EQ(which, got.back()) << "a flow changed backend";
      } else {
        got.push_back(which);
      }
      ASSERT_TRUE(readable(c.get(), 1000));
      char buf[16] = {};
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ASSERT_EQ(recvfrom(c.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len), 2);
      EXPECT_EQ(str(from), "127.0.0.1:4000") << "the reply shows the backend's address";
      std::string want = "b";
      want += std::to_string(which);
      EXPECT_EQ(std::string(buf), want);
    }
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));

  // Connected UDP goes through connect4, and getpeername says the frontend.
  UniqueFd c(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&front), sizeof front), 0);
  ASSERT_EQ(send(c.get(), "q", 1, 0), 1);
  ASSERT_TRUE(answer(udp_[0].get(), 0)) << "connected UDP did not go to the next backend";
  ASSERT_TRUE(readable(c.get(), 1000));
  char buf[16] = {};
  EXPECT_EQ(recv(c.get(), buf, sizeof buf, 0), 2);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(getpeername(c.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  EXPECT_EQ(str(peer), "127.0.0.1:4000");
}

#ifdef SKIFF_SOCKLB
// Programs attached to the cgroup for one hook, as `bpftool cgroup tree` lists them.
int attachedPrograms(const std::string& cgroup, bpf_attach_type type) {
  UniqueFd cg(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  __u32 ids[8] = {};
  __u32 count = 8;
  __u32 flags = 0;
  if (bpf_prog_query(cg.get(), type, 0, &flags, ids, &count) != 0) return -1;
  return static_cast<int>(count);
}

TEST_F(SocketLbTest, KillingTheOwnerLeavesNoProgramAttached) {
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  UniqueFd readEnd(ready[0]), writeEnd(ready[1]);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lb = SocketLb::open(Options{cgroup_});
    char c = lb.ok() ? 'y' : 'n';
    (void)!write(writeEnd.get(), &c, 1);
    for (;;) pause();
  }
  writeEnd.reset();
  char c = 0;
  ASSERT_EQ(read(readEnd.get(), &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(attachedPrograms(cgroup_, BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(attachedPrograms(cgroup_, BPF_CGROUP_INET4_GETPEERNAME), 1);
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  // The links close with the process; the kernel detaches them at once.
  for (auto type :
       {BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_INET4_GETPEERNAME})
    EXPECT_EQ(attachedPrograms(cgroup_, type), 0) << type;
  // And so does a SocketLb that is destroyed.
  open();
  EXPECT_EQ(attachedPrograms(cgroup_, BPF_CGROUP_INET4_CONNECT), 1);
  lb_.reset();
  EXPECT_EQ(attachedPrograms(cgroup_, BPF_CGROUP_INET4_CONNECT), 0);
}
#endif

TEST_F(SocketLbTest, AMissingCgroupIsNamed) {
  auto lb = SocketLb::open(Options{cgroup_ + "/no-such-dir"});
  ASSERT_FALSE(lb.ok());
  EXPECT_EQ(lb.error().message,
            "socket load balancer: open cgroup " + cgroup_ + "/no-such-dir: No such file or directory");
}

}  // namespace
}  // namespace skiff::socklb
