// A network's counters (Overlay::networkStats) against FakeNetlink: which
// devices it asks for, the eight IFLA_STATS64 counters read back whatever
// size of struct rtnl_link_stats64 the kernel sends, missing devices left out,
// and errors that name the network.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "skiff/overlay/overlay.h"

namespace skiff::overlay {
namespace {

// Counters that differ from each other, so a field read from the wrong
// offset shows.
rtnl_link_stats64 sampleStats(uint64_t base) {
  rtnl_link_stats64 s{};
  s.rx_packets = base + 1;
  s.tx_packets = base + 2;
  s.rx_bytes = base + 3;
  s.tx_bytes = base + 4;
  s.rx_errors = base + 5;
  s.tx_errors = base + 6;
  s.rx_dropped = base + 7;
  s.tx_dropped = base + 8;
  s.multicast = base + 9;
  return s;
}

// An RTM_NEWLINK as the kernel answers a GETLINK, with an IFLA_STATS64 of
// `statsLen` bytes (a kernel older or newer than our headers sends fewer or
// more); no IFLA_STATS64 at all when statsLen is 0.
NlMessage linkWithStats(int index, const std::string& name, const std::string& kind, const rtnl_link_stats64& s,
                        size_t statsLen = sizeof(rtnl_link_stats64)) {
  alignas(nlmsghdr) char buf[2048] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (statsLen > 0) {
    std::vector<uint8_t> payload(statsLen, 0xee);  // bytes past our struct: a newer kernel's fields
    std::memcpy(payload.data(), &s, std::min(statsLen, sizeof(s)));
    mnl_attr_put(nlh, IFLA_STATS64, payload.size(), payload.data());
  }
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind.c_str());
  mnl_attr_nest_end(nlh, info);
  auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return NlMessage(p, p + nlh->nlmsg_len);
}

// The IFLA_IFNAME of an RTM_GETLINK we sent (parseLink reads only
// RTM_NEWLINK, whose layout a GETLINK shares).
std::string requestedName(NlMessage msg) {
  reinterpret_cast<nlmsghdr*>(msg.data())->nlmsg_type = RTM_NEWLINK;
  auto link = nl::parseLink(msg);
  return link ? link->name : "<unreadable>";
}

void expectStats(const LinkStats& got, uint64_t base) {
  EXPECT_EQ(got.rxPackets, base + 1);
  EXPECT_EQ(got.txPackets, base + 2);
  EXPECT_EQ(got.rxBytes, base + 3);
  EXPECT_EQ(got.txBytes, base + 4);
  EXPECT_EQ(got.rxErrors, base + 5);
  EXPECT_EQ(got.txErrors, base + 6);
  EXPECT_EQ(got.rxDropped, base + 7);
  EXPECT_EQ(got.txDropped, base + 8);
}

NetworkConfig webnet() {
  NetworkConfig c;
  c.name = "webnet";
  c.vni = 4097;
  return c;
}

Overlay::NetnsOpener noNetns() {
  return [](int) -> Result<std::unique_ptr<NetlinkTransport>> { return Error::msg("no netns in unit tests", ENOSYS); };
}

TEST(LinkStatsParser, ReadsTheEightCountersOfTheStructWeKnow) {
  auto link = nl::parseLink(linkWithStats(6, "skvx-4097", "vxlan", sampleStats(1000)));
  ASSERT_TRUE(link && link->stats);
  expectStats(*link->stats, 1000);
}

TEST(LinkStatsParser, ReadsAnOlderKernelsShorterStructAndANewerKernelsLongerOne) {
  // Linux 4.5's struct ended at rx_compressed/tx_compressed (23 counters).
  auto older = nl::parseLink(linkWithStats(6, "skvx-4097", "vxlan", sampleStats(10), 23 * sizeof(uint64_t)));
  ASSERT_TRUE(older && older->stats);
  expectStats(*older->stats, 10);
  auto newer = nl::parseLink(linkWithStats(6, "skvx-4097", "vxlan", sampleStats(20), sizeof(rtnl_link_stats64) + 64));
  ASSERT_TRUE(newer && newer->stats);
  expectStats(*newer->stats, 20);
}

TEST(LinkStatsParser, AStructTooShortForTheEightCountersOrNoneAtAllGivesNoStats) {
  auto cut = nl::parseLink(linkWithStats(6, "skvx-4097", "vxlan", sampleStats(1), 7 * sizeof(uint64_t)));
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->name, "skvx-4097");  // the rest of the message still reads
  EXPECT_FALSE(cut->stats);
  auto none = nl::parseLink(linkWithStats(6, "skvx-4097", "vxlan", sampleStats(1), 0));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->stats);
  // A request we build carries no counters.
  EXPECT_FALSE(nl::parseLink(nl::newBridge("skbr-1", 1450))->stats);
}

