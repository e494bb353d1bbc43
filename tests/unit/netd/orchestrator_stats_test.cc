// GET /v1/stats on one node: a row per running replica with what its cgroup
// says (through the fake launcher) and the mesh's counters for it (through
// a fake mesh, summed over its published ports), containers picked by id
// prefix or name in the order asked, docker's error for an unknown one.
#include "fake_mesh.h"
#include "orchestrator_fixture.h"

namespace skiff::netd {
namespace {
using json = nlohmann::json;

class OrchestratorStatsTest : public testing::OrchestratorFixture {
 protected:
  Mesh* mesh() override { return &mesh_; }

  json stats(const std::vector<std::string>& containers = {}) { return ok(orch_->stats(containers)); }
  std::string refused(const ApiResult<json>& r) {
    const auto* e = std::get_if<ApiError>(&r);
    return e == nullptr ? "accepted" : std::to_string(httpStatus(e->kind)) + " " + e->message;
  }

  testing::FakeMesh mesh_{&launcher_};
};

const char* kTwoPorts = R"(
version: "3"
services:
  web:
    image: app:1
    ports: ["4000:80", "4001:81"]
    deploy:
      replicas: 2
      resources:
        limits: {memory: 50M}
)";

TEST_F(OrchestratorStatsTest, EachRunningReplicaWithItsCgroupFiguresAndMeshCounters) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kTwoPorts)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 2u);
  const std::string c1 = launcher_.launched[0].id, c2 = launcher_.launched[1].id;
  launcher_.statsById[c1] = runtime::CgroupStats{123456789, 3 << 20, 52428800, 2};
  launcher_.statsById[c2] = runtime::CgroupStats{std::nullopt, 1 << 20, 52428800, 1};
  // Replica 1 took 7 connections on 4000 and 3 on 4001; 2 are open now.
  mesh_.counters[{"4000/tcp", c1}] = proxy::Proxy::BackendStats{"", 7, 0, 700, 7000};
  mesh_.counters[{"4001/tcp", c1}] = proxy::Proxy::BackendStats{"", 3, 0, 300, 3000};
  mesh_.active[c1] = 1;  // on each listener: 2 in all

  json rows = stats();
  ASSERT_EQ(rows.size(), 2u) << rows.dump();
  const json& r = rows[0];
  EXPECT_EQ(r["id"], c1);
  EXPECT_EQ(r["service"], "s_web");
  EXPECT_EQ(r["stack"], "s");
  EXPECT_EQ(r["slot"], 1);
  EXPECT_EQ(r["name"], "s_web.1." + r["taskId"].get<std::string>());
  EXPECT_EQ(r["node"]["hostname"], "node1");
  EXPECT_FALSE(r["node"]["id"].get<std::string>().empty());
  EXPECT_EQ(r["running"], true);
  EXPECT_EQ(r["error"], "");
  EXPECT_EQ(r["cpuNs"], 123456789);
  EXPECT_EQ(r["memoryUsage"], 3 << 20);
  EXPECT_EQ(r["memoryLimit"], 52428800);
  EXPECT_EQ(r["pids"], 2);
  EXPECT_GT(r["sampledAt"].get<int64_t>(), 1'600'000'000'000'000'000);  // now, in ns
  EXPECT_EQ(r["mesh"], (json{{"connections", 10}, {"active", 2}, {"bytesIn", 1000}, {"bytesOut", 10000}}));
  // No CPU accounting: null, not 0; no traffic: zeros.
  EXPECT_TRUE(rows[1]["cpuNs"].is_null());
  EXPECT_EQ(rows[1]["slot"], 2);
  EXPECT_EQ(rows[1]["mesh"], (json{{"connections", 0}, {"active", 0}, {"bytesIn", 0}, {"bytesOut", 0}}));

  // A cgroup that cannot be read: the row says why, with no figures.
  launcher_.statsById.erase(c2);
  rows = stats();
  EXPECT_NE(rows[1]["error"].get<std::string>().find("open cgroup of"), std::string::npos) << rows[1].dump();
  EXPECT_EQ(rows[1]["memoryUsage"], 0);
  EXPECT_TRUE(rows[1]["cpuNs"].is_null());
}

TEST_F(OrchestratorStatsTest, ContainersArePickedByIdPrefixOrNameInTheOrderAsked) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kTwoPorts)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 2u);
  for (const auto& spec : launcher_.launched) launcher_.statsById[spec.id] = runtime::CgroupStats{1, 2, 3, 4};
  json all = stats();
  ASSERT_EQ(all.size(), 2u);
  const std::string name2 = all[1]["name"], id1 = all[0]["id"];
  json rows = stats({name2, id1.substr(0, 6), name2});
  ASSERT_EQ(rows.size(), 2u);  // the same one twice is one row
  EXPECT_EQ(rows[0]["name"], name2);
  EXPECT_EQ(rows[1]["id"], id1);
  EXPECT_EQ(refused(orch_->stats({id1, "nosuch"})), "404 No such container: nosuch");
  EXPECT_EQ(refused(orch_->stats({""})), "404 No such container: ");

  // A named replica that stopped keeps its row, without figures; the
  // default list has running ones only.
  const std::string id2 = all[1]["id"];
  pid_t pid2 = 0;
  for (const auto& t : ok(orch_->listTasks("s_web", "")))
    if (t["containerId"] == id2) pid2 = t["pid"].get<pid_t>();
  ASSERT_GT(pid2, 0);
  ok(orch_->scaleService("s_web", 1));
  settle();
  launcher_.exit(pid2, 0);
  settle();
  json named = stats({id2.substr(0, 12)});
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0]["running"], false);
  EXPECT_EQ(named[0]["error"], "not running");
  EXPECT_EQ(named[0]["memoryUsage"], 0);
  EXPECT_TRUE(named[0]["cpuNs"].is_null());
  json running = stats();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0]["id"], id1);
}

TEST_F(OrchestratorStatsTest, NothingRunningIsAnEmptyListNotAnError) {
  // No swarm: nothing runs, and the answer is an empty list, not an error.
  EXPECT_EQ(stats(), json::array());
}

}  // namespace
}  // namespace skiff::netd
