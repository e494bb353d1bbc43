// Every error a user can make names the file, the line, the key path and the
// offending value, so it can be fixed without guessing.

#include <gtest/gtest.h>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {
namespace {

// The error message for a file, or "" when it parses.
std::string errorOf(const std::string& yaml, const std::map<std::string, std::string>& env = {}) {
  try {
    parseComposeString(yaml, "docker-compose.yml", "/stack", env);
  } catch (const ComposeError& e) {
    return e.what();
  }
  return "";
}

const char* kSeedHead =
    "version: \"3\"\n"     // 1
    "services:\n"          // 2
    "  web:\n"             // 3
    "    image: nginx\n";  // 4

TEST(ComposeErrors, InvalidMemory) {
  std::string yaml = std::string(kSeedHead) +
                     "    deploy:\n"             // 5
                     "      resources:\n"        // 6
                     "        limits:\n"         // 7
                     "          memory: 50Q\n";  // 8
  EXPECT_EQ(errorOf(yaml),
            "docker-compose.yml:8: services.web.deploy.resources.limits.memory: invalid memory value \"50Q\"");
}

TEST(ComposeErrors, NegativeOrTextCpus) {
  std::string base = std::string(kSeedHead) + "    deploy:\n      resources:\n        limits:\n";
  EXPECT_EQ(errorOf(base + "          cpus: \"-0.5\"\n"),
            "docker-compose.yml:8: services.web.deploy.resources.limits.cpus: negative value \"-0.5\"");
  EXPECT_EQ(errorOf(base + "          cpus: lots\n"),
            "docker-compose.yml:8: services.web.deploy.resources.limits.cpus: invalid number \"lots\"");
}

TEST(ComposeErrors, AHostnameTheKernelWouldRefuse) {
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    hostname: " + std::string(70, 'h') + "\n"),
            "docker-compose.yml:5: services.web.hostname: invalid hostname \"" + std::string(70, 'h') +
                "\": a hostname must be 64 bytes or fewer");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    hostname: \"web\\t2\"\n"),
            "docker-compose.yml:5: services.web.hostname: invalid hostname \"web\t2\": a hostname must not contain "
            "control characters");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    hostname: \"{{.Service.Name}}-{{.Task.Slot}}-" +
                    std::string(60, 'h') + "\"\n"),
            "")
      << "a template's length is checked once expanded";
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    hostname: \"{{.Task.Slot}}\\n10.0.0.1 bank\"\n"),
            "docker-compose.yml:5: services.web.hostname: invalid hostname \"{{.Task.Slot}}\n10.0.0.1 bank\": a "
            "hostname must not contain control characters")
      << "a template's characters are checked at once";
}

TEST(ComposeErrors, UnknownKeyIsATypo) {
  EXPECT_EQ(errorOf("services:\n  web:\n    imagee: nginx\n"),
            "docker-compose.yml:3: services.web Additional property imagee is not allowed");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    deploy:\n      replica: 2\n"),
            "docker-compose.yml:6: services.web.deploy Additional property replica is not allowed");
  EXPECT_EQ(errorOf("servics:\n  web:\n    image: x\n"),
            "docker-compose.yml:1: Additional property servics is not allowed");
}

TEST(ComposeErrors, UnsupportedKeysAreOneSortedWarning) {
  auto r = parseComposeString(std::string(kSeedHead) +
                                  "    restart: always\n    build: .\n    privileged: true\n"
                                  "  db:\n    image: pg\n    restart: always\n    x-foo: 1\n"
                                  "x-top: {a: 1}\n",
                              "docker-compose.yml", "/stack", {});
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"Ignoring unsupported options: build, privileged, restart"}));
}

TEST(ComposeErrors, UndeclaredNetwork) {
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    networks:\n      - webnet\n"),
            "docker-compose.yml:6: services.web.networks: undefined network \"webnet\" (declare it under the "
            "top-level networks)");
}

