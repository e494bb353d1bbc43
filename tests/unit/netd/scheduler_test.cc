#include "skiff/netd/scheduler.h"

#include <gtest/gtest.h>

namespace skiff::netd {
namespace {

SchedNode node(const std::string& id, const std::string& hostname, NodeRole role = NodeRole::kWorker) {
  SchedNode n;
  n.id = id;
  n.hostname = hostname;
  n.role = role;
  return n;
}

std::vector<SchedNode> threeNodes() {
  return {node("n1", "host1", NodeRole::kManager), node("n2", "host2"), node("n3", "host3")};
}

std::vector<std::string> nodesOf(const std::vector<Placement>& ps) {
  std::vector<std::string> out;
  for (const Placement& p : ps) out.push_back(p.node.empty() ? "<" + p.reason + ">" : p.node);
  return out;
}

SchedService withConstraints(std::vector<std::string> c) {
  SchedService s;
  s.constraints = std::move(c);
  return s;
}

// Spread.

TEST(PlaceReplicas, SixReplicasOverThreeNodesSpreadTwoTwoTwo) {
  auto ps = placeReplicas(threeNodes(), {}, {}, 6);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n1", "n2", "n3", "n1", "n2", "n3"}));
}

TEST(PlaceReplicas, TasksAlreadyRunningCountTowardSpread) {
  // n1 already runs 2 of this service, n2 runs 1: the next three fill n3, then n2, then n3.
  auto ps = placeReplicas(threeNodes(), {}, {{"n1", 2}, {"n2", 1}}, 3);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n3", "n2", "n3"}));
}

TEST(PlaceReplicas, TiesGoToTheNodeWithFewestTasksOverall) {
  auto nodes = threeNodes();
  nodes[0].tasks = 5;  // n1 is busy with other services
  nodes[1].tasks = 1;
  auto ps = placeReplicas(nodes, {}, {}, 4);
  // n3 (0 tasks), n2 (1), then n1 is still the only node without this service.
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n3", "n2", "n1", "n3"}));
}

TEST(PlaceReplicas, FullTiesGoToTheLowestNodeIdWhateverTheInputOrder) {
  std::vector<SchedNode> nodes = {node("c", "hc"), node("a", "ha"), node("b", "hb")};
  auto ps = placeReplicas(nodes, {}, {}, 4);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"a", "b", "c", "a"}));
}

TEST(PlaceReplicas, RunningCountsOfNodesNotInTheListAreIgnored) {
  auto ps = placeReplicas(threeNodes(), {}, {{"gone", 7}}, 3);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n1", "n2", "n3"}));
}

TEST(PlaceReplicas, ZeroCountPlacesNothing) { EXPECT_TRUE(placeReplicas(threeNodes(), {}, {}, 0).empty()); }

// Availability and readiness.

TEST(PlaceReplicas, DrainedPausedAndDownNodesGetNothing) {
  auto nodes = threeNodes();
  nodes.push_back(node("n4", "host4"));
  nodes[0].availability = NodeAvailability::kDrain;
  nodes[1].availability = NodeAvailability::kPause;
  nodes[2].ready = false;
  auto ps = placeReplicas(nodes, {}, {}, 3);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n4", "n4", "n4"}));
}

TEST(PlaceReplicas, NoAvailableNodeSaysHowManyAreUnavailable) {
  auto nodes = threeNodes();
  for (auto& n : nodes) n.availability = NodeAvailability::kDrain;
  auto ps = placeReplicas(nodes, {}, {}, 1);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].node, "");
  EXPECT_EQ(ps[0].reason, "no suitable node (3 nodes not available for new tasks)");
}

TEST(PlaceReplicas, NoNodesAtAll) {
  auto ps = placeReplicas({}, {}, {}, 2);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].reason, "no suitable node");
  EXPECT_EQ(ps[1].reason, "no suitable node");
}

// Constraints.

TEST(PlaceReplicas, HostnameEqualsPinsEveryTaskToThatNode) {
  auto ps = placeReplicas(threeNodes(), withConstraints({"node.hostname==host2"}), {}, 3);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n2", "n2", "n2"}));
}

TEST(PlaceReplicas, HostnameNotEqualsSpreadsOverTheOthers) {
  auto ps = placeReplicas(threeNodes(), withConstraints({"node.hostname != host1"}), {}, 4);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n2", "n3", "n2", "n3"}));
}

TEST(PlaceReplicas, UnsatisfiableConstraintGivesDockersReason) {
  auto ps = placeReplicas(threeNodes(), withConstraints({"node.hostname==nowhere"}), {}, 1);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].node, "");
  EXPECT_EQ(ps[0].reason, "no suitable node (scheduling constraints not satisfied on 3 nodes)");
}

TEST(PlaceReplicas, MixedFailuresListMostFailuresFirst) {
  auto nodes = threeNodes();
  nodes[0].availability = NodeAvailability::kDrain;
  auto ps = placeReplicas(nodes, withConstraints({"node.role==manager"}), {}, 1);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].reason,
            "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not "
            "available for new tasks)");
}

