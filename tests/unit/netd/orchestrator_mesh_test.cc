// The orchestrator and the routing mesh, through a fake mesh
// (fake_mesh.h): published ports become listeners named by port, each
// listener's backends are the running replicas in slot order, a replica is
// drained before it gets its stop signal and killed when it outlives its
// grace, and a port that moves to a renamed service keeps its listener.
#include <signal.h>

#include <chrono>
#include <functional>

#include "fake_mesh.h"
#include "orchestrator_fixture.h"

namespace skiff::netd {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class OrchestratorMeshTest : public testing::OrchestratorFixture {
 protected:
  Mesh* mesh() override { return &mesh_; }

  // Runs the loop until `done` holds or `limit` passed; false on the limit.
  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto end = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > end) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    return true;
  }

  // Container ids of a service's live tasks, by slot.
  std::map<uint64_t, std::string> containers(const std::string& service) {
    std::map<uint64_t, std::string> out;
    for (const auto& t : ok(orch_->listTasks(service, ""))) {
      if (t["desiredState"] == "Running") out[t["slot"].get<uint64_t>()] = t["containerId"];
    }
    return out;
  }
  pid_t pidOf(const std::string& service, uint64_t slot) {
    for (const auto& t : ok(orch_->listTasks(service, ""))) {
      if (t["slot"] == slot && t["desiredState"] == "Running") return t["pid"].get<pid_t>();
    }
    return 0;
  }
  bool signalled(pid_t pid, int sig) const {
    for (const auto& [p, s] : launcher_.signals) {
      if (p == pid && s == sig) return true;
    }
    return false;
  }

  testing::FakeMesh mesh_{&launcher_};
};

// SIGUSR1 as the stop signal: the fake launcher's replicas, like a process
// that ignores its stop signal, do not exit on it, so SIGKILL must follow.
const char* kPublished = R"(
version: "3"
services:
  web:
    image: app:1
    ports: ["4000:80"]
    stop_signal: SIGUSR1
    stop_grace_period: 2s
    deploy:
      replicas: 3
      restart_policy: {condition: on-failure, delay: 0s}
)";

TEST_F(OrchestratorMeshTest, APublishedPortIsOneListenerWithTheReplicasInSlotOrder) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kPublished)));
  settle();
  ASSERT_EQ(mesh_.listeners.size(), 1u);
  const auto& l = mesh_.listeners.at("4000/tcp");
  EXPECT_EQ(l.port, 4000);
  EXPECT_EQ(l.bindHost, "0.0.0.0");
  EXPECT_FALSE(l.udp);
  auto c = containers("s_web");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(mesh_.ids("4000/tcp"), (std::vector<std::string>{c[1], c[2], c[3]}));
  // Each backend is the replica's address on ingress (10.0.0.0/24; .1 is
  // the gateway, .2 this node), at the target port.
  std::vector<std::string> hosts;
  for (const auto& b : mesh_.backends.at("4000/tcp")) {
    hosts.push_back(b.host);
    EXPECT_EQ(b.port, 80);
  }
  EXPECT_EQ(hosts, (std::vector<std::string>{"10.0.0.3", "10.0.0.4", "10.0.0.5"}));

  // Slot 2 dies and is restarted: out of the list at once, back in its place.
  launcher_.exit(pidOf("s_web", 2), 1);
  settle();
  auto after = containers("s_web");
  ASSERT_EQ(after.size(), 3u);
  EXPECT_NE(after[2], c[2]);
  EXPECT_EQ(mesh_.ids("4000/tcp"), (std::vector<std::string>{c[1], after[2], c[3]}));
  bool sawTwo = false;
  for (const auto& list : mesh_.history.at("4000/tcp")) {
    if (list.size() == 2 && list[0].id == c[1] && list[1].id == c[3]) sawTwo = true;
  }
  EXPECT_TRUE(sawTwo) << "the dead replica left the rotation before its replacement joined";
}

TEST_F(OrchestratorMeshTest, AReplicaThatDiesLeavesTheRotationBeforeItIsCleanedUp) {
  // The kernel path (--kernel-lb) cannot retry a connect: every millisecond
  // a dead replica stays listed costs requests. Reaping, the endpoints'
  // netlink work and the container's unmounts come after.
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kPublished)));
  settle();
  auto c = containers("s_web");
  const size_t cleaned = launcher_.cleanedUp.size();
  const size_t listed = mesh_.history.at("4000/tcp").size();
  launcher_.exit(pidOf("s_web", 2), 1);
  settle();
  const auto& history = mesh_.history.at("4000/tcp");
  const auto& at = mesh_.cleanedAt.at("4000/tcp");
  ASSERT_GT(history.size(), listed);
  EXPECT_EQ(mesh_.ids("4000/tcp").size(), 3u) << "replaced";
  // The first list after the exit is without slot 2, set before any cleanup.
  std::vector<std::string> first;
  for (const auto& b : history[listed]) first.push_back(b.id);
  EXPECT_EQ(first, (std::vector<std::string>{c[1], c[3]}));
  EXPECT_EQ(at[listed], cleaned) << "the dead replica was cleaned up before it left the rotation";
}

