// Lone containers (`skiff run`) through the orchestrator, with a fake
// launcher and the real proxy: one replica pinned to this node, left out of
// `stack ls` / `service ls`, sharing names and published ports with stacks;
// stop keeps it stopped across a netd restart, start runs it again, an exit
// its restart policy does not restart is a stop, --rm and rm remove it.
#include <signal.h>

#include <set>

#include "orchestrator_fixture.h"

namespace skiff::netd {
namespace {
using json = nlohmann::json;

class OrchestratorContainersTest : public testing::OrchestratorFixture {
 protected:
  // What `skiff run -p PORT app:1` sends (the CLI drops compose's default network).
  runtime::ServiceSpec hello(const std::string& ports = "[\"4000:80\"]") {
    auto spec = stack("services:\n  c:\n    image: app:1\n    ports: " + ports +
                      "\n    deploy: {restart_policy: {condition: none}}\n")
                    .services.at("c");
    spec.networks.clear();
    return spec;
  }
  std::string refused(const ApiResult<json>& r) {
    const auto* e = std::get_if<ApiError>(&r);
    return e == nullptr ? "(accepted)" : e->message;
  }
  // The `ps -a` row of a container name ("" when not listed).
  std::string stateOf(const std::string& name) {
    for (const auto& c : ok(orch_->listContainers(true))) {
      if (c["names"] == name) return c["state"];
    }
    return "";
  }
  size_t rowsNamed(const std::string& name) {
    size_t n = 0;
    for (const auto& c : ok(orch_->listContainers(true))) n += c["names"] == name ? 1 : 0;
    return n;
  }
  void exitAll(int code) {
    for (pid_t pid : std::vector<pid_t>(launcher_.running)) launcher_.exit(pid, code);
    settle();
  }
  void restartNetd() {
    bool done = false;
    orch_->shutdown([&] { done = true; });
    exitAll(0);
    ASSERT_TRUE(done);
    orch_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    orch_ = std::make_unique<Orchestrator>(deps());
    ASSERT_TRUE(orch_->restore().ok());
    settle();
  }
};

TEST_F(OrchestratorContainersTest, RunsOneReplicaPinnedHereOutsideTheStackLists) {
  EXPECT_NE(
      refused(orch_->runContainer("hello", hello(), false)).find("\"skiff swarm init\" makes a swarm of this node"),
      std::string::npos);
  ok(orch_->swarmInit(""));
  settle();
  json ran = ok(orch_->runContainer("hello", hello(), false));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 1u);
  EXPECT_EQ(ran["id"], launcher_.launched[0].id) << "run answers with the container's id";
  EXPECT_EQ(ran["name"], "hello");
  EXPECT_EQ(stateOf("hello"), "running");
  EXPECT_TRUE(ok(orch_->listStacks()).empty());
  EXPECT_TRUE(ok(orch_->listServices("")).empty());
  // Pinned: its task is on this node (the only one here; the constraint is node.id==self).
  json tasks = ok(orch_->listTasks("", "hello", "self"));
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["node"], "node1");
  // `service` commands do not reach it: scaled it would be no longer one container.
  EXPECT_EQ(refused(orch_->scaleService("hello", 3)), "no such service: hello");
  EXPECT_NE(refused(orch_->inspectService("hello")), "(accepted)");
  json inspect = ok(orch_->inspectContainer("hello"));
  EXPECT_EQ(inspect["Name"], "/hello");
  EXPECT_EQ(inspect["Id"], launcher_.launched[0].id);
  EXPECT_EQ(ok(orch_->inspectContainer(launcher_.launched[0].id.substr(0, 12)))["Name"], "/hello");
}

TEST_F(OrchestratorContainersTest, NamesAndPublishedPortsAreSharedWithStacks) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->runContainer("hello", hello(), false));
  settle();
  EXPECT_EQ(refused(orch_->runContainer("other", hello(), false)), "port 4000/tcp is already in use by service hello");
  EXPECT_NE(refused(orch_->runContainer("hello", hello("[\"4001:80\"]"), false))
                .find("Conflict. The container name \"/hello\" is already in use by container \"" +
                      launcher_.launched[0].id + "\""),
            std::string::npos);
  EXPECT_NE(refused(orch_->deployStack("hello", stack("services:\n  web:\n    image: app:1\n")))
                .find("already in use by a container"),
            std::string::npos);
  EXPECT_EQ(refused(orch_->deployStack("s", stack("services:\n  web:\n    image: app:1\n    ports: [\"4000:80\"]\n"))),
            "port 4000/tcp is already in use by service hello");
  ok(orch_->deployStack("s", stack("services:\n  web:\n    image: app:1\n")));
  EXPECT_NE(refused(orch_->runContainer("s_web", hello("[]"), false)).find("already in use by service s_web"),
            std::string::npos);
  EXPECT_EQ(refused(orch_->removeStack("hello")), "Nothing found in stack: hello");
  settle();
  EXPECT_EQ(launcher_.launched.size(), 2u) << "only hello and s_web run";
}