TEST(PlaceReplicas, EqualFailureCountsKeepPipelineOrder) {
  std::vector<SchedNode> nodes = {node("n1", "host1"), node("n2", "host2")};
  nodes[1].ready = false;
  auto ps = placeReplicas(nodes, withConstraints({"node.hostname==host9"}), {}, 1);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].reason,
            "no suitable node (1 node not available for new tasks; scheduling constraints not "
            "satisfied on 1 node)");
}

TEST(PlaceReplicas, RoleConstraints) {
  auto managers = placeReplicas(threeNodes(), withConstraints({"node.role==manager"}), {}, 2);
  EXPECT_EQ(nodesOf(managers), (std::vector<std::string>{"n1", "n1"}));
  auto workers = placeReplicas(threeNodes(), withConstraints({"node.role == worker"}), {}, 2);
  EXPECT_EQ(nodesOf(workers), (std::vector<std::string>{"n2", "n3"}));
  auto notManager = placeReplicas(threeNodes(), withConstraints({"node.role!=manager"}), {}, 2);
  EXPECT_EQ(nodesOf(notManager), (std::vector<std::string>{"n2", "n3"}));
}

TEST(PlaceReplicas, LabelConstraintsAndSeveralConstraintsAllHold) {
  auto nodes = threeNodes();
  nodes[0].labels = {{"zone", "a"}, {"disk", "ssd"}};
  nodes[1].labels = {{"zone", "a"}};
  nodes[2].labels = {{"zone", "b"}, {"disk", "ssd"}};
  auto zoneA = placeReplicas(nodes, withConstraints({"node.labels.zone==a"}), {}, 2);
  EXPECT_EQ(nodesOf(zoneA), (std::vector<std::string>{"n1", "n2"}));
  auto both = placeReplicas(nodes, withConstraints({"node.labels.zone==a", "node.labels.disk==ssd"}), {}, 2);
  EXPECT_EQ(nodesOf(both), (std::vector<std::string>{"n1", "n1"}));
  // A missing label reads as "": != holds on a node without it.
  auto noSsd = placeReplicas(nodes, withConstraints({"node.labels.disk!=ssd"}), {}, 1);
  EXPECT_EQ(nodesOf(noSsd), (std::vector<std::string>{"n2"}));
}

TEST(PlaceReplicas, NodeIdConstraint) {
  auto ps = placeReplicas(threeNodes(), withConstraints({"node.id==n3"}), {}, 2);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n3", "n3"}));
}

TEST(NodeMatches, ValuesCompareCaseInsensitivelyAsSwarmkitDoes) {
  // swarmkit's Constraint.Match uses strings.EqualFold for every attribute.
  SchedNode n = node("n1", "Host1");
  n.labels = {{"zone", "EU-West"}};
  EXPECT_TRUE(nodeMatches(n, {"node.hostname==host1"}));
  EXPECT_TRUE(nodeMatches(n, {"node.hostname==HOST1"}));
  EXPECT_FALSE(nodeMatches(n, {"node.hostname!=host1"}));
  EXPECT_TRUE(nodeMatches(n, {"node.role==WORKER"}));
  EXPECT_TRUE(nodeMatches(n, {"node.labels.zone==eu-west"}));
  // Attribute names are case-insensitive too, except the label's own name.
  EXPECT_TRUE(nodeMatches(n, {"NODE.HOSTNAME==host1"}));
  EXPECT_TRUE(nodeMatches(n, {"Node.Labels.zone==eu-west"}));
  EXPECT_FALSE(nodeMatches(n, {"node.labels.Zone==eu-west"}));
}

TEST(NodeMatches, UnknownAttributeNeverHolds) {
  SchedNode n = node("n1", "host1");
  EXPECT_FALSE(nodeMatches(n, {"node.hostnme==host1"}));
  EXPECT_FALSE(nodeMatches(n, {"node.hostnme!=host1"}));
  EXPECT_FALSE(nodeMatches(n, {"node.ip==10.0.0.1"}));
  EXPECT_TRUE(validateConstraints({"node.hostnme==host1"}).ok());  // docker accepts it too
  auto ps = placeReplicas(threeNodes(), withConstraints({"node.hostnme==host1"}), {}, 1);
  EXPECT_EQ(ps[0].reason, "no suitable node (scheduling constraints not satisfied on 3 nodes)");
}

TEST(NodeMatches, PlatformAndEngineLabels) {
  SchedNode n = node("n1", "host1");
  EXPECT_TRUE(nodeMatches(n, {"node.platform.os==linux"}));
  EXPECT_FALSE(nodeMatches(n, {"node.platform.os==windows"}));
  EXPECT_TRUE(nodeMatches(n, {"engine.labels.x!=y"}));
  EXPECT_FALSE(nodeMatches(n, {"engine.labels.x==y"}));
}

