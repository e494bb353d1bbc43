// A swarm of three orchestrators in one process: a manager and two workers,
// each with its own store, image store, fake launcher and fake netlink, on
// one uv loop. Their cluster traffic goes through a FakeCluster that hands
// a worker's request straight to the manager's clusterRequest (or fails it,
// for a cut node), so joins, heartbeats, assignments, node failure and
// recovery are exercised without sockets or root. Heartbeats run every
// 10 ms; every wait is bounded by a number of loop turns.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "fake_link_netlink.h"
#include "fake_mesh.h"
#include "skiff/netd/join_token.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/overlay/overlay.h"
#include "skiff/runtime/compose.h"

namespace skiff::netd {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// Routes "IP:PORT" to the manager whose advertise address it is.
class FakeCluster : public ClusterClient {
 public:
  FakeCluster(std::string from, Orchestrator** manager, std::set<std::string>* cut)
      : from_(std::move(from)), manager_(manager), cut_(cut) {}

  Result<ClusterReply> postNow(const std::string& hostPort, const std::string& path, const json& body,
                               std::chrono::milliseconds) override {
    if (hostPort != "198.51.100.11:2377" || *manager_ == nullptr)
      return Error::msg("connect " + hostPort + ": Connection refused", ECONNREFUSED);
    if (cut_->count(from_)) return Error::msg("connect " + hostPort + ": timed out", ETIMEDOUT);
    auto r = (*manager_)->clusterRequest(path, from_, body);
    if (const auto* e = std::get_if<ApiError>(&r))
      return ClusterReply{httpStatus(e->kind), json{{"message", e->message}}};
    return ClusterReply{200, std::get<json>(r)};
  }
  void post(std::string hostPort, std::string path, json body, std::chrono::milliseconds timeout, Done done) override {
    done(postNow(hostPort, path, body, timeout));
  }

 private:
  std::string from_;
  Orchestrator** manager_;
  std::set<std::string>* cut_;
};

struct Node {
  fs::path dir;
  std::string addr;
  std::unique_ptr<Store> store;
  std::unique_ptr<runtime::ImageStore> images;
  testing::FakeLinkNetlink netlink;
  std::unique_ptr<overlay::Overlay> overlay;
  testing::FakeMesh mesh;  // each node its own routing mesh: all of them publish 4000
  runtime::FakeContainerLauncher launcher;
  std::unique_ptr<FakeCluster> cluster;
  std::unique_ptr<Orchestrator> orch;
};

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("skiff-cluster-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    uv_loop_init(&loop_);
    for (int i = 1; i <= 3; i++) addNode(i);
    manager_ = nodes_[0]->orch.get();
  }

  void addNode(int i) {
    auto n = std::make_unique<Node>();
    n->dir = base_ / ("node" + std::to_string(i));
    n->addr = "198.51.100.1" + std::to_string(i);
    fs::create_directories(n->dir / "ctx");
    std::ofstream(n->dir / "ctx" / "hello") << "binary";
    std::ofstream(n->dir / "ctx" / "Dockerfile") << "FROM scratch\nCOPY hello /hello\nCMD [\"/hello\"]\n";
    auto st = Store::open((n->dir / "state.db").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    n->store = std::move(*st);
    n->images = std::make_unique<runtime::ImageStore>(n->dir.string());
    ASSERT_TRUE(n->images->build((n->dir / "ctx").string(), "app:1", nullptr).ok());
    n->overlay =
        std::make_unique<overlay::Overlay>(n->netlink, [](int) -> Result<std::unique_ptr<overlay::NetlinkTransport>> {
          auto inside = std::make_unique<testing::FakeLinkNetlink>();
          inside->everyLinkExists = true;
          return std::unique_ptr<overlay::NetlinkTransport>(std::move(inside));
        });
    n->cluster = std::make_unique<FakeCluster>(n->addr, &manager_, &cut_);
    OrchestratorDeps d;
    d.loop = &loop_;
    d.store = n->store.get();
    d.images = n->images.get();
    d.launcher = &n->launcher;
    d.overlay = n->overlay.get();
    d.mesh = &n->mesh;
    d.dataRoot = n->dir.string();
    d.hostname = "node" + std::to_string(i);
    d.cluster = n->cluster.get();
    d.heartbeatPeriod = 10ms;
    d.heartbeatTimeout = 400ms;  // generous: a loaded CI machine must not see false Downs
    d.openNetns = [](pid_t) -> Result<UniqueFd> { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); };
    d.probeTcp = [](const std::string&, uint16_t, std::function<void(bool)> done) { done(true); };
    n->orch = std::make_unique<Orchestrator>(d);
    nodes_.push_back(std::move(n));
  }

