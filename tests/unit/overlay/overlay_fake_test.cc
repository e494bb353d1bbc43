// Overlay logic against FakeNetlink: which requests it sends in which order,
// and that errors carry context plus the kernel's text.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cerrno>

#include "skiff/overlay/overlay.h"

namespace skiff::overlay {
namespace {

// An RTM_NEWLINK as the kernel would answer a GETLINK.
NlMessage linkReply(int index, const std::string& name, const std::string& kind, std::optional<uint32_t> vni = {},
                    const std::string& mac = "") {
  alignas(nlmsghdr) char buf[1024] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, 1450);
  if (auto m = parseMac(mac)) mnl_attr_put(nlh, IFLA_ADDRESS, m->size(), m->data());
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind.c_str());
  if (vni) {
    nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
    mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, *vni);
    mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(4789));
    mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0);
    mnl_attr_nest_end(nlh, data);
  }
  mnl_attr_nest_end(nlh, info);
  auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return NlMessage(p, p + nlh->nlmsg_len);
}

// An RTM_NEWNEIGH as the kernel sends it in a neighbour or FDB dump.
NlMessage neighReply(uint8_t family, int ifindex, uint16_t state, const std::string& mac, const char* dst = nullptr) {
  alignas(nlmsghdr) char buf[256] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWNEIGH;
  nlh->nlmsg_flags = NLM_F_MULTI;
  auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  nd->ndm_family = family;
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = state;
  nd->ndm_flags = family == AF_BRIDGE ? (dst ? NTF_SELF : NTF_MASTER) : 0;
  auto m = parseMac(mac);
  mnl_attr_put(nlh, NDA_LLADDR, m->size(), m->data());
  if (dst) mnl_attr_put_u32(nlh, NDA_DST, Ipv4::parse(dst)->networkOrder());
  auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return NlMessage(p, p + nlh->nlmsg_len);
}

uint16_t type(const NlMessage& m) { return reinterpret_cast<const nlmsghdr*>(m.data())->nlmsg_type; }
uint16_t flags(const NlMessage& m) { return reinterpret_cast<const nlmsghdr*>(m.data())->nlmsg_flags; }
const ndmsg* ndmsgOf(const NlMessage& m) {
  return static_cast<const ndmsg*>(mnl_nlmsg_get_payload(reinterpret_cast<const nlmsghdr*>(m.data())));
}

Peer peer(uint32_t vni, const char* ip, const char* mac, const char* vtep) {
  return Peer{vni, *Ipv4::parse(ip), mac, *Ipv4::parse(vtep)};
}

std::string show(const std::vector<Peer>& peers) {
  std::string out;
  for (const Peer& p : peers)
    out += std::to_string(p.vni) + " " + p.ip.str() + " " + p.mac + " via " + p.vtep.str() + "\n";
  return out;
}

NetworkConfig webnet() {
  NetworkConfig c;
  c.name = "webnet";
  c.vni = 4097;
  c.subnet = *Subnet::parse("10.0.1.0/24");
  c.mtu = 1450;
  return c;
}

Overlay::NetnsOpener noNetns() {
  return [](int) -> Result<std::unique_ptr<NetlinkTransport>> { return Error::msg("no netns in unit tests", ENOSYS); };
}

TEST(OverlayFake, EnsureNetworkCreatesBridgeThenVxlanEnslaved) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});  // get skbr-4097
  fake.pushReply({});                               // create bridge
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({});                               // bridge up
  fake.pushError(Error{ENODEV, "No such device"});  // get skvx-4097
  fake.pushReply({});                               // create vxlan
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});  // enslave + up
  Overlay overlay(fake, noNetns());
  auto st = overlay.ensureNetwork(webnet());
  ASSERT_TRUE(st.ok()) << st.error().message;
  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 8u);
  EXPECT_EQ(type(reqs[0]), RTM_GETLINK);
  auto bridge = nl::parseLink(reqs[1]);
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->kind, "bridge");
  EXPECT_EQ(bridge->name, "skbr-4097");
  auto vxlan = nl::parseLink(reqs[5]);
  ASSERT_TRUE(vxlan);
  EXPECT_EQ(vxlan->vni, 4097u);
  auto enslave = nl::parseLink(reqs[7]);
  ASSERT_TRUE(enslave);
  EXPECT_EQ(enslave->index, 6);
  EXPECT_EQ(enslave->master, 5);
  EXPECT_EQ(enslave->flags & IFF_UP, IFF_UP);
}

