// Two hosts in one machine: each "host" is a network namespace with its own
// Overlay (its netlink socket opened inside it), joined to the other by a veth
// "underlay" 198.51.100.1/24 <-> 198.51.100.2/24 with no route anywhere else.
// "Containers" are further namespaces. The binary itself runs in a fresh
// netns (netns_main.cc) and creates nothing there; the fixture deletes every
// link it made and closes every namespace fd in TearDown, also after a failed
// assertion, and the kernel frees a namespace with its last fd.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "netns_testing.h"
#include "skiff/common/fd.h"
#include "skiff/overlay/overlay.h"
#include "skiff/overlay/peers.h"

namespace skiff::overlay {
namespace {

// A fresh network namespace, created by a forked child with unshare() and
// kept alive by our fd on /proc/<pid>/ns/net once the child is gone.
class ChildNetns {
 public:
  ChildNetns() {
    int ready[2], release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return;
    if (::pipe2(release, O_CLOEXEC) != 0) {
      ::close(ready[0]);
      ::close(ready[1]);
      return;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      ::close(release[1]);
      char c = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(release[0], &c, 1);
      ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    char c = 'n';
    if (pid > 0 && ::read(ready[0], &c, 1) == 1 && c == 'y') {
      std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
      fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    }
    ::close(ready[0]);
    ::close(release[1]);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

Ipv4 ip(const char* s) { return *Ipv4::parse(s); }

UniqueFd socketIn(int netnsFd, int type) {
  int out = -1;
  std::thread t([&] {
    if (::setns(netnsFd, CLONE_NEWNET) != 0) return;
    out = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  });
  t.join();
  return UniqueFd(out);
}

sockaddr_in addr(Ipv4 a, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = a.networkOrder();
  sa.sin_port = htons(port);
  return sa;
}

struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
};

// Binds only when the address is configured in that netns.
Listener listenIn(int netnsFd, Ipv4 at) {
  Listener l{socketIn(netnsFd, SOCK_STREAM), 0};
  if (!l.fd) return l;
  auto sa = addr(at, 0);
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(l.fd.get(), 8) != 0) {
    ADD_FAILURE() << "bind/listen on " << at.str() << ": " << std::strerror(errno);
    l.fd.reset();
    return l;
  }
  socklen_t len = sizeof(sa);
  ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  l.port = ntohs(sa.sin_port);
  return l;
}

// Connects from `fromNetns` to the listener at `to` and checks that the bytes
// sent arrive. "" on success, else what went wrong ("connect timed out"...).
std::string exchange(int fromNetns, const Listener& l, Ipv4 to, int timeoutMs = 5000) {
  if (!l.fd) return "no listener";
  UniqueFd c = socketIn(fromNetns, SOCK_STREAM | SOCK_NONBLOCK);
  if (!c) return "socket failed";
  auto sa = addr(to, l.port);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS)
    return std::string("connect: ") + std::strerror(errno);
  pollfd p{c.get(), POLLOUT, 0};
  if (::poll(&p, 1, timeoutMs) != 1) return "connect timed out";
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return std::string("connect: ") + std::strerror(err);
  const std::string payload = "hello across the overlay";
  if (::send(c.get(), payload.data(), payload.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(payload.size()))
    return "send failed";
  pollfd lp{l.fd.get(), POLLIN, 0};
  if (::poll(&lp, 1, timeoutMs) != 1) return "accept timed out";
  UniqueFd a(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!a) return "accept failed";
  std::string got;
  while (got.size() < payload.size()) {
    pollfd ap{a.get(), POLLIN, 0};
    if (::poll(&ap, 1, timeoutMs) != 1) return "no data (got '" + got + "')";
    char buf[64];
    ssize_t n = ::recv(a.get(), buf, sizeof(buf), 0);
    if (n <= 0) return "connection closed after '" + got + "'";
    got.append(buf, static_cast<size_t>(n));
  }
  return got == payload ? "" : "wrong bytes: '" + got + "'";
}

// Sends `size` bytes from a TCP client in `fromNetns` to the listener at `to`
// and reads every one of them on the accepted side. "" on success, else what
// went wrong. Bounded: each send, connect and read gives up after 5 s.
std::string transfer(int fromNetns, const Listener& l, Ipv4 to, size_t size) {
  if (!l.fd) return "no listener";
  UniqueFd c = socketIn(fromNetns, SOCK_STREAM);
  if (!c) return "socket failed";
  timeval tv{5, 0};
  ::setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // connect and send
  auto sa = addr(to, l.port);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    return std::string("connect: ") + std::strerror(errno);
  pollfd lp{l.fd.get(), POLLIN, 0};
  if (::poll(&lp, 1, 5000) != 1) return "accept timed out";
  UniqueFd a(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!a) return "accept failed";
  std::string sendError;
  std::thread sender([&] {
    const std::vector<char> chunk(64 * 1024, 'x');
    for (size_t sent = 0; sent < size;) {
      ssize_t n = ::send(c.get(), chunk.data(), std::min(chunk.size(), size - sent), MSG_NOSIGNAL);
      if (n <= 0) {
        sendError = std::string("send: ") + std::strerror(errno);
        return;
      }
      sent += static_cast<size_t>(n);
    }
  });
  size_t got = 0;
  std::vector<char> buf(64 * 1024);
  while (got < size) {
    pollfd ap{a.get(), POLLIN, 0};
    if (::poll(&ap, 1, 5000) != 1) break;
    ssize_t n = ::recv(a.get(), buf.data(), buf.size(), 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  sender.join();
  if (!sendError.empty()) return sendError;
  return got == size ? "" : "received " + std::to_string(got) + " of " + std::to_string(size) + " bytes";
}

// The counters of one device of a network (kind "vxlan" or "bridge") as
// Overlay::networkStats() reads them; a failure when it is missing.
LinkStats countersOf(Overlay& overlay, const NetworkConfig& cfg, const std::string& kind) {
  auto stats = overlay.networkStats(cfg);
  if (!stats.ok()) {
    ADD_FAILURE() << stats.error().message;
    return {};
  }
  for (const auto& d : *stats) {
    if (d.kind == kind) return d.stats;
  }
  ADD_FAILURE() << "no " << kind << " device in network " << cfg.name;
  return {};
}

// Runs a command (ip, bridge) inside a netns and returns its stdout+stderr,
// prefixed by "exit N: " when it fails.
std::string runIn(int netnsFd, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setns(netnsFd, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  ::close(out[0]);
  int status = 0;
  if (pid < 0) return "fork failed";
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ": " + text;
  return text;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string show(const std::vector<Peer>& peers) {
  std::string out;
  for (const Peer& p : peers)
    out += std::to_string(p.vni) + " " + p.ip.str() + " " + p.mac + " via " + p.vtep.str() + "\n";
  return out;
}

Status linkUp(NetlinkTransport& nl, const std::string& name) {
  auto l = findLink(nl, name);
  if (!l.ok()) return l.error();
  if (!*l) return Error::msg(name + " missing", ENODEV);
  auto r = nl.request(nl::setLink((*l)->index, std::nullopt, std::nullopt, true));
  if (!r.ok()) return r.error();
  return okStatus();
}

NetworkConfig network(const char* name, uint32_t vni, const char* subnet, const char* local) {
  NetworkConfig c;
  c.name = name;
  c.vni = vni;
  c.subnet = *Subnet::parse(subnet);
  c.local = local;
  return c;
}

constexpr const char* kUnderlayA = "198.51.100.1";
constexpr const char* kUnderlayB = "198.51.100.2";

class MultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIFF_REQUIRE_ISOLATED();
    for (int fd : {hostA_.fd(), hostB_.fd(), contA_.fd(), contB_.fd()}) ASSERT_GE(fd, 0);
    auto a = openNetlinkInNetns(hostA_.fd());
    auto b = openNetlinkInNetns(hostB_.fd());
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    nlA_ = std::move(a.value());
    nlB_ = std::move(b.value());
    overlayA_ = std::make_unique<Overlay>(*nlA_);
    overlayB_ = std::make_unique<Overlay>(*nlB_);

    // The underlay: "ul0" in A, its peer "ul0" made directly in B.
    ASSERT_TRUE(nlA_->request(nl::newVeth("ul0", "ul0", hostB_.fd(), 1500, "")).ok());
    auto ulA = findLink(*nlA_, "ul0");
    auto ulB = findLink(*nlB_, "ul0");
    ASSERT_TRUE(ulA.ok() && *ulA && ulB.ok() && *ulB);
    ASSERT_TRUE(nlA_->request(nl::newAddr((*ulA)->index, ip(kUnderlayA), 24)).ok());
    ASSERT_TRUE(nlB_->request(nl::newAddr((*ulB)->index, ip(kUnderlayB), 24)).ok());
    for (NetlinkTransport* t : {nlA_.get(), nlB_.get()}) {
      ASSERT_TRUE(linkUp(*t, "ul0").ok());
      ASSERT_TRUE(linkUp(*t, "lo").ok());
    }
  }

  // Deletes what the test made, in both hosts, whatever state it left; the
  // namespaces go when the members close their fds after this.
  void TearDown() override {
    for (auto [overlay, nl] : {std::pair{overlayA_.get(), nlA_.get()}, std::pair{overlayB_.get(), nlB_.get()}}) {
      if (!overlay) continue;
      auto vnis = overlay->listNetworks();
      EXPECT_TRUE(vnis.ok());
      for (uint32_t vni : vnis.ok() ? *vnis : std::vector<uint32_t>{}) {
        NetworkConfig c;
        c.name = "cleanup";
        c.vni = vni;
        EXPECT_TRUE(overlay->removeNetwork(c).ok());
      }
      (void)nl->request(nl::delLink("ul0"));  // ENODEV once the peer side went first
      auto left = overlay->listNetworks();
      EXPECT_TRUE(left.ok() && left->empty()) << "networks left behind";
      auto ul = findLink(*nl, "ul0");
      EXPECT_TRUE(ul.ok() && !*ul) << "underlay link left behind";
    }
    overlayA_.reset();
    overlayB_.reset();
    nlA_.reset();  // a socket holds its netns: close before the namespace fds
    nlB_.reset();
  }

  // Both hosts carry the network; one container on each.
  void twoContainers(NetworkConfig& cfgA, NetworkConfig& cfgB, Ipv4 ipA, Ipv4 ipB) {
    ASSERT_TRUE(overlayA_->ensureNetwork(cfgA).ok());
    ASSERT_TRUE(overlayB_->ensureNetwork(cfgB).ok());
    auto ea = overlayA_->attach(cfgA, contA_.fd(), "a1a1a1a1", "eth0", ipA);
    auto eb = overlayB_->attach(cfgB, contB_.fd(), "b2b2b2b2", "eth0", ipB);
    ASSERT_TRUE(ea.ok()) << ea.error().message;
    ASSERT_TRUE(eb.ok()) << eb.error().message;
    macA_ = ea->mac;
    macB_ = eb->mac;
  }

  ChildNetns hostA_, hostB_, contA_, contB_;
  std::unique_ptr<NetlinkTransport> nlA_, nlB_;
  std::unique_ptr<Overlay> overlayA_, overlayB_;
  std::string macA_, macB_;
};

TEST_F(MultiHost, ContainerReachesTheOtherHostsContainerOnlyWhilePeersAreProgrammed) {
  auto cfgA = network("webnet", 4097, "10.0.1.0/24", kUnderlayA);
  auto cfgB = network("webnet", 4097, "10.0.1.0/24", kUnderlayB);
  ASSERT_NO_FATAL_FAILURE(twoContainers(cfgA, cfgB, ip("10.0.1.2"), ip("10.0.1.3")));
  EXPECT_EQ(macB_, "02:42:0a:00:01:03");
  Listener l = listenIn(contB_.fd(), ip("10.0.1.3"));
  ASSERT_TRUE(l.fd);

  // No peers yet: nothing is flooded between hosts, the SYN goes nowhere.
  EXPECT_NE(exchange(contA_.fd(), l, ip("10.0.1.3"), 1000), "");

  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3")).ok());
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3")).ok());
  ASSERT_TRUE(overlayB_->addRemotePeer(cfgB, ip(kUnderlayA), macA_, ip("10.0.1.2")).ok());
  EXPECT_EQ(exchange(contA_.fd(), l, ip("10.0.1.3")), "");

  // What an operator sees on host A.
  const std::string fdb = runIn(hostA_.fd(), {"bridge", "fdb", "show", "dev", "skvx-4097"});
  EXPECT_TRUE(contains(fdb, "02:42:0a:00:01:03 dst 198.51.100.2 self permanent")) << fdb;
  const std::string neigh = runIn(hostA_.fd(), {"ip", "neigh", "show", "dev", "skvx-4097"});
  EXPECT_TRUE(contains(neigh, "10.0.1.3 lladdr 02:42:0a:00:01:03 PERMANENT")) << neigh;

  auto peersA = overlayA_->listPeers(cfgA);
  auto peersB = overlayB_->listPeers(cfgB);
  ASSERT_TRUE(peersA.ok() && peersB.ok());
  EXPECT_EQ(*peersA, (std::vector<Peer>{{4097, ip("10.0.1.3"), "02:42:0a:00:01:03", ip("198.51.100.2")}}))
      << show(*peersA);
  EXPECT_EQ(*peersB, (std::vector<Peer>{{4097, ip("10.0.1.2"), "02:42:0a:00:01:02", ip("198.51.100.1")}}))
      << show(*peersB);

  ASSERT_TRUE(overlayA_->removeRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3")).ok());
  auto again = overlayA_->removeRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3"));
  EXPECT_TRUE(again.ok()) << "removing twice: " << again.error().message;
  const std::string fdbAfter = runIn(hostA_.fd(), {"bridge", "fdb", "show", "dev", "skvx-4097"});
  EXPECT_FALSE(contains(fdbAfter, "dst 198.51.100.2")) << fdbAfter;
  EXPECT_FALSE(contains(fdbAfter, "exit ")) << fdbAfter;
  const std::string neighAfter = runIn(hostA_.fd(), {"ip", "neigh", "show", "dev", "skvx-4097"});
  EXPECT_FALSE(contains(neighAfter, "10.0.1.3")) << neighAfter;
  EXPECT_FALSE(contains(neighAfter, "exit ")) << neighAfter;
  auto none = overlayA_->listPeers(cfgA);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty()) << show(*none);
  // Container A still knows B's MAC and the bridge still forwards it to the
  // VXLAN port, but the VXLAN device has nowhere to send it.
  EXPECT_EQ(exchange(contA_.fd(), l, ip("10.0.1.3"), 1000), "connect timed out");

  // Programmed again, traffic passes again.
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3")).ok());
  EXPECT_EQ(exchange(contA_.fd(), l, ip("10.0.1.3")), "");
}

TEST_F(MultiHost, NodeAddressOnTheBridgeIsAPeerByItsComputedMac) {
  // Ingress-style: each node has its own address on the bridge.
  auto cfgA = network("ingress", 256, "10.0.0.0/24", kUnderlayA);
  auto cfgB = network("ingress", 256, "10.0.0.0/24", kUnderlayB);
  cfgA.nodeAddress = std::make_pair(ip("10.0.0.4"), 24);
  cfgB.nodeAddress = std::make_pair(ip("10.0.0.3"), 24);
  ASSERT_NO_FATAL_FAILURE(twoContainers(cfgA, cfgB, ip("10.0.0.2"), ip("10.0.0.5")));
  auto brB = findLink(*nlB_, "skbr-256");
  ASSERT_TRUE(brB.ok() && *brB);
  EXPECT_EQ((*brB)->mac, "02:42:0a:00:00:03");
  EXPECT_EQ(Overlay::macFor(ip("10.0.0.3")), "02:42:0a:00:00:03");

  // A knows B's node address by the MAC it computes; B knows A's container.
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), Overlay::macFor(ip("10.0.0.3")), ip("10.0.0.3")).ok());
  ASSERT_TRUE(overlayB_->addRemotePeer(cfgB, ip(kUnderlayA), macA_, ip("10.0.0.2")).ok());
  Listener l = listenIn(hostB_.fd(), ip("10.0.0.3"));  // the proxy's side on host B
  ASSERT_TRUE(l.fd);
  EXPECT_EQ(exchange(contA_.fd(), l, ip("10.0.0.3")), "");