  void TearDown() override {
    for (auto& n : nodes_) {
      bool done = false;
      n->orch->shutdown([&] { done = true; });
      for (pid_t pid : std::vector<pid_t>(n->launcher.running)) n->launcher.exit(pid, 0);
      // Bounded by time, not turns: a loaded machine (a sanitizer build
      // beside a CI run) needs more turns, and a shutdown that never ends
      // must fail here, not hang the loop below.
      for (int i = 0; i < 20000 && !done; i++) {
        uv_run(&loop_, UV_RUN_NOWAIT);
        if (!done) ::usleep(1000);
      }
      EXPECT_TRUE(done) << n->dir << ": shutdown did not finish";
    }
    manager_ = nullptr;
    for (auto& n : nodes_) n->orch.reset();
    for (int i = 0; i < 5000 && uv_loop_alive(&loop_); i++) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open on the loop";
    fs::remove_all(base_);
  }

  json ok(const ApiResult<json>& r) {
    if (const auto* e = std::get_if<ApiError>(&r)) {
      ADD_FAILURE() << httpStatus(e->kind) << " " << e->message;
      return json();
    }
    return std::get<json>(r);
  }
  std::string refused(const ApiResult<json>& r) {
    const auto* e = std::get_if<ApiError>(&r);
    return e == nullptr ? "accepted" : e->message;
  }

  // Runs the loop (timers of 10 ms) until pred holds or ~5 s passed.
  template <typename Pred>
  bool until(Pred pred) {
    for (int i = 0; i < 500; i++) {
      if (pred()) return true;
      uv_run(&loop_, UV_RUN_ONCE);
      ::usleep(10000);
    }
    return pred();
  }

  std::string initAndJoin() {
    json init = ok(manager_->swarmInit("198.51.100.11", "0.0.0.0:2377"));
    std::string token = init.value("workerToken", "");
    EXPECT_EQ(init.value("managerAddr", ""), "198.51.100.11:2377");
    for (size_t i = 1; i < nodes_.size(); i++) ok(nodes_[i]->orch->swarmJoin(token, "198.51.100.11", nodes_[i]->addr));
    return token;
  }

  runtime::StackSpec stack(const std::string& yaml) {
    return runtime::parseComposeString(yaml, "docker-compose.yml", base_.string(), {}).stack;
  }

  // node hostname -> running tasks of the service, as `service ps` shows.
  std::map<std::string, int> runningByNode(const std::string& service) {
    std::map<std::string, int> out;
    for (const auto& t : ok(manager_->listTasks(service, "")))
      if (t["currentState"] == "Running" && t["desiredState"] == "Running") out[t["node"]]++;
    return out;
  }
  size_t liveContainers() {
    size_t n = 0;
    for (auto& node : nodes_) n += node->launcher.running.size();
    return n;
  }

  fs::path base_;
  uv_loop_t loop_;
  std::vector<std::unique_ptr<Node>> nodes_;
  Orchestrator* manager_ = nullptr;
  std::set<std::string> cut_;
};

const char* kSix = R"(
services:
  web:
    image: app:1
    ports: ["4000:80"]
    deploy:
      replicas: 6
      restart_policy: {condition: on-failure, delay: 0s}
    networks: [webnet]
networks:
  webnet:
)";

