// `skiff swarm ...` and `skiff node ...` as a user runs them: flags parsed by
// CLI11, requests sent to a fake netd, and the exact bytes printed.

#include "src/swarm_commands.h"

#include <gtest/gtest.h>

#include <iostream>
#include <sstream>

#include "fake_daemon.h"

namespace skiff::cli {
namespace {

using fake::FakeDaemon;
using fake::jsonResponse;
using fake::Request;
using nlohmann::json;

struct Outcome {
  int code = 0;
  std::string out;
  std::string err;
};

// Redirects std::cout and std::cerr for its lifetime.
class Capture {
 public:
  Capture() : oldOut_(std::cout.rdbuf(out_.rdbuf())), oldErr_(std::cerr.rdbuf(err_.rdbuf())) {}
  ~Capture() {
    std::cout.rdbuf(oldOut_);
    std::cerr.rdbuf(oldErr_);
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

 private:
  std::ostringstream out_, err_;
  std::streambuf* oldOut_;
  std::streambuf* oldErr_;
};

// `skiff ARGS...` with only the swarm and node commands, against `daemon`.
Outcome skiff(FakeDaemon& daemon, std::vector<std::string> args) {
  CLI::App app{"skiff", "skiff"};
  app.require_subcommand(1);
  std::function<int()> action;
  const std::string host = daemon.host();
  Commands commands(action, host);
  SwarmCommands swarm(app, commands);

  args.insert(args.begin(), "skiff");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  Outcome outcome;
  Capture capture;
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    outcome.code = action ? action() : 0;
  } catch (const CLI::ParseError& e) {
    outcome.code = app.exit(e);
  }
  outcome.out = capture.out();
  outcome.err = capture.err();
  return outcome;
}

constexpr const char* kToken = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
constexpr const char* kManagerId = "3x5k9q2m7w1e8r4t6y0u2i4o6";

TEST(SwarmInit, PrintsDockersJoinInstructionsAndSendsBothAddresses) {
  FakeDaemon daemon(
      jsonResponse(200, {{"nodeId", kManagerId}, {"workerToken", kToken}, {"managerAddr", "198.51.100.11:2377"}}));
  const Outcome r = skiff(daemon, {"swarm", "init", "--advertise-addr", "198.51.100.11"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Swarm initialized: current node (3x5k9q2m7w1e8r4t6y0u2i4o6) is now a manager.\n"
            "\n"
            "To add a worker to this swarm, run the following command:\n"
            "\n"
            "    skiff swarm join --token "
            "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx "
            "198.51.100.11:2377\n"
            "\n"
            "To add a manager to this swarm, run 'skiff swarm join-token manager' and follow the "
            "instructions.\n"
            "\n");
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].method, "POST");
  EXPECT_EQ(daemon.requests()[0].target, "/v1/swarm/init");
  EXPECT_EQ(daemon.requests()[0].json(),
            json::parse(R"({"advertiseAddr":"198.51.100.11","listenAddr":"0.0.0.0:2377"})"));
}

TEST(SwarmInit, ListenAddressWithoutPortGetsTheClusterPort) {
  FakeDaemon daemon(jsonResponse(200, {{"nodeId", kManagerId}}));
  EXPECT_EQ(skiff(daemon, {"swarm", "init", "--listen-addr", "198.51.100.11"}).code, 0);
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].json(), json::parse(R"({"advertiseAddr":"","listenAddr":"198.51.100.11:2377"})"));
}

