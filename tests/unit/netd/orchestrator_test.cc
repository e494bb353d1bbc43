// The orchestrator against fakes (orchestrator_fixture.h): desired state,
// task lives, restarts, persistence, hostile stored state. No root, no
// kernel objects, no published ports (orchestrator_mesh_test has those).
#include "skiff/netd/orchestrator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "orchestrator_fixture.h"
#include "skiff/netd/api.h"
#include "skiff/overlay/netlink.h"
#include "skiff/runtime/compose.h"

namespace skiff::netd {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

class OrchestratorTest : public testing::OrchestratorFixture {};

const char* kWeb = R"(
version: "3"
services:
  web:
    image: app:1
    environment: [GREETING=hi]
    deploy:
      replicas: 3
      resources: {limits: {cpus: "0.1", memory: 50M}}
      restart_policy: {condition: on-failure, delay: 0s}
    networks: [webnet]
networks:
  webnet:
)";

TEST_F(OrchestratorTest, DeployBeforeInitIsRefusedWithDockersWords) {
  auto r = orch_->deployStack("s", stack(kWeb));
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->message, kNotManager);
  EXPECT_TRUE(launcher_.launched.empty());
}

TEST_F(OrchestratorTest, DeployStartsEveryReplicaWithItsSpec) {
  ok(orch_->swarmInit(""));
  settle();
  json out = ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  EXPECT_EQ(out["messages"], json({"Creating network s_webnet", "Creating service s_web"}));
  ASSERT_EQ(launcher_.launched.size(), 3u);
  const auto& c = launcher_.launched[0];
  EXPECT_EQ(c.hostname, c.id.substr(0, 12));
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/hello", "80"}));
  EXPECT_NE(std::find(c.env.begin(), c.env.end(), "NAME=World"), c.env.end());
  EXPECT_NE(std::find(c.env.begin(), c.env.end(), "GREETING=hi"), c.env.end());
  EXPECT_EQ(c.limits.memoryBytes, 52428800);
  EXPECT_DOUBLE_EQ(c.limits.cpus, 0.1);
  EXPECT_EQ(c.lowerDirs.size(), 1u);
  EXPECT_EQ(replicas("s_web"), "3/3");
  json net = ok(orch_->inspectNetwork("s_webnet"));
  EXPECT_EQ(net["VNI"], 4097);
  EXPECT_EQ(net["Containers"].size(), 3u);
}

// The manager's own node is an agent like any other: the replicas it runs
// are the ones the dispatcher's assignment names for its node id, given only
// to a heartbeat with that node's secret, the same request a remote agent
// sends to port 2377.
TEST_F(OrchestratorTest, TheManagersNodeRunsWhatTheDispatcherAssignsIt) {
  json init = ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 3u);
  const std::string self = init["nodeId"];
  auto doc = store_->get("node", self);
  ASSERT_TRUE(doc.ok() && doc->has_value());
  const std::string secret = (**doc).value("secret", "");
  ASSERT_EQ(secret.size(), 32u) << "the manager's node has a secret of its own";

  auto refused = orch_->clusterRequest("/cluster/v1/heartbeat", "198.51.100.9",
                                       json{{"nodeId", self}, {"secret", "not-" + secret.substr(4)}});
  ASSERT_TRUE(std::holds_alternative<ApiError>(refused));
  EXPECT_EQ(std::get<ApiError>(refused).kind, ErrorKind::kUnauthorized);

  json a = ok(orch_->clusterRequest("/cluster/v1/heartbeat", "local", json{{"nodeId", self}, {"secret", secret}}));
  std::set<std::string> assigned, started;
  for (const auto& t : a["tasks"]) assigned.insert(t["containerId"].get<std::string>());
  for (const auto& c : launcher_.launched) started.insert(c.id);
  EXPECT_EQ(assigned, started);
  std::set<std::string> networks;
  for (const auto& n : a["networks"]) networks.insert(n["name"].get<std::string>());
  EXPECT_EQ(networks, (std::set<std::string>{"ingress", "s_webnet"}));
}