TEST(ComposeErrors, UndeclaredVolumeAndConfig) {
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    volumes:\n      - data:/data\n"),
            "docker-compose.yml:6: services.web.volumes: undefined volume \"data\" (declare it under the top-level "
            "volumes)");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    configs: [nginx_conf]\n"),
            "docker-compose.yml:5: services.web.configs: undefined config \"nginx_conf\" (declare it under the "
            "top-level configs)");
}

TEST(ComposeErrors, BadPorts) {
  std::string base = std::string(kSeedHead) + "    ports:\n";
  EXPECT_EQ(errorOf(base + "      - \"4000:70000\"\n"),
            "docker-compose.yml:6: services.web.ports: invalid port \"4000:70000\"");
  EXPECT_EQ(errorOf(base + "      - \"9000-9002:8000-8001\"\n"),
            "docker-compose.yml:6: services.web.ports: port ranges don't match in \"9000-9002:8000-8001\"");
  EXPECT_EQ(errorOf(base + "      - \"8080-8081:80\"\n"),
            "docker-compose.yml:6: services.web.ports: port ranges don't match in \"8080-8081:80\"");
  EXPECT_EQ(errorOf(base + "      - \"80/sctp\"\n"),
            "docker-compose.yml:6: services.web.ports: invalid protocol \"sctp\" in port \"80/sctp\"");
  EXPECT_EQ(errorOf(base + "      - target: 80\n        published: 0\n"),
            "docker-compose.yml:7: services.web.ports.published: invalid port \"0\"");
  EXPECT_EQ(errorOf(base + "      - target: 80\n        mode: bridge\n"),
            "docker-compose.yml:7: services.web.ports.mode: invalid value \"bridge\" (must be one of ingress, host)");
}

TEST(ComposeErrors, BadEnumsAndDurations) {
  std::string base = std::string(kSeedHead) + "    deploy:\n";
  EXPECT_EQ(errorOf(base + "      restart_policy:\n        condition: always\n"),
            "docker-compose.yml:7: services.web.deploy.restart_policy.condition: invalid value \"always\" (must be "
            "one of none, on-failure, any)");
  EXPECT_EQ(errorOf(base + "      restart_policy:\n        delay: 5\n"),
            "docker-compose.yml:7: services.web.deploy.restart_policy.delay: missing unit in duration \"5\"");
  EXPECT_EQ(errorOf(base + "      replicas: -1\n"),
            "docker-compose.yml:6: services.web.deploy.replicas: invalid non-negative integer \"-1\"");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    stop_grace_period: 10x\n"),
            "docker-compose.yml:5: services.web.stop_grace_period: unknown unit \"x\" in duration \"10x\"");
}