TEST(OverlayFake, EnsureNetworkIsQuietWhenAllExists) {
  FakeNetlink fake;
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({});
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});
  Overlay overlay(fake, noNetns());
  ASSERT_TRUE(overlay.ensureNetwork(webnet()).ok());
  for (const auto& r : fake.requests())
    EXPECT_NE(reinterpret_cast<const nlmsghdr*>(r.data())->nlmsg_flags & NLM_F_CREATE, NLM_F_CREATE)
        << "nothing may be created when everything exists";
}

TEST(OverlayFake, KernelErrorTextReachesTheCaller) {
  FakeNetlink fake;
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({});
  fake.pushError(Error{ENODEV, "No such device"});
  fake.pushError(Error{EADDRINUSE,
                       "Address already in use: A VXLAN device with the specified "
                       "VNI already exists"});
  Overlay overlay(fake, noNetns());
  auto st = overlay.ensureNetwork(webnet());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EADDRINUSE);
  EXPECT_EQ(st.error().message,
            "create vxlan skvx-4097: Address already in use: A VXLAN device with the specified "
            "VNI already exists");
}

TEST(OverlayFake, RejectsVniOutOfRangeBeforeTouchingTheKernel) {
  FakeNetlink fake;
  Overlay overlay(fake, noNetns());
  auto c = webnet();
  c.vni = 0x1000000;
  auto st = overlay.ensureNetwork(c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "network webnet: VNI 16777216 out of range 1..16777215");
  EXPECT_TRUE(fake.requests().empty());
}

TEST(OverlayFake, RemoveAndDetachAreIdempotent) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});
  fake.pushError(Error{ENODEV, "No such device"});
  fake.pushError(Error{ENODEV, "No such device"});
  fake.pushError(Error{EPERM, "Operation not permitted"});
  Overlay overlay(fake, noNetns());
  EXPECT_TRUE(overlay.removeNetwork(webnet()).ok());
  EXPECT_TRUE(overlay.detach("skv0000000a0").ok());
  auto st = overlay.detach("skv0000000b0");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "delete skv0000000b0: Operation not permitted");
}

TEST(OverlayFake, UnderlayMtuDefaultsTo1500WithoutDefaultRoute) {
  FakeNetlink fake;  // empty route dump
  Overlay overlay(fake, noNetns());
  auto mtu = overlay.underlayMtu();
  ASSERT_TRUE(mtu.ok());
  EXPECT_EQ(*mtu, 1500);
}

TEST(OverlayFake, AttachFailureInsideNetnsRemovesTheVeth) {
  FakeNetlink fake;
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});  // bridge lookup
  fake.pushError(Error{ENODEV, "No such device"});        // delete old host side
  fake.pushReply({});                                     // create veth
  fake.pushReply({linkReply(8, "skv12345678", "veth")});  // host side lookup
  fake.pushReply({});                                     // enslave
  Overlay overlay(fake, noNetns());
  auto ep = overlay.attach(webnet(), 3, "12345678abcdef", "eth0", *Ipv4::parse("10.0.1.2"));
  ASSERT_FALSE(ep.ok());
  EXPECT_NE(ep.error().message.find("no netns in unit tests"), std::string::npos);
  ASSERT_EQ(fake.requests().size(), 6u);
  EXPECT_EQ(type(fake.requests().back()), RTM_DELLINK);
  EXPECT_EQ(nl::parseLink(fake.requests()[2])->name, "skv123456780");
}

NetworkConfig ingress(const char* nodeAddress) {
  NetworkConfig c;
  c.name = "ingress";
  c.vni = 256;
  c.subnet = *Subnet::parse("10.0.0.0/24");
  c.mtu = 1450;
  c.nodeAddress = std::make_pair(*Ipv4::parse(nodeAddress), 24);
  return c;
}

