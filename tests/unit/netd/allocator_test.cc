// The manager's allocator across nodes (issue 9): one VNI and subnet per
// network for the whole swarm, unique addresses for replicas wherever they
// run and for every node on ingress, and the same values again after a
// restart. Expected values are written out.
#include "skiff/netd/allocator.h"

#include <gtest/gtest.h>

#include <set>

namespace skiff::netd {
namespace {
using overlay::Ipv4;
using overlay::Subnet;

std::string str(const Result<Ipv4>& ip) { return ip.ok() ? ip->str() : "error: " + ip.error().message; }
std::string str(const Result<Allocator::Network>& n) {
  return n.ok() ? std::to_string(n->vni) + " " + n->subnet.str() : "error: " + n.error().message;
}

TEST(Allocator, IngressThenStackNetworksGetVnisAndSubnetsInOrder) {
  Allocator a;
  EXPECT_EQ(str(a.allocateNetwork("ingress", std::nullopt, std::nullopt)), "4096 10.0.0.0/24");
  EXPECT_EQ(str(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt)), "4097 10.0.1.0/24");
  EXPECT_EQ(str(a.allocateNetwork("s_db", std::nullopt, std::nullopt)), "4098 10.0.2.0/24");
  EXPECT_EQ(str(a.allocateNetwork("t_custom", std::nullopt, Subnet::parse("10.20.0.0/24"))), "4099 10.20.0.0/24");
}

TEST(Allocator, EveryNodeAndEveryReplicaHasItsOwnAddressWhereverItRuns) {
  Allocator a;
  ASSERT_TRUE(a.allocateNetwork("ingress", std::nullopt, std::nullopt).ok());
  ASSERT_TRUE(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt).ok());
  // The manager, then two workers joining: each node's proxy source.
  EXPECT_EQ(str(a.allocateAddress("ingress")), "10.0.0.2");
  EXPECT_EQ(str(a.allocateAddress("ingress")), "10.0.0.3");
  EXPECT_EQ(str(a.allocateAddress("ingress")), "10.0.0.4");
  // Six replicas spread over the three nodes: one address each on every
  // network they join, none handed out twice.
  std::set<std::string> seen;
  for (int i = 0; i < 6; i++) {
    auto in = a.allocateAddress("ingress");
    auto web = a.allocateAddress("s_webnet");
    ASSERT_TRUE(in.ok() && web.ok());
    EXPECT_TRUE(seen.insert(in->str()).second) << in->str();
    EXPECT_TRUE(seen.insert(web->str()).second) << web->str();
  }
  EXPECT_EQ(seen, (std::set<std::string>{"10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10",
                                         "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.7"}));
  // A node leaves: its ingress address is free for the next one to join.
  a.releaseAddress("ingress", *Ipv4::parse("10.0.0.3"));
  EXPECT_EQ(str(a.allocateAddress("ingress")), "10.0.0.3");
}

TEST(Allocator, ARestartHandsTheStoredValuesBackAndCountsOnFromThem) {
  Allocator a;
  // Restored from the store, in whatever order it lists them.
  EXPECT_EQ(str(a.allocateNetwork("s_db", 4103u, Subnet::parse("10.0.7.0/24"))), "4103 10.0.7.0/24");
  EXPECT_EQ(str(a.allocateNetwork("ingress", 4096u, Subnet::parse("10.0.0.0/24"))), "4096 10.0.0.0/24");
  EXPECT_EQ(str(a.allocateAddress("ingress", Ipv4::parse("10.0.0.9"))), "10.0.0.9");
  // New ones never reuse a stored VNI, subnet or address.
  EXPECT_EQ(str(a.allocateNetwork("t_web", std::nullopt, std::nullopt)), "4104 10.0.1.0/24");
  EXPECT_EQ(str(a.allocateAddress("ingress", Ipv4::parse("10.0.0.9"))),
            "error: address 10.0.0.9 is already in use in network ingress");
}

TEST(Allocator, ANetworkAskedAgainKeepsItsValuesAndARefusalNamesTheOverlap) {
  Allocator a;
  ASSERT_TRUE(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt).ok());
  // Asked again (a redeploy, a restore racing a deploy): the same values.
  EXPECT_EQ(str(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt)), "4097 10.0.1.0/24");
  EXPECT_EQ(str(a.allocateNetwork("t_x", std::nullopt, Subnet::parse("10.0.1.0/25"))),
            "error: subnet 10.0.1.0/25 requested by network t_x overlaps subnet 10.0.1.0/24 of network s_webnet");
  // A refused network takes no VNI.
  EXPECT_EQ(str(a.allocateNetwork("t_y", std::nullopt, std::nullopt)), "4098 10.0.2.0/24");
}

TEST(Allocator, AReleasedNetworkGivesBackItsSubnetButNotItsVni) {
  Allocator a;
  ASSERT_TRUE(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt).ok());
  a.releaseNetwork("s_webnet");
  EXPECT_EQ(str(a.allocateNetwork("s_webnet", std::nullopt, std::nullopt)), "4098 10.0.1.0/24");
}

}  // namespace
}  // namespace skiff::netd
