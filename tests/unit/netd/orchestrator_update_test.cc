// Rolling updates, readiness and health checks through the orchestrator,
// with a fake mesh (what is in rotation), a fake launcher (replicas, health
// check execs) and a scripted port probe: a redeploy moves slots as
// update_config says, only ready replicas are in rotation, a new image that
// fails rolls back without touching the old replicas, and a replica that
// turns unhealthy leaves rotation and is replaced.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "fake_mesh.h"
#include "orchestrator_fixture.h"

namespace skiff::netd {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

class OrchestratorUpdateTest : public testing::OrchestratorFixture {
 protected:
  Mesh* mesh() override { return &mesh_; }

  bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    auto end = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > end) return false;
      uv_run(&loop_, UV_RUN_NOWAIT);
      ::usleep(1000);
    }
    return true;
  }
  // Replicas exit on their stop signal, as a well-behaved server does.
  void exitSignalled() {
    for (const auto& [pid, sig] : std::vector<std::pair<pid_t, int>>(launcher_.signals)) {
      if (std::find(launcher_.running.begin(), launcher_.running.end(), pid) != launcher_.running.end())
        launcher_.exit(pid, 0);
    }
    settle();
  }
  json tasks() { return ok(orch_->listTasks("s_web", "")); }
  // Container ids of live tasks of one spec version.
  std::vector<std::string> liveOf(uint64_t version) {
    std::vector<std::string> out;
    for (const auto& t : tasks()) {
      if (t["specVersion"] == version && (t["currentState"] == "Running" || t["currentState"] == "Starting"))
        out.push_back(t["containerId"]);
    }
    return out;
  }
  pid_t pidOfContainer(const std::string& id) {
    for (const auto& t : tasks()) {
      if (t["containerId"] == id) return t["pid"].get<pid_t>();
    }
    return 0;
  }
  std::string updateState() {
    json s = ok(orch_->inspectService("s_web"));
    return s.contains("UpdateStatus") ? s["UpdateStatus"]["State"].get<std::string>() : "";
  }
  size_t inRotation() { return mesh_.ids("4000/tcp").size(); }

  testing::FakeMesh mesh_{&launcher_};
};

std::string web(const std::string& greeting, const std::string& update) {
  return R"(
version: "3"
services:
  web:
    image: app:1
    ports: ["4000:80"]
    environment: [GREETING=)" +
         greeting + R"(]
    stop_grace_period: 2s
    deploy:
      replicas: 3
      restart_policy: {condition: on-failure, delay: 0s}
      update_config: )" +
         update + "\n";
}

TEST_F(OrchestratorUpdateTest, StartFirstKeepsEveryReplicaInRotationWhileTheSlotsMoveOneByOne) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(web("hi", "{order: start-first, parallelism: 1, monitor: 0s}"))));
  settle();
  ASSERT_EQ(inRotation(), 3u);
  mesh_.history.clear();
  ok(orch_->deployStack("s", stack(web("yo", "{order: start-first, parallelism: 1, monitor: 0s}"))));
  settle();
  for (int i = 0; i < 6 && updateState() != "completed"; i++) exitSignalled();
  EXPECT_EQ(updateState(), "completed");
  EXPECT_EQ(liveOf(2).size(), 3u);
  EXPECT_TRUE(liveOf(1).empty());
  EXPECT_EQ(mesh_.ids("4000/tcp"), liveOf(2));
  // One slot at a time, each new replica started before the old one of its
  // slot is drained: drain i comes after launch 3 + i + 1 and before the next.
  ASSERT_EQ(mesh_.drains.size(), 3u);
  for (size_t i = 0; i < 3; i++) EXPECT_EQ(mesh_.drains[i].launchedBefore, 3 + i + 1) << "drain " << i;
  // Never fewer than three replicas open to new connections: a draining
  // replica stays listed (its connections are counted) but the mesh sends
  // it nothing new.
  const auto& history = mesh_.history.at("4000/tcp");
  for (size_t i = 0; i < history.size(); i++) {
    size_t open = 0;
    for (const auto& b : history[i]) {
      bool draining = std::any_of(mesh_.drains.begin(), mesh_.drains.end(),
                                  [&](const auto& d) { return d.backend == b.id && d.historyBefore <= i; });
      open += draining ? 0 : 1;
    }
    EXPECT_GE(open, 3u) << "backend list " << i;
  }
}