TEST(OverlayFake, NodeBridgeIsCreatedWithTheMacOfItsAddress) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});  // get skbr-256
  fake.pushReply({});                               // create bridge
  fake.pushReply({linkReply(5, "skbr-256", "bridge", {}, "02:42:0a:00:00:03")});
  fake.pushReply({});                               // bridge up
  fake.pushError(Error{ENODEV, "No such device"});  // get skvx-256
  fake.pushReply({});                               // create vxlan
  fake.pushReply({linkReply(6, "skvx-256", "vxlan", 256)});
  fake.pushReply({});  // enslave + up
  fake.pushReply({});  // address
  Overlay overlay(fake, noNetns());
  auto st = overlay.ensureNetwork(ingress("10.0.0.3"));
  ASSERT_TRUE(st.ok()) << st.error().message;
  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 9u) << "the MAC comes with the create, no extra request";
  auto bridge = nl::parseLink(reqs[1]);
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->kind, "bridge");
  EXPECT_EQ(bridge->mac, "02:42:0a:00:00:03");
  EXPECT_EQ(type(reqs[8]), RTM_NEWADDR);
}

TEST(OverlayFake, ExistingNodeBridgeGetsItsMacBack) {
  FakeNetlink fake;
  // The bridge exists with the MAC the kernel gave it (its lowest port's).
  fake.pushReply({linkReply(5, "skbr-256", "bridge", {}, "02:42:0a:00:00:07")});
  fake.pushReply({linkReply(5, "skbr-256", "bridge", {}, "02:42:0a:00:00:07")});
  Overlay overlay(fake, noNetns());
  (void)overlay.ensureNetwork(ingress("10.0.0.3"));  // the rest is ACKed; only the MAC matters
  const auto& reqs = fake.requests();
  ASSERT_GE(reqs.size(), 3u);
  auto set = nl::parseLink(reqs[2]);
  ASSERT_TRUE(set);
  EXPECT_EQ(flags(reqs[2]) & NLM_F_CREATE, 0);
  EXPECT_EQ(set->index, 5);
  EXPECT_EQ(set->mac, "02:42:0a:00:00:03");

  // Already right: nothing is sent for the MAC.
  FakeNetlink quiet;
  quiet.pushReply({linkReply(5, "skbr-256", "bridge", {}, "02:42:0a:00:00:03")});
  quiet.pushReply({linkReply(5, "skbr-256", "bridge", {}, "02:42:0a:00:00:03")});
  Overlay again(quiet, noNetns());
  (void)again.ensureNetwork(ingress("10.0.0.3"));
  for (const auto& r : quiet.requests()) {
    auto l = nl::parseLink(r);
    EXPECT_FALSE(l && l->mac == "02:42:0a:00:00:03") << "MAC set although it was right";
  }
}

TEST(OverlayFake, MacForIsDockersSchemeInLowerCase) {
  EXPECT_EQ(Overlay::macFor(*Ipv4::parse("10.0.0.3")), "02:42:0a:00:00:03");
  EXPECT_EQ(Overlay::macFor(*Ipv4::parse("172.31.254.171")), "02:42:ac:1f:fe:ab");
}

TEST(OverlayFake, FakeNetlinkAnswersADumpWithAllItsMessagesInOrder) {
  FakeNetlink fake;
  fake.pushReply({linkReply(1, "lo", ""), linkReply(2, "eth0", "")});
  auto r = fake.request(nl::dumpLinks());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(nl::parseLink((*r)[0])->name, "lo");
  EXPECT_EQ(nl::parseLink((*r)[1])->name, "eth0");
  auto ack = fake.request(nl::dumpLinks());  // script used up: a plain ACK
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->empty());
  EXPECT_EQ(fake.requests().size(), 2u);
}

