// The parser on real files: the seed's stack and an ugly file of the kind
// found in the wild (anchors, merge keys, x- fields, $$, swarm templates,
// unset variables, unsupported keys).

#include <gtest/gtest.h>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {
namespace {

using Env = std::map<std::string, std::string>;

ComposeResult parse(const std::string& yaml, const Env& env = {}) {
  return parseComposeString(yaml, "docker-compose.yml", "/stack", env);
}

TEST(ComposeParse, SeedFile) {
  auto r = parseComposeFile(SKIFF_EXAMPLES_DIR "/getstartedlab/docker-compose.yml", {});
  const StackSpec& s = r.stack;
  EXPECT_EQ(s.version, "3");
  ASSERT_EQ(s.services.count("web"), 1u);
  const ServiceSpec& web = s.services.at("web");
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.image, "s3ich4n/get-started:pt02");
  EXPECT_EQ(web.replicas, 5u);
  EXPECT_STREQ(toString(web.mode), "replicated");
  EXPECT_DOUBLE_EQ(web.limits.cpus, 0.1);
  EXPECT_EQ(web.limits.memoryBytes, 52428800);
  // Misplaced under deploy.resources in the seed: applied, with a warning.
  EXPECT_STREQ(toString(web.restartPolicy.condition), "on-failure");
  EXPECT_DOUBLE_EQ(web.restartPolicy.delaySeconds, 5);
  EXPECT_EQ(web.restartPolicy.maxAttempts, 0u);
  ASSERT_EQ(web.ports.size(), 1u);
  EXPECT_EQ(web.ports[0], (PortSpec{80, 4000, Protocol::kTcp, PortMode::kIngress, ""}));
  ASSERT_EQ(web.networks.size(), 1u);
  EXPECT_EQ(web.networks[0].name, "webnet");
  ASSERT_EQ(s.networks.count("webnet"), 1u);
  EXPECT_EQ(s.networks.at("webnet").driver, "overlay");
  EXPECT_EQ(s.networks.count("default"), 0u);  // nobody uses it
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("docker-compose.yml:14: services.web.deploy.resources.restart_policy belongs under "
                               "services.web.deploy"),
            std::string::npos)
      << r.warnings[0];
  // Defaults a user relies on.
  EXPECT_DOUBLE_EQ(web.stopGracePeriodSeconds, 10);
  EXPECT_EQ(web.updateConfig, UpdateConfig{});
  EXPECT_EQ(web.rollbackConfig, UpdateConfig{});
  EXPECT_FALSE(web.command.has_value());
}