TEST_F(OrchestratorContainersTest, StopKeepsItStoppedAcrossARestartAndStartRunsItAgain) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->runContainer("hello", hello(), false));
  settle();
  ASSERT_EQ(launcher_.running.size(), 1u);
  {
    // What the replica printed (the fake launcher writes no log).
    std::filesystem::create_directories(std::filesystem::path(launcher_.launched[0].logPath).parent_path());
    std::ofstream log(launcher_.launched[0].logPath, std::ios::app);
    log << "listening on port 80\nbye\n";
  }
  ok(orch_->stopContainer("hello", 2.0));
  ASSERT_TRUE(settleUntil([&] { return !launcher_.signals.empty(); }));
  EXPECT_EQ(launcher_.signals[0].second, SIGTERM);
  exitAll(0);
  EXPECT_EQ(stateOf("hello"), "exited");
  EXPECT_EQ(rowsNamed("hello"), 1u);
  const std::string status = ok(orch_->listContainers(true))[0]["status"];  // "Exited (N) ..."

  restartNetd();
  EXPECT_EQ(launcher_.launched.size(), 1u) << "a stopped container was started by a netd restart";
  // ps -a still lists it as it ended (tasks are not stored; its last life is).
  json rows = ok(orch_->listContainers(true));
  ASSERT_EQ(rows.size(), 1u) << "a stopped container vanished from ps -a with the restart";
  EXPECT_EQ(rows[0]["names"], "hello");
  EXPECT_EQ(rows[0]["id"], launcher_.launched[0].id);
  EXPECT_EQ(rows[0]["state"], "exited");
  EXPECT_EQ(rows[0]["status"].get<std::string>().substr(0, 11), status.substr(0, 11)) << rows[0].dump();
  EXPECT_TRUE(ok(orch_->listContainers(false)).empty());
  // inspect and logs too, as it ended.
  json inspect = ok(orch_->inspectContainer("hello"));
  EXPECT_EQ(inspect["Id"], launcher_.launched[0].id);
  EXPECT_EQ(inspect["State"]["Status"], "exited");
  EXPECT_EQ(inspect["Name"], "/hello");
  json logs = ok(orch_->containerLogs("hello"));
  EXPECT_EQ(logs["text"], "listening on port 80\nbye\n") << "the log went with the restart";
  EXPECT_EQ(logs["running"], false);
  EXPECT_EQ(ok(orch_->containerLogs(launcher_.launched[0].id.substr(0, 12), 9))["text"], " on port 80\nbye\n");

  // The id ps -a shows names it.
  ok(orch_->startContainer(launcher_.launched[0].id.substr(0, 12)));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 2u);
  EXPECT_EQ(stateOf("hello"), "running");
  EXPECT_EQ(rowsNamed("hello"), 1u) << "ps -a lists a container once, not each of its lives";
  EXPECT_EQ(ok(orch_->inspectContainer("hello"))["Id"], launcher_.launched[1].id);

  restartNetd();
  EXPECT_EQ(launcher_.launched.size(), 3u) << "a running container comes back with netd";
  ok(orch_->removeContainer("hello", true));
  settle();
  restartNetd();
  EXPECT_TRUE(ok(orch_->listContainers(true)).empty()) << "a removed container's last life is forgotten";
}

TEST_F(OrchestratorContainersTest, AnExitItsPolicyDoesNotRestartIsAStop) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->runContainer("once", hello("[]"), false));
  settle();
  exitAll(3);
  EXPECT_EQ(stateOf("once"), "exited");
  EXPECT_EQ(ok(orch_->inspectContainer("once"))["State"]["ExitCode"], 3);
  EXPECT_EQ(ok(orch_->containerLogs("once", 0))["exitCode"], 3);
  restartNetd();
  EXPECT_EQ(launcher_.launched.size(), 1u) << "an exited container was started by a netd restart";
}