TEST(OverlayFake, ListNetworksReadsSkiffDevicesFromOneLinkDump) {
  FakeNetlink fake;
  fake.pushReply({
      linkReply(1, "lo", ""),
      linkReply(5, "skbr-4097", "bridge"),
      linkReply(6, "skvx-4097", "vxlan", 4097),
      linkReply(7, "skvx-256", "vxlan", 256),  // a VXLAN device left without its bridge
      linkReply(8, "skbr-16777215", "bridge"),
      linkReply(9, "skbr-0256", "bridge"),       // not a name skiff makes
      linkReply(10, "skbr-16777216", "bridge"),  // beyond 24 bits
      linkReply(11, "skvx-", "vxlan", 1),
      linkReply(12, "skvx-12a", "vxlan", 12),
      linkReply(13, "skv0123abcd0", "veth"),
      linkReply(14, "br-skbr-9", "bridge"),
  });
  Overlay overlay(fake, noNetns());
  auto vnis = overlay.listNetworks();
  ASSERT_TRUE(vnis.ok()) << vnis.error().message;
  EXPECT_EQ(*vnis, (std::vector<uint32_t>{256, 4097, 16777215}));
  ASSERT_EQ(fake.requests().size(), 1u);
  EXPECT_EQ(type(fake.requests()[0]), RTM_GETLINK);
  EXPECT_EQ(flags(fake.requests()[0]) & NLM_F_DUMP, NLM_F_DUMP);
}

TEST(OverlayFake, ListNetworksCarriesTheKernelError) {
  FakeNetlink fake;
  fake.pushError(Error{EPERM, "Operation not permitted"});
  Overlay overlay(fake, noNetns());
  auto vnis = overlay.listNetworks();
  ASSERT_FALSE(vnis.ok());
  EXPECT_EQ(vnis.error().message, "list networks: dump links: Operation not permitted");
}

TEST(OverlayFake, ListPeersJoinsFdbAndNeighbourEntriesByMac) {
  FakeNetlink fake;
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({
      // FDB dump: every device's entries, whatever ndm_ifindex asked for.
      neighReply(AF_BRIDGE, 6, NUD_PERMANENT, "02:42:0a:00:01:03", "198.51.100.2"),
      neighReply(AF_BRIDGE, 6, NUD_PERMANENT, "02:42:0a:00:01:04", "198.51.100.3"),
      neighReply(AF_BRIDGE, 6, NUD_PERMANENT, "02:42:0a:00:01:09", "198.51.100.2"),  // no neigh
      neighReply(AF_BRIDGE, 6, NUD_REACHABLE, "02:42:0a:00:01:03"),                  // bridge learned, no VTEP
      neighReply(AF_BRIDGE, 6, NUD_PERMANENT, "4a:11:22:33:44:55"),                  // the port's own MAC
      neighReply(AF_BRIDGE, 7, NUD_PERMANENT, "02:42:0a:00:02:05", "198.51.100.2"),  // skvx-4098
  });
  fake.pushReply({
      neighReply(AF_INET, 6, NUD_PERMANENT, "02:42:0a:00:01:04", "10.0.1.4"),
      neighReply(AF_INET, 6, NUD_PERMANENT, "02:42:0a:00:01:03", "10.0.1.3"),
      neighReply(AF_INET, 6, NUD_PERMANENT, "02:42:0a:00:01:08", "10.0.1.8"),      // no FDB
      neighReply(AF_INET, 6, NUD_STALE, "02:42:0a:00:01:04", "10.0.1.44"),         // not ours
      neighReply(AF_INET, 7, NUD_PERMANENT, "02:42:0a:00:02:05", "10.0.2.5"),      // skvx-4098
      neighReply(AF_INET, 2, NUD_REACHABLE, "52:54:00:12:34:56", "198.51.100.2"),  // underlay
  });
  Overlay overlay(fake, noNetns());
  auto peers = overlay.listPeers(webnet());
  ASSERT_TRUE(peers.ok()) << peers.error().message;
  EXPECT_EQ(*peers, (std::vector<Peer>{
                        peer(4097, "0.0.0.0", "02:42:0a:00:01:09", "198.51.100.2"),
                        peer(4097, "10.0.1.3", "02:42:0a:00:01:03", "198.51.100.2"),
                        peer(4097, "10.0.1.4", "02:42:0a:00:01:04", "198.51.100.3"),
                        peer(4097, "10.0.1.8", "02:42:0a:00:01:08", "0.0.0.0"),
                    }))
      << show(*peers);
  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(type(reqs[1]), RTM_GETNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[1])->ndm_family, AF_BRIDGE);
  EXPECT_EQ(type(reqs[2]), RTM_GETNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[2])->ndm_family, AF_INET);
}

TEST(OverlayFake, ListPeersOfANetworkWithoutVxlanDeviceIsEmpty) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});
  Overlay overlay(fake, noNetns());
  auto peers = overlay.listPeers(webnet());
  ASSERT_TRUE(peers.ok()) << peers.error().message;
  EXPECT_TRUE(peers->empty());
  EXPECT_EQ(fake.requests().size(), 1u);
}