TEST_F(OrchestratorUpdateTest, ANewReplicaEntersRotationOnlyOnceItsPortAccepts) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(web("hi", "{order: start-first, monitor: 0s}"))));
  settle();
  portsAccept_ = false;
  ok(orch_->deployStack("s", stack(web("yo", "{order: start-first, monitor: 0s}"))));
  settle();
  ASSERT_EQ(liveOf(2).size(), 1u);
  std::string fresh = liveOf(2)[0];
  // It runs, but its port refuses: out of rotation, and the old replica of
  // its slot keeps serving.
  ASSERT_TRUE(runUntil([&] { return probes_.size() >= 5; }));
  EXPECT_EQ(inRotation(), 3u);
  auto ids = mesh_.ids("4000/tcp");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), fresh), 0);
  EXPECT_TRUE(launcher_.signals.empty()) << "no old replica stops before its replacement is ready";
  EXPECT_TRUE(probes_.back().rfind("10.0.0.", 0) == 0 && probes_.back().find(":80") != std::string::npos)
      << probes_.back() << ": probed on its ingress address at the target port";
  EXPECT_EQ(updateState(), "updating");

  portsAccept_ = true;
  ASSERT_TRUE(runUntil([&] {
    auto now = mesh_.ids("4000/tcp");
    return std::count(now.begin(), now.end(), fresh) == 1;
  }));
  ASSERT_FALSE(mesh_.drains.empty());
  EXPECT_EQ(mesh_.drains[0].launchedBefore, 4u) << "slot 1's old replica is drained once its replacement is ready";
  ASSERT_TRUE(runUntil([&] { return updateState() == "completed"; }));
}

// `service ls` says 3/3 only when a curl can reach all three: a replica whose
// port does not accept yet is running, but not counted (docker counts a task
// with a health check once it is healthy).
TEST_F(OrchestratorUpdateTest, ServiceLsCountsOnlyReplicasInRotation) {
  ok(orch_->swarmInit(""));
  settle();
  portsAccept_ = false;
  ok(orch_->deployStack("s", stack(web("hi", "{order: stop-first}"))));
  auto replicas = [&] { return ok(orch_->listServices("s")).at(0)["replicas"].get<std::string>(); };
  ASSERT_TRUE(runUntil([&] { return liveOf(1).size() == 3 && probes_.size() >= 6; }));
  EXPECT_EQ(replicas(), "0/3") << "replicas whose port refuses are counted";
  EXPECT_EQ(inRotation(), 0u);

  portsAccept_ = true;
  ASSERT_TRUE(runUntil([&] { return inRotation() == 3; }));
  EXPECT_EQ(replicas(), "3/3");
}

TEST_F(OrchestratorUpdateTest, ANewImageThatExitsRollsBackWithoutTouchingTheOldReplicas) {
  ok(orch_->swarmInit(""));
  settle();
  // The rollback itself is not watched: the test need not wait 5 s.
  const std::string update =
      "{order: start-first, failure_action: rollback, monitor: 5s}\n      rollback_config: {monitor: 0s}";
  ok(orch_->deployStack("s", stack(web("hi", update))));
  settle();
  auto old = liveOf(1);
  ASSERT_EQ(old.size(), 3u);
  portsAccept_ = false;  // the new replica dies before it ever accepts
  ok(orch_->deployStack("s", stack(web("broken", update))));
  settle();
  ASSERT_EQ(liveOf(2).size(), 1u);
  launcher_.exit(pidOfContainer(liveOf(2)[0]), 1);
  settle();
  ASSERT_TRUE(runUntil([&] { return updateState() == "rollback_completed"; })) << updateState();
  json s = ok(orch_->inspectService("s_web"));
  EXPECT_EQ(s["UpdateStatus"]["Message"].get<std::string>().rfind(
                "rollback completed (update rolled back due to failure or early termination of task ", 0),
            0u)
      << s["UpdateStatus"]["Message"];
  EXPECT_EQ(s["Version"]["Index"], 1) << "back on the first spec";
  EXPECT_TRUE(launcher_.signals.empty()) << "the old replicas were never stopped";
  EXPECT_EQ(liveOf(1), old);
  EXPECT_EQ(mesh_.ids("4000/tcp"), old);
  EXPECT_EQ(s["Skiff"]["Spec"]["environment"]["GREETING"], "hi") << s["Skiff"]["Spec"].dump();
  // The stored stack was rolled back too: a restart brings back this spec.
  auto stored = store_->get("stack", "s");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((**stored).dump().find("broken"), std::string::npos);
}