TEST_F(OrchestratorContainersTest, RemoveNeedsForceWhileRunningAndRunRmGoesWhenItExits) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->runContainer("hello", hello(), false));
  ok(orch_->runContainer("temp", hello("[]"), true));
  settle();
  EXPECT_EQ(refused(orch_->removeContainer("hello", false)),
            "You cannot remove a running container hello. Stop the container before attempting removal or force "
            "remove");
  EXPECT_EQ(refused(orch_->removeContainer("nope", true)), "No such container: nope");
  ok(orch_->removeContainer("hello", true));
  // Stopped with no grace: gone within a second on any machine (the fake
  // replica exits on its first signal).
  for (int i = 0; i < 1000 && !stateOf("hello").empty(); i++) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
  EXPECT_EQ(stateOf("hello"), "") << "rm -f left the container";
  // temp exits by itself: --rm removes it.
  exitAll(0);
  EXPECT_EQ(stateOf("hello"), "");
  EXPECT_EQ(stateOf("temp"), "");
  EXPECT_TRUE(ok(orch_->listContainers(true)).empty());
  // Its port is free again.
  ok(orch_->runContainer("hello2", hello(), false));
}

// `restart` of a --rm container restarts it (docker's): its stop is not the
// end that removes it; a plain stop still is.
TEST_F(OrchestratorContainersTest, ARestartOfARunRmContainerKeepsIt) {
  ok(orch_->swarmInit(""));
  ok(orch_->runContainer("temp", hello("[]"), true));
  settle();
  ok(orch_->stopContainer("temp", 1.0, /*restarting=*/true));
  exitAll(0);
  EXPECT_EQ(stateOf("temp"), "exited") << "the restart's stop removed the --rm container";
  ok(orch_->startContainer("temp"));
  settle();
  EXPECT_EQ(stateOf("temp"), "running");
  EXPECT_EQ(launcher_.launched.size(), 2u);
  ok(orch_->stopContainer("temp", 1.0));
  exitAll(0);
  EXPECT_EQ(stateOf("temp"), "") << "a stop removes a --rm container";
}

// -v name:/path names a volume of the node, as docker's: two containers, and
// a stack declaring it external, share it; a stack's own is <stack>_<name>.
TEST_F(OrchestratorContainersTest, ANamedVolumeOfAContainerIsSharedByName) {
  ok(orch_->swarmInit(""));
  auto withVolume = [&] {
    auto spec = hello("[]");
    spec.volumes = {{runtime::MountType::kVolume, "shared", "/data", false}};
    return spec;
  };
  // What an earlier skiff made of a's volume: its data moves to "shared".
  std::filesystem::create_directories(root_.string() + "/volumes/a_shared/_data");
  std::ofstream(root_.string() + "/volumes/a_shared/_data/kept") << "data\n";
  ok(orch_->runContainer("a", withVolume(), false));
  ok(orch_->runContainer("b", withVolume(), false));
  ok(orch_->deployStack("s", stack("services:\n  web:\n    image: app:1\n    volumes: [shared:/x, own:/y]\n"
                                   "volumes:\n  shared: {external: true}\n  own: {}\n")));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 3u);
  std::set<std::string> sources;
  for (const auto& c : launcher_.launched) {
    for (const auto& m : c.mounts) {
      if (m.target == "/data" || m.target == "/x" || m.target == "/y")
        sources.insert(m.source.substr(m.source.find("/volumes/")));
    }
  }
  EXPECT_EQ(sources, (std::set<std::string>{"/volumes/shared/_data", "/volumes/s_own/_data"}));
  EXPECT_TRUE(std::filesystem::exists(root_.string() + "/volumes/shared/_data/kept")) << "a's data did not move";
  EXPECT_FALSE(std::filesystem::exists(root_.string() + "/volumes/a_shared"));
}

