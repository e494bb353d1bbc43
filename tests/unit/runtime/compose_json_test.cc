// toJson/stackFromJson: the wire format between CLI and netd round-trips
// exactly, and holds normalized values a script can use.

#include <gtest/gtest.h>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {
namespace {

TEST(ComposeJson, RoundTripUglyFile) {
  auto r = parseComposeFile(SKIFF_COMPOSE_TESTDATA "/ugly.yml", {{"API_SECRET", "s"}});
  nlohmann::json j = toJson(r.stack);
  EXPECT_EQ(stackFromJson(j), r.stack);
  // Through text too, as it travels.
  EXPECT_EQ(stackFromJson(nlohmann::json::parse(j.dump())), r.stack);
}

TEST(ComposeJson, RoundTripEverythingSet) {
  StackSpec s;
  s.version = "3.9";
  ServiceSpec svc;
  svc.name = "web";
  svc.image = "nginx";
  svc.command = std::vector<std::string>{};
  svc.entrypoint = std::vector<std::string>{"/e", "x"};
  svc.environment = {{"A", ""}, {"B", "2"}};
  svc.hostname = "{{.Node.Hostname}}";
  svc.workingDir = "/w";
  svc.user = "1000:1000";
  svc.ports = {{80, 4000, "udp", "host", "127.0.0.1"}};
  svc.networks = {{"b", {"x", "y"}, "10.0.0.5"}, {"a", {}, ""}};
  svc.volumes = {{"bind", "/h", "/c", true}};
  svc.configs = {{"c", "/etc/c", 0400}};
  svc.labels = {{"l", "1"}};
  svc.containerLabels = {{"cl", "2"}};
  svc.mode = "global";
  svc.replicas = 7;
  svc.limits = {0.25, 1 << 20, 50};
  svc.reservations = {0.1, 1024, 0};
  svc.restartPolicy = {"on-failure", 1.5, 4, 60};
  svc.updateConfig = {3, 2, "rollback", 7, 0.25, "start-first"};
  svc.placementConstraints = {"node.role==worker"};
  svc.maxReplicasPerNode = 2;
  svc.healthcheck = Healthcheck{{"CMD", "true"}, 1, 2, 3, 4, false};
  svc.stopGracePeriodSeconds = 0.5;
  svc.stopSignal = "SIGINT";
  s.services["web"] = svc;
  NetworkSpec net;
  net.name = "b";
  net.attachable = net.internal = true;
  net.subnet = "10.1.0.0/24";
  net.gateway = "10.1.0.1";
  net.driverOpts = {{"o", "1"}};
  net.labels = {{"k", "v"}};
  s.networks["b"] = net;
  NetworkSpec ext;
  ext.name = "a";
  ext.external = true;
  s.networks["a"] = ext;
  s.volumes["v"] = VolumeSpec{"v", "local", true, {{"type", "nfs"}}, {{"x", "y"}}};
  s.configs["c"] = ConfigSpec{"c", "/abs/c", "bytes\n", false};

  nlohmann::json j = toJson(s);
  EXPECT_EQ(stackFromJson(nlohmann::json::parse(j.dump())), s);
  // Normalized values, as `stack config --format json` shows them.
  const auto& w = j["services"]["web"];
  EXPECT_EQ(w["deploy"]["resources"]["limits"]["memory"], 1 << 20);
  EXPECT_EQ(w["deploy"]["resources"]["limits"]["cpus"], 0.25);
  EXPECT_EQ(w["deploy"]["restart_policy"]["delay"], 1.5);
  EXPECT_EQ(w["ports"][0],
            (nlohmann::json{
                {"target", 80}, {"published", 4000}, {"protocol", "udp"}, {"mode", "host"}, {"host_ip", "127.0.0.1"}}));
  EXPECT_EQ(w["command"], nlohmann::json::array());
}

TEST(ComposeJson, FromJsonDefaultsAndErrors) {
  auto s = stackFromJson(nlohmann::json::parse(R"({"services": {"web": {"image": "x"}}})"));
  const auto& web = s.services.at("web");
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.replicas, 1u);
  EXPECT_DOUBLE_EQ(web.restartPolicy.delaySeconds, 5);
  EXPECT_FALSE(web.command.has_value());
  try {
    stackFromJson(nlohmann::json::parse(R"({"services": {"web": {"deploy": {"replicas": "five"}}}})"));
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("services.web.deploy.replicas: ")) << e.what();
  }
  EXPECT_THROW(stackFromJson(nlohmann::json::parse(R"({"networks": {"n": []}})")), std::invalid_argument);
  EXPECT_EQ(web.maxReplicasPerNode, 0u);
}

