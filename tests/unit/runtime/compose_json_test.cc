// toJson/stackFromJson: the wire format between CLI and netd round-trips
// exactly, and holds normalized values a script can use.

#include <gtest/gtest.h>

#include <string>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {
namespace {

// testdata/ugly.yml with API_SECRET=s as `stack config --format json` must
// show it, written out from what the file says (anchors merged, units
// normalized, defaults filled, the implicit default network); @TESTDATA@ is
// the file's folder, against which relative paths resolve.
constexpr const char* kUglyJson = R"JSON(
{
  "configs": {
    "app_conf": {
      "content": "listen 80;\n",
      "external": false,
      "file": "@TESTDATA@/app_conf.yml"
    }
  },
  "networks": {
    "backend": {
      "attachable": true,
      "driver": "overlay",
      "driver_opts": {},
      "external": false,
      "internal": false,
      "ipam": {"config": [{"gateway": "", "subnet": "10.20.0.0/24"}]},
      "labels": {}
    },
    "default": {
      "attachable": false,
      "driver": "overlay",
      "driver_opts": {},
      "external": false,
      "internal": false,
      "ipam": {"config": []},
      "labels": {}
    },
    "frontend": {
      "attachable": false,
      "driver": "overlay",
      "driver_opts": {},
      "external": false,
      "internal": false,
      "ipam": {"config": []},
      "labels": {}
    },
    "outside": {
      "attachable": false,
      "driver": "overlay",
      "driver_opts": {},
      "external": true,
      "internal": false,
      "ipam": {"config": []},
      "labels": {}
    }
  },
  "services": {
    "api": {
      "command": ["python", "-m", "api", "--price", "$5"],
      "configs": [
        {"mode": 292, "source": "app_conf", "target": "/app_conf"},
        {"mode": 288, "source": "app_conf", "target": "/etc/app.conf"}
      ],
      "deploy": {
        "labels": {"traefik.enable": "true"},
        "mode": "replicated",
        "placement": {"constraints": [], "max_replicas_per_node": 0},
        "replicas": 2,
        "resources": {
          "limits": {"cpus": 0.5, "memory": 1610612736, "pids": 0},
          "reservations": {"cpus": 0.0, "memory": 536870912, "pids": 0}
        },
        "restart_policy": {"condition": "any", "delay": 5.0, "max_attempts": 3, "window": 0.0},
        "rollback_config": {
          "delay": 0.0,
          "failure_action": "continue",
          "max_failure_ratio": 0.0,
          "monitor": 60.0,
          "order": "stop-first",
          "parallelism": 0
        },
        "update_config": {
          "delay": 10.0,
          "failure_action": "pause",
          "max_failure_ratio": 0.0,
          "monitor": 5.0,
          "order": "start-first",
          "parallelism": 2
        }
      },
      "entrypoint": null,
      "environment": {"DB_HOST": "", "LOG_LEVEL": "debug", "SECRET": "s", "TZ": "UTC"},
      "healthcheck": {
        "disable": false,
        "interval": 90.0,
        "retries": 5,
        "start_period": 40.0,
        "test": ["CMD-SHELL", "curl -f http://localhost/health || exit 1"],
        "timeout": 10.0
      },
      "hostname": "{{.Node.Hostname}}-{{.Task.Slot}}",
      "image": "registry.local:5000/api:latest",
      "labels": {},
      "networks": [
        {"aliases": ["api.internal"], "ipv4_address": "", "name": "backend"},
        {"aliases": [], "ipv4_address": "", "name": "frontend"}
      ],
      "ports": [
        {"host_ip": "", "mode": "ingress", "protocol": "tcp", "published": 8080, "target": 80},
        {"host_ip": "", "mode": "host", "protocol": "udp", "published": 9090, "target": 9090}
      ],
      "stop_grace_period": 60.0,
      "stop_signal": "SIGTERM",
      "user": "",
      "volumes": [
        {"read_only": false, "source": "data", "target": "/var/lib/api", "type": "volume"},
        {"read_only": true, "source": "@TESTDATA@/conf", "target": "/etc/api", "type": "bind"},
        {"read_only": false, "source": "", "target": "/scratch", "type": "volume"},
        {"read_only": true, "source": "/srv/logs", "target": "/logs", "type": "bind"}
      ],
      "working_dir": ""
    },
    "lone": {
      "command": null,
      "configs": [],
      "deploy": {
        "labels": {},
        "mode": "replicated",
        "placement": {"constraints": [], "max_replicas_per_node": 0},
        "replicas": 1,
        "resources": {
          "limits": {"cpus": 0.0, "memory": 0, "pids": 0},
          "reservations": {"cpus": 0.0, "memory": 0, "pids": 0}
        },
        "restart_policy": {"condition": "any", "delay": 5.0, "max_attempts": 0, "window": 0.0},
        "rollback_config": {
          "delay": 0.0,
          "failure_action": "pause",
          "max_failure_ratio": 0.0,
          "monitor": 5.0,
          "order": "stop-first",
          "parallelism": 1
        },
        "update_config": {
          "delay": 0.0,
          "failure_action": "pause",
          "max_failure_ratio": 0.0,
          "monitor": 5.0,
          "order": "stop-first",
          "parallelism": 1
        }
      },
      "entrypoint": null,
      "environment": {},
      "healthcheck": {
        "disable": true,
        "interval": 30.0,
        "retries": 3,
        "start_period": 0.0,
        "test": ["NONE"],
        "timeout": 30.0
      },
      "hostname": "",
      "image": "nginx:alpine",
      "labels": {},
      "networks": [{"aliases": [], "ipv4_address": "", "name": "default"}],
      "ports": [],
      "stop_grace_period": 10.0,
      "stop_signal": "SIGTERM",
      "user": "",
      "volumes": [],
      "working_dir": ""
    },
    "worker": {
      "command": ["sh", "-c", "echo \"hello world\" && sleep 3600"],
      "configs": [],
      "deploy": {
        "labels": {},
        "mode": "global",
        "placement": {"constraints": ["node.role == manager"], "max_replicas_per_node": 0},
        "replicas": 1,
        "resources": {
          "limits": {"cpus": 0.0, "memory": 0, "pids": 0},
          "reservations": {"cpus": 0.0, "memory": 0, "pids": 0}
        },
        "restart_policy": {"condition": "any", "delay": 5.0, "max_attempts": 0, "window": 0.0},
        "rollback_config": {
          "delay": 0.0,
          "failure_action": "pause",
          "max_failure_ratio": 0.0,
          "monitor": 5.0,
          "order": "stop-first",
          "parallelism": 1
        },
        "update_config": {
          "delay": 0.0,
          "failure_action": "pause",
          "max_failure_ratio": 0.0,
          "monitor": 5.0,
          "order": "stop-first",
          "parallelism": 1
        }
      },
      "entrypoint": ["/bin/entry", "--flag"],
      "environment": {"A": "1", "B": "two=2"},
      "healthcheck": null,
      "hostname": "",
      "image": "busybox",
      "labels": {},
      "networks": [{"aliases": [], "ipv4_address": "", "name": "default"}],
      "ports": [],
      "stop_grace_period": 10.0,
      "stop_signal": "SIGTERM",
      "user": "",
      "volumes": [],
      "working_dir": ""
    }
  },
  "version": "3.8",
  "volumes": {"data": {"driver": "local", "driver_opts": {}, "external": false, "labels": {}}}
}
)JSON";