TEST_F(OrchestratorTest, FailedReplicaIsRestartedAndHistoryKept) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  pid_t first = launcher_.running.front();
  launcher_.exit(first, 137);
  settle();
  EXPECT_EQ(launcher_.launched.size(), 4u) << "on-failure restarts a replica killed by SIGKILL";
  EXPECT_EQ(replicas("s_web"), "3/3");
  json tasks = ok(orch_->listTasks("s_web", ""));
  ASSERT_EQ(tasks.size(), 4u);
  int failed = 0;
  for (const auto& t : tasks) {
    if (t["currentState"] == "Failed") {
      failed++;
      EXPECT_EQ(t["error"], "task: non-zero exit (137)");
      EXPECT_EQ(t["desiredState"], "Shutdown");
    }
  }
  EXPECT_EQ(failed, 1);
}

// skiff_backend_up reads 0 for serviceCounts().downBackends: a replica
// that died while its slot is wanted and has no ready replica. A slot
// scaled away or given up by the restart policy is not down (its series
// would stay 0 for ever); in a crash loop the newest dead replica is.
TEST_F(OrchestratorTest, ADeadReplicaIsADownBackendWhileItsSlotIsWantedAndUnserved) {
  ok(orch_->swarmInit(""));
  settle();
  std::string yaml(kWeb);
  yaml.replace(yaml.find("delay: 0s"), 9, "delay: 1s");
  ok(orch_->deployStack("s", stack(yaml)));
  settle();
  auto down = [&] {
    for (const auto& c : orch_->serviceCounts()) {
      if (c.service == "s_web") return c.downBackends;
    }
    return std::vector<std::string>{"no s_web"};
  };
  auto taskOfSlot = [&](uint64_t slot) {
    json found;
    for (const auto& t : ok(orch_->listTasks("s_web", ""))) {
      if (t["slot"] == slot && t["pid"] != 0) found = t;
    }
    return found;
  };
  EXPECT_EQ(down(), std::vector<std::string>{});
  json third = taskOfSlot(3), second = taskOfSlot(2), first = taskOfSlot(1);
  ASSERT_FALSE(third.is_null() || second.is_null() || first.is_null());

  // Slot 3 dies; its restart waits 1 s.
  launcher_.exit(third["pid"], 137);
  settle();
  EXPECT_EQ(down(), std::vector<std::string>{third["containerId"]});
  // Scaled to 2 before the restart: slot 3 is no longer wanted.
  ok(orch_->scaleService("s_web", 2));
  settle();
  EXPECT_EQ(down(), std::vector<std::string>{});

  // Slot 2 dies, and its replacement dies too: the newest is the down one.
  launcher_.exit(second["pid"], 1);
  settle();
  EXPECT_EQ(down(), std::vector<std::string>{second["containerId"]});
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json replacement;
  while (std::chrono::steady_clock::now() < end) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    replacement = taskOfSlot(2);
    // Started by this node's agent, and ready as the manager heard it.
    if (!replacement.is_null() && replacement["ready"] == true) break;
    ::usleep(2000);
  }
  ASSERT_FALSE(replacement.is_null()) << "restarted after its delay";
  EXPECT_EQ(down(), std::vector<std::string>{}) << "a ready replacement serves the slot";
  launcher_.exit(replacement["pid"], 1);
  settle();
  EXPECT_EQ(down(), std::vector<std::string>{replacement["containerId"]});

  // Slot 1 exits 0 under on-failure: the policy gives the slot up.
  launcher_.exit(first["pid"], 0);
  settle();
  EXPECT_EQ(down(), std::vector<std::string>{replacement["containerId"]}) << "slot 1 is not coming back";
}