TEST_F(ClusterTest, WrongTruncatedAndRotatedTokensAreRefusedWithDockersWords) {
  json init = ok(manager_->swarmInit("198.51.100.11", "0.0.0.0:2377"));
  const std::string token = init["workerToken"];
  EXPECT_EQ(token.rfind("SWMTKN-1-", 0), 0u) << token;
  EXPECT_EQ(token.size(), 9 + kClusterKeyLength + 1 + kRoleSecretLength);
  Orchestrator& w = *nodes_[1]->orch;
  std::string wrong = token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(refused(w.swarmJoin(wrong, "198.51.100.11:2377", "")),
            "rpc error: code = InvalidArgument desc = A valid join token is necessary to join "
            "this cluster");
  EXPECT_NE(refused(w.swarmJoin(token.substr(0, 30), "198.51.100.11:2377", "")).find("A valid join token is necessary"),
            std::string::npos);
  json rotated = ok(manager_->joinToken("worker", true));
  EXPECT_NE(rotated["token"], token);
  EXPECT_NE(refused(w.swarmJoin(token, "198.51.100.11:2377", "")).find("A valid join token is necessary"),
            std::string::npos);
  EXPECT_EQ(refused(manager_->joinToken("admin", false)), "unknown role admin");
  // The worker is still outside the swarm after every refusal.
  EXPECT_EQ(ok(w.info())["swarm"]["state"], "inactive");
  ok(w.swarmJoin(rotated["token"], "198.51.100.11:2377", "198.51.100.12"));
  EXPECT_EQ(ok(w.info())["swarm"]["role"], "worker");
  EXPECT_EQ(refused(w.swarmJoin(rotated["token"], "198.51.100.11:2377", "")),
            "This node is already part of a swarm. Use \"skiff swarm leave\" to leave this swarm "
            "and join another one.");
}

TEST_F(ClusterTest, JoinToAnUnreachableManagerFailsWithItsAddress) {
  std::string why = refused(nodes_[1]->orch->swarmJoin("SWMTKN-1-x-y", "198.51.100.99", ""));
  EXPECT_NE(why.find("198.51.100.99:2377"), std::string::npos) << why;
  EXPECT_NE(why.find("Connection refused"), std::string::npos) << why;
}

TEST_F(ClusterTest, NodeLsShowsEveryNodeAndAWorkerIsNotAManager) {
  initAndJoin();
  json nodes = ok(manager_->nodes());
  ASSERT_EQ(nodes.size(), 3u);
  std::map<std::string, json> byHost;
  for (const auto& n : nodes) byHost[n["hostname"]] = n;
  EXPECT_EQ(byHost["node1"]["managerStatus"], "Leader");
  EXPECT_EQ(byHost["node1"]["self"], true);
  EXPECT_EQ(byHost["node2"]["status"], "Ready");
  EXPECT_EQ(byHost["node2"]["addr"], "198.51.100.12");
  EXPECT_EQ(byHost["node3"]["managerStatus"], "");
  EXPECT_EQ(refused(nodes_[1]->orch->deployStack("s", stack(kSix))), kNotManager);
  EXPECT_EQ(refused(nodes_[1]->orch->nodes()), kNotManager);
}