TEST_F(OrchestratorUpdateTest, AFailureWithPauseLeavesTheUpdatePausedAndSaysWhy) {
  ok(orch_->swarmInit(""));
  settle();
  const std::string update = "{order: stop-first, failure_action: pause, monitor: 5s}";
  ok(orch_->deployStack("s", stack(web("hi", update))));
  settle();
  portsAccept_ = false;  // the new replica never gets ready
  ok(orch_->deployStack("s", stack(web("bad", update))));
  settle();
  exitSignalled();  // slot 1's old replica goes, its new one starts
  ASSERT_EQ(liveOf(2).size(), 1u);
  std::string failed;
  for (const auto& t : tasks())
    if (t["specVersion"] == 2) failed = t["id"];
  launcher_.exit(pidOfContainer(liveOf(2)[0]), 1);
  settle();
  json s = ok(orch_->inspectService("s_web"));
  ASSERT_TRUE(s.contains("UpdateStatus"));
  EXPECT_EQ(s["UpdateStatus"]["State"], "paused");
  EXPECT_EQ(s["UpdateStatus"]["Message"], "update paused due to failure or early termination of task " + failed);
  EXPECT_EQ(liveOf(1).size(), 2u) << "slots 2 and 3 keep the old spec";
}

TEST_F(OrchestratorUpdateTest, AHealthCheckGatesRotationAndAnUnhealthyReplicaIsReplaced) {
  std::atomic<bool> healthy{true};
  launcher_.onExec = [&](const runtime::ContainerSpec&, const runtime::ExecSpec& e) -> Result<runtime::ExecResult> {
    EXPECT_EQ(e.argv, (std::vector<std::string>{"/bin/sh", "-c", "curl -f http://localhost/"}));
    runtime::ExecResult r;
    r.exitCode = healthy ? 0 : 1;
    r.output = healthy ? "ok" : "curl: (7) Failed to connect";
    return r;
  };
  ok(orch_->swarmInit(""));
  settle();
  std::string yaml = web("hi", "{monitor: 0s}");
  yaml += R"(    healthcheck:
      test: ["CMD-SHELL", "curl -f http://localhost/"]
      interval: 20ms
      timeout: 1s
      retries: 2
)";
  ok(orch_->deployStack("s", stack(yaml)));
  // The moment the node's agent has started them (a check 20 ms later may
  // pass at once on a slow machine, so not a fixed number of turns later).
  ASSERT_TRUE(settleUntil([&] { return launcher_.launched.size() == 3; }));
  EXPECT_EQ(inRotation(), 0u) << "starting: not in rotation before the first check passed";
  EXPECT_TRUE(probes_.empty()) << "a health check replaces the port probe";
  ASSERT_TRUE(runUntil([&] { return inRotation() == 3; }));
  for (const auto& t : tasks()) EXPECT_EQ(t["health"], "healthy");
  auto c = ok(orch_->listContainers(false));
  ASSERT_FALSE(c.empty());
  EXPECT_NE(c[0]["status"].get<std::string>().find("(healthy)"), std::string::npos) << c[0]["status"];
  auto before = mesh_.ids("4000/tcp");

  healthy = false;  // every replica fails from now on: all leave rotation
  ASSERT_TRUE(runUntil([&] { return launcher_.signals.size() == 3; }));
  for (const auto& id : mesh_.ids("4000/tcp")) {
    EXPECT_TRUE(std::any_of(mesh_.drains.begin(), mesh_.drains.end(), [&](const auto& d) { return d.backend == id; }))
        << id << ": an unhealthy replica gets no new connection";
  }
  healthy = true;  // their replacements pass
  exitSignalled();
  size_t failed = 0;
  for (const auto& t : tasks()) {
    if (t["currentState"] != "Failed") continue;
    failed++;
    EXPECT_NE(t["error"].get<std::string>().find("unhealthy container"), std::string::npos) << t["error"];
  }
  EXPECT_EQ(failed, 3u);
  ASSERT_TRUE(runUntil([&] { return inRotation() == 3; }));
  for (const auto& id : mesh_.ids("4000/tcp"))
    EXPECT_EQ(std::count(before.begin(), before.end(), id), 0) << "replaced, not the old ones back";
}