TEST(ComposeErrors, RollbackConfigIsCheckedAsUpdateConfigAndCannotRollBack) {
  std::string base = std::string(kSeedHead) + "    deploy:\n      rollback_config:\n";  // 5, 6
  EXPECT_EQ(
      errorOf(base + "        failure_action: rollback\n"),
      "docker-compose.yml:7: services.web.deploy.rollback_config.failure_action: invalid value \"rollback\" (must "
      "be one of pause, continue: a rollback cannot roll back)");
  EXPECT_EQ(
      errorOf(base + "        failure_action: retry\n"),
      "docker-compose.yml:7: services.web.deploy.rollback_config.failure_action: invalid value \"retry\" (must be "
      "one of pause, continue, rollback)");
  EXPECT_EQ(errorOf(base + "        monitor: 5\n"),
            "docker-compose.yml:7: services.web.deploy.rollback_config.monitor: missing unit in duration \"5\"");
  EXPECT_EQ(errorOf(base + "        parallelism: -2\n"),
            "docker-compose.yml:7: services.web.deploy.rollback_config.parallelism: invalid non-negative integer "
            "\"-2\"");
  EXPECT_EQ(errorOf(base + "        max_failure_ratio: \"-0.1\"\n"),
            "docker-compose.yml:7: services.web.deploy.rollback_config.max_failure_ratio: negative value \"-0.1\"");
  EXPECT_EQ(errorOf(base + "        order: sideways\n"),
            "docker-compose.yml:7: services.web.deploy.rollback_config.order: invalid value \"sideways\" (must be one "
            "of stop-first, start-first)");
  EXPECT_EQ(errorOf(base + "        paralelism: 2\n"),
            "docker-compose.yml:7: services.web.deploy.rollback_config Additional property paralelism is not allowed");
  // update_config's errors, from the same code.
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    deploy:\n      update_config:\n        failure_action: retry\n"),
            "docker-compose.yml:7: services.web.deploy.update_config.failure_action: invalid value \"retry\" (must be "
            "one of pause, continue, rollback)");
  // Parsed, no longer an unsupported option; update_config's values are not borrowed.
  auto r = parseComposeString(base +
                                  "        parallelism: 3\n        delay: 1m30s\n      update_config:\n"
                                  "        failure_action: rollback\n",
                              "docker-compose.yml", "/stack", {});
  EXPECT_TRUE(r.warnings.empty()) << r.warnings[0];
  const ServiceSpec& web = r.stack.services.at("web");
  EXPECT_EQ(web.rollbackConfig, (UpdateConfig{3, 90, FailureAction::kPause, 5, 0, UpdateOrder::kStopFirst}));
  EXPECT_EQ(web.updateConfig.failureAction, FailureAction::kRollback);
}

TEST(ComposeErrors, RequiredVariable) {
  EXPECT_EQ(errorOf("services:\n  web:\n    image: \"nginx:${TAG:?set TAG to the release}\"\n"),
            "docker-compose.yml:3: services.web.image: required variable TAG is missing a value: set TAG to the "
            "release");
  EXPECT_EQ(errorOf("services:\n  web:\n    image: \"a$\"\n"),
            "docker-compose.yml:3: services.web.image: invalid interpolation format for \"a$\"");
}

TEST(ComposeErrors, DeeplyNestedInterpolationNamesFileAndLine) {
  std::string deep;
  for (int i = 0; i < 50000; i++) deep += "${a:-";
  deep += "x" + std::string(50000, '}');
  EXPECT_EQ(errorOf("services:\n  web:\n    image: nginx\n    hostname: \"" + deep + "\"\n"),
            "docker-compose.yml:4: services.web.hostname: interpolation nested deeper than 64 levels");
}

TEST(ComposeErrors, InvalidYamlNamesTheLine) {
  std::string msg = errorOf("services:\n  web:\n    image: [unclosed\n    ports: x\n");
  EXPECT_TRUE(msg.starts_with("docker-compose.yml:")) << msg;
  EXPECT_NE(msg.find("docker-compose.yml:4:"), std::string::npos) << msg;
  EXPECT_EQ(errorOf("services:\n\tweb: 1\n").substr(0, 21), "docker-compose.yml:2:");
}

TEST(ComposeErrors, WrongShapes) {
  EXPECT_EQ(errorOf("services:\n  web:\n    image: [a, b]\n"),
            "docker-compose.yml:3: services.web.image: expected a string, got a list");
  EXPECT_EQ(errorOf("services:\n  web: nginx\n"),
            "docker-compose.yml:2: services.web: expected a mapping, got a string");
  EXPECT_EQ(errorOf("- a\n"), "docker-compose.yml:1: (root): top-level object must be a mapping");
  EXPECT_EQ(errorOf("services:\n  web:\n    command: \"echo 'oops\"\n    image: x\n"),
            "docker-compose.yml:3: services.web.command: unterminated quote in \"echo 'oops\"");
}

TEST(ComposeErrors, MissingImageAndOldVersion) {
  EXPECT_EQ(errorOf("services:\n  web:\n    build: .\n"),
            "docker-compose.yml:2: services.web: service has no image (skiff does not build images on deploy)");
  EXPECT_EQ(errorOf("version: '2'\nservices: {}\n"),
            "docker-compose.yml:1: version: unsupported Compose file version: \"2\" (stack files need version 3)");
}