TEST_F(ClusterTest, SixReplicasSpreadTwoByTwoAndEveryNodeGetsAllBackendsAndPeers) {
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  EXPECT_EQ(runningByNode("s_web"), (std::map<std::string, int>{{"node1", 2}, {"node2", 2}, {"node3", 2}}));
  EXPECT_EQ(nodes_[1]->launcher.running.size(), 2u);
  EXPECT_EQ(nodes_[2]->launcher.running.size(), 2u);
  // Every node's mesh publishes 4000 and balances over all six replicas,
  // in the same slot order.
  ASSERT_TRUE(until([&] {
    for (const auto& n : nodes_)
      if (n->mesh.ids("4000/tcp").size() != 6) return false;
    return true;
  }));
  EXPECT_EQ(nodes_[1]->mesh.ids("4000/tcp"), nodes_[0]->mesh.ids("4000/tcp"));
  EXPECT_EQ(nodes_[2]->mesh.ids("4000/tcp"), nodes_[0]->mesh.ids("4000/tcp"));
  // What node 2 is told, asked with its own credentials and its own report:
  // the published port with all six replicas in slot order, and the peers
  // on other nodes — four replicas on ingress and on webnet, and the other
  // two nodes' ingress addresses.
  auto self = nodes_[1]->store->get("swarm", "self");
  ASSERT_TRUE(self.ok() && self->has_value());
  const json& me = **self;
  json report = json::array();
  for (const auto& t : ok(manager_->listTasks("s_web", "")))
    if (t["node"] == "node2")
      report.push_back(json{{"id", t["id"]}, {"state", t["currentState"]}, {"ready", t["ready"]}});
  json a = ok(manager_->clusterRequest("/cluster/v1/heartbeat", "198.51.100.12",
                                       json{{"nodeId", me["nodeId"]}, {"secret", me["secret"]}, {"tasks", report}}));
  ASSERT_EQ(a["listeners"].size(), 1u);
  EXPECT_EQ(a["listeners"][0]["name"], "4000/tcp");
  EXPECT_EQ(a["listeners"][0]["backends"].size(), 6u);
  EXPECT_EQ(a["tasks"].size(), 2u);
  std::map<std::string, int> peersByVtep;
  for (const auto& p : a["peers"]) peersByVtep[p["vtep"]]++;
  EXPECT_EQ(peersByVtep, (std::map<std::string, int>{{"198.51.100.11", 5}, {"198.51.100.13", 5}}));
  for (const auto& p : a["peers"]) {
    std::string ip = p["ip"], mac = p["mac"];
    EXPECT_EQ(mac, overlay::Overlay::macFor(*overlay::Ipv4::parse(ip))) << ip;
  }
  EXPECT_EQ(refused(manager_->clusterRequest("/cluster/v1/heartbeat", "x",
                                             json{{"nodeId", me["nodeId"]}, {"secret", "wrong"}})),
            "node is not a member of this swarm");
}

TEST_F(ClusterTest, ACutNodesReplicasRunElsewhereAndHealingNeverAddsReplicas) {
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  cut_.insert("198.51.100.13");
  ASSERT_TRUE(until([&] {
    auto r = runningByNode("s_web");
    return !r.count("node3") && r["node1"] + r["node2"] == 6;
  }));
  json nodes = ok(manager_->nodes());
  for (const auto& n : nodes)
    if (n["hostname"] == "node3") {
      EXPECT_EQ(n["status"], "Down");
    }
  bool orphaned = false;
  for (const auto& t : ok(manager_->listTasks("s_web", "")))
    if (t["node"] == "node3" && t["currentState"] == "Orphaned") orphaned = true;
  EXPECT_TRUE(orphaned);
  // The cut node keeps its replicas while it cannot hear the manager.
  EXPECT_EQ(nodes_[2]->launcher.running.size(), 2u);
  cut_.clear();
  // Back: Ready again, its old replicas stopped, six in all.
  ASSERT_TRUE(until([&] { return nodes_[2]->launcher.running.empty(); }));
  ASSERT_TRUE(until([&] {
    for (const auto& n : ok(manager_->nodes()))
      if (n["hostname"] == "node3" && n["status"] != "Ready") return false;
    return true;
  }));
  for (int i = 0; i < 20; i++) uv_run(&loop_, UV_RUN_NOWAIT);
  EXPECT_EQ(liveContainers(), 6u);
  auto r = runningByNode("s_web");
  EXPECT_EQ(r["node1"] + r["node2"], 6);
}

TEST_F(ClusterTest, AReplicaThatFailsOnAWorkerIsReplacedByTheManager) {
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  pid_t victim = nodes_[1]->launcher.running.front();
  nodes_[1]->launcher.exit(victim, 3);
  ASSERT_TRUE(until([&] {
    for (const auto& t : ok(manager_->listTasks("s_web", "")))
      if (t["currentState"] == "Failed" && t["exitCode"] == 3) return true;
    return false;
  }));
  ASSERT_TRUE(until([&] {
    int running = 0;
    for (const auto& [node, n] : runningByNode("s_web")) running += n;
    return running == 6;
  }));
  EXPECT_EQ(liveContainers(), 6u);
}