  // Someone changed the bridge's MAC: ensureNetwork puts it back, and the
  // peer entries other nodes hold stay right.
  ASSERT_TRUE(nlB_->request(nl::setLinkAddress((*brB)->index, *parseMac("02:00:00:00:00:99"))).ok());
  ASSERT_EQ((*findLink(*nlB_, "skbr-256"))->mac, "02:00:00:00:00:99");
  EXPECT_NE(exchange(contA_.fd(), l, ip("10.0.0.3"), 1000), "") << "the old MAC still answered";
  ASSERT_TRUE(overlayB_->ensureNetwork(cfgB).ok());
  EXPECT_EQ((*findLink(*nlB_, "skbr-256"))->mac, "02:42:0a:00:00:03");
  EXPECT_EQ(exchange(contA_.fd(), l, ip("10.0.0.3")), "");
}

// What netd exports as skiff_overlay_*_total: the kernel's counters of the
// network's devices, which grow by at least the bytes that cross them.
TEST_F(MultiHost, CountersGrowByAtLeastTheBytesSentAcrossTheVxlan) {
  auto cfgA = network("webnet", 4097, "10.0.1.0/24", kUnderlayA);
  auto cfgB = network("webnet", 4097, "10.0.1.0/24", kUnderlayB);
  cfgB.nodeAddress = std::make_pair(ip("10.0.1.254"), 24);  // host B's own address on its bridge
  ASSERT_NO_FATAL_FAILURE(twoContainers(cfgA, cfgB, ip("10.0.1.2"), ip("10.0.1.3")));
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), macB_, ip("10.0.1.3")).ok());
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), Overlay::macFor(ip("10.0.1.254")), ip("10.0.1.254")).ok());
  ASSERT_TRUE(overlayB_->addRemotePeer(cfgB, ip(kUnderlayA), macA_, ip("10.0.1.2")).ok());

  // Both devices on both hosts, VXLAN first; none on a network not set up here.
  auto listed = overlayA_->networkStats(cfgA);
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].device, "skvx-4097");
  EXPECT_EQ((*listed)[0].kind, "vxlan");
  EXPECT_EQ((*listed)[1].device, "skbr-4097");
  EXPECT_EQ((*listed)[1].kind, "bridge");
  auto absent = overlayB_->networkStats(network("other", 4098, "10.0.2.0/24", kUnderlayB));
  ASSERT_TRUE(absent.ok()) << absent.error().message;
  EXPECT_TRUE(absent->empty());

  // 1 MiB from container A to container B: through A's VXLAN device (tx)
  // and B's (rx); B's bridge forwards it without counting it as its own.
  constexpr size_t kBytes = 1 << 20;
  const LinkStats vxA0 = countersOf(*overlayA_, cfgA, "vxlan");
  const LinkStats vxB0 = countersOf(*overlayB_, cfgB, "vxlan");
  const LinkStats brB0 = countersOf(*overlayB_, cfgB, "bridge");
  Listener toContainer = listenIn(contB_.fd(), ip("10.0.1.3"));
  ASSERT_EQ(transfer(contA_.fd(), toContainer, ip("10.0.1.3"), kBytes), "");
  const LinkStats vxA1 = countersOf(*overlayA_, cfgA, "vxlan");
  const LinkStats vxB1 = countersOf(*overlayB_, cfgB, "vxlan");
  const LinkStats brB1 = countersOf(*overlayB_, cfgB, "bridge");
  EXPECT_GE(vxA1.txBytes - vxA0.txBytes, kBytes);
  EXPECT_GE(vxB1.rxBytes - vxB0.rxBytes, kBytes);
  EXPECT_GT(vxA1.txPackets, vxA0.txPackets);
  EXPECT_GT(vxB1.rxPackets, vxB0.rxPackets);
  EXPECT_GT(vxA1.rxBytes, vxA0.rxBytes) << "B's acknowledgements come back";
  EXPECT_GT(vxB1.txBytes, vxB0.txBytes);
  EXPECT_LT(brB1.rxBytes - brB0.rxBytes, kBytes) << "forwarded frames are not the bridge's own";

  // 1 MiB from container A to host B's own address: B's bridge receives it.
  Listener toNode = listenIn(hostB_.fd(), ip("10.0.1.254"));
  ASSERT_EQ(transfer(contA_.fd(), toNode, ip("10.0.1.254"), kBytes), "");
  const LinkStats brB2 = countersOf(*overlayB_, cfgB, "bridge");
  EXPECT_GE(brB2.rxBytes - brB1.rxBytes, kBytes);
  EXPECT_GT(brB2.txBytes, brB1.txBytes) << "host B's acknowledgements leave through its bridge";

  // Frames for a MAC no host was told about reach A's VXLAN device through
  // the bridge's flooding and are dropped there (no FDB entry): tx_dropped.
  auto inner = openNetlinkInNetns(contA_.fd());
  ASSERT_TRUE(inner.ok()) << inner.error().message;
  auto eth0 = findLink(**inner, "eth0");
  ASSERT_TRUE(eth0.ok() && *eth0);
  ASSERT_TRUE((*inner)->request(nl::newNeigh((*eth0)->index, ip("10.0.1.99"), *parseMac("02:42:0a:00:01:63"))).ok());
  const LinkStats vxA2 = countersOf(*overlayA_, cfgA, "vxlan");
  constexpr int kDatagrams = 10;
  UniqueFd udp = socketIn(contA_.fd(), SOCK_DGRAM);
  ASSERT_TRUE(udp);
  auto nowhere = addr(ip("10.0.1.99"), 9);
  for (int i = 0; i < kDatagrams; ++i) {
    ASSERT_EQ(::sendto(udp.get(), "lost", 4, 0, reinterpret_cast<sockaddr*>(&nowhere), sizeof(nowhere)), 4);
  }
  // The drop is counted as the frame is sent; allow the softirq a moment.
  LinkStats vxA3;
  for (int attempt = 0; attempt < 100; ++attempt) {
    vxA3 = countersOf(*overlayA_, cfgA, "vxlan");
    if (vxA3.txDropped - vxA2.txDropped >= kDatagrams) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(vxA3.txDropped - vxA2.txDropped, static_cast<uint64_t>(kDatagrams));
  EXPECT_EQ(vxA3.txErrors, vxA0.txErrors);
}

