#include "skiff/cli/swarm.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

using nlohmann::json;

TEST(WithSwarmPort, AHostAloneMeansTheClusterPort) {
  EXPECT_EQ(withSwarmPort("198.51.100.11").value(), "198.51.100.11:2377");
  EXPECT_EQ(withSwarmPort("198.51.100.11:4000").value(), "198.51.100.11:4000");
  EXPECT_EQ(withSwarmPort("manager.lab").value(), "manager.lab:2377");
  EXPECT_EQ(withSwarmPort("[2001:db8::1]").value(), "[2001:db8::1]:2377");
  EXPECT_EQ(withSwarmPort("[2001:db8::1]:4000").value(), "[2001:db8::1]:4000");
  EXPECT_EQ(withSwarmPort("2001:db8::1").value(), "[2001:db8::1]:2377");
}

TEST(WithSwarmPort, AListenAddressWithoutHostListensEverywhere) {
  EXPECT_EQ(withSwarmPort(":4000", true).value(), "0.0.0.0:4000");
  EXPECT_EQ(withSwarmPort("0.0.0.0", true).value(), "0.0.0.0:2377");
  EXPECT_FALSE(withSwarmPort(":4000").ok());
}

TEST(WithSwarmPort, RefusesBadPortsNamingTheValue) {
  for (const char* bad : {"", "host:", "host:0", "host:65536", "host:x", "[::1", "[::1]x", "[]:2377"}) {
    auto result = withSwarmPort(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_EQ(result.error().message.rfind("invalid address \"" + std::string(bad) + "\": ", 0), 0u)
        << result.error().message;
  }
  EXPECT_EQ(withSwarmPort("host:99999").error().message, "invalid address \"host:99999\": invalid port \"99999\"");
}

TEST(JoinTokenRole, OnlyWorkerAndManager) {
  EXPECT_TRUE(validateJoinTokenRole("worker").ok());
  EXPECT_TRUE(validateJoinTokenRole("manager").ok());
  EXPECT_EQ(validateJoinTokenRole("Worker").error().message, "unknown role Worker");
  EXPECT_EQ(validateJoinTokenRole("").error().message, "unknown role ");
}

TEST(NodeUpdateBody, LowerCasesAvailabilityAndSplitsLabels) {
  NodeUpdateFlags flags;
  flags.availability = "Drain";
  flags.labelAdd = {"zone=a", "ssd", "k=v=w"};
  flags.labelRm = {"old"};
  auto body = nodeUpdateBody(flags);
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(body->dump(), R"({"availability":"drain","labelAdd":{"k":"v=w","ssd":"","zone":"a"},"labelRm":["old"]})");
}

TEST(NodeUpdateBody, NothingGivenChangesNothing) {
  auto body = nodeUpdateBody(NodeUpdateFlags{});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->dump(), R"({"labelAdd":{},"labelRm":[]})");
}

TEST(NodeUpdateBody, RefusesWithDockersWords) {
  NodeUpdateFlags flags;
  flags.availability = "sleep";
  EXPECT_EQ(nodeUpdateBody(flags).error().message,
            "invalid availability \"sleep\", only active, pause and drain are supported");
  flags = NodeUpdateFlags{};
  flags.labelAdd = {"=v"};
  EXPECT_EQ(nodeUpdateBody(flags).error().message,
            "invalid argument \"=v\" for \"--label-add\" flag: invalid label '=v': empty name");
  flags.labelAdd = {"my zone=a"};
  EXPECT_EQ(nodeUpdateBody(flags).error().message,
            "invalid argument \"my zone=a\" for \"--label-add\" flag: label 'my zone' contains "
            "whitespaces");
}

TEST(GoTimeText, AsGoPrintsATime) {
  EXPECT_EQ(goTimeText("2024-05-01T12:00:00Z"), "2024-05-01 12:00:00 +0000 UTC");
  EXPECT_EQ(goTimeText("2024-05-01T12:00:00.250000Z"), "2024-05-01 12:00:00.25 +0000 UTC");
  EXPECT_EQ(goTimeText("2024-05-01T14:00:00.123456789+02:00"), "2024-05-01 14:00:00.123456789 +0200 +0200");
  EXPECT_EQ(goTimeText("yesterday"), "yesterday");
  EXPECT_EQ(goTimeText(""), "");
}

TEST(SwarmTexts, JoinedAsTheRoleTheDaemonGave) {
  EXPECT_EQ(joinedText(json{{"nodeId", "n2"}, {"role", "worker"}}), "This node joined a swarm as a worker.\n");
  EXPECT_EQ(joinedText(json{{"nodeId", "n2"}, {"role", "manager"}}), "This node joined a swarm as a manager.\n");
}

TEST(NodePrettyText, AWorkerWithoutLabelsOrManagerStatus) {
  const json node = json::parse(R"({"ID":"1m2n3b4v5c6x7z8l9k0j1h2g3","Description":{"Hostname":"lab2"},
      "Spec":{"Role":"worker","Availability":"drain","Labels":{}},"Status":{"State":"down","Addr":"198.51.100.12"},
      "CreatedAt":"2024-05-01T12:00:00Z","UpdatedAt":"2024-05-01T12:05:00Z"})");
  EXPECT_EQ(nodePrettyText(node),
            "ID:\t\t\t1m2n3b4v5c6x7z8l9k0j1h2g3\n"
            "Hostname:              \tlab2\n"
            "Joined at:             \t2024-05-01 12:00:00 +0000 UTC\n"
            "Role:                  \tworker\n"
            "Status:\n"
            " State:\t\t\tDown\n"
            " Availability:         \tDrain\n"
            " Address:\t\t198.51.100.12\n");
}

}  // namespace
}  // namespace skiff::cli
