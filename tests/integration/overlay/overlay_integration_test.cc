// Real kernel, real namespaces. The whole binary already runs in its own
// network namespace (netns_main.cc); "containers" and "hosts" are further
// namespaces held by forked children, so nothing here touches the root netns.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "netns_testing.h"
#include "skiff/common/fd.h"
#include "skiff/overlay/overlay.h"

namespace skiff::overlay {
namespace {

// A fresh network namespace, created by a forked child with unshare() and
// kept alive by our fd on /proc/<pid>/ns/net once the child is gone.
class ChildNetns {
 public:
  ChildNetns() {
    int ready[2], release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) return;
    pid_t pid = ::fork();
    if (pid == 0) {
      // Child: only async-signal-safe calls until _exit. Drop our copies of
      // the parent's ends, or the release pipe would never reach EOF.
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
    ::close(release[1]);  // lets the child exit; our fd keeps the netns
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

// Creates a socket inside another netns; it stays bound to that netns.
UniqueFd socketIn(int netnsFd, int type) {
  int out = -1;
  std::thread t([&] {
    if (netnsFd >= 0 && ::setns(netnsFd, CLONE_NEWNET) != 0) return;
    out = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  });
  t.join();
  return UniqueFd(out);
}

sockaddr_in addr(Ipv4 ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = ip.networkOrder();
  sa.sin_port = htons(port);
  return sa;
}

// A TCP listener on ip:0 inside a netns; bind fails if the address is absent.
struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
};
Listener listenIn(int netnsFd, Ipv4 ip) {
  Listener l{socketIn(netnsFd, SOCK_STREAM), 0};
  if (!l.fd) return l;
  auto sa = addr(ip, 0);
  if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(l.fd.get(), 4) != 0) {
    ADD_FAILURE() << "bind/listen on " << ip.str() << ": " << std::strerror(errno);
    l.fd.reset();
    return l;
  }
  socklen_t len = sizeof(sa);
  ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  l.port = ntohs(sa.sin_port);
  return l;
}

// Connects from `fromNetns` (-1: this netns) and checks the bytes arrive.
// Returns "" on success, otherwise what went wrong.
std::string exchange(int fromNetns, const Listener& l, Ipv4 ip) {
  if (!l.fd) return "no listener";
  UniqueFd c = socketIn(fromNetns, SOCK_STREAM | SOCK_NONBLOCK);
  if (!c) return "socket failed";
  auto sa = addr(ip, l.port);
  if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 && errno != EINPROGRESS)
    return std::string("connect: ") + std::strerror(errno);
  pollfd p{c.get(), POLLOUT, 0};
  if (::poll(&p, 1, 5000) != 1) return "connect timed out";
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return std::string("connect: ") + std::strerror(err);
  if (::send(c.get(), "ping", 4, MSG_NOSIGNAL) != 4) return "send failed";
  pollfd lp{l.fd.get(), POLLIN, 0};
  if (::poll(&lp, 1, 5000) != 1) return "accept timed out";
  UniqueFd a(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!a) return "accept failed";
  pollfd ap{a.get(), POLLIN, 0};
  if (::poll(&ap, 1, 5000) != 1) return "no data";
  char buf[8] = {};
  if (::recv(a.get(), buf, sizeof(buf), 0) != 4 || std::string(buf, 4) != "ping") return "wrong bytes";
  return "";
}

Ipv4 ip(const char* s) { return *Ipv4::parse(s); }

NetworkConfig net(const char* name, uint32_t vni, const char* subnet) {
  NetworkConfig c;
  c.name = name;
  c.vni = vni;
  c.subnet = *Subnet::parse(subnet);
  c.mtu = 0;  // derive from the underlay
  return c;
}

std::unique_ptr<NetlinkTransport> open() {
  auto t = openNetlink();
  EXPECT_TRUE(t.ok()) << t.error().message;
  return t.ok() ? std::move(t.value()) : nullptr;
}

Status linkUp(NetlinkTransport& nl, const std::string& name) {
  auto l = findLink(nl, name);
  if (!l.ok()) return l.error();
  if (!*l) return Error::msg(name + " missing", ENODEV);
  auto r = nl.request(nl::setLink((*l)->index, std::nullopt, std::nullopt, true));
  if (!r.ok()) return r.error();
  return okStatus();
}

TEST(OverlayIntegration, EnsureNetworkBuildsBridgeAndVxlanIdempotently) {
  SKIFF_REQUIRE_ISOLATED();
  auto nl = open();
  ASSERT_TRUE(nl);
  Overlay overlay(*nl);
  auto mtu = overlay.underlayMtu();
  ASSERT_TRUE(mtu.ok());
  EXPECT_EQ(*mtu, 1500);  // isolated netns: only lo, no default route
  auto cfg = net("webnet", 4097, "10.0.1.0/24");
  ASSERT_TRUE(overlay.ensureNetwork(cfg).ok());
  auto again = overlay.ensureNetwork(cfg);
  ASSERT_TRUE(again.ok()) << again.error().message;

  auto br = findLink(*nl, "skbr-4097");
  auto vx = findLink(*nl, "skvx-4097");
  ASSERT_TRUE(br.ok() && *br);
  ASSERT_TRUE(vx.ok() && *vx);
  EXPECT_EQ((*br)->kind, "bridge");
  EXPECT_EQ((*br)->mtu, 1450);
  EXPECT_TRUE((*br)->flags & IFF_UP);
  EXPECT_EQ((*vx)->kind, "vxlan");
  EXPECT_EQ((*vx)->vni, 4097u);
  EXPECT_EQ((*vx)->vxlanPort, 4789);
  EXPECT_EQ((*vx)->vxlanLearning, false);
  EXPECT_EQ((*vx)->master, (*br)->index);
  EXPECT_EQ((*vx)->mtu, 1450);
  EXPECT_TRUE((*vx)->flags & IFF_UP);

  ASSERT_TRUE(overlay.removeNetwork(cfg).ok());
  ASSERT_TRUE(overlay.removeNetwork(cfg).ok());  // idempotent
  EXPECT_FALSE(*findLink(*nl, "skbr-4097"));
  EXPECT_FALSE(*findLink(*nl, "skvx-4097"));
}

TEST(OverlayIntegration, KernelExtackTextSurfaces) {
  SKIFF_REQUIRE_ISOLATED();
  auto nl = open();
  ASSERT_TRUE(nl);
  nl::VxlanParams p;
  p.vni = 0x1000000;  // one past the 24-bit VNI space
  auto r = nl->request(nl::newVxlan("skvx-bad", p, 1450));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ERANGE);
  EXPECT_NE(r.error().message.find("VXLAN ID"), std::string::npos) << r.error().message;
}