TEST_F(OrchestratorTest, CleanExitIsNotRestartedUnderOnFailure) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  launcher_.exit(launcher_.running.front(), 0);
  settle();
  EXPECT_EQ(launcher_.launched.size(), 3u);
  EXPECT_EQ(replicas("s_web"), "2/3");
}

TEST_F(OrchestratorTest, LaunchFailureIsVisibleAndRetried) {
  ok(orch_->swarmInit(""));
  settle();
  launcher_.failNextLaunch = "exec: \"nosuch\": executable file not found in $PATH";
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  json tasks = ok(orch_->listTasks("s_web", ""));
  bool seen = false;
  for (const auto& t : tasks) {
    if (t["currentState"] == "Failed") {
      EXPECT_EQ(t["error"], "starting container failed: exec: \"nosuch\": executable file not found in $PATH");
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(replicas("s_web"), "3/3") << "the failed slot was retried (delay 0)";
}

TEST_F(OrchestratorTest, RedeployScalesInPlaceAndReplacesOnChange) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  std::string five(kWeb);
  five.replace(five.find("replicas: 3"), 11, "replicas: 5");
  ok(orch_->deployStack("s", stack(five)));
  settle();
  EXPECT_EQ(launcher_.launched.size(), 5u) << "scale up adds 2, leaves 3 alone";
  EXPECT_TRUE(launcher_.signals.empty());

  ok(orch_->scaleService("s_web", 2));
  settle();
  ASSERT_EQ(launcher_.signals.size(), 3u);
  for (const auto& [pid, sig] : launcher_.signals) EXPECT_EQ(sig, SIGTERM);
  for (const auto& [pid, sig] : launcher_.signals) launcher_.exit(pid, 0);
  settle();
  EXPECT_EQ(replicas("s_web"), "2/2");

  std::string changed(kWeb);
  changed.replace(changed.find("GREETING=hi"), 11, "GREETING=yo");
  changed.replace(changed.find("replicas: 3"), 11, "replicas: 2");
  launcher_.signals.clear();
  json out = ok(orch_->deployStack("s", stack(changed)));
  EXPECT_EQ(out["messages"][0].get<std::string>().rfind("Updating service s_web", 0), 0u);
  // docker's default update_config: stop-first, parallelism 1. When the
  // first old replica is signalled, the second is not.
  ASSERT_TRUE(settleUntil([&] { return !launcher_.signals.empty(); }));
  ASSERT_EQ(launcher_.signals.size(), 1u) << "one slot at a time";
  launcher_.exit(launcher_.signals[0].first, 0);
  settle();
  auto yo = [](const runtime::ContainerSpec& c) {
    return std::find(c.env.begin(), c.env.end(), "GREETING=yo") != c.env.end();
  };
  EXPECT_TRUE(yo(launcher_.launched.back())) << "slot 1's replacement runs the new spec";
  ASSERT_EQ(launcher_.signals.size(), 2u) << "slot 2 goes once slot 1's new task is ready";
  launcher_.exit(launcher_.signals[1].first, 0);
  settle();
  EXPECT_TRUE(yo(launcher_.launched.back()));
  EXPECT_EQ(launcher_.signals.size(), 2u) << "both old replicas are replaced, nothing more";
  EXPECT_EQ(replicas("s_web"), "2/2");
}

TEST_F(OrchestratorTest, InvalidRedeployChangesNothing) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  std::string bad(kWeb);
  bad.replace(bad.find("app:1"), 5, "nope:2");
  auto r = orch_->deployStack("s", stack(bad));
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->message, "image nope:2 not found locally; build it with skiff image build");
  EXPECT_TRUE(launcher_.signals.empty());
  EXPECT_EQ(launcher_.launched.size(), 3u);
  EXPECT_EQ(replicas("s_web"), "3/3");
}