TEST_F(MultiHost, ListNetworksSeesDevicesLeftByAPreviousLife) {
  auto web = network("webnet", 4097, "10.0.1.0/24", kUnderlayA);
  auto ingress = network("ingress", 256, "10.0.0.0/24", kUnderlayA);
  ASSERT_TRUE(overlayA_->ensureNetwork(web).ok());
  ASSERT_TRUE(overlayA_->ensureNetwork(ingress).ok());
  // A VXLAN device whose bridge is already gone (an interrupted removal).
  nl::VxlanParams stray;
  stray.vni = 77;
  ASSERT_TRUE(nlA_->request(nl::newVxlan("skvx-77", stray, 1450)).ok());
  auto vnis = overlayA_->listNetworks();
  ASSERT_TRUE(vnis.ok()) << vnis.error().message;
  EXPECT_EQ(*vnis, (std::vector<uint32_t>{77, 256, 4097}));
  auto onB = overlayB_->listNetworks();
  ASSERT_TRUE(onB.ok());
  EXPECT_TRUE(onB->empty()) << "host B's namespace has none of them";

  for (uint32_t vni : *vnis) {
    NetworkConfig c;
    c.name = "stale";
    c.vni = vni;
    ASSERT_TRUE(overlayA_->removeNetwork(c).ok());
  }
  auto after = overlayA_->listNetworks();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
  EXPECT_EQ(runIn(hostA_.fd(), {"ip", "-o", "link", "show", "type", "vxlan"}), "");
}

