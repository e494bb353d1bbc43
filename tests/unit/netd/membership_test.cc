// The manager's membership table alone (issue 9): join tokens per role,
// refused when wrong, truncated or rotated; one ready node per address;
// heartbeats authenticated by the node's own secret; nodes found by id,
// prefix or hostname; who went silent. Times are passed in: no clock.
#include "skiff/netd/membership.h"

#include <gtest/gtest.h>

namespace skiff::netd {
namespace {
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using Sys = std::chrono::system_clock;

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeState self;
    self.id = "managerid0000000000000000";
    self.hostname = "node1";
    self.addr = "198.51.100.11";
    self.role = NodeRole::kManager;
    m_.create(self);
  }
  NodeState& join(const std::string& host, const std::string& addr, Steady::time_point seen = Steady::time_point{}) {
    return m_.admit(host, addr, overlay::Ipv4::parse("10.0.0.9"), Sys::now(), seen);
  }
  Membership m_;
};

TEST_F(MembershipTest, TokensNameTheirRoleAndOnlyTheExactTokenLetsIn) {
  const std::string worker = m_.joinToken(NodeRole::kWorker);
  const std::string manager = m_.joinToken(NodeRole::kManager);
  EXPECT_EQ(worker.rfind("SWMTKN-1-" + m_.clusterKey() + "-", 0), 0u) << worker;
  EXPECT_NE(worker, manager);
  EXPECT_EQ(m_.roleOf(worker), NodeRole::kWorker);
  EXPECT_EQ(m_.roleOf(manager), NodeRole::kManager);
  EXPECT_EQ(m_.roleOf(worker.substr(0, worker.size() - 1)), std::nullopt);
  EXPECT_EQ(m_.roleOf(worker + "x"), std::nullopt);
  EXPECT_EQ(m_.roleOf(""), std::nullopt);
  m_.rotate(NodeRole::kWorker);
  EXPECT_EQ(m_.roleOf(worker), std::nullopt) << "a rotated token still let a node in";
  EXPECT_EQ(m_.roleOf(m_.joinToken(NodeRole::kWorker)), NodeRole::kWorker);
  EXPECT_EQ(m_.roleOf(manager), NodeRole::kManager) << "rotating the worker token changed the manager's";
}

TEST_F(MembershipTest, AdmittedNodesHaveTheirOwnIdAndSecretAndOneReadyNodePerAddress) {
  NodeState& a = join("node2", "198.51.100.12");
  NodeState& b = join("node3", "198.51.100.13");
  EXPECT_EQ(a.id.size(), 25u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.secret, b.secret);
  EXPECT_EQ(a.role, NodeRole::kWorker);
  EXPECT_EQ(m_.size(), 3u);
  ASSERT_NE(m_.readyAt("198.51.100.12"), nullptr);
  EXPECT_EQ(m_.readyAt("198.51.100.12")->hostname, "node2");
  a.ready = false;  // Down: its address may join again
  EXPECT_EQ(m_.readyAt("198.51.100.12"), nullptr);
  EXPECT_EQ(m_.readyAt("198.51.100.99"), nullptr);
}

// Every node's agent heartbeats with its own secret, the manager's own
// agent too; a node kept without a secret (a store from before the
// manager's agent had one) is never let in, not even with an empty one.
TEST_F(MembershipTest, HeartbeatsAreTheNodesOwnAndNeedASecret) {
  NodeState& a = join("node2", "198.51.100.12");
  const std::string id = a.id, secret = a.secret;
  EXPECT_EQ(m_.authenticate(id, secret), &a);
  EXPECT_EQ(m_.authenticate(id, secret.substr(1)), nullptr);
  EXPECT_EQ(m_.authenticate(id, ""), nullptr);
  EXPECT_EQ(m_.authenticate("nosuchnode", secret), nullptr);
  EXPECT_EQ(m_.authenticate("managerid0000000000000000", ""), nullptr) << "no secret is not an empty secret";
  m_.get("managerid0000000000000000")->secret = "s3cr3t";
  EXPECT_EQ(m_.authenticate("managerid0000000000000000", "s3cr3t"), m_.get("managerid0000000000000000"));
  m_.erase(id);
  EXPECT_EQ(m_.authenticate(id, secret), nullptr) << "a removed node still heartbeats";
}

TEST_F(MembershipTest, NodesAreFoundByIdPrefixOrHostnameAndNotWhenAmbiguous) {
  NodeState& a = join("node2", "198.51.100.12");
  join("node3", "198.51.100.13");
  EXPECT_EQ(m_.find(a.id), &a);
  EXPECT_EQ(m_.find(a.id.substr(0, 6)), &a);
  EXPECT_EQ(m_.find("node2"), &a);
  EXPECT_EQ(m_.find(""), nullptr);
  EXPECT_EQ(m_.find("nosuch"), nullptr);
  EXPECT_EQ(m_.nameOf(a.id), "node2");
  EXPECT_EQ(m_.nameOf("gone"), "gone");
}

TEST_F(MembershipTest, OnlyReadyWorkersPastTheTimeoutAreSilent) {
  const Steady::time_point t0{std::chrono::seconds(100)};
  NodeState& quiet = join("node2", "198.51.100.12", t0);
  NodeState& talking = join("node3", "198.51.100.13", t0 + 3s);
  NodeState& down = join("node4", "198.51.100.14", t0);
  down.ready = false;
  auto silent = m_.silent(t0 + 5s, 4000ms, "managerid0000000000000000");
  ASSERT_EQ(silent.size(), 1u);
  EXPECT_EQ(silent[0], &quiet);
  (void)talking;
}

TEST_F(MembershipTest, ARestartGetsBackTheStoredSecretsAndNodes) {
  NodeState& a = join("node2", "198.51.100.12");
  std::vector<NodeState> stored;
  for (const auto& [id, n] : m_.all()) stored.push_back(NodeState::fromJson(n.toJson()));
  Membership again;
  again.restore(m_.clusterKey(), m_.roleSecret(NodeRole::kWorker), m_.roleSecret(NodeRole::kManager), stored);
  EXPECT_EQ(again.joinToken(NodeRole::kWorker), m_.joinToken(NodeRole::kWorker));
  ASSERT_NE(again.get(a.id), nullptr);
  EXPECT_EQ(again.get(a.id)->hostname, "node2");
  EXPECT_EQ(again.get(a.id)->ingressAddr->str(), "10.0.0.9");
  EXPECT_NE(again.authenticate(a.id, a.secret), nullptr);
  again.clear();
  EXPECT_EQ(again.roleOf(m_.joinToken(NodeRole::kWorker)), std::nullopt) << "a swarm that was left still admits";
  EXPECT_EQ(again.size(), 0u);
}

}  // namespace
}  // namespace skiff::netd