TEST(ComposeParse, UglyRealWorldFile) {
  auto r = parseComposeFile(SKIFF_COMPOSE_TESTDATA "/ugly.yml", {{"API_SECRET", "s3cr3t"}, {"HOME", "/root"}});
  const StackSpec& s = r.stack;
  ASSERT_EQ(s.services.size(), 3u);

  const ServiceSpec& api = s.services.at("api");
  EXPECT_EQ(api.image, "registry.local:5000/api:latest");
  EXPECT_EQ(api.command, (std::vector<std::string>{"python", "-m", "api", "--price", "$5"}));
  // Merge key: own keys win over the merged ones.
  EXPECT_EQ(api.environment, (std::map<std::string, std::string>{
                                 {"TZ", "UTC"}, {"LOG_LEVEL", "debug"}, {"DB_HOST", ""}, {"SECRET", "s3cr3t"}}));
  EXPECT_EQ(api.hostname, "{{.Node.Hostname}}-{{.Task.Slot}}");
  ASSERT_EQ(api.ports.size(), 2u);
  EXPECT_EQ(api.ports[0], (PortSpec{80, 8080, Protocol::kTcp, PortMode::kIngress, ""}));
  EXPECT_EQ(api.ports[1], (PortSpec{9090, 9090, Protocol::kUdp, PortMode::kHost, ""}));
  EXPECT_EQ(api.replicas, 2u);
  EXPECT_EQ(api.updateConfig.parallelism, 2u);
  EXPECT_DOUBLE_EQ(api.updateConfig.delaySeconds, 10);
  EXPECT_STREQ(toString(api.updateConfig.order), "start-first");
  EXPECT_STREQ(toString(api.updateConfig.failureAction), "pause");
  // rollback_config: its own keys over update_config's defaults, not update_config's values.
  EXPECT_EQ(api.rollbackConfig, (UpdateConfig{0, 0, FailureAction::kContinue, 60, 0, UpdateOrder::kStopFirst}));
  EXPECT_STREQ(toString(api.restartPolicy.condition), "any");
  EXPECT_EQ(api.restartPolicy.maxAttempts, 3u);
  EXPECT_DOUBLE_EQ(api.limits.cpus, 0.5);
  EXPECT_EQ(api.limits.memoryBytes, 1610612736);
  EXPECT_EQ(api.reservations.memoryBytes, 512 * 1024 * 1024);
  EXPECT_EQ(api.labels, (std::map<std::string, std::string>{{"traefik.enable", "true"}}));
  ASSERT_TRUE(api.healthcheck.has_value());
  EXPECT_EQ(api.healthcheck->test,
            (std::vector<std::string>{"CMD-SHELL", "curl -f http://localhost/health || exit 1"}));
  EXPECT_DOUBLE_EQ(api.healthcheck->intervalSeconds, 90);
  EXPECT_DOUBLE_EQ(api.healthcheck->timeoutSeconds, 10);
  EXPECT_EQ(api.healthcheck->retries, 5u);
  EXPECT_DOUBLE_EQ(api.healthcheck->startPeriodSeconds, 40);
  ASSERT_EQ(api.volumes.size(), 4u);
  EXPECT_EQ(api.volumes[0], (MountSpec{MountType::kVolume, "data", "/var/lib/api", false}));
  EXPECT_EQ(api.volumes[1], (MountSpec{MountType::kBind, SKIFF_COMPOSE_TESTDATA "/conf", "/etc/api", true}));
  EXPECT_EQ(api.volumes[2], (MountSpec{MountType::kVolume, "", "/scratch", false}));
  EXPECT_EQ(api.volumes[3], (MountSpec{MountType::kBind, "/srv/logs", "/logs", true}));
  ASSERT_EQ(api.configs.size(), 2u);
  EXPECT_EQ(api.configs[0], (ConfigRef{"app_conf", "/app_conf", 0444}));
  EXPECT_EQ(api.configs[1], (ConfigRef{"app_conf", "/etc/app.conf", 0440}));
  ASSERT_EQ(api.networks.size(), 2u);
  EXPECT_EQ(api.networks[0], (ServiceNetwork{"backend", {"api.internal"}, ""}));
  EXPECT_EQ(api.networks[1].name, "frontend");
  EXPECT_DOUBLE_EQ(api.stopGracePeriodSeconds, 60);

  const ServiceSpec& worker = s.services.at("worker");
  EXPECT_EQ(worker.command, (std::vector<std::string>{"sh", "-c", "echo \"hello world\" && sleep 3600"}));
  EXPECT_EQ(worker.entrypoint, (std::vector<std::string>{"/bin/entry", "--flag"}));
  // A list environment replaces the merged map (it is the same key).
  EXPECT_EQ(worker.environment, (std::map<std::string, std::string>{{"A", "1"}, {"B", "two=2"}}));
  EXPECT_STREQ(toString(worker.mode), "global");
  EXPECT_EQ(worker.placementConstraints, (std::vector<std::string>{"node.role == manager"}));
  // No networks: the stack's implicit overlay "default".
  ASSERT_EQ(worker.networks.size(), 1u);
  EXPECT_EQ(worker.networks[0].name, "default");
  ASSERT_EQ(s.networks.count("default"), 1u);
  EXPECT_EQ(s.networks.at("default").driver, "overlay");

  const ServiceSpec& lone = s.services.at("lone");
  ASSERT_TRUE(lone.healthcheck.has_value());
  EXPECT_TRUE(lone.healthcheck->disable);
  EXPECT_EQ(lone.healthcheck->test, (std::vector<std::string>{"NONE"}));

  EXPECT_EQ(s.networks.at("backend").subnet, "10.20.0.0/24");
  EXPECT_TRUE(s.networks.at("backend").attachable);
  EXPECT_TRUE(s.networks.at("outside").external);
  EXPECT_EQ(s.volumes.count("data"), 1u);
  EXPECT_EQ(s.configs.at("app_conf").file, SKIFF_COMPOSE_TESTDATA "/app_conf.yml");
  EXPECT_EQ(s.configs.at("app_conf").content, "listen 80;\n");

  EXPECT_EQ(r.warnings,
            (std::vector<std::string>{"Ignoring unsupported options: build, depends_on, logging, restart",
                                      "The \"DB_HOST\" variable is not set. Defaulting to a blank string."}))
      << ::testing::PrintToString(r.warnings);
}