TEST(OverlayIntegration, NodeReachesEndpointThroughIngressBridgeAddress) {
  SKIFF_REQUIRE_ISOLATED();
  auto nl = open();
  ASSERT_TRUE(nl);
  Overlay overlay(*nl);
  auto cfg = net("ingress", 256, "10.0.0.0/24");
  cfg.nodeAddress = std::make_pair(cfg.subnet.gateway(), 24);
  ASSERT_TRUE(overlay.ensureNetwork(cfg).ok());
  ChildNetns container;
  ASSERT_GE(container.fd(), 0);
  auto ep = overlay.attach(cfg, container.fd(), "0123abcd9999", "eth0", ip("10.0.0.2"));
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->hostIfName, "skv0123abcd0");
  EXPECT_EQ(ep->mac, "02:42:0a:00:00:02");

  auto inner = openNetlinkInNetns(container.fd());
  ASSERT_TRUE(inner.ok()) << inner.error().message;
  auto eth0 = findLink(**inner, "eth0");
  ASSERT_TRUE(eth0.ok() && *eth0);
  EXPECT_TRUE((*eth0)->flags & IFF_UP);
  EXPECT_EQ((*eth0)->mtu, 1450);
  EXPECT_EQ((*eth0)->mac, "02:42:0a:00:00:02");
  auto host = findLink(*nl, ep->hostIfName);
  ASSERT_TRUE(host.ok() && *host);
  EXPECT_EQ((*host)->master, (*findLink(*nl, "skbr-256"))->index);

  Listener l = listenIn(container.fd(), ip("10.0.0.2"));  // binds only if the address is there
  EXPECT_EQ(exchange(-1, l, ip("10.0.0.2")), "");

  ASSERT_TRUE(overlay.detach(ep->hostIfName).ok());
  ASSERT_TRUE(overlay.detach(ep->hostIfName).ok());
  EXPECT_FALSE(*findLink(*nl, ep->hostIfName));
  EXPECT_FALSE(*findLink(**inner, "eth0"));  // the pair goes with its host side
  ASSERT_TRUE(overlay.removeNetwork(cfg).ok());
  EXPECT_FALSE(*findLink(*nl, "skbr-256"));
}

TEST(OverlayIntegration, TwoEndpointsOnOneBridgeTalk) {
  SKIFF_REQUIRE_ISOLATED();
  auto nl = open();
  ASSERT_TRUE(nl);
  Overlay overlay(*nl);
  auto cfg = net("backend", 4098, "10.0.2.0/24");
  ASSERT_TRUE(overlay.ensureNetwork(cfg).ok());
  ChildNetns a, b;
  ASSERT_GE(a.fd(), 0);
  ASSERT_GE(b.fd(), 0);
  auto ea = overlay.attach(cfg, a.fd(), "aaaaaaaa", "eth0", ip("10.0.2.2"));
  auto eb = overlay.attach(cfg, b.fd(), "bbbbbbbb", "eth0", ip("10.0.2.3"));
  ASSERT_TRUE(ea.ok()) << ea.error().message;
  ASSERT_TRUE(eb.ok()) << eb.error().message;
  Listener l = listenIn(b.fd(), ip("10.0.2.3"));
  EXPECT_EQ(exchange(a.fd(), l, ip("10.0.2.3")), "");
  // Re-attaching the same endpoint replaces its veth instead of failing.
  auto again = overlay.attach(cfg, a.fd(), "aaaaaaaa", "eth1", ip("10.0.2.4"));
  EXPECT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(overlay.detach(ea->hostIfName).ok());
  EXPECT_TRUE(overlay.detach(eb->hostIfName).ok());
  EXPECT_TRUE(overlay.detach(again.ok() ? again->hostIfName : "").ok());
  EXPECT_TRUE(overlay.removeNetwork(cfg).ok());
}