TEST(SwarmInit, AlreadyInASwarmIsTheDaemonsErrorAndExit1) {
  FakeDaemon daemon(jsonResponse(409, {{"message", "This node is already part of a swarm."}}));
  const Outcome r = skiff(daemon, {"swarm", "init"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error response from daemon: This node is already part of a swarm.\n");
}

TEST(SwarmJoinToken, QuietPrintsOnlyTheToken) {
  FakeDaemon daemon(jsonResponse(200, {{"role", "worker"}, {"token", kToken}, {"managerAddr", "198.51.100.11:2377"}}));
  const Outcome r = skiff(daemon, {"swarm", "join-token", "-q", "worker"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, std::string(kToken) + "\n");
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].target, "/v1/swarm/join-token");
  EXPECT_EQ(daemon.requests()[0].json(), json::parse(R"({"role":"worker","rotate":false})"));
}

TEST(SwarmJoinToken, RotateSaysSoBeforeTheNewJoinCommand) {
  FakeDaemon daemon(
      jsonResponse(200, {{"role", "worker"}, {"token", "SWMTKN-1-new"}, {"managerAddr", "198.51.100.11:2377"}}));
  const Outcome r = skiff(daemon, {"swarm", "join-token", "--rotate", "worker"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Successfully rotated worker join token.\n"
            "\n"
            "To add a worker to this swarm, run the following command:\n"
            "\n"
            "    skiff swarm join --token SWMTKN-1-new 198.51.100.11:2377\n"
            "\n");
  EXPECT_EQ(daemon.requests()[0].json(), json::parse(R"({"role":"worker","rotate":true})"));
}

TEST(SwarmJoinToken, RotateQuietPrintsOnlyTheNewToken) {
  FakeDaemon daemon(
      jsonResponse(200, {{"role", "manager"}, {"token", "SWMTKN-1-new"}, {"managerAddr", "198.51.100.11:2377"}}));
  const Outcome r = skiff(daemon, {"swarm", "join-token", "-q", "--rotate", "manager"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "SWMTKN-1-new\n");
}

TEST(SwarmJoinToken, ManagerPrintsTheManagerJoinCommand) {
  FakeDaemon daemon(
      jsonResponse(200, {{"role", "manager"}, {"token", "SWMTKN-1-mgr"}, {"managerAddr", "198.51.100.11:2377"}}));
  const Outcome r = skiff(daemon, {"swarm", "join-token", "manager"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "To add a manager to this swarm, run the following command:\n"
            "\n"
            "    skiff swarm join --token SWMTKN-1-mgr 198.51.100.11:2377\n"
            "\n");
  EXPECT_EQ(daemon.requests()[0].json(), json::parse(R"({"role":"manager","rotate":false})"));
}

TEST(SwarmJoinToken, UnknownRoleIsRefusedWithoutAskingTheDaemon) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  const Outcome r = skiff(daemon, {"swarm", "join-token", "admin"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "unknown role admin\n");
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(SwarmJoin, AsAWorkerWithTheClusterPortAdded) {
  FakeDaemon daemon(jsonResponse(200, {{"nodeId", "1m2n3b4v5c6x7z8l9k0j1h2g3"}, {"role", "worker"}}));
  const Outcome r =
      skiff(daemon, {"swarm", "join", "--token", kToken, "--advertise-addr", "198.51.100.12", "198.51.100.11"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "This node joined a swarm as a worker.\n");
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].target, "/v1/swarm/join");
  EXPECT_EQ(daemon.requests()[0].json(),
            json({{"token", kToken}, {"remoteAddr", "198.51.100.11:2377"}, {"advertiseAddr", "198.51.100.12"}}));
}

TEST(SwarmJoin, AsAManagerWhenTheTokenSaysSo) {
  FakeDaemon daemon(jsonResponse(200, {{"nodeId", "n2"}, {"role", "manager"}}));
  const Outcome r = skiff(daemon, {"swarm", "join", "--token", "SWMTKN-1-mgr", "198.51.100.11:4000"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "This node joined a swarm as a manager.\n");
  EXPECT_EQ(daemon.requests()[0].json()["remoteAddr"], "198.51.100.11:4000");
}

TEST(SwarmJoin, WithoutTokenOrWithABadPortNothingIsSent) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  Outcome r = skiff(daemon, {"swarm", "join", "198.51.100.11:2377"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "required flag(s) \"token\" not set\n");
  r = skiff(daemon, {"swarm", "join", "--token", kToken, "198.51.100.11:99999"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "invalid address \"198.51.100.11:99999\": invalid port \"99999\"\n");
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(SwarmJoin, AWrongTokenIsTheDaemonsError) {
  FakeDaemon daemon(jsonResponse(400, {{"message", "A valid join token is necessary to join this cluster"}}));
  const Outcome r = skiff(daemon, {"swarm", "join", "--token", "SWMTKN-1-wrong", "198.51.100.11"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "Error response from daemon: A valid join token is necessary to join this cluster\n");
}

TEST(SwarmLeave, ForceIsSentAndTheNodeSaysItLeft) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  const Outcome r = skiff(daemon, {"swarm", "leave", "-f"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Node left the swarm.\n");
  EXPECT_EQ(daemon.requests()[0].json(), json::parse(R"({"force":true})"));
}

const char* kNodes = R"([
  {"id":"7q0w9e8r7t6y5u4i3o2p1a0s9","hostname":"lab3","status":"Down","availability":"Drain","managerStatus":"",
   "self":false,"addr":"198.51.100.13","role":"worker","labels":{},"tasks":0},
  {"id":"3x5k9q2m7w1e8r4t6y0u2i4o6","hostname":"lab1","status":"Ready","availability":"Active",
   "managerStatus":"Leader","self":true,"addr":"198.51.100.11","role":"manager","labels":{},"tasks":2},
  {"id":"9a8s7d6f5g4h3j2k1l0z9x8c7","hostname":"lab10","status":"Ready","availability":"Active","managerStatus":"",
   "self":false,"addr":"198.51.100.20","role":"worker","labels":{},"tasks":2},
  {"id":"1m2n3b4v5c6x7z8l9k0j1h2g3","hostname":"lab2","status":"Ready","availability":"Pause","managerStatus":"",
   "self":false,"addr":"198.51.100.12","role":"worker","labels":{"zone":"b"},"tasks":2}])";

TEST(NodeLs, DockersTableByHostnameWithThisNodeStarred) {
  FakeDaemon daemon(jsonResponse(200, json::parse(kNodes)));
  const Outcome r = skiff(daemon, {"node", "ls"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS\n"
            "3x5k9q2m7w1e8r4t6y0u2i4o6 *   lab1       Ready     Active         Leader\n"
            "1m2n3b4v5c6x7z8l9k0j1h2g3     lab2       Ready     Pause          \n"
            "7q0w9e8r7t6y5u4i3o2p1a0s9     lab3       Down      Drain          \n"
            "9a8s7d6f5g4h3j2k1l0z9x8c7     lab10      Ready     Active         \n");
  EXPECT_EQ(daemon.requests()[0].method, "GET");
  EXPECT_EQ(daemon.requests()[0].target, "/v1/nodes");
}

TEST(NodeLs, QuietAndFormatShowBareIds) {
  FakeDaemon daemon(jsonResponse(200, json::parse(kNodes)));
  Outcome r = skiff(daemon, {"node", "ls", "-q"});
  EXPECT_EQ(r.out,
            "3x5k9q2m7w1e8r4t6y0u2i4o6\n1m2n3b4v5c6x7z8l9k0j1h2g3\n7q0w9e8r7t6y5u4i3o2p1a0s9\n9a8s7"
            "d6f5g4h3j2k1l0z9x8c7\n");
  r = skiff(daemon, {"node", "ls", "--format", "{{.Hostname}} {{.Addr}} {{.Self}}"});
  EXPECT_EQ(r.out,
            "lab1 198.51.100.11 true\nlab2 198.51.100.12 false\nlab3 198.51.100.13 false\nlab10 "
            "198.51.100.20 false\n");
}

const char* kManagerInspect =
    R"({"ID":"3x5k9q2m7w1e8r4t6y0u2i4o6","Description":{"Hostname":"lab1"},
    "Spec":{"Role":"manager","Availability":"active","Labels":{"zone":"a","ssd":""}},
    "Status":{"State":"ready","Addr":"198.51.100.11"},"ManagerStatus":{"Leader":true,"Addr":"198.51.100.11:2377"},
    "CreatedAt":"2024-05-01T12:00:00.250Z","UpdatedAt":"2024-05-01T12:30:00Z"})";

TEST(NodeInspect, PrettyForThisManagerResolvedFromSelf) {
  FakeDaemon daemon([](const Request& request) {
    if (request.target == "/v1/info")
      return jsonResponse(200, {{"swarm", {{"nodeId", kManagerId}, {"state", "active"}}}});
    if (request.target == std::string("/v1/nodes/") + kManagerId)
      return jsonResponse(200, json::parse(kManagerInspect));
    return jsonResponse(404, {{"message", "node " + request.target + " not found"}});
  });
  const Outcome r = skiff(daemon, {"node", "inspect", "--pretty", "self"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ID:\t\t\t3x5k9q2m7w1e8r4t6y0u2i4o6\n"
            "Labels:\n"
            " - ssd\n"
            " - zone=a\n"
            "Hostname:              \tlab1\n"
            "Joined at:             \t2024-05-01 12:00:00.25 +0000 UTC\n"
            "Role:                  \tmanager\n"
            "Status:\n"
            " State:\t\t\tReady\n"
            " Availability:         \tActive\n"
            " Address:\t\t198.51.100.11\n"
            "Manager Status:\n"
            " Address:\t\t198.51.100.11:2377\n"
            " Raft Status:\t\tReachable\n"
            " Leader:\t\tYes\n");
  ASSERT_EQ(daemon.requests().size(), 2u);
}

TEST(NodeInspect, JsonArrayOfTheFoundAndAnErrorLineForTheMissing) {
  FakeDaemon daemon([](const Request& request) {
    if (request.target == "/v1/nodes/lab1") return jsonResponse(200, json::parse(kManagerInspect));
    return jsonResponse(404, {{"message", "node nosuch not found"}});
  });
  Outcome r = skiff(daemon, {"node", "inspect", "lab1", "nosuch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, json::array({json::parse(kManagerInspect)}).dump(4) + "\n");
  EXPECT_EQ(r.err, "Error response from daemon: node nosuch not found\n");
  r = skiff(daemon, {"node", "inspect", "-f", "{{.Status.Addr}} {{.ManagerStatus.Leader}}", "lab1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "198.51.100.11 true\n");
}

TEST(NodeInspect, SelfOutsideASwarmGivesTheDaemonsWords) {
  FakeDaemon daemon([](const Request& request) {
    if (request.target == "/v1/info") return jsonResponse(200, {{"swarm", {{"nodeId", ""}, {"state", "inactive"}}}});
    return jsonResponse(503, {{"message", "This node is not a swarm manager."}});
  });
  const Outcome r = skiff(daemon, {"node", "inspect", "self"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "Error response from daemon: This node is not a swarm manager.\n");
  EXPECT_EQ(r.out, "[]\n");
}

TEST(NodeUpdate, SendsAvailabilityAndLabelsAndPrintsTheNodeAsGiven) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  const Outcome r = skiff(daemon, {"node", "update", "--availability", "drain", "--label-add", "zone=b", "--label-add",
                                   "ssd", "--label-rm", "old", "lab2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "lab2\n");
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].method, "POST");
  EXPECT_EQ(daemon.requests()[0].target, "/v1/nodes/lab2/update");
  EXPECT_EQ(daemon.requests()[0].json(),
            json::parse(R"({"availability":"drain","labelAdd":{"zone":"b","ssd":""},"labelRm":["old"]})"));
}

TEST(NodeUpdate, BadAvailabilityIsRefusedBeforeAnyRequest) {
  FakeDaemon daemon(jsonResponse(200, json::object()));
  const Outcome r = skiff(daemon, {"node", "update", "--availability", "off", "lab2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "invalid availability \"off\", only active, pause and drain are supported\n");
  EXPECT_TRUE(daemon.requests().empty());
}

TEST(NodeRm, RemovesWhatItCanAndPrintsTheDaemonsErrorForTheRest) {
  FakeDaemon daemon([](const Request& request) {
    if (request.target.rfind("/v1/nodes/lab3", 0) == 0) return jsonResponse(200, json::object());
    return jsonResponse(409, {{"message", "node 1m2n3b4v5c6x7z8l9k0j1h2g3 is not down and can't be removed"}});
  });
  Outcome r = skiff(daemon, {"node", "rm", "lab2", "lab3"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "lab3\n");
  EXPECT_EQ(r.err,
            "Error response from daemon: node 1m2n3b4v5c6x7z8l9k0j1h2g3 is not down and can't be "
            "removed\n");
  r = skiff(daemon, {"node", "rm", "-f", "lab3"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "lab3\n");
  const auto& requests = daemon.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].method, "DELETE");
  EXPECT_EQ(requests[0].target, "/v1/nodes/lab2");
  EXPECT_EQ(requests[1].target, "/v1/nodes/lab3");
  EXPECT_EQ(requests[2].target, "/v1/nodes/lab3?force=1");
}

TEST(NodePs, WithoutANodeListsTheTasksOfThisNode) {
  FakeDaemon daemon([](const Request& request) {
    if (request.target == "/v1/info") return jsonResponse(200, {{"swarm", {{"nodeId", kManagerId}}}});
    return jsonResponse(200, json::parse(R"([{"id":"aaaaaaaaaaaaaaaaaaaa","name":"getstartedlab_web.1","image":"img:1",
        "node":"lab1","desiredState":"Running","currentState":"Running","since":"","error":""}])"));
  });
  const Outcome r = skiff(daemon, {"node", "ps", "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "aaaaaaaaaaaaaaaaaaaa\n");
  const auto& requests = daemon.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].target, std::string("/v1/tasks?node=") + kManagerId);
}

TEST(NodePs, ANamedNodeIsAskedForDirectly) {
  FakeDaemon daemon(jsonResponse(200, json::array()));
  const Outcome r = skiff(daemon, {"node", "ps", "lab2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 3), "ID ");
  ASSERT_EQ(daemon.requests().size(), 1u);
  EXPECT_EQ(daemon.requests()[0].target, "/v1/tasks?node=lab2");
}

}  // namespace
}  // namespace skiff::cli