TEST_F(OrchestratorTest, StackRmStopsEverythingAndRemovesNetworks) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  json out = ok(orch_->removeStack("s"));
  settle();
  EXPECT_EQ(out["messages"], json({"Removing service s_web", "Removing network s_webnet"}));
  EXPECT_EQ(launcher_.signals.size(), 3u);
  for (const auto& [pid, sig] : launcher_.signals) launcher_.exit(pid, 143);
  settle();
  EXPECT_TRUE(ok(orch_->listServices("")).empty());
  EXPECT_EQ(launcher_.launched.size(), 3u) << "stopped replicas are not restarted";
  auto net = orch_->inspectNetwork("s_webnet");
  EXPECT_NE(std::get_if<ApiError>(&net), nullptr) << "network removed";
  EXPECT_TRUE(ok(orch_->listContainers(true)).empty());
  EXPECT_FALSE(netlink_.has("skbr-4097"));
  EXPECT_FALSE(netlink_.has("skvx-4097"));
  EXPECT_TRUE(netlink_.has("skbr-4096")) << "ingress stays until swarm leave";
  ok(orch_->swarmLeave(true));
  EXPECT_EQ(netlink_.linkCount(), 0u);
}

TEST_F(OrchestratorTest, StateSurvivesARestart) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  bool done = false;
  orch_->shutdown([&] { done = true; });
  for (pid_t pid : std::vector<pid_t>(launcher_.running)) launcher_.exit(pid, 0);
  settle();
  ASSERT_TRUE(done);
  orch_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);

  orch_ = std::make_unique<Orchestrator>(deps());
  ASSERT_TRUE(orch_->restore().ok());
  settle();
  EXPECT_EQ(replicas("s_web"), "3/3");
  EXPECT_EQ(launcher_.launched.size(), 6u);
  json net = ok(orch_->inspectNetwork("s_webnet"));
  EXPECT_EQ(net["VNI"], 4097) << "the network keeps its VNI";
}

TEST_F(OrchestratorTest, ReplicasBeyondTheAddressSpaceAreRefused) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  auto r = orch_->scaleService("s_web", 100000000);
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->message, "replicas 100000000 is more than this node can address (at most 250)");
  EXPECT_EQ(launcher_.launched.size(), 3u);
  EXPECT_EQ(replicas("s_web"), "3/3");
}

TEST_F(OrchestratorTest, SwarmLeaveKeepsIngressUntilReplicasAreGone) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  ok(orch_->swarmLeave(true));
  EXPECT_EQ(launcher_.signals.size(), 3u);
  EXPECT_TRUE(netlink_.has("skbr-4096")) << "replicas still draining through ingress";
  for (const auto& [pid, sig] : launcher_.signals) launcher_.exit(pid, 0);
  settle();
  EXPECT_EQ(netlink_.linkCount(), 0u) << "everything the swarm made is gone";
  auto r = orch_->deployStack("s", stack(kWeb));
  ASSERT_NE(std::get_if<ApiError>(&r), nullptr);
  EXPECT_EQ(std::get<ApiError>(r).message, kNotManager);
}