TEST(ComposeErrors, BadVolumes) {
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    volumes: [\"/a:data\"]\n"),
            "docker-compose.yml:5: services.web.volumes: volume target must be an absolute path, got \"data\"");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    volumes: [\"/a:/b:rx\"]\n"),
            "docker-compose.yml:5: services.web.volumes: invalid mode \"rx\" in volume \"/a:/b:rx\"");
}

TEST(ComposeErrors, MissingConfigFile) {
  EXPECT_EQ(errorOf("configs:\n  c:\n    file: ./nope.conf\n"),
            "docker-compose.yml:3: configs.c.file: cannot read \"/stack/nope.conf\"");
}

TEST(ComposeErrors, BadPlacementConstraintsNameTheLineAndDockersReason) {
  std::string base = std::string(kSeedHead) +
                     "    deploy:\n"                        // 5
                     "      placement:\n"                   // 6
                     "        constraints:\n"               // 7
                     "          - node.role == manager\n";  // 8
  EXPECT_EQ(errorOf(base), "");
  EXPECT_EQ(errorOf(base + "          - node.hostname=h1\n"),  // 9
            "docker-compose.yml:9: services.web.deploy.placement.constraints[1]: invalid constraint "
            "\"node.hostname=h1\": constraint expected one operator from ==, !=");
  EXPECT_EQ(errorOf(base + "          - \"node hostname==h1\"\n"),
            "docker-compose.yml:9: services.web.deploy.placement.constraints[1]: invalid constraint "
            "\"node hostname==h1\": key 'node hostname' is invalid");
  EXPECT_EQ(errorOf(base + "          - \"node.labels.zone==\"\n"),
            "docker-compose.yml:9: services.web.deploy.placement.constraints[1]: invalid constraint "
            "\"node.labels.zone==\": value '' is invalid");
  EXPECT_EQ(errorOf(base + "          - \"node.role==>manager\"\n"),
            "docker-compose.yml:9: services.web.deploy.placement.constraints[1]: invalid constraint "
            "\"node.role==>manager\": value '>manager' is invalid");
  // An attribute docker does not know is valid syntax; it never holds on a node.
  EXPECT_EQ(errorOf(base + "          - node.hostnme==h1\n"), "");
}

TEST(ComposeErrors, BadMaxReplicasPerNode) {
  std::string base = std::string(kSeedHead) +
                     "    deploy:\n"        // 5
                     "      placement:\n";  // 6
  EXPECT_EQ(errorOf(base + "        max_replicas_per_node: -1\n"),
            "docker-compose.yml:7: services.web.deploy.placement.max_replicas_per_node: invalid "
            "non-negative integer \"-1\"");
  EXPECT_EQ(errorOf(base + "        max_replicas_per_node: 1.5\n"),
            "docker-compose.yml:7: services.web.deploy.placement.max_replicas_per_node: invalid "
            "non-negative integer \"1.5\"");
  EXPECT_EQ(errorOf(base + "        max_replicas_per_node: two\n"),
            "docker-compose.yml:7: services.web.deploy.placement.max_replicas_per_node: invalid "
            "non-negative integer \"two\"");
}

TEST(ComposeErrors, TwoServicesPublishingOnePortNameTheSecond) {
  std::string yaml =
      "services:\n"                 // 1
      "  web:\n"                    // 2
      "    image: nginx\n"          // 3
      "    ports: [\"4000:80\"]\n"  // 4
      "  api:\n"                    // 5
      "    image: api\n"            // 6
      "    ports:\n"                // 7
      "      - \"4001:81\"\n"       // 8
      "      - target: 80\n"        // 9
      "        published: 4000\n";  // 10
  EXPECT_EQ(errorOf(yaml),
            "docker-compose.yml:9: services.api.ports[1]: port 4000/tcp is already published by "
            "service web");
}