TEST(ComposeParse, Interpolation) {
  Env env{{"SET", "v"}, {"EMPTY", ""}};
  auto r = parse(R"(
services:
  s:
    image: "a${SET}b$SET-${EMPTY:-d1}-${EMPTY-d2}-${UNSET:-d3}-${UNSET-${SET}}-$$HOME-${SET:+alt}"
    user: ${NOPE}
    working_dir: ${NOPE}/x
)",
                 env);
  const auto& svc = r.stack.services.at("s");
  EXPECT_EQ(svc.image, "avbv-d1--d3-v-$HOME-alt");
  EXPECT_EQ(svc.workingDir, "/x");
  // One warning per variable, however often it is used.
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"The \"NOPE\" variable is not set. Defaulting to a blank string."}));
}

TEST(ComposeParse, InterpolatesValuesNotKeys) {
  auto r = parse("services:\n  s:\n    image: x\n    environment:\n      $KEY: ${VAL:-1}\n");
  EXPECT_EQ(r.stack.services.at("s").environment, (std::map<std::string, std::string>{{"$KEY", "1"}}));
}

TEST(ComposeParse, NumbersAfterInterpolation) {
  auto r = parse("services:\n  s:\n    image: x\n    deploy:\n      replicas: ${N:-3}\n", {});
  EXPECT_EQ(r.stack.services.at("s").replicas, 3u);
}

TEST(ComposeParse, EnvironmentBareKeyComesFromEnv) {
  auto r = parse("services:\n  s:\n    image: x\n    environment: [HOME, MISSING, A=]\n", {{"HOME", "/h"}});
  EXPECT_EQ(r.stack.services.at("s").environment, (std::map<std::string, std::string>{{"HOME", "/h"}, {"A", ""}}));
}

TEST(ComposeParse, MergeKeyListEarlierWins) {
  auto r = parse(R"(
x-a: &a {image: a, user: ua}
x-b: &b {image: b, user: ub, hostname: hb}
services:
  s:
    <<: [*a, *b]
    user: own
)");
  const auto& s = r.stack.services.at("s");
  EXPECT_EQ(s.image, "a");
  EXPECT_EQ(s.user, "own");
  EXPECT_EQ(s.hostname, "hb");
}

TEST(ComposeParse, NetworksLongSyntaxAndDefaultDeclared) {
  auto r = parse(R"(
services:
  s:
    image: x
    networks:
      default:
      net1:
        ipv4_address: 10.5.0.7
networks:
  net1:
    driver_opts: {encrypted: ""}
    labels: [a=b]
)");
  const auto& s = r.stack.services.at("s");
  ASSERT_EQ(s.networks.size(), 2u);
  EXPECT_EQ(s.networks[0].name, "default");
  EXPECT_EQ(s.networks[1].ipv4Address, "10.5.0.7");
  EXPECT_EQ(r.stack.networks.at("net1").driverOpts.at("encrypted"), "");
  EXPECT_EQ(r.stack.networks.at("net1").labels.at("a"), "b");
  EXPECT_EQ(r.stack.networks.count("default"), 1u);
}