// Issue 7.3: templates reach the replica's env and hostname with literal
// values, and a hostile one neither crashes deploy nor keeps netd from
// starting when the stack is restored.
TEST_F(OrchestratorTest, TemplatesExpandInEnvAndHostname) {
  ok(orch_->swarmInit(""));
  settle();
  std::string yaml(kWeb);
  yaml.replace(yaml.find("environment: [GREETING=hi]"), 26,
               "hostname: \"{{.Node.Hostname}}-{{.Task.Slot}}\"\n"
               "    environment: [\"SVC={{.Service.Name}}\", \"SLOT={{ .Task.Slot }}\", "
               "\"NODE={{.Node.Hostname}}\", \"ODD={{.Nope}}\"]");
  yaml.replace(yaml.find("replicas: 3"), 11, "replicas: 1");
  ok(orch_->deployStack("s", stack(yaml)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 1u);
  const auto& spec = launcher_.launched[0];
  EXPECT_EQ(spec.hostname, "node1-1");
  auto has = [&](const std::string& kv) { return std::find(spec.env.begin(), spec.env.end(), kv) != spec.env.end(); };
  EXPECT_TRUE(has("SVC=s_web"));
  EXPECT_TRUE(has("SLOT=1"));
  EXPECT_TRUE(has("NODE=node1"));
  EXPECT_TRUE(has("ODD={{.Nope}}"));
}

TEST_F(OrchestratorTest, StoredStackWithAHostileTemplateRestoresAndNetdStarts) {
  ok(orch_->swarmInit(""));
  settle();
  // What std::regex overflowed the stack on: a long field name after "{{ .".
  std::string hostile = "{{ ." + std::string(30000, 'A');
  runtime::StackSpec spec = stack(kWeb);
  spec.services["web"].environment["BAD"] = hostile;
  spec.services["web"].hostname = hostile;
  // As a netd that crashed during deploy left it: stored, replicas never started.
  ASSERT_TRUE(store_->put("stack", "s", json{{"name", "s"}, {"spec", runtime::toJson(spec)}}).ok());
  bool done = false;
  orch_->shutdown([&] { done = true; });
  settle();
  ASSERT_TRUE(done);
  orch_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);

  orch_ = std::make_unique<Orchestrator>(deps());
  ASSERT_TRUE(orch_->restore().ok());
  settle();
  json stacks = ok(orch_->listStacks());
  ASSERT_EQ(stacks.size(), 1u);
  EXPECT_EQ(stacks[0]["name"], "s");
  // The text is not a placeholder, so it stays as written once expanded:
  // 30k bytes, which the kernel refuses (sethostname EINVAL). Each replica
  // is rejected before launch, saying why. (With restart delay 0 a new
  // task replaces it at once: look for it in the history, as `service ps`
  // shows it, not at whichever task is newest at this moment.)
  json rejected;
  ASSERT_TRUE(settleUntil([&] {
    for (const auto& t : ok(orch_->listTasks("s_web", ""))) {
      if (t["currentState"] == "Rejected") rejected = t;
    }
    return !rejected.is_null();
  }));
  EXPECT_NE(rejected["error"].get<std::string>().find("(30004 characters): a hostname must be 64 bytes or fewer"),
            std::string::npos)
      << rejected["error"];
  EXPECT_TRUE(launcher_.launched.empty());
}

TEST_F(OrchestratorTest, ThirtyThousandCharacterStackNameInAnApiPathIsAnswered) {
  ok(orch_->swarmInit(""));
  settle();
  Api api(*orch_, *images_);
  std::string name(30000, 'a');
  HttpRequest del{"DELETE", "/v1/stacks/" + name, {}, "", ""};
  EXPECT_EQ(api.handle(del).status, 404);
  HttpRequest bad{"POST", "/v1/stacks/" + name + "%", {}, json{{"stack", runtime::toJson(stack(kWeb))}}.dump(), ""};
  HttpResponse r = api.handle(bad);
  EXPECT_EQ(r.status, 400) << r.body;
}

// Issue 7.3: logs are bytes. A replica that printed bytes that are not
// UTF-8 still has its logs served (those bytes as U+FFFD), never a 400.
TEST_F(OrchestratorTest, LogsWithInvalidUtf8AreServed) {
  ok(orch_->swarmInit(""));
  settle();
  std::string one(kWeb);
  one.replace(one.find("replicas: 3"), 11, "replicas: 1");
  ok(orch_->deployStack("s", stack(one)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 1u);
  const auto& spec = launcher_.launched[0];
  fs::create_directories(fs::path(spec.logPath).parent_path());
  std::ofstream(spec.logPath, std::ios::binary) << "ok\nbad \xff\xfe byte\n\xc3(\n";
  Api api(*orch_, *images_);

  HttpResponse r = api.handle({"GET", "/v1/containers/" + spec.id + "/logs", {}, "", ""});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["text"], "ok\nbad \xEF\xBF\xBD\xEF\xBF\xBD byte\n\xEF\xBF\xBD(\n");

  r = api.handle({"GET", "/v1/services/s_web/logs", {}, "", ""});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("bad \xEF\xBF\xBD\xEF\xBF\xBD byte"), std::string::npos) << r.body;
}