// Two "hosts" (netns) joined by a veth underlay, each with its own Overlay,
// peers programmed statically both ways: TCP across VXLAN.
TEST(OverlayIntegration, MultiHostPeersAcrossVxlan) {
  SKIFF_REQUIRE_ISOLATED();
  ChildNetns hostA, hostB, contA, contB;
  for (int fd : {hostA.fd(), hostB.fd(), contA.fd(), contB.fd()}) ASSERT_GE(fd, 0);
  auto nlA = openNetlinkInNetns(hostA.fd());
  auto nlB = openNetlinkInNetns(hostB.fd());
  ASSERT_TRUE(nlA.ok() && nlB.ok());
  // Underlay: ul0 in A <-> ul0 in B, 198.51.100.0/24 (never leaves the test).
  ASSERT_TRUE((*nlA)->request(nl::newVeth("ul0", "ul0", hostB.fd(), 1500, "")).ok());
  auto ulA = findLink(**nlA, "ul0");
  auto ulB = findLink(**nlB, "ul0");
  ASSERT_TRUE(ulA.ok() && *ulA && ulB.ok() && *ulB);
  ASSERT_TRUE((*nlA)->request(nl::newAddr((*ulA)->index, ip("198.51.100.1"), 24)).ok());
  ASSERT_TRUE((*nlB)->request(nl::newAddr((*ulB)->index, ip("198.51.100.2"), 24)).ok());
  for (auto* t : {nlA.value().get(), nlB.value().get()}) {
    ASSERT_TRUE(linkUp(*t, "ul0").ok());
    ASSERT_TRUE(linkUp(*t, "lo").ok());
  }

  Overlay a(**nlA), b(**nlB);
  auto cfgA = net("webnet", 4097, "10.0.1.0/24");
  auto cfgB = cfgA;
  cfgA.local = "198.51.100.1";
  cfgB.local = "198.51.100.2";
  ASSERT_TRUE(a.ensureNetwork(cfgA).ok());
  ASSERT_TRUE(b.ensureNetwork(cfgB).ok());
  auto ea = a.attach(cfgA, contA.fd(), "a1a1a1a1", "eth0", ip("10.0.1.2"));
  auto eb = b.attach(cfgB, contB.fd(), "b2b2b2b2", "eth0", ip("10.0.1.3"));
  ASSERT_TRUE(ea.ok()) << ea.error().message;
  ASSERT_TRUE(eb.ok()) << eb.error().message;

  Listener l = listenIn(contB.fd(), ip("10.0.1.3"));
  auto before = a.networkStats(cfgA);
  ASSERT_TRUE(before.ok() && !before->empty() && before->front().kind == "vxlan");
  ASSERT_TRUE(a.addRemotePeer(cfgA, ip("198.51.100.2"), eb->mac, eb->address).ok());
  ASSERT_TRUE(a.addRemotePeer(cfgA, ip("198.51.100.2"), eb->mac, eb->address).ok());  // replace
  ASSERT_TRUE(b.addRemotePeer(cfgB, ip("198.51.100.1"), ea->mac, ea->address).ok());
  EXPECT_EQ(exchange(contA.fd(), l, ip("10.0.1.3")), "");
  auto after = a.networkStats(cfgA);
  ASSERT_TRUE(after.ok() && !after->empty() && after->front().kind == "vxlan");
  EXPECT_GT(after->front().stats.txPackets, before->front().stats.txPackets);
  EXPECT_GT(after->front().stats.rxPackets, before->front().stats.rxPackets);

  // The FDB entry is there and points at B.
  auto fdb = (*nlA)->request(nl::dumpNeigh(AF_BRIDGE, 0));
  ASSERT_TRUE(fdb.ok());
  bool found = false;
  for (const auto& m : *fdb) {
    auto n = nl::parseNeigh(m);
    if (n && n->mac == eb->mac && n->dst && *n->dst == ip("198.51.100.2")) found = true;
  }
  EXPECT_TRUE(found);

  // After removing the peer, the VXLAN FDB no longer points at B (the
  // bridge's own learned entry for the MAC has no VTEP and just ages out).
  ASSERT_TRUE(a.removeRemotePeer(cfgA, ip("198.51.100.2"), eb->mac, eb->address).ok());
  ASSERT_TRUE(a.removeRemotePeer(cfgA, ip("198.51.100.2"), eb->mac, eb->address).ok());
  fdb = (*nlA)->request(nl::dumpNeigh(AF_BRIDGE, 0));
  ASSERT_TRUE(fdb.ok());
  for (const auto& m : *fdb) {
    auto n = nl::parseNeigh(m);
    if (n && n->dst) {
      EXPECT_NE(n->mac, eb->mac) << "stale FDB entry to " << n->dst->str();
    }
  }
}

}  // namespace
}  // namespace skiff::overlay