TEST(OverlayStats, ReadsTheVxlanDeviceThenTheBridgeByNameOneGetlinkEach) {
  FakeNetlink fake;
  fake.pushReply({linkWithStats(6, "skvx-4097", "vxlan", sampleStats(100))});
  fake.pushReply({linkWithStats(5, "skbr-4097", "bridge", sampleStats(200))});
  Overlay overlay(fake, noNetns());
  auto stats = overlay.networkStats(webnet());
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ((*stats)[0].device, "skvx-4097");
  EXPECT_EQ((*stats)[0].kind, "vxlan");
  expectStats((*stats)[0].stats, 100);
  EXPECT_EQ((*stats)[1].device, "skbr-4097");
  EXPECT_EQ((*stats)[1].kind, "bridge");
  expectStats((*stats)[1].stats, 200);

  const auto& reqs = fake.requests();
  ASSERT_EQ(reqs.size(), 2u);
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto* nlh = reinterpret_cast<const nlmsghdr*>(reqs[i].data());
    EXPECT_EQ(nlh->nlmsg_type, RTM_GETLINK);
    EXPECT_EQ(nlh->nlmsg_flags & NLM_F_DUMP, 0) << "a GET by name, not a dump of every link";
  }
  EXPECT_EQ(requestedName(reqs[0]), "skvx-4097");
  EXPECT_EQ(requestedName(reqs[1]), "skbr-4097");
}

TEST(OverlayStats, DevicesMissingOnThisNodeAreLeftOut) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});  // no VXLAN device
  fake.pushReply({linkWithStats(5, "skbr-4097", "bridge", sampleStats(0))});
  fake.pushError(Error{ENODEV, "No such device"});  // then nothing at all
  fake.pushError(Error{ENODEV, "No such device"});
  Overlay overlay(fake, noNetns());
  auto half = overlay.networkStats(webnet());
  ASSERT_TRUE(half.ok()) << half.error().message;
  ASSERT_EQ(half->size(), 1u);
  EXPECT_EQ((*half)[0].device, "skbr-4097");
  auto none = overlay.networkStats(webnet());
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST(OverlayStats, AKernelErrorNamesTheNetworkAndTheDevice) {
  FakeNetlink fake;
  fake.pushError(Error{EPERM, "Operation not permitted"});
  Overlay overlay(fake, noNetns());
  auto stats = overlay.networkStats(webnet());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, EPERM);
  EXPECT_EQ(stats.error().message, "counters of network webnet: look up link skvx-4097: Operation not permitted");
}

TEST(OverlayStats, AReplyWithoutCountersIsAnErrorNotZeros) {
  FakeNetlink fake;
  fake.pushReply({linkWithStats(6, "skvx-4097", "vxlan", sampleStats(0), 0)});
  Overlay overlay(fake, noNetns());
  auto stats = overlay.networkStats(webnet());
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, EPROTO);
  EXPECT_EQ(stats.error().message, "counters of network webnet: no IFLA_STATS64 in the reply for skvx-4097");
}

}  // namespace
}  // namespace skiff::overlay