TEST(ComposeJson, MaxReplicasPerNodeInPlacement) {
  StackSpec s;
  ServiceSpec svc;
  svc.name = "web";
  svc.image = "x";
  svc.maxReplicasPerNode = 3;
  s.services["web"] = svc;
  nlohmann::json j = toJson(s);
  EXPECT_EQ(j["services"]["web"]["deploy"]["placement"],
            (nlohmann::json{{"constraints", nlohmann::json::array()}, {"max_replicas_per_node", 3}}));
  EXPECT_EQ(stackFromJson(j).services.at("web").maxReplicasPerNode, 3u);
  // A negative, fractional or too large count is refused, not wrapped or truncated.
  auto errorOf = [](const char* text) -> std::string {
    try {
      stackFromJson(nlohmann::json::parse(text));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"placement": {"max_replicas_per_node": -1}}}}})"),
            "services.web.deploy.placement.max_replicas_per_node: expected an integer from 0 to "
            "18446744073709551615, got -1");
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"replicas": 1.5}}}})"),
            "services.web.deploy.replicas: expected an integer from 0 to 18446744073709551615, got 1.5");
  EXPECT_EQ(errorOf(R"({"services": {"web": {"ports": [{"target": 70000}]}}})"),
            "services.web.ports[0].target: expected an integer from 0 to 65535, got 70000");
  EXPECT_THROW(stackFromJson(nlohmann::json::parse("[]")), std::invalid_argument);
}

TEST(ComposeJson, FromJsonRefusesNamesThatCouldLeaveTheirFolder) {
  // netd's API reads deploy bodies through stackFromJson, and netd joins these
  // names into host paths: every name, declared or referred to, is checked.
  auto errorOf = [](const std::string& text) -> std::string {
    try {
      stackFromJson(nlohmann::json::parse(text));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  const std::string reason =
      ": a name must start with a letter or digit and contain only letters, digits, '_', '.' and "
      "'-'";
  EXPECT_EQ(errorOf(R"({"configs": {"../../x": {"content": "pwned"}}})"),
            "configs: invalid config name \"../../x\"" + reason);
  EXPECT_EQ(errorOf(R"({"volumes": {"a/b": {}}})"), "volumes: invalid volume name \"a/b\"" + reason);
  EXPECT_EQ(errorOf(R"({"networks": {"..": {}}})"), "networks: invalid network name \"..\"" + reason);
  EXPECT_EQ(errorOf(R"({"services": {"-web": {"image": "x"}}})"), "services: invalid service name \"-web\"" + reason);
  // References: a volume mount's source (bind sources are host paths), a
  // config's source, a network's name, even when nothing declares them.
  EXPECT_EQ(errorOf(R"({"services": {"web": {"volumes": [{"type": "volume", "source": "../../x", "target": "/d"}]}}})"),
            "services.web.volumes[0].source: invalid volume name \"../../x\"" + reason);
  EXPECT_EQ(errorOf(R"({"services": {"web": {"configs": [{"source": "../x", "target": "/c"}]}}})"),
            "services.web.configs[0].source: invalid config name \"../x\"" + reason);
  EXPECT_EQ(errorOf(R"({"services": {"web": {"networks": [{"name": "a/b"}]}}})"),
            "services.web.networks[0].name: invalid network name \"a/b\"" + reason);
  // Bind sources and anonymous volumes are not names.
  EXPECT_EQ(errorOf(R"({"services": {"web": {"volumes": [{"type": "bind", "source": "/srv/../x", "target": "/d"},
                                                       {"type": "volume", "source": "", "target": "/e"}]}}})"),
            "");
}

TEST(ComposeJson, YamlPrinterRoundTripsThroughParser) {
  auto r = parseComposeFile(SKIFF_COMPOSE_TESTDATA "/ugly.yml", {{"API_SECRET", "$ecret"}});
  std::string yaml = toYaml(r.stack);
  auto again = parseComposeString(yaml, "printed.yml", SKIFF_COMPOSE_TESTDATA, {});
  EXPECT_EQ(again.stack, r.stack) << yaml;
}

}  // namespace
}  // namespace skiff::runtime