TEST(OverlayFake, ListPeersNamesTheDumpThatFailed) {
  FakeNetlink fake;
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});
  fake.pushError(Error{EBUSY, "Device or resource busy"});
  Overlay overlay(fake, noNetns());
  auto peers = overlay.listPeers(webnet());
  ASSERT_FALSE(peers.ok());
  EXPECT_EQ(peers.error().message, "peers of network webnet: dump neighbors: Device or resource busy");
}

TEST(OverlayFake, RemoveRemotePeerToleratesEntriesAlreadyGone) {
  FakeNetlink fake;
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushError(Error{ENOENT, "No such file or directory"});  // fdb
  fake.pushError(Error{ENOENT, "No such file or directory"});  // neighbour
  Overlay overlay(fake, noNetns());
  auto st =
      overlay.removeRemotePeer(webnet(), *Ipv4::parse("198.51.100.2"), "02:42:0a:00:01:03", *Ipv4::parse("10.0.1.3"));
  ASSERT_TRUE(st.ok()) << st.error().message;
  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(type(reqs[1]), RTM_DELNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[1])->ndm_family, AF_BRIDGE);
  NlMessage fdb = reqs[1];  // parseNeigh reads RTM_NEWNEIGH only
  reinterpret_cast<nlmsghdr*>(fdb.data())->nlmsg_type = RTM_NEWNEIGH;
  EXPECT_EQ(nl::parseNeigh(fdb)->dst->str(), "198.51.100.2") << "deletes the remote of that VTEP";
  EXPECT_EQ(type(reqs[2]), RTM_DELNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[2])->ndm_family, AF_INET);
}

TEST(OverlayFake, RemoveRemotePeerReportsOtherErrors) {
  FakeNetlink fake;
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});
  fake.pushError(Error{EPERM, "Operation not permitted"});
  Overlay overlay(fake, noNetns());
  auto st =
      overlay.removeRemotePeer(webnet(), *Ipv4::parse("198.51.100.2"), "02:42:0a:00:01:03", *Ipv4::parse("10.0.1.3"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EPERM);
  EXPECT_EQ(st.error().message, "peer 10.0.1.3 on network webnet: delete neighbor: Operation not permitted");
}

TEST(OverlayFake, RemoveRemotePeerDeletesOnlyTheHalfThatExists) {
  FakeNetlink fake;
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});
  Overlay overlay(fake, noNetns());
  // Neighbour entry without FDB entry (vtep 0.0.0.0): only the neighbour goes.
  ASSERT_TRUE(overlay.removeRemotePeer(webnet(), Ipv4{}, "02:42:0a:00:01:08", *Ipv4::parse("10.0.1.8")).ok());
  // FDB entry without neighbour entry (ip 0.0.0.0): only the FDB entry goes.
  ASSERT_TRUE(overlay.removeRemotePeer(webnet(), *Ipv4::parse("198.51.100.2"), "02:42:0a:00:01:09", Ipv4{}).ok());
  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(type(reqs[1]), RTM_DELNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[1])->ndm_family, AF_INET);
  EXPECT_EQ(type(reqs[3]), RTM_DELNEIGH);
  EXPECT_EQ(ndmsgOf(reqs[3])->ndm_family, AF_BRIDGE);
}

TEST(OverlayNames, FitIntoIfnamsiz) {
  EXPECT_EQ(Overlay::bridgeName(16777215), "skbr-16777215");
  EXPECT_EQ(Overlay::hostIfName("ABCDEF0123456789", "eth1"), "skvabcdef011");
  auto hashed = Overlay::hostIfName("web.1.x7q", "eth12");
  EXPECT_EQ(hashed.size(), 13u);
  EXPECT_EQ(hashed, Overlay::hostIfName("web.1.x7q", "eth12"));
  EXPECT_NE(hashed, Overlay::hostIfName("web.2.x7q", "eth12"));
  EXPECT_LT(Overlay::hostIfName("whatever", "eth123456789").size(), size_t{IFNAMSIZ});
}

}  // namespace
}  // namespace skiff::overlay