// Invalid UTF-8 in a request (body or path) echoed in an error message keeps
// the error's own status and a JSON body.
TEST_F(OrchestratorTest, InvalidUtf8InARequestIsAnsweredWithItsOwnError) {
  ok(orch_->swarmInit(""));
  settle();
  Api api(*orch_, *images_);
  HttpResponse r = api.handle({"POST", "/v1/stacks/s", {}, "{\"stack\": \"\xff\"}", ""});
  EXPECT_EQ(r.status, 400) << r.body;
  json body = json::parse(r.body);
  EXPECT_EQ(body["message"].get<std::string>().rfind("invalid request body: ", 0), 0u) << r.body;

  r = api.handle({"GET", "/v1/services/web\xff", {}, "", ""});
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(json::parse(r.body)["message"], "no such service: web\xEF\xBF\xBD");

  r = api.handle({"POST", "/v1/services/web\xff/scale", {}, "{\"replicas\": 1}", ""});
  EXPECT_EQ(r.status, 404) << r.body;
}

// Issue 7.3: a deploy or scale the store cannot save (a full disk) fails
// with 500 and changes nothing, instead of reporting success and vanishing
// at the next restart.
TEST_F(OrchestratorTest, DeployAndScaleFailWhenTheStateCannotBeSaved) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 3u);
  ASSERT_TRUE(store_->simulateFullDiskForTesting().ok());

  runtime::StackSpec big = stack(kWeb);
  big.services["web"].environment["BIG"] = std::string(256 * 1024, 'x');
  auto r = orch_->deployStack("t", big);
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->kind, ErrorKind::kInternal);
  EXPECT_EQ(err->message, "cannot save the swarm state: state store: put stack/t: database or disk is full");
  EXPECT_EQ(ok(orch_->listStacks()).size(), 1u) << "the failed deploy left no stack";
  EXPECT_EQ(launcher_.launched.size(), 3u) << "and started no replica";
  EXPECT_NE(std::get_if<ApiError>(&r), nullptr);
  auto net = orch_->inspectNetwork("t_webnet");
  EXPECT_NE(std::get_if<ApiError>(&net), nullptr) << "its network was removed again";

  // An update of s that needs more room fails too; s keeps running as it was.
  r = orch_->deployStack("s", big);
  ASSERT_NE(std::get_if<ApiError>(&r), nullptr);
  EXPECT_EQ(std::get<ApiError>(r).kind, ErrorKind::kInternal);
  EXPECT_TRUE(launcher_.signals.empty());

  // Scale writes the stack again: with every write refused it fails and
  // the replicas stay as they were.
  ASSERT_TRUE(store_->refuseWritesForTesting().ok());
  r = orch_->scaleService("s_web", 5);
  ASSERT_NE(std::get_if<ApiError>(&r), nullptr);
  EXPECT_EQ(std::get<ApiError>(r).kind, ErrorKind::kInternal);
  EXPECT_EQ(std::get<ApiError>(r).message,
            "cannot save the swarm state: state store: put stack/s: attempt to write a readonly "
            "database");
  EXPECT_EQ(replicas("s_web"), "3/3");
  EXPECT_EQ(launcher_.launched.size(), 3u);
}