// A network kept for a container outlives a netd restart (stacks come back
// one by one: none is judged unused before all are), and one whose stack and
// users are all gone goes.
TEST_F(OrchestratorContainersTest, AKeptNetworkSurvivesARestartAndGoesWithItsLastUser) {
  ok(orch_->swarmInit(""));
  ok(orch_->deployStack("lab", stack("services:\n  web:\n    image: app:1\n    networks: [front]\n"
                                     "networks:\n  front: {attachable: true}\n")));
  auto probe = hello("[]");
  probe.networks = {{"lab_front", {}, ""}};
  ok(orch_->runContainer("p", probe, false));
  // lab drops front: p keeps it.
  ok(orch_->deployStack("lab", stack("services:\n  web:\n    image: app:1\n")));
  settle();
  ok(orch_->inspectNetwork("lab_front"));
  restartNetd();
  ok(orch_->inspectNetwork("lab_front"));
  EXPECT_EQ(stateOf("p"), "running") << "p lost its network with the restart";

  // Its stack removed, a stack that took it external redeployed without it:
  // the last user gone, it goes; before, network rm frees it.
  ok(orch_->deployStack("lab", stack("services:\n  web:\n    image: app:1\n    networks: [front]\n"
                                     "networks:\n  front: {attachable: true}\n")));
  ok(orch_->deployStack("w", stack("services:\n  s:\n    image: app:1\n    networks: [f]\n"
                                   "networks:\n  f: {external: true, name: lab_front}\n")));
  ok(orch_->removeContainer("p", true));
  ok(orch_->removeStack("lab"));
  settle();
  ok(orch_->inspectNetwork("lab_front"));
  ok(orch_->deployStack("w", stack("services:\n  s:\n    image: app:1\n")));
  settle();
  EXPECT_EQ(refused(orch_->inspectNetwork("lab_front")), "network lab_front not found")
      << "a network whose stack and users are gone stayed";
}

TEST_F(OrchestratorContainersTest, ANameWinsOverAnIdPrefixAndRmFollowsAStopAtOnce) {
  ok(orch_->swarmInit(""));
  settle();
  ok(orch_->runContainer("first", hello("[]"), false));
  settle();
  ASSERT_EQ(launcher_.launched.size(), 1u);
  // A second container named like the start of the first one's id.
  const std::string prefix = launcher_.launched[0].id.substr(0, 6);
  ok(orch_->runContainer(prefix, hello("[]"), false));
  settle();
  EXPECT_EQ(ok(orch_->inspectContainer(prefix))["Name"], "/" + prefix) << "the id prefix shadowed the name";
  // stop, then rm before the agent has reported the end: not "running".
  ok(orch_->stopContainer(prefix, 1.0));
  ok(orch_->removeContainer(prefix, false));
  ok(orch_->startContainer("first"));  // running already: its name, nothing new
  settle();
  EXPECT_EQ(launcher_.launched.size(), 2u);
}

// --network joins an existing network a stack made attachable, as docker's
// does; a stack reaches another's network by declaring it external. The
// network outlives its stack while they use it, and goes with the last.
TEST_F(OrchestratorContainersTest, NetworkJoinsAnAttachableNetworkThatOutlivesItsStackWhileUsed) {
  ok(orch_->swarmInit(""));
  ok(orch_->deployStack("lab", stack("services:\n  web:\n    image: app:1\n    networks: [front, back]\n"
                                     "networks:\n  front: {attachable: true}\n  back: {}\n")));
  settle();
  auto probe = [&](const std::string& net) {
    auto spec = hello("[]");
    spec.networks = {{net, {}, ""}};
    return spec;
  };
  EXPECT_EQ(refused(orch_->runContainer("p", probe("nope"), false)), "network nope not found");
  EXPECT_EQ(refused(orch_->runContainer("p", probe("lab_back"), false)),
            "Could not attach to network lab_back: network lab_back not manually attachable (its stack's file makes it "
            "so with \"attachable: true\")");
  EXPECT_NE(refused(orch_->runContainer("p", probe("ingress"), false)).find("\"ingress\" cannot be used"),
            std::string::npos);
  EXPECT_EQ(refused(orch_->deployStack("other", stack("services:\n  s:\n    image: app:1\n    networks: [x]\n"
                                                      "networks:\n  x: {external: true, name: lab_nope}\n"))),
            "network \"lab_nope\" is declared as external, but could not be found. You need to create a swarm-scoped "
            "network before the stack is deployed");
  EXPECT_TRUE(ok(orch_->listStacks()).size() == 1u) << "a refused deploy leaves nothing";

  ok(orch_->runContainer("p", probe("lab_front"), false));
  // A stack takes it by compose's `name:`; its key is only the file's.
  ok(orch_->deployStack("other", stack("services:\n  s:\n    image: app:1\n    networks: [f]\n"
                                       "networks:\n  f: {external: true, name: lab_front}\n")));
  settle();
  json front = ok(orch_->inspectNetwork("lab_front"));
  std::set<std::string> members;
  for (const auto& [id, c] : front["Containers"].items()) members.insert(c["Name"].get<std::string>().substr(0, 7));
  EXPECT_EQ(members, (std::set<std::string>{"lab_web", "other_s", "p"})) << front.dump();
  EXPECT_EQ(refused(orch_->inspectNetwork("other_f")), "network other_f not found") << "no network of its own";

  // The owner goes; lab_front stays for the two that use it, lab_back goes.
  json removed = ok(orch_->removeStack("lab"));
  EXPECT_NE(removed["messages"].dump().find("Keeping network lab_front: in use by stack other, container p"),
            std::string::npos)
      << removed.dump();
  EXPECT_NE(removed["messages"].dump().find("Removing network lab_back"), std::string::npos);
  settle();
  EXPECT_EQ(refused(orch_->inspectNetwork("lab_back")), "network lab_back not found");
  ok(orch_->inspectNetwork("lab_front"));
  ok(orch_->removeStack("other"));
  settle();
  ok(orch_->inspectNetwork("lab_front"));  // p still on it
  restartNetd();
  ok(orch_->inspectNetwork("lab_front"));
  ok(orch_->removeContainer("p", true));
  settle();
  EXPECT_EQ(refused(orch_->inspectNetwork("lab_front")), "network lab_front not found")
      << "the last user gone, the network goes";
}

