// The builders are pure: parse their bytes back with libmnl and check the
// attributes the kernel will see.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>

#include <map>

#include "skiff/overlay/netlink.h"

namespace skiff::overlay {
namespace {

using Attrs = std::map<uint16_t, const nlattr*>;

Attrs attrsAt(const void* start, size_t len) {
  Attrs out;
  auto* a = static_cast<const nlattr*>(start);
  int rem = static_cast<int>(len);
  while (mnl_attr_ok(a, rem)) {
    out[mnl_attr_get_type(a)] = a;
    rem -= static_cast<int>(MNL_ALIGN(a->nla_len));
    a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(a) + MNL_ALIGN(a->nla_len));
  }
  EXPECT_EQ(rem, 0) << "trailing bytes after attributes";
  return out;
}
Attrs topAttrs(const NlMessage& m, size_t hdr) {
  auto* nlh = reinterpret_cast<const nlmsghdr*>(m.data());
  EXPECT_EQ(nlh->nlmsg_len, m.size());
  return attrsAt(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + MNL_ALIGN(hdr),
                 mnl_nlmsg_get_payload_len(nlh) - MNL_ALIGN(hdr));
}
Attrs nested(const nlattr* a) { return attrsAt(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a)); }
const nlmsghdr* hdr(const NlMessage& m) { return reinterpret_cast<const nlmsghdr*>(m.data()); }
std::string strAttr(const nlattr* a) { return mnl_attr_get_str(a); }

TEST(NetlinkBuilders, VxlanCarriesVniPortNoLearningAndLocal) {
  nl::VxlanParams p;
  p.vni = 4097;
  p.local = Ipv4::parse("192.168.77.1");
  auto m = nl::newVxlan("skvx-4097", p, 1450);
  EXPECT_EQ(hdr(m)->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(hdr(m)->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  auto top = topAttrs(m, sizeof(ifinfomsg));
  ASSERT_TRUE(top.count(IFLA_IFNAME));
  EXPECT_EQ(strAttr(top[IFLA_IFNAME]), "skvx-4097");
  EXPECT_EQ(mnl_attr_get_u32(top[IFLA_MTU]), 1450u);
  auto info = nested(top[IFLA_LINKINFO]);
  EXPECT_EQ(strAttr(info[IFLA_INFO_KIND]), "vxlan");
  auto data = nested(info[IFLA_INFO_DATA]);
  EXPECT_EQ(mnl_attr_get_u32(data[IFLA_VXLAN_ID]), 4097u);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(data[IFLA_VXLAN_PORT])), 4789);
  EXPECT_EQ(mnl_attr_get_u8(data[IFLA_VXLAN_LEARNING]), 0);
  EXPECT_EQ(mnl_attr_get_u8(data[IFLA_VXLAN_PROXY]), 1);
  EXPECT_EQ(ntohl(mnl_attr_get_u32(data[IFLA_VXLAN_LOCAL])), 0xc0a84d01u);
  // Parsing our own request as a link gives the same picture back.
  auto back = nl::parseLink(m);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, "vxlan");
  EXPECT_EQ(back->vni, 4097u);
  EXPECT_EQ(back->vxlanPort, 4789);
  EXPECT_EQ(back->vxlanLearning, false);
}

TEST(NetlinkBuilders, VethPeerGoesToNetnsWithNameMacMtu) {
  auto m = nl::newVeth("skvdeadbeef0", "eth0", 42, 1450, "02:42:0a:00:01:02");
  auto top = topAttrs(m, sizeof(ifinfomsg));
  EXPECT_EQ(strAttr(top[IFLA_IFNAME]), "skvdeadbeef0");
  auto info = nested(top[IFLA_LINKINFO]);
  EXPECT_EQ(strAttr(info[IFLA_INFO_KIND]), "veth");
  auto data = nested(info[IFLA_INFO_DATA]);
  ASSERT_TRUE(data.count(VETH_INFO_PEER));
  const nlattr* peer = data[VETH_INFO_PEER];
  ASSERT_GE(mnl_attr_get_payload_len(peer), sizeof(ifinfomsg));
  auto peerAttrs = attrsAt(static_cast<const char*>(mnl_attr_get_payload(peer)) + MNL_ALIGN(sizeof(ifinfomsg)),
                           mnl_attr_get_payload_len(peer) - MNL_ALIGN(sizeof(ifinfomsg)));
  EXPECT_EQ(strAttr(peerAttrs[IFLA_IFNAME]), "eth0");
  EXPECT_EQ(mnl_attr_get_u32(peerAttrs[IFLA_NET_NS_FD]), 42u);
  EXPECT_EQ(mnl_attr_get_u32(peerAttrs[IFLA_MTU]), 1450u);
  ASSERT_EQ(mnl_attr_get_payload_len(peerAttrs[IFLA_ADDRESS]), 6u);
  EXPECT_EQ(formatMac(static_cast<const uint8_t*>(mnl_attr_get_payload(peerAttrs[IFLA_ADDRESS]))), "02:42:0a:00:01:02");
}

TEST(NetlinkBuilders, BridgeCarriesTheMacItIsGiven) {
  auto plain = topAttrs(nl::newBridge("skbr-256", 1450), sizeof(ifinfomsg));
  EXPECT_EQ(plain.count(IFLA_ADDRESS), 0u) << "without a MAC the kernel picks one";
  auto m = nl::newBridge("skbr-256", 1450, parseMac("02:42:0a:00:00:03"));
  auto back = nl::parseLink(m);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, "skbr-256");
  EXPECT_EQ(back->kind, "bridge");
  EXPECT_EQ(back->mac, "02:42:0a:00:00:03");
}

