// Overlay logic against FakeNetlink: which requests it sends in which order,
// and that errors carry context plus the kernel's text.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cerrno>

#include <gtest/gtest.h>

#include "skiff/overlay/overlay.h"

namespace skiff::overlay {
namespace {

// An RTM_NEWLINK as the kernel would answer a GETLINK.
NlMessage linkReply(int index, const std::string& name, const std::string& kind,
                    std::optional<uint32_t> vni = {}) {
  alignas(nlmsghdr) char buf[1024] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = index;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put_u32(nlh, IFLA_MTU, 1450);
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

uint16_t type(const NlMessage& m) { return reinterpret_cast<const nlmsghdr*>(m.data())->nlmsg_type; }

NetworkConfig webnet() {
  NetworkConfig c;
  c.name = "webnet";
  c.vni = 4097;
  c.subnet = *Subnet::parse("10.0.1.0/24");
  c.mtu = 1450;
  return c;
}

Overlay::NetnsOpener noNetns() {
  return [](int) -> Result<std::unique_ptr<NetlinkTransport>> {
    return Error::msg("no netns in unit tests", ENOSYS);
  };
}

TEST(OverlayFake, EnsureNetworkCreatesBridgeThenVxlanEnslaved) {
  FakeNetlink fake;
  fake.pushError(Error{ENODEV, "No such device"});   // get skbr-4097
  fake.pushReply({});                                // create bridge
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({});                                // bridge up
  fake.pushError(Error{ENODEV, "No such device"});   // get skvx-4097
  fake.pushReply({});                                // create vxlan
  fake.pushReply({linkReply(6, "skvx-4097", "vxlan", 4097)});
  fake.pushReply({});                                // enslave + up
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
    EXPECT_NE(reinterpret_cast<const nlmsghdr*>(r.data())->nlmsg_flags & NLM_F_CREATE,
              NLM_F_CREATE)
        << "nothing may be created when everything exists";
}

TEST(OverlayFake, KernelErrorTextReachesTheCaller) {
  FakeNetlink fake;
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});
  fake.pushReply({});
  fake.pushError(Error{ENODEV, "No such device"});
  fake.pushError(Error{EADDRINUSE, "Address already in use: A VXLAN device with the specified "
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
  fake.pushReply({linkReply(5, "skbr-4097", "bridge")});          // bridge lookup
  fake.pushError(Error{ENODEV, "No such device"});                 // delete old host side
  fake.pushReply({});                                              // create veth
  fake.pushReply({linkReply(8, "skv12345678", "veth")});           // host side lookup
  fake.pushReply({});                                              // enslave
  Overlay overlay(fake, noNetns());
  auto ep = overlay.attach(webnet(), 3, "12345678abcdef", "eth0", *Ipv4::parse("10.0.1.2"));
  ASSERT_FALSE(ep.ok());
  EXPECT_NE(ep.error().message.find("no netns in unit tests"), std::string::npos);
  ASSERT_EQ(fake.requests().size(), 6u);
  EXPECT_EQ(type(fake.requests().back()), RTM_DELLINK);
  EXPECT_EQ(nl::parseLink(fake.requests()[2])->name, "skv123456780");
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