TEST_F(OrchestratorTest, TheOverlayMtuOptionIsHonouredAndABadOneRefused) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->deployStack("m", stack(R"(
services:
  web:
    image: app:1
    networks: [small]
networks:
  small:
    driver_opts:
      com.docker.network.driver.mtu: "1400"
)")));
  EXPECT_EQ(ok(orch_->inspectNetwork("m_small"))["MTU"], 1400);
  auto r = orch_->deployStack("b", stack(R"(
services:
  web:
    image: app:1
    networks: [tiny]
networks:
  tiny:
    driver_opts:
      com.docker.network.driver.mtu: "12"
)"));
  const auto* err = std::get_if<ApiError>(&r);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->kind, ErrorKind::kInvalid);
  EXPECT_EQ(err->message, "network tiny: invalid com.docker.network.driver.mtu \"12\" (want 68..65535)");
}

// Container starts do not block the loop (issue 7): between clone and exec
// the shim mounts the rootfs while the loop goes on; the task is Starting
// until its `ready` pipe says the command runs.
TEST_F(OrchestratorTest, ReplicasStartWhileTheLoopGoesOnAndRunOnceTheirShimIsDone) {
  ok(orch_->swarmInit(""));
  settle();
  launcher_.holdExec = true;
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 3u);
  EXPECT_EQ(replicas("s_web"), "0/3");
  for (const auto& t : ok(orch_->listTasks("s_web", ""))) EXPECT_EQ(t["currentState"], "Starting") << t.dump();
  std::vector<pid_t> pids(launcher_.running);
  launcher_.releaseExec(pids[1]);
  settle();
  EXPECT_EQ(replicas("s_web"), "1/3");
  launcher_.releaseExec(pids[0]);
  launcher_.releaseExec(pids[2]);
  settle();
  EXPECT_EQ(replicas("s_web"), "3/3");
  EXPECT_EQ(launcher_.launched.size(), 3u);
}

TEST_F(OrchestratorTest, AShimThatFailsAfterTheCloneFailsItsTaskWhichIsRestarted) {
  ok(orch_->swarmInit(""));
  settle();
  launcher_.holdExec = true;
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  std::vector<pid_t> pids(launcher_.running);
  launcher_.holdExec = false;
  launcher_.releaseExec(pids[0], "exec: \"/hello\": permission denied");
  launcher_.releaseExec(pids[1]);
  launcher_.releaseExec(pids[2]);
  settle();
  int failed = 0;
  for (const auto& t : ok(orch_->listTasks("s_web", ""))) {
    if (t["currentState"] == "Failed") {
      failed++;
      EXPECT_EQ(t["error"], "starting container failed: exec: \"/hello\": permission denied");
    }
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(launcher_.launched.size(), 4u) << "on-failure restarts the slot";
  EXPECT_EQ(replicas("s_web"), "3/3");
}

// Its command has not run: nothing to drain, and a shim stuck on its rootfs
// must not hold the stop (or stack rm, or netd's shutdown) for ever.
TEST_F(OrchestratorTest, AReplicaStoppedWhileStartingIsKilledAndEndsOnceItsShimIsGone) {
  ok(orch_->swarmInit(""));
  settle();
  launcher_.holdExec = true;
  ok(orch_->deployStack("s", stack(kWeb)));
  settle();
  std::vector<pid_t> pids(launcher_.running);
  ok(orch_->scaleService("s_web", 2));
  settle();
  ASSERT_EQ(launcher_.signals.size(), 1u);
  EXPECT_EQ(launcher_.signals[0], std::make_pair(pids[2], SIGKILL));
  launcher_.releaseExec(pids[2]);  // the shim's pipe ends with it
  settle();
  EXPECT_EQ(replicas("s_web"), "0/2");
  launcher_.releaseExec(pids[0]);
  launcher_.releaseExec(pids[1]);
  settle();
  EXPECT_EQ(replicas("s_web"), "2/2");
  ASSERT_EQ(launcher_.signals.size(), 1u);
  int shutdown = 0;
  for (const auto& t : ok(orch_->listTasks("s_web", ""))) shutdown += t["currentState"] == "Shutdown" ? 1 : 0;
  EXPECT_EQ(shutdown, 1);
}

}  // namespace
}  // namespace skiff::netd