TEST(NetlinkBuilders, SetLinkAddressChangesOnlyTheMac) {
  auto m = nl::setLinkAddress(5, *parseMac("02:42:0a:00:00:03"));
  EXPECT_EQ(hdr(m)->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(hdr(m)->nlmsg_flags, NLM_F_REQUEST);
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(hdr(m)));
  EXPECT_EQ(ifi->ifi_index, 5);
  EXPECT_EQ(ifi->ifi_change, 0u) << "flags (up/down) stay as they are";
  auto top = topAttrs(m, sizeof(ifinfomsg));
  ASSERT_EQ(top.size(), 1u);
  ASSERT_EQ(mnl_attr_get_payload_len(top[IFLA_ADDRESS]), 6u);
  EXPECT_EQ(formatMac(static_cast<const uint8_t*>(mnl_attr_get_payload(top[IFLA_ADDRESS]))), "02:42:0a:00:00:03");
}

TEST(NetlinkBuilders, SetLinkUpWithMaster) {
  auto m = nl::setLink(7, 1450, 3, true);
  EXPECT_EQ(hdr(m)->nlmsg_flags, NLM_F_REQUEST);  // no CREATE: only changes
  auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(hdr(m)));
  EXPECT_EQ(ifi->ifi_index, 7);
  EXPECT_EQ(ifi->ifi_flags & IFF_UP, IFF_UP);
  EXPECT_EQ(ifi->ifi_change & IFF_UP, IFF_UP);
  auto top = topAttrs(m, sizeof(ifinfomsg));
  EXPECT_EQ(mnl_attr_get_u32(top[IFLA_MASTER]), 3u);
  EXPECT_EQ(mnl_attr_get_u32(top[IFLA_MTU]), 1450u);
  auto noMaster = topAttrs(nl::setLink(7, std::nullopt, std::nullopt, true), sizeof(ifinfomsg));
  EXPECT_TRUE(noMaster.empty());
}

TEST(NetlinkBuilders, FdbAndNeighReplacePermanent) {
  auto mac = parseMac("02:42:0a:00:01:03");
  ASSERT_TRUE(mac);
  auto fdb = nl::newFdb(9, *mac, *Ipv4::parse("192.168.77.2"));
  EXPECT_EQ(hdr(fdb)->nlmsg_type, RTM_NEWNEIGH);
  EXPECT_EQ(hdr(fdb)->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
  auto parsed = nl::parseNeigh(fdb);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->family, AF_BRIDGE);
  EXPECT_EQ(parsed->ifindex, 9);
  EXPECT_EQ(parsed->state, NUD_PERMANENT);
  EXPECT_EQ(parsed->flags, NTF_SELF);
  EXPECT_EQ(parsed->mac, "02:42:0a:00:01:03");
  EXPECT_EQ(parsed->dst->str(), "192.168.77.2");

  auto neigh = nl::newNeigh(9, *Ipv4::parse("10.0.1.3"), *mac);
  EXPECT_EQ(hdr(neigh)->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
  auto n = nl::parseNeigh(neigh);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->family, AF_INET);
  EXPECT_EQ(n->state, NUD_PERMANENT);
  EXPECT_EQ(n->dst->str(), "10.0.1.3");
  EXPECT_EQ(n->mac, "02:42:0a:00:01:03");
}

TEST(NetlinkBuilders, AddressIsReplaceWithPrefix) {
  auto m = nl::newAddr(4, *Ipv4::parse("10.0.0.1"), 24);
  EXPECT_EQ(hdr(m)->nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(hdr(m)->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(hdr(m)));
  EXPECT_EQ(ifa->ifa_prefixlen, 24);
  EXPECT_EQ(ifa->ifa_index, 4u);
  auto top = topAttrs(m, sizeof(ifaddrmsg));
  EXPECT_EQ(ntohl(mnl_attr_get_u32(top[IFA_LOCAL])), 0x0a000001u);
}

TEST(NetlinkBuilders, DumpsAskForDump) {
  EXPECT_EQ(hdr(nl::dumpRoutes())->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
  EXPECT_EQ(hdr(nl::dumpLinks())->nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(hdr(nl::dumpLinks())->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  auto fdb = nl::dumpNeigh(AF_BRIDGE, 6);
  EXPECT_EQ(hdr(fdb)->nlmsg_type, RTM_GETNEIGH);
  EXPECT_EQ(hdr(fdb)->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(hdr(fdb)));
  EXPECT_EQ(nd->ndm_family, AF_BRIDGE);
  EXPECT_EQ(nd->ndm_ifindex, 6);
  EXPECT_EQ(hdr(nl::getLink("x"))->nlmsg_flags & NLM_F_DUMP, 0);
}

TEST(NetlinkParsers, RejectTruncatedMessages) {
  auto m = nl::newBridge("skbr-1", 1450);
  NlMessage cut(m.begin(), m.begin() + 10);
  EXPECT_FALSE(nl::parseLink(cut));
  EXPECT_FALSE(nl::parseRoute(m));  // wrong type
}

TEST(Mac, ParseFormatAndDockerScheme) {
  EXPECT_EQ(macForAddress(*Ipv4::parse("10.0.1.2")), "02:42:0a:00:01:02");
  EXPECT_FALSE(parseMac("02:42:0a:00:01"));
  EXPECT_FALSE(parseMac("02-42-0a-00-01-02"));
  EXPECT_FALSE(parseMac("zz:42:0a:00:01:02"));
  auto m = parseMac("AA:bb:0a:00:01:02");
  ASSERT_TRUE(m);
  EXPECT_EQ(formatMac(m->data()), "aa:bb:0a:00:01:02");
}

}  // namespace
}  // namespace skiff::overlay