// An external network names the existing one by `name:` (or the old
// `external: {name: x}`), else by its key; a stack's own network is always
// <stack>_<key>, so `name:` there is ignored, and said so.
TEST(ComposeParse, ExternalNetworksNameTheExistingNetwork) {
  auto r = parse(R"(
services:
  s:
    image: x
    networks: [a, b, c, d]
networks:
  a: {external: true, name: lab_front}
  b:
    external: {name: lab_back}
  c: {external: true}
  d: {name: mine}
)");
  EXPECT_EQ(r.stack.networks.at("a").externalName, "lab_front");
  EXPECT_EQ(r.stack.networks.at("b").externalName, "lab_back");
  EXPECT_TRUE(r.stack.networks.at("b").external);
  EXPECT_EQ(r.stack.networks.at("c").externalName, "");
  EXPECT_FALSE(r.stack.networks.at("d").external);
  EXPECT_EQ(r.stack.networks.at("d").externalName, "");
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"Ignoring unsupported options: networks.name"}));
  // and through the wire format
  EXPECT_EQ(stackFromJson(toJson(r.stack)).networks.at("a").externalName, "lab_front");
}

TEST(ComposeParse, RestartPolicyAndUpdateDefaults) {
  auto r = parse(R"(
services:
  s:
    image: x
    stop_signal: SIGQUIT
    deploy:
      restart_policy: {condition: none, delay: 500ms, window: 2m}
      resources:
        limits: {pids: 100, memory: 1024}
)");
  const auto& s = r.stack.services.at("s");
  EXPECT_STREQ(toString(s.restartPolicy.condition), "none");
  EXPECT_DOUBLE_EQ(s.restartPolicy.delaySeconds, 0.5);
  EXPECT_DOUBLE_EQ(s.restartPolicy.windowSeconds, 120);
  EXPECT_EQ(s.limits.pids, 100);
  EXPECT_EQ(s.limits.memoryBytes, 1024);
  EXPECT_EQ(s.stopSignal, "SIGQUIT");
  EXPECT_TRUE(r.warnings.empty());
}

TEST(ComposeParse, PlacementConstraintsAndMaxReplicasPerNode) {
  auto r = parse(R"(
services:
  s:
    image: x
    deploy:
      replicas: 6
      placement:
        constraints: [node.labels.zone == a, "node.role!=manager"]
        max_replicas_per_node: 2
        preferences: [{spread: node.labels.zone}]
)");
  const auto& s = r.stack.services.at("s");
  EXPECT_EQ(s.placementConstraints, (std::vector<std::string>{"node.labels.zone == a", "node.role!=manager"}));
  EXPECT_EQ(s.maxReplicasPerNode, 2u);
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"Ignoring unsupported options: deploy.placement.preferences"}));
  auto parsed = parsePlacementConstraint(s.placementConstraints[0]);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, (PlacementConstraint{"node.labels.zone", true, "a"}));
  EXPECT_EQ(parse("services: {s: {image: x}}\n").stack.services.at("s").maxReplicasPerNode, 0u);
}

TEST(ComposeParse, HealthcheckListForm) {
  auto r = parse("services:\n  s:\n    image: x\n    healthcheck:\n      test: [CMD, curl, -f, http://x]\n");
  const auto& hc = r.stack.services.at("s").healthcheck;
  ASSERT_TRUE(hc.has_value());
  EXPECT_EQ(hc->test, (std::vector<std::string>{"CMD", "curl", "-f", "http://x"}));
  EXPECT_DOUBLE_EQ(hc->intervalSeconds, 30);
  EXPECT_EQ(hc->retries, 3u);
  EXPECT_FALSE(hc->disable);
}

TEST(ComposeParse, YamlPrinterShowsNormalizedValues) {
  auto r = parseComposeFile(SKIFF_EXAMPLES_DIR "/getstartedlab/docker-compose.yml", {});
  std::string y = toYaml(r.stack);
  EXPECT_NE(y.find("memory: 52428800"), std::string::npos) << y;
  EXPECT_NE(y.find("condition: \"on-failure\""), std::string::npos) << y;
  // The printout is itself a valid input (as `docker stack config` output is).
  auto again = parse(y);
  EXPECT_EQ(again.stack.services.at("web").limits.memoryBytes, 52428800);
}

}  // namespace
}  // namespace skiff::runtime