TEST_F(OrchestratorUpdateTest, ServiceUpdateChecksItsInputThenRollsOutAndRollsBack) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(web("hi", "{monitor: 0s}\n      rollback_config: {monitor: 0s}"))));
  settle();
  auto refused = [&](const json& body) {
    auto r = orch_->updateService("s_web", body);
    const auto* e = std::get_if<ApiError>(&r);
    return e == nullptr ? std::string("accepted") : e->message;
  };
  EXPECT_EQ(refused({{"image", "nope:1"}}), "image nope:1 not found locally; build it with skiff image build");
  EXPECT_EQ(refused({{"updateConfig", {{"order", "sideways"}}}}),
            "invalid update order \"sideways\": must be one of stop-first, start-first");
  EXPECT_EQ(refused({{"replicas", -1}}), "replicas must be a number >= 0");
  EXPECT_EQ(refused({{"colour", "red"}}), "unknown service update field \"colour\"");
  auto r = orch_->rollbackService("s_web");
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).message, "service s_web has no previous spec to roll back to");
  EXPECT_TRUE(launcher_.signals.empty()) << "refused updates change nothing";

  json done =
      ok(orch_->updateService("s_web", {{"envAdd", {"GREETING=yo"}}, {"updateConfig", {{"order", "start-first"}}}}));
  settle();
  EXPECT_FALSE(done["ID"].get<std::string>().empty());
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return updateState() == "completed";
  }));
  json s = ok(orch_->inspectService("s_web"));
  EXPECT_EQ(s["Skiff"]["Spec"]["environment"]["GREETING"], "yo");
  EXPECT_NE(s["Skiff"]["Spec"].dump().find(R"("order":"start-first")"), std::string::npos)
      << "the flags stay for the next update";
  EXPECT_EQ(liveOf(s["Version"]["Index"]).size(), 3u);

  ok(orch_->rollbackService("s_web"));
  settle();
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return updateState() == "rollback_completed";
  }));
  s = ok(orch_->inspectService("s_web"));
  EXPECT_EQ(s["Skiff"]["Spec"]["environment"]["GREETING"], "hi");
  EXPECT_EQ(liveOf(s["Version"]["Index"]).size(), 3u);
  EXPECT_EQ(launcher_.launched.size(), 9u) << "3 + 3 updated + 3 rolled back";
}

// docker keeps a service's PreviousSpec in its raft store: `service
// rollback` works after the manager restarted. So does skiff's, and a
// removed stack takes its previous specs along.
TEST_F(OrchestratorUpdateTest, ARollbackAfterARestartGoesBackToThePreviousSpec) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(web("hi", "{monitor: 0s}\n      rollback_config: {monitor: 0s}"))));
  settle();
  ok(orch_->updateService("s_web", {{"envAdd", {"GREETING=yo"}}}));
  settle();
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return updateState() == "completed";
  }));

  bool done = false;
  orch_->shutdown([&] { done = true; });
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return done;
  }));
  orch_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);
  orch_ = std::make_unique<Orchestrator>(deps());
  ASSERT_TRUE(orch_->restore().ok());
  settle();
  json s = ok(orch_->inspectService("s_web"));
  ASSERT_EQ(s["Skiff"]["Spec"]["environment"]["GREETING"], "yo");
  const size_t launchedBefore = launcher_.launched.size();

  ok(orch_->rollbackService("s_web"));
  settle();
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return updateState() == "rollback_completed";
  })) << updateState();
  s = ok(orch_->inspectService("s_web"));
  EXPECT_EQ(s["Skiff"]["Spec"]["environment"]["GREETING"], "hi");
  EXPECT_EQ(liveOf(s["Version"]["Index"]).size(), 3u);
  EXPECT_EQ(launcher_.launched.size(), launchedBefore + 3) << "every replica of this life replaced";
  for (size_t i = launchedBefore; i < launcher_.launched.size(); ++i) {
    const auto& env = launcher_.launched[i].env;
    EXPECT_NE(std::find(env.begin(), env.end(), "GREETING=hi"), env.end());
  }

  auto stored = store_->get("previous", "s_web");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->has_value()) << "the rolled-back-from spec is now the previous one";
  ok(orch_->removeStack("s"));
  settle();
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return ok(orch_->listServices("")).empty();
  }));
  stored = store_->get("previous", "s_web");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value()) << "a removed service's previous spec goes with it";
}

// A "previous" document the store still holds for an earlier service of
// the same name (a stack that failed to restore and was removed, a failed
// write) is not rolled back to: it is previous to another spec.
TEST_F(OrchestratorUpdateTest, AStoredPreviousSpecOfAnotherSpecIsNotRestored) {
  ok(orch_->swarmInit(""));
  settle();
  runtime::StackSpec old = stack(web("old", "{monitor: 0s}"));
  runtime::StackSpec other = stack(web("other", "{monitor: 0s}"));
  ASSERT_TRUE(store_
                  ->put("previous", "s_web",
                        json{{"service", "web"}, {"spec", runtime::toJson(old)}, {"current", runtime::toJson(other)}})
                  .ok());
  ok(orch_->deployStack("s", stack(web("hi", "{monitor: 0s}"))));
  settle();
  bool done = false;
  orch_->shutdown([&] { done = true; });
  ASSERT_TRUE(runUntil([&] {
    exitSignalled();
    return done;
  }));
  orch_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);
  orch_ = std::make_unique<Orchestrator>(deps());
  ASSERT_TRUE(orch_->restore().ok());
  settle();
  auto r = orch_->rollbackService("s_web");
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).message, "service s_web has no previous spec to roll back to");
}

}  // namespace
}  // namespace skiff::netd