TEST_F(ClusterTest, DrainMovesTasksAndConstraintsAndGlobalPickNodes) {
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  ok(manager_->updateNode("node2", json{{"availability", "drain"}}));
  ASSERT_TRUE(until([&] { return nodes_[1]->launcher.running.empty(); }));
  ASSERT_TRUE(until([&] {
    auto r = runningByNode("s_web");
    return !r.count("node2") && r["node1"] + r["node3"] == 6;
  }));
  EXPECT_EQ(refused(manager_->updateNode("node2", json{{"availability", "sleep"}})).find("sleep") != std::string::npos,
            true);
  ok(manager_->updateNode("node2", json{{"availability", "active"}, {"labelAdd", {{"zone", "b"}}}}));
  ok(manager_->deployStack("g", stack(R"(
services:
  agent:
    image: app:1
    deploy:
      mode: global
  pinned:
    image: app:1
    deploy:
      replicas: 2
      placement:
        constraints: [node.labels.zone==b]
)")));
  ASSERT_TRUE(until([&] { return runningByNode("g_agent").size() == 3; }));
  EXPECT_EQ(runningByNode("g_agent"), (std::map<std::string, int>{{"node1", 1}, {"node2", 1}, {"node3", 1}}));
  ASSERT_TRUE(until([&] { return runningByNode("g_pinned")["node2"] == 2; }));
  EXPECT_EQ(runningByNode("g_pinned").size(), 1u);
  for (const auto& s : ok(manager_->listServices("g")))
    if (s["name"] == "g_agent") {
      EXPECT_EQ(s["replicas"], "3/3");
    }
  // The metrics count it the same way: one wanted per eligible node.
  for (const auto& c : manager_->serviceCounts())
    if (c.service == "g_agent") {
      EXPECT_EQ(c.desired, 3u);
      EXPECT_EQ(c.running, 3u);
    }
  // A constraint no node meets leaves the task Pending with docker's reason.
  ok(manager_->deployStack("p", stack(R"(
services:
  nowhere:
    image: app:1
    deploy:
      placement:
        constraints: [node.hostname==node9]
)")));
  json tasks = ok(manager_->listTasks("p_nowhere", ""));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["currentState"], "Pending");
  EXPECT_EQ(tasks[0]["error"], "no suitable node (scheduling constraints not satisfied on 3 nodes)");
}

TEST_F(ClusterTest, ANodeWithoutTheImageFetchesItFromTheManagerLayerByLayer) {
  // Node 3 has never seen the image; node 2 has another image under the
  // same tag. Both must run the manager's, by id.
  Node& n2 = *nodes_[1];
  Node& n3 = *nodes_[2];
  ASSERT_TRUE(n3.images->remove("app:1", true).ok());
  ASSERT_FALSE(n3.images->resolve("app:1").ok());
  std::ofstream(n2.dir / "ctx" / "hello") << "another binary";
  ASSERT_TRUE(n2.images->build((n2.dir / "ctx").string(), "app:1", nullptr).ok());
  const std::string want = nodes_[0]->images->resolve("app:1")->id;
  ASSERT_NE(n2.images->resolve("app:1")->id, want);
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  EXPECT_EQ(runningByNode("s_web"), (std::map<std::string, int>{{"node1", 2}, {"node2", 2}, {"node3", 2}}));
  auto on3 = n3.images->resolve("app:1");
  ASSERT_TRUE(on3.ok()) << on3.error().message;
  EXPECT_EQ(on3->id, want);
  EXPECT_EQ(n2.images->resolve("app:1")->id, want);
  const std::vector<std::string> layers = on3->layers;
  ASSERT_FALSE(layers.empty());
  for (const auto& layer : layers) EXPECT_TRUE(n3.images->hasLayer(layer)) << layer;
}

TEST_F(ClusterTest, NodeRmRefusesALiveNodeAndAWorkerThatWasRemovedLeaves) {
  initAndJoin();
  std::string id;
  for (const auto& n : ok(manager_->nodes()))
    if (n["hostname"] == "node3") id = n["id"];
  std::string why = refused(manager_->removeNode(id, false));
  EXPECT_NE(why.find("is not down and can't be removed"), std::string::npos) << why;
  ok(manager_->removeNode(id, true));
  EXPECT_EQ(ok(manager_->nodes()).size(), 2u);
  ASSERT_TRUE(until([&] { return ok(nodes_[2]->orch->info())["swarm"]["state"] == "inactive"; }));
  why = refused(manager_->removeNode(ok(manager_->info())["swarm"]["nodeId"], true));
  EXPECT_NE(why.find("must be demoted to worker before removal"), std::string::npos) << why;
}

// `skiff stats` on the manager: replicas on workers with the figures their
// node read and sent in its heartbeat, and each replica's mesh counters
// summed over every node's proxy (a request enters at any node).
TEST_F(ClusterTest, StatsOnTheManagerShowEveryNodesReplicasFromTheirHeartbeats) {
  initAndJoin();
  ok(manager_->deployStack("s", stack(kSix)));
  ASSERT_TRUE(until([&] { return runningByNode("s_web").size() == 3; }));
  ASSERT_TRUE(until([&] {
    for (const auto& n : nodes_)
      if (n->mesh.ids("4000/tcp").size() != 6) return false;
    return true;
  }));
  // Each node's launcher says what its replicas' cgroups hold: node i's
  // replicas use i MiB.
  for (size_t i = 0; i < nodes_.size(); i++) {
    for (const auto& spec : nodes_[i]->launcher.launched)
      nodes_[i]->launcher.statsById[spec.id] = runtime::CgroupStats{1000 * (i + 1), (i + 1) << 20, 52428800, 1};
  }
  // One replica on node3 took connections through all three nodes' proxies.
  const std::string onNode3 = nodes_[2]->launcher.launched.at(0).id;
  for (size_t i = 0; i < nodes_.size(); i++)
    nodes_[i]->mesh.counters[{"4000/tcp", onNode3}] = proxy::Proxy::BackendStats{"", i + 1, 0, 10, 100};
  // Until the workers' next heartbeats carried them.
  json rows;
  ASSERT_TRUE(until([&] {
    rows = ok(manager_->stats({}));
    if (rows.size() != 6) return false;
    for (const auto& r : rows)
      if (r["memoryUsage"] == 0 || (r["id"] == onNode3 && r["mesh"]["connections"] != 6)) return false;
    return true;
  })) << rows.dump(2);
  std::map<std::string, int> byNode;
  for (const auto& r : rows) {
    const std::string host = r["node"]["hostname"];
    byNode[host]++;
    const uint64_t i = host.back() - '0';
    EXPECT_EQ(r["memoryUsage"], i << 20) << host;
    EXPECT_EQ(r["cpuNs"], 1000 * i) << host;
    EXPECT_EQ(r["memoryLimit"], 52428800);
    EXPECT_EQ(r["error"], "") << host;
    EXPECT_GT(r["sampledAt"].get<int64_t>(), 0);
  }
  EXPECT_EQ(byNode, (std::map<std::string, int>{{"node1", 2}, {"node2", 2}, {"node3", 2}}));
  for (const auto& r : rows) {
    if (r["id"] != onNode3) continue;
    EXPECT_EQ(r["node"]["hostname"], "node3");
    EXPECT_EQ(r["mesh"], (json{{"connections", 1 + 2 + 3}, {"active", 0}, {"bytesIn", 30}, {"bytesOut", 300}}));
  }
  // A worker answers for its own replicas, with its own proxy's counters.
  json own = ok(nodes_[2]->orch->stats({}));
  ASSERT_EQ(own.size(), 2u);
  for (const auto& r : own) {
    EXPECT_EQ(r["node"]["hostname"], "node3");
    if (r["id"] == onNode3) {
      EXPECT_EQ(r["mesh"]["connections"], 3);
    }
  }
}

}  // namespace
}  // namespace skiff::netd