TEST_F(OrchestratorMeshTest, AReplicaIsDrainedBeforeItsStopSignalAndKilledAfterTheGrace) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kPublished)));
  settle();
  auto c = containers("s_web");
  pid_t third = pidOf("s_web", 3);
  ASSERT_NE(third, 0);
  mesh_.active[c[3]] = 1;  // a client is still talking to slot 3

  ok(orch_->scaleService("s_web", 2));
  settle();
  ASSERT_EQ(mesh_.drains.size(), 1u);
  EXPECT_EQ(mesh_.drains[0].listener, "4000/tcp");
  EXPECT_EQ(mesh_.drains[0].backend, c[3]);
  EXPECT_EQ(mesh_.drains[0].grace, 2000ms);
  EXPECT_EQ(mesh_.drains[0].signalsBefore, 0u) << "drained before any stop signal";

  // While the connection is open (up to half the grace) no signal goes out:
  // the orchestrator polls the mesh and waits.
  int before = mesh_.statsCalls;
  ASSERT_TRUE(runUntil([&] { return mesh_.statsCalls >= before + 3; }));
  EXPECT_TRUE(launcher_.signals.empty());

  // The connection ends: the stop signal follows, then SIGKILL once the
  // grace is over, since the replica ignores its stop signal.
  mesh_.active[c[3]] = 0;
  ASSERT_TRUE(runUntil([&] { return signalled(third, SIGUSR1); }));
  auto stopped = Clock::now();
  ASSERT_TRUE(runUntil([&] { return signalled(third, SIGKILL); }));
  // libuv's timers count from the loop's cached millisecond clock, which
  // can trail this one by a little.
  EXPECT_GE(Clock::now() - stopped, 1950ms) << "SIGKILL came before the grace period was over";
  ASSERT_EQ(launcher_.signals.size(), 2u);
  EXPECT_EQ(launcher_.signals[0], std::make_pair(third, SIGUSR1));
  EXPECT_EQ(launcher_.signals[1], std::make_pair(third, SIGKILL));
  settle();
  EXPECT_EQ(replicas("s_web"), "2/2");
  EXPECT_EQ(mesh_.ids("4000/tcp"), (std::vector<std::string>{c[1], c[2]}));
}

TEST_F(OrchestratorMeshTest, ADrainWaitsAtMostHalfTheGraceForOpenConnections) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kPublished)));
  settle();
  auto c = containers("s_web");
  pid_t third = pidOf("s_web", 3);
  mesh_.active[c[3]] = 1;  // never closes
  auto start = Clock::now();
  ok(orch_->scaleService("s_web", 2));
  settle();
  ASSERT_TRUE(runUntil([&] { return signalled(third, SIGUSR1); }));
  EXPECT_GE(Clock::now() - start, 1000ms) << "the stop signal did not wait for the open connection";
}

TEST_F(OrchestratorMeshTest, APortMovedToARenamedServiceKeepsItsListener) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kPublished)));
  settle();
  // The deploy tried the port (opened and closed it) before the node's
  // agent bound it; from here on it stays open.
  mesh_.removed.clear();
  auto old = containers("s_web");
  const char* renamed = R"(
version: "3"
services:
  api:
    image: app:1
    ports: ["4000:80"]
    deploy:
      replicas: 2
)";
  std::vector<pid_t> webPids(launcher_.running);
  mesh_.active[old[2]] = 1;  // a client still talks to web.2
  ok(orch_->deployStack("s", stack(renamed)));
  settle();
  // web.1 and web.3 got their stop signal at once; web.2 waits for its
  // connection, which the mesh still counts though web left the rotation.
  ASSERT_TRUE(runUntil([&] { return signalled(webPids[0], SIGUSR1) && signalled(webPids[2], SIGUSR1); }));
  int before = mesh_.statsCalls;
  ASSERT_TRUE(runUntil([&] { return mesh_.statsCalls >= before + 3; }));
  EXPECT_FALSE(signalled(webPids[1], SIGUSR1)) << "web.2 was stopped with a connection open";
  mesh_.active[old[2]] = 0;
  ASSERT_TRUE(runUntil([&] { return signalled(webPids[1], SIGUSR1); }));
  // SIGUSR1 is ignored by the fake's replicas: end them as SIGKILL would.
  for (pid_t pid : webPids) launcher_.exit(pid, 137);
  ASSERT_TRUE(runUntil([&] { return launcher_.running.size() == 2 && replicas("s_api") == "2/2"; }));
  settle();
  EXPECT_EQ(mesh_.listeners.count("4000/tcp"), 1u);
  EXPECT_TRUE(mesh_.removed.empty()) << "the listener was closed and opened again: " << mesh_.removed[0];
  auto now = containers("s_api");
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(mesh_.ids("4000/tcp"), (std::vector<std::string>{now[1], now[2]}));
  for (const auto& d : mesh_.drains) EXPECT_NE(d.backend, now[1]);
  EXPECT_EQ(mesh_.drains.size(), 3u) << "each of web's replicas was drained";
}

TEST_F(OrchestratorMeshTest, APortTakenOnTheHostRefusesTheWholeDeploy) {
  ok(orch_->swarmInit(""));
  settle();
  mesh_.refusePort = "4000/tcp";
  auto r = orch_->deployStack("s", stack(kPublished));
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->kind, ErrorKind::kConflict);
  EXPECT_EQ(err->message, "port 4000/tcp is already in use by pid 1 (init)");
  EXPECT_TRUE(launcher_.launched.empty());
  EXPECT_TRUE(mesh_.listeners.empty());
  EXPECT_EQ(ok(orch_->listStacks()).size(), 0u);
}

}  // namespace
}  // namespace skiff::netd
