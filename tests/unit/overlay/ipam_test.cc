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
  EXPECT_NE(reserved.error().message.find("reserved for ingress"), std::string::npos);
  // Outside the pool is fine, and the automatic walk skips the taken one.
  EXPECT_TRUE(ipam.allocateSubnet("d", sn("192.168.50.0/24")).ok());
  EXPECT_TRUE(ipam.allocateSubnet("e", sn("10.0.1.0/24")).ok());
  auto next = ipam.allocateSubnet("f", std::nullopt);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->str(), "10.0.2.0/24");
  auto change = ipam.allocateSubnet("a", sn("10.0.9.0/24"));
  EXPECT_FALSE(change.ok());
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
  EXPECT_FALSE(ipam.releaseSubnet("nope").ok());
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
  EXPECT_FALSE(ipam.releaseAddress("tiny", ip("10.5.0.1")).ok());
}

TEST(Ipam, RequestedAddress) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("web", std::nullopt).ok());
  auto a = ipam.allocateAddress("web", ip("10.0.1.50"));
  ASSERT_TRUE(a.ok());
  auto dup = ipam.allocateAddress("web", ip("10.0.1.50"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().message, "address 10.0.1.50 is already in use in network web");
  for (const char* bad : {"10.0.1.0", "10.0.1.1", "10.0.1.255", "10.0.2.5"})
    EXPECT_FALSE(ipam.allocateAddress("web", ip(bad)).ok()) << bad;
  EXPECT_FALSE(ipam.allocateAddress("nonet").ok());
}

TEST(Ipam, JsonRoundTrip) {
  Ipam ipam;
  ASSERT_TRUE(ipam.allocateSubnet("ingress", std::nullopt).ok());
  ASSERT_TRUE(ipam.allocateSubnet("webnet", std::nullopt).ok());
  ASSERT_TRUE(ipam.allocateAddress("webnet").ok());
  ASSERT_TRUE(ipam.allocateAddress("webnet").ok());
  auto json = ipam.toJson();
  auto restored = Ipam::fromJson(nlohmann::json::parse(json.dump()));
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored->toJson(), json);
  // The restored state continues where the old one stopped.
  auto next = restored->allocateAddress("webnet");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->str(), "10.0.1.4");
  auto sub = restored->allocateSubnet("other", std::nullopt);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->str(), "10.0.2.0/24");

  EXPECT_FALSE(Ipam::fromJson(nlohmann::json::parse(R"({"pool":"x"})")).ok());
  EXPECT_FALSE(Ipam::fromJson(nlohmann::json::parse(
                                  R"({"pool":"10.0.0.0/8","subnetPrefix":24,
                                      "networks":{"a":{"subnet":"10.0.1.0/24",
                                      "addresses":["10.0.2.3"]}}})"))
                   .ok());
}

}  // namespace
}  // namespace skiff::overlay