// `network create`: an overlay of no stack that containers and stacks join;
// `network rm` refuses while anything uses it, and what a stack made.
TEST_F(OrchestratorContainersTest, ACreatedNetworkIsJoinedAndRemovedOnlyOnceUnused) {
  auto spec = [](bool attachable, const std::string& subnet) {
    runtime::NetworkSpec n;
    n.attachable = attachable;
    n.subnet = subnet;
    return n;
  };
  EXPECT_NE(refused(orch_->createNetwork("labnet", spec(true, ""))).find("not a swarm manager"), std::string::npos);
  ok(orch_->swarmInit(""));
  json made = ok(orch_->createNetwork("labnet", spec(true, "10.9.0.0/24")));
  EXPECT_FALSE(made["id"].get<std::string>().empty());
  EXPECT_EQ(ok(orch_->inspectNetwork("labnet"))["IPAM"]["Config"][0]["Subnet"], "10.9.0.0/24");
  EXPECT_EQ(refused(orch_->createNetwork("labnet", spec(true, ""))), "network with name labnet already exists");
  EXPECT_NE(refused(orch_->createNetwork("other", spec(true, "10.9.0.0/25"))).find("overlap"), std::string::npos);
  EXPECT_EQ(refused(orch_->createNetwork("bad", spec(true, "10.9.0.0/33"))),
            "network bad: invalid subnet \"10.9.0.0/33\"");
  EXPECT_NE(refused(orch_->createNetwork("../x", spec(true, ""))).find("invalid network name"), std::string::npos);
  ok(orch_->createNetwork("closed", spec(false, "")));

  auto probe = hello("[]");
  probe.networks = {{"labnet", {}, ""}};
  ok(orch_->runContainer("p", probe, false));
  ok(orch_->deployStack("s", stack("services:\n  web:\n    image: app:1\n    networks: [n]\n"
                                   "networks:\n  n: {external: true, name: labnet}\n")));
  settle();
  json members = ok(orch_->inspectNetwork("labnet"))["Containers"];
  EXPECT_EQ(members.size(), 2u) << members.dump();
  for (const auto& [id, c] : members.items())
    EXPECT_EQ(c["IPv4Address"].get<std::string>().rfind("10.9.0.", 0), 0u) << c.dump();
  EXPECT_EQ(refused(orch_->deleteNetwork("labnet")), "network labnet is in use by container p, stack s");
  EXPECT_EQ(refused(orch_->deleteNetwork("s_default")), "network s_default not found");
  EXPECT_EQ(refused(orch_->deleteNetwork("ingress")),
            "ingress is the routing mesh's network: \"skiff swarm leave\" removes it");

  // Its stack and container gone, nothing removes it but network rm.
  ok(orch_->removeStack("s"));
  ok(orch_->removeContainer("p", true));
  settle();
  ok(orch_->inspectNetwork("labnet"));
  restartNetd();
  ok(orch_->inspectNetwork("labnet"));
  EXPECT_EQ(ok(orch_->deleteNetwork("labnet"))["name"], "labnet");
  EXPECT_EQ(refused(orch_->inspectNetwork("labnet")), "network labnet not found");
  // a stack's own network is its stack's to remove
  ok(orch_->deployStack("t", stack("services:\n  web:\n    image: app:1\n")));
  EXPECT_EQ(refused(orch_->deleteNetwork("t_default")),
            "network t_default belongs to stack t: \"skiff stack rm t\" removes it");
}

}  // namespace
}  // namespace skiff::netd