TEST(ComposeErrors, PublishedPortClashes) {
  auto twoServices = [](const std::string& webPort, const std::string& apiPort) {
    return "services:\n  web:\n    image: nginx\n    ports:\n      - " + webPort +
           "\n  api:\n    image: api\n    ports:\n      - " + apiPort + "\n";  // api's port: line 9
  };
  // Inside a range, and inside one service.
  EXPECT_EQ(errorOf(twoServices("\"4000-4002:80-82\"", "\"4002:90\"")),
            "docker-compose.yml:9: services.api.ports[0]: port 4002/tcp is already published by "
            "service web");
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    ports: [\"4000:80\", \"4000:81\"]\n"),
            "docker-compose.yml:5: services.web.ports[1]: port 4000/tcp is already published by "
            "service web");
  // Another protocol, an unpublished port, or two host-mode ports (docker puts
  // those on different nodes) do not clash; host against ingress does.
  EXPECT_EQ(errorOf(twoServices("\"4000:80\"", "\"4000:80/udp\"")), "");
  EXPECT_EQ(errorOf(twoServices("\"80\"", "\"80\"")), "");
  std::string host = "{target: 80, published: 4000, mode: host}";
  EXPECT_EQ(errorOf(twoServices(host, host)), "");
  EXPECT_EQ(errorOf(twoServices("\"4000:80\"", host)),
            "docker-compose.yml:9: services.api.ports[0]: port 4000/tcp is already published by "
            "service web");
}

TEST(ComposeErrors, MergeKeyBomb) {
  // Each level merges the previous one many times: bounded, not exponential.
  std::string yaml = "x-0: &a0 {image: x}\n";
  for (int i = 1; i < 12; ++i) {
    yaml += "x-" + std::to_string(i) + ": &a" + std::to_string(i) + "\n  <<: [";
    for (int k = 0; k < 8; ++k) yaml += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    yaml += "]\n";
  }
  yaml += "services:\n  s:\n    <<: *a11\n";
  EXPECT_NE(errorOf(yaml).find("merge keys"), std::string::npos);
}

// Names become host paths in netd (configs/<stack>/<config>,
// volumes/<stack>_<volume>/_data): a name that could leave its folder is
// refused with its line, before anything is sent.
TEST(ComposeErrors, TraversalNamesAreRefusedWithTheirLine) {
  const std::string reason =
      ": a name must start with a letter or digit and contain only letters, digits, '_', '.' and "
      "'-'";
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "configs:\n"                         // 5
                                             "  \"../../../../etc/cron.d/x\":\n"  // 6
                                             "    external: true\n"),
            "docker-compose.yml:6: configs: invalid config name \"../../../../etc/cron.d/x\"" + reason);
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "volumes:\n"   // 5
                                             "  data:\n"    // 6
                                             "  ../x:\n"),  // 7
            "docker-compose.yml:7: volumes: invalid volume name \"../x\"" + reason);
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "networks:\n  a/b:\n"),
            "docker-compose.yml:6: networks: invalid network name \"a/b\"" + reason);
  EXPECT_EQ(errorOf("services:\n  web:\n    image: nginx\n  .hidden:\n    image: nginx\n"),
            "docker-compose.yml:4: services: invalid service name \".hidden\"" + reason);
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "volumes:\n  " + std::string(64, 'v') + ":\n"),
            "docker-compose.yml:6: volumes: invalid volume name \"" + std::string(64, 'v') +
                "\": a name must be 63 characters or fewer");
}

TEST(ComposeErrors, AServiceReferringToATraversalNameIsRefused) {
  // A short-syntax source that is not path-like is a named volume, and one
  // that was never declared is refused (so never reaches a path).
  EXPECT_EQ(errorOf(std::string(kSeedHead) + "    volumes: [\"a/../../b:/data\"]\n"),
            "docker-compose.yml:5: services.web.volumes: undefined volume \"a/../../b\" (declare it "
            "under the top-level volumes)");
}

}  // namespace
}  // namespace skiff::runtime