TEST(NodeMatches, UnparsableConstraintNeverHolds) {
  SchedNode n = node("n1", "host1");
  EXPECT_FALSE(nodeMatches(n, {"node.hostname=host1"}));
  EXPECT_FALSE(nodeMatches(n, {"node.hostname!=host9", "junk"}));
  EXPECT_TRUE(nodeMatches(n, {}));
}

TEST(ValidateConstraints, DockersErrors) {
  EXPECT_TRUE(validateConstraints({"node.hostname==h1", " node.labels.zone != a b "}).ok());
  auto noOp = validateConstraints({"node.hostname==h1", "node.hostname=h1"});
  ASSERT_FALSE(noOp.ok());
  EXPECT_EQ(noOp.error().message,
            "invalid constraint \"node.hostname=h1\": constraint expected one operator from ==, !=");
  auto badKey = validateConstraints({"==h1"});
  ASSERT_FALSE(badKey.ok());
  EXPECT_EQ(badKey.error().message, "invalid constraint \"==h1\": key '' is invalid");
  auto badKey2 = validateConstraints({"node hostname==h1"});
  ASSERT_FALSE(badKey2.ok());
  EXPECT_EQ(badKey2.error().message, "invalid constraint \"node hostname==h1\": key 'node hostname' is invalid");
  auto emptyValue = validateConstraints({"node.role=="});
  ASSERT_FALSE(emptyValue.ok());
  EXPECT_EQ(emptyValue.error().message, "invalid constraint \"node.role==\": value '' is invalid");
  auto badValue = validateConstraints({"node.role==>manager"});
  ASSERT_FALSE(badValue.ok());
  EXPECT_EQ(badValue.error().message, "invalid constraint \"node.role==>manager\": value '>manager' is invalid");
  // "==" is looked for first, so "a!=b==c" splits at "==" and its key is invalid.
  auto both = validateConstraints({"node.id!=x==y"});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message, "invalid constraint \"node.id!=x==y\": key 'node.id!=x' is invalid");
}

// max_replicas_per_node.

TEST(PlaceReplicas, MaxReplicasPerNodeLimitsEachNode) {
  SchedService s;
  s.maxReplicasPerNode = 1;
  auto ps = placeReplicas(threeNodes(), s, {}, 4);
  ASSERT_EQ(ps.size(), 4u);
  EXPECT_EQ(nodesOf(ps),
            (std::vector<std::string>{"n1", "n2", "n3", "<no suitable node (max replicas per node limit exceed)>"}));
}

TEST(PlaceReplicas, MaxReplicasPerNodeCountsRunningTasks) {
  SchedService s;
  s.maxReplicasPerNode = 2;
  auto ps = placeReplicas(threeNodes(), s, {{"n1", 2}, {"n2", 1}}, 3);
  EXPECT_EQ(nodesOf(ps), (std::vector<std::string>{"n3", "n2", "n3"}));
}

TEST(PlaceReplicas, MaxReplicasWithConstraintsExplainsBoth) {
  SchedService s = withConstraints({"node.role==manager"});
  s.maxReplicasPerNode = 1;
  auto ps = placeReplicas(threeNodes(), s, {}, 2);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].node, "n1");
  EXPECT_EQ(ps[1].reason,
            "no suitable node (scheduling constraints not satisfied on 2 nodes; max replicas per "
            "node limit exceed)");
}

// Global mode.

TEST(GlobalNodes, EveryAvailableMatchingNodeSorted) {
  std::vector<SchedNode> nodes = {node("n3", "host3"), node("n1", "host1", NodeRole::kManager), node("n2", "host2"),
                                  node("n4", "host4"), node("n5", "host5")};
  nodes[3].availability = NodeAvailability::kPause;
  nodes[4].ready = false;
  EXPECT_EQ(globalNodes(nodes, {}), (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_EQ(globalNodes(nodes, withConstraints({"node.role==worker"})), (std::vector<std::string>{"n2", "n3"}));
  nodes[1].availability = NodeAvailability::kDrain;
  EXPECT_EQ(globalNodes(nodes, {}), (std::vector<std::string>{"n2", "n3"}));
  EXPECT_TRUE(globalNodes(nodes, withConstraints({"bad"})).empty());
}

// Availability names, as `node update --availability` takes them.

TEST(Availability, RoundTripsDockersWords) {
  for (auto a : {NodeAvailability::kActive, NodeAvailability::kPause, NodeAvailability::kDrain}) {
    auto parsed = parseAvailability(toString(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
  }
  EXPECT_STREQ(toString(NodeAvailability::kDrain), "drain");
  EXPECT_STREQ(toString(NodeRole::kManager), "manager");
  EXPECT_STREQ(toString(NodeRole::kWorker), "worker");
  auto bad = parseAvailability("drained");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "invalid availability \"drained\": expected active, pause or drain");
}

}  // namespace
}  // namespace skiff::netd
