#include "skiff/overlay/ipam.h"

#include <gtest/gtest.h>

namespace skiff::overlay {
namespace {

Subnet sn(const char* text) {
  auto s = Subnet::parse(text);
  EXPECT_TRUE(s.has_value()) << text;
  return s.value_or(Subnet{});
}
Ipv4 ip(const char* text) {
  auto a = Ipv4::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(Ipv4{});
}

TEST(Ipv4, ParsesAndPrints) {
  EXPECT_EQ(ip("10.0.1.2").host_order, 0x0a000102u);
  EXPECT_EQ(ip("255.255.255.255").str(), "255.255.255.255");
  EXPECT_EQ(ip("0.0.0.0").str(), "0.0.0.0");
  for (const char* bad : {"", "10.0.1", "10.0.1.2.3", "256.0.0.1", "10.0.0.-1", "10..0.1", "10.0.0.1 ", "a.b.c.d",
                          "1000.0.0.1", "10.0.0.1/24"})
    EXPECT_FALSE(Ipv4::parse(bad).has_value()) << bad;
}

TEST(Subnet, ParsesContainsAndGateway) {
  Subnet s = sn("10.0.1.0/24");
  EXPECT_EQ(s.str(), "10.0.1.0/24");
  EXPECT_TRUE(s.contains(ip("10.0.1.255")));
  EXPECT_FALSE(s.contains(ip("10.0.2.0")));
  EXPECT_EQ(s.gateway().str(), "10.0.1.1");
  EXPECT_EQ(s.broadcast().str(), "10.0.1.255");
  EXPECT_TRUE(sn("10.0.0.0/8").overlaps(s));
  EXPECT_TRUE(s.overlaps(sn("10.0.0.0/8")));
  EXPECT_FALSE(s.overlaps(sn("10.0.2.0/24")));
  EXPECT_EQ(sn("0.0.0.0/0").size(), uint64_t{1} << 32);
  for (const char* bad : {"10.0.1.5/24", "10.0.1.0", "10.0.1.0/33", "10.0.1.0/", "10.0.1.0/-1", "10.0.1.0/24x"})
    EXPECT_FALSE(Subnet::parse(bad).has_value()) << bad;
}

TEST(Ipam, AllocatesSubnetsInOrderAndReservesIngress) {
  Ipam ipam;
  auto web = ipam.allocateSubnet("webnet", std::nullopt);
  ASSERT_TRUE(web.ok()) << web.error().message;
  EXPECT_EQ(web->str(), "10.0.1.0/24");
  auto ingress = ipam.allocateSubnet("ingress", std::nullopt);
  ASSERT_TRUE(ingress.ok());
  EXPECT_EQ(ingress->str(), "10.0.0.0/24");
  auto back = ipam.allocateSubnet("backend", std::nullopt);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->str(), "10.0.2.0/24");
  // Idempotent: asking again returns the same subnet.
  auto again = ipam.allocateSubnet("webnet", std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->str(), "10.0.1.0/24");
}

TEST(Ipam, RequestedSubnetMustNotOverlap) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("a", sn("10.0.5.0/24")).ok());
  auto clash = ipam.allocateSubnet("b", sn("10.0.0.0/16"));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().message,
            "subnet 10.0.0.0/16 requested by network b overlaps subnet 10.0.5.0/24 of network a");
  auto reserved = ipam.allocateSubnet("c", sn("10.0.0.0/24"));
  ASSERT_FALSE(reserved.ok());
  EXPECT_EQ(reserved.error().message,
            "subnet 10.0.0.0/24 requested by network c overlaps subnet 10.0.0.0/24 reserved for ingress");
  // Outside the pool is fine, and the automatic walk skips the taken one.
  auto outside = ipam.allocateSubnet("d", sn("192.168.50.0/24"));
  ASSERT_TRUE(outside.ok()) << outside.error().message;
  EXPECT_EQ(outside->str(), "192.168.50.0/24");
  auto taken = ipam.allocateSubnet("e", sn("10.0.1.0/24"));
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  EXPECT_EQ(taken->str(), "10.0.1.0/24");
  auto next = ipam.allocateSubnet("f", std::nullopt);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->str(), "10.0.2.0/24");
  auto change = ipam.allocateSubnet("a", sn("10.0.9.0/24"));
  ASSERT_FALSE(change.ok());
  EXPECT_EQ(change.error().message, "network a already has subnet 10.0.5.0/24, cannot change it to 10.0.9.0/24");
}

TEST(Ipam, SubnetPoolExhaustion) {
  Ipam ipam(sn("10.9.0.0/23"), 24);  // room for ingress + one network
  ASSERT_TRUE(ipam.allocateSubnet("one", std::nullopt).ok());
  auto full = ipam.allocateSubnet("two", std::nullopt);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message, "address pool 10.9.0.0/23 exhausted: no free /24 subnet for network two");
  ASSERT_TRUE(ipam.releaseSubnet("one").ok());
  auto reused = ipam.allocateSubnet("two", std::nullopt);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->str(), "10.9.1.0/24");
  auto nope = ipam.releaseSubnet("nope");
  ASSERT_FALSE(nope.ok());
  EXPECT_EQ(nope.error().message, "release subnet: network nope has no subnet");
}

TEST(Ipam, AddressesSkipNetworkGatewayBroadcastAndReuse) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("tiny", sn("10.5.0.0/29")).ok());  // .0 .. .7
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto a = ipam.allocateAddress("tiny");
    ASSERT_TRUE(a.ok()) << a.error().message;
    got.push_back(a->str());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"}));
  auto full = ipam.allocateAddress("tiny");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().message, "no free address in network tiny (10.5.0.0/29)");
  ASSERT_TRUE(ipam.releaseAddress("tiny", ip("10.5.0.4")).ok());
  auto reused = ipam.allocateAddress("tiny");
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->str(), "10.5.0.4");
  auto gateway = ipam.releaseAddress("tiny", ip("10.5.0.1"));
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(gateway.error().message, "release address: 10.5.0.1 is not allocated in network tiny");
}