nlohmann::json uglyJson(const std::string& secret) {
  std::string text = kUglyJson;
  const std::string placeholder = "@TESTDATA@";
  for (size_t at = text.find(placeholder); at != std::string::npos; at = text.find(placeholder, at))
    text.replace(at, placeholder.size(), SKIFF_COMPOSE_TESTDATA);
  nlohmann::json j = nlohmann::json::parse(text);
  j["services"]["api"]["environment"]["SECRET"] = secret;
  return j;
}

TEST(ComposeJson, UglyFileGivesTheExpectedJson) {
  auto r = parseComposeFile(SKIFF_COMPOSE_TESTDATA "/ugly.yml", {{"API_SECRET", "s"}});
  // Compared as text (keys sorted by nlohmann), so 5.0 and 5, "5" and 5 differ.
  EXPECT_EQ(toJson(r.stack).dump(2), uglyJson("s").dump(2));
}

TEST(ComposeJson, StackFromTheExpectedJsonIsTheParsedFile) {
  // The JSON above (pinned by the test before) read back gives the very stack
  // the parser made, field for field, and prints as the same text again.
  auto r = parseComposeFile(SKIFF_COMPOSE_TESTDATA "/ugly.yml", {{"API_SECRET", "s"}});
  const StackSpec fromText = stackFromJson(nlohmann::json::parse(uglyJson("s").dump()));
  EXPECT_EQ(fromText, r.stack);
  EXPECT_EQ(toJson(fromText).dump(2), uglyJson("s").dump(2));
  const ServiceSpec& api = fromText.services.at("api");
  EXPECT_EQ(api.image, "registry.local:5000/api:latest");
  EXPECT_EQ(api.limits.memoryBytes, 1610612736);
  EXPECT_EQ(api.reservations.memoryBytes, 536870912);
  EXPECT_EQ(api.ports, (std::vector<PortSpec>{{80, 8080, Protocol::kTcp, PortMode::kIngress, ""},
                                              {9090, 9090, Protocol::kUdp, PortMode::kHost, ""}}));
  EXPECT_EQ(api.configs[1].mode, 0440u);
  EXPECT_EQ(api.restartPolicy, (RestartPolicy{RestartCondition::kAny, 5, 3, 0}));
  EXPECT_EQ(fromText.services.at("worker").mode, ServiceMode::kGlobal);
  EXPECT_TRUE(fromText.networks.at("outside").external);
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
  svc.ports = {{80, 4000, Protocol::kUdp, PortMode::kHost, "127.0.0.1"}};
  svc.networks = {{"b", {"x", "y"}, "10.0.0.5"}, {"a", {}, ""}};
  svc.volumes = {{MountType::kBind, "/h", "/c", true}};
  svc.configs = {{"c", "/etc/c", 0400}};
  svc.labels = {{"l", "1"}};
  svc.containerLabels = {{"cl", "2"}};
  svc.mode = ServiceMode::kGlobal;
  svc.replicas = 7;
  svc.limits = {0.25, 1 << 20, 50};
  svc.reservations = {0.1, 1024, 0};
  svc.restartPolicy = {RestartCondition::kOnFailure, 1.5, 4, 60};
  svc.updateConfig = {3, 2, FailureAction::kRollback, 7, 0.25, UpdateOrder::kStartFirst};
  svc.rollbackConfig = {0, 0.5, FailureAction::kContinue, 3, 0.5, UpdateOrder::kStartFirst};
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

  // Every field as the test set it, written out.
  const nlohmann::json expected = nlohmann::json::parse(R"JSON(
{
  "configs": {"c": {"content": "bytes\n", "external": false, "file": "/abs/c"}},
  "networks": {
    "a": {
      "attachable": false,
      "driver": "overlay",
      "driver_opts": {},
      "external": true,
      "internal": false,
      "ipam": {"config": []},
      "labels": {}
    },
    "b": {
      "attachable": true,
      "driver": "overlay",
      "driver_opts": {"o": "1"},
      "external": false,
      "internal": true,
      "ipam": {"config": [{"gateway": "10.1.0.1", "subnet": "10.1.0.0/24"}]},
      "labels": {"k": "v"}
    }
  },
  "services": {
    "web": {
      "command": [],
      "configs": [{"mode": 256, "source": "c", "target": "/etc/c"}],
      "deploy": {
        "labels": {"l": "1"},
        "mode": "global",
        "placement": {"constraints": ["node.role==worker"], "max_replicas_per_node": 2},
        "replicas": 7,
        "resources": {
          "limits": {"cpus": 0.25, "memory": 1048576, "pids": 50},
          "reservations": {"cpus": 0.1, "memory": 1024, "pids": 0}
        },
        "restart_policy": {
          "condition": "on-failure",
          "delay": 1.5,
          "max_attempts": 4,
          "window": 60.0
        },
        "rollback_config": {
          "delay": 0.5,
          "failure_action": "continue",
          "max_failure_ratio": 0.5,
          "monitor": 3.0,
          "order": "start-first",
          "parallelism": 0
        },
        "update_config": {
          "delay": 2.0,
          "failure_action": "rollback",
          "max_failure_ratio": 0.25,
          "monitor": 7.0,
          "order": "start-first",
          "parallelism": 3
        }
      },
      "entrypoint": ["/e", "x"],
      "environment": {"A": "", "B": "2"},
      "healthcheck": {
        "disable": false,
        "interval": 1.0,
        "retries": 4,
        "start_period": 3.0,
        "test": ["CMD", "true"],
        "timeout": 2.0
      },
      "hostname": "{{.Node.Hostname}}",
      "image": "nginx",
      "labels": {"cl": "2"},
      "networks": [
        {"aliases": ["x", "y"], "ipv4_address": "10.0.0.5", "name": "b"},
        {"aliases": [], "ipv4_address": "", "name": "a"}
      ],
      "ports": [
        {
          "host_ip": "127.0.0.1",
          "mode": "host",
          "protocol": "udp",
          "published": 4000,
          "target": 80
        }
      ],
      "stop_grace_period": 0.5,
      "stop_signal": "SIGINT",
      "user": "1000:1000",
      "volumes": [{"read_only": true, "source": "/h", "target": "/c", "type": "bind"}],
      "working_dir": "/w"
    }
  },
  "version": "3.9",
  "volumes": {
    "v": {
      "driver": "local",
      "driver_opts": {"type": "nfs"},
      "external": true,
      "labels": {"x": "y"}
    }
  }
}
)JSON");
  nlohmann::json j = toJson(s);
  EXPECT_EQ(j.dump(2), expected.dump(2));
  EXPECT_EQ(stackFromJson(expected), s);
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

TEST(ComposeJson, RollbackConfigDefaultsToUpdateConfigsDefaultsAndCannotRollBack) {
  auto s = stackFromJson(nlohmann::json::parse(
      R"({"services": {"web": {"image": "x", "deploy": {"rollback_config": {"parallelism": 2, "order": "start-first"}}}}})"));
  const auto& web = s.services.at("web");
  EXPECT_EQ(web.rollbackConfig, (UpdateConfig{2, 0, FailureAction::kPause, 5, 0, UpdateOrder::kStartFirst}));
  EXPECT_EQ(web.updateConfig, UpdateConfig{});
  auto errorOf = [](const char* text) -> std::string {
    try {
      stackFromJson(nlohmann::json::parse(text));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"rollback_config": {"failure_action": "rollback"}}}}})"),
            "services.web.deploy.rollback_config.failure_action: invalid value \"rollback\" (must be one of pause, "
            "continue: a rollback cannot roll back)");
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"rollback_config": {"order": "sideways"}}}}})"),
            "services.web.deploy.rollback_config.order: invalid value \"sideways\" (must be one of stop-first, "
            "start-first)");
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"rollback_config": []}}}})"),
            "services.web.deploy.rollback_config: expected an object");
  // update_config may still roll back.
  EXPECT_EQ(errorOf(R"({"services": {"web": {"deploy": {"update_config": {"failure_action": "rollback"}}}}})"), "");
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
  EXPECT_EQ(toJson(again.stack).dump(2), uglyJson("$ecret").dump(2)) << yaml;
  EXPECT_EQ(again.stack, r.stack) << yaml;
}

}  // namespace
}  // namespace skiff::runtime