TEST_F(MultiHost, ReconcileThroughListPeersAndDiffPeersReachesTheWantedEntries) {
  auto cfgA = network("webnet", 4097, "10.0.1.0/24", kUnderlayA);
  ASSERT_TRUE(overlayA_->ensureNetwork(cfgA).ok());
  auto vx = findLink(*nlA_, "skvx-4097");
  ASSERT_TRUE(vx.ok() && *vx);
  // A previous life left: a whole stale peer, an FDB entry without its
  // neighbour entry and a neighbour entry without its FDB entry.
  ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, ip(kUnderlayB), "02:42:0a:00:01:07", ip("10.0.1.7")).ok());
  ASSERT_TRUE(nlA_->request(nl::newFdb((*vx)->index, *parseMac("02:42:0a:00:01:09"), ip(kUnderlayB))).ok());
  ASSERT_TRUE(nlA_->request(nl::newNeigh((*vx)->index, ip("10.0.1.8"), *parseMac("02:42:0a:00:01:08"))).ok());
  auto before = overlayA_->listPeers(cfgA);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_EQ(*before, (std::vector<Peer>{
                         {4097, ip("0.0.0.0"), "02:42:0a:00:01:09", ip("198.51.100.2")},
                         {4097, ip("10.0.1.7"), "02:42:0a:00:01:07", ip("198.51.100.2")},
                         {4097, ip("10.0.1.8"), "02:42:0a:00:01:08", ip("0.0.0.0")},
                     }))
      << show(*before);

  const std::vector<Peer> wanted = {
      {4097, ip("10.0.1.3"), "02:42:0a:00:01:03", ip("198.51.100.2")},
      {4097, ip("10.0.1.8"), "02:42:0a:00:01:08", ip("198.51.100.2")},
  };
  for (int round = 0; round < 2; ++round) {  // the second round finds nothing to do
    auto diff = diffPeers(*overlayA_->listPeers(cfgA), wanted);
    if (round == 1) {
      EXPECT_TRUE(diff.remove.empty()) << show(diff.remove);
      EXPECT_TRUE(diff.add.empty()) << show(diff.add);
    }
    for (const Peer& p : diff.remove)
      ASSERT_TRUE(overlayA_->removeRemotePeer(cfgA, p.vtep, p.mac, p.ip).ok()) << show({p});
    for (const Peer& p : diff.add) ASSERT_TRUE(overlayA_->addRemotePeer(cfgA, p.vtep, p.mac, p.ip).ok()) << show({p});
  }
  auto after = overlayA_->listPeers(cfgA);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, wanted) << show(*after);
  const std::string fdb = runIn(hostA_.fd(), {"bridge", "fdb", "show", "dev", "skvx-4097"});
  EXPECT_FALSE(contains(fdb, "02:42:0a:00:01:09")) << fdb;
  EXPECT_FALSE(contains(fdb, "02:42:0a:00:01:07")) << fdb;
  EXPECT_TRUE(contains(fdb, "02:42:0a:00:01:08 dst 198.51.100.2 self permanent")) << fdb;
}

}  // namespace
}  // namespace skiff::overlay