TEST(Ipam, RequestedAddress) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("web", std::nullopt).ok());
  auto a = ipam.allocateAddress("web", ip("10.0.1.50"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->str(), "10.0.1.50");
  auto dup = ipam.allocateAddress("web", ip("10.0.1.50"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, "address 10.0.1.50 is already in use in network web");
  // The network address, the gateway, the broadcast address and another subnet's.
  for (const char* bad : {"10.0.1.0", "10.0.1.1", "10.0.1.255", "10.0.2.5"}) {
    auto r = ipam.allocateAddress("web", ip(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message, std::string("address ") + bad + " is not assignable in network web (10.0.1.0/24)");
  }
  // A requested address does not move the automatic walk: it still starts at .2.
  auto first = ipam.allocateAddress("web");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->str(), "10.0.1.2");
  auto nonet = ipam.allocateAddress("nonet");
  ASSERT_FALSE(nonet.ok());
  EXPECT_EQ(nonet.error().message, "allocate address: network nonet has no subnet");
}

// The state netd stores, as text: written out here, not taken from toJson.
constexpr const char* kTwoNetworksState = R"({"networks":{"ingress":{"addresses":[],"subnet":"10.0.0.0/24"},)"
                                          R"("webnet":{"addresses":["10.0.1.2","10.0.1.3"],"subnet":"10.0.1.0/24"}},)"
                                          R"("pool":"10.0.0.0/8","subnetPrefix":24})";

TEST(Ipam, JsonIsTheExpectedText) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("ingress", std::nullopt).ok());
  ASSERT_TRUE(ipam.allocateSubnet("webnet", std::nullopt).ok());
  auto a = ipam.allocateAddress("webnet");
  auto b = ipam.allocateAddress("webnet");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->str(), "10.0.1.2");
  EXPECT_EQ(b->str(), "10.0.1.3");
  EXPECT_EQ(ipam.toJson().dump(), kTwoNetworksState);
  EXPECT_EQ(Ipam().toJson().dump(), R"({"networks":{},"pool":"10.0.0.0/8","subnetPrefix":24})");
}

TEST(Ipam, RestoresFromStoredTextAndContinues) {
  auto restored = Ipam::fromJson(nlohmann::json::parse(kTwoNetworksState));
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->pool().str(), "10.0.0.0/8");
  EXPECT_EQ(restored->subnetPrefix(), 24);
  EXPECT_EQ(restored->subnetOf("ingress").value_or(Subnet{}).str(), "10.0.0.0/24");
  EXPECT_EQ(restored->subnetOf("webnet").value_or(Subnet{}).str(), "10.0.1.0/24");
  EXPECT_FALSE(restored->subnetOf("other").has_value());
  EXPECT_EQ(restored->toJson().dump(), kTwoNetworksState);
  // The restored state continues where the old one stopped.
  auto next = restored->allocateAddress("webnet");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->str(), "10.0.1.4");
  auto taken = restored->allocateAddress("webnet", ip("10.0.1.3"));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().message, "address 10.0.1.3 is already in use in network webnet");
  auto sub = restored->allocateSubnet("other", std::nullopt);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->str(), "10.0.2.0/24");

  // Another pool and prefix, a gap left by a released address, no addresses key.
  auto custom = Ipam::fromJson(nlohmann::json::parse(
      R"({"pool":"172.16.0.0/12","subnetPrefix":20,
          "networks":{"ingress":{"subnet":"172.16.0.0/20"},
                      "db":{"subnet":"172.16.16.0/20","addresses":["172.16.16.2","172.16.16.4"]}}})"));
  ASSERT_TRUE(custom.ok()) << custom.error().message;
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto x = custom->allocateAddress("db");
    ASSERT_TRUE(x.ok()) << x.error().message;
    got.push_back(x->str());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"172.16.16.3", "172.16.16.5"}));
  auto web = custom->allocateSubnet("web", std::nullopt);
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(web->str(), "172.16.32.0/20");
  auto ingressAddress = custom->allocateAddress("ingress");
  ASSERT_TRUE(ingressAddress.ok());
  EXPECT_EQ(ingressAddress->str(), "172.16.0.2");
}

TEST(Ipam, FromJsonRefusesBadState) {
  auto errorOf = [](const char* text) -> std::string {
    auto r = Ipam::fromJson(nlohmann::json::parse(text));
    return r.ok() ? "" : r.error().message;
  };
  EXPECT_EQ(errorOf(R"({"pool":"x"})"), "ipam state: missing pool or subnetPrefix");
  EXPECT_EQ(errorOf(R"({"pool":"x","subnetPrefix":24})"), "ipam state: invalid pool x");
  EXPECT_EQ(errorOf(R"({"pool":"10.0.0.0/8","subnetPrefix":24,"networks":[]})"),
            "ipam state: networks is not an object");
  EXPECT_EQ(errorOf(R"({"pool":"10.0.0.0/8","subnetPrefix":24,"networks":{"a":{"subnet":"10.0.1.7/24"}}})"),
            "ipam state: network a has an invalid subnet");
  EXPECT_EQ(errorOf(R"({"pool":"10.0.0.0/8","subnetPrefix":24,
                        "networks":{"a":{"subnet":"10.0.1.0/24","addresses":["10.0.2.3"]}}})"),
            "ipam state: network a: bad address");
}

}  // namespace
}  // namespace skiff::overlay
