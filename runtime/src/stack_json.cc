// StackSpec <-> JSON, the one wire format between the CLI and netd and the
// output of `skiff stack config --format json`. Keys are compose's
// (snake_case, deploy.resources.limits.memory, ...), values normalized:
// memory in bytes, cpus a number, durations in seconds. Lists whose order
// matters (service networks, ports, volumes) stay lists so a round trip is
// exact. stackFromJson fills missing fields with the defaults of stack.h and
// throws std::invalid_argument naming the first field of the wrong type.

#include <limits>
#include <stdexcept>
#include <type_traits>

#include "skiff/runtime/names.h"
#include "skiff/runtime/seccomp.h"
#include "skiff/runtime/stack.h"

namespace skiff::runtime {

namespace {

using json = nlohmann::json;

json resourcesToJson(const Resources& r) { return {{"cpus", r.cpus}, {"memory", r.memoryBytes}, {"pids", r.pids}}; }

json serviceToJson(const ServiceSpec& s) {
  json j;
  j["image"] = s.image;
  j["command"] = s.command ? json(*s.command) : json(nullptr);
  j["entrypoint"] = s.entrypoint ? json(*s.entrypoint) : json(nullptr);
  j["environment"] = s.environment;
  j["hostname"] = s.hostname;
  j["working_dir"] = s.workingDir;
  j["user"] = s.user;
  j["labels"] = s.containerLabels;
  if (!s.seccomp.empty()) {
    j["security_opt"] = json::array({"seccomp=" + s.seccomp});
    if (!s.seccompProfile.empty()) j["seccomp_profile"] = s.seccompProfile;
  }
  json ports = json::array();
  for (const auto& p : s.ports) {
    ports.push_back({{"target", p.target},
                     {"published", p.published},
                     {"protocol", p.protocol},
                     {"mode", p.mode},
                     {"host_ip", p.hostIp}});
  }
  j["ports"] = ports;
  json nets = json::array();
  for (const auto& n : s.networks)
    nets.push_back({{"name", n.name}, {"aliases", n.aliases}, {"ipv4_address", n.ipv4Address}});
  j["networks"] = nets;
  json vols = json::array();
  for (const auto& v : s.volumes)
    vols.push_back({{"type", v.type}, {"source", v.source}, {"target", v.target}, {"read_only", v.readOnly}});
  j["volumes"] = vols;
  json cfgs = json::array();
  for (const auto& c : s.configs) cfgs.push_back({{"source", c.source}, {"target", c.target}, {"mode", c.mode}});
  j["configs"] = cfgs;
  const auto& rp = s.restartPolicy;
  const auto& uc = s.updateConfig;
  j["deploy"] = {
      {"mode", s.mode},
      {"replicas", s.replicas},
      {"labels", s.labels},
      {"resources", {{"limits", resourcesToJson(s.limits)}, {"reservations", resourcesToJson(s.reservations)}}},
      {"restart_policy",
       {{"condition", rp.condition},
        {"delay", rp.delaySeconds},
        {"max_attempts", rp.maxAttempts},
        {"window", rp.windowSeconds}}},
      {"update_config",
       {{"parallelism", uc.parallelism},
        {"delay", uc.delaySeconds},
        {"failure_action", uc.failureAction},
        {"monitor", uc.monitorSeconds},
        {"max_failure_ratio", uc.maxFailureRatio},
        {"order", uc.order}}},
      {"placement", {{"constraints", s.placementConstraints}, {"max_replicas_per_node", s.maxReplicasPerNode}}},
  };
  if (s.healthcheck) {
    const auto& h = *s.healthcheck;
    j["healthcheck"] = {{"test", h.test},
                        {"interval", h.intervalSeconds},
                        {"timeout", h.timeoutSeconds},
                        {"start_period", h.startPeriodSeconds},
                        {"retries", h.retries},
                        {"disable", h.disable}};
  } else {
    j["healthcheck"] = nullptr;
  }
  j["stop_grace_period"] = s.stopGracePeriodSeconds;
  j["stop_signal"] = s.stopSignal;
  return j;
}

// Reads j[key] into out when present; wrong type -> invalid_argument with path.
template <typename T>
void field(const json& j, const char* key, const std::string& path, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann would wrap -1 and truncate 1.5 or 70000 (into a port) silently.
    if (!it->is_number_unsigned() || it->get<uint64_t>() > std::numeric_limits<T>::max()) {
      throw std::invalid_argument(path + "." + key + ": expected an integer from 0 to " +
                                  std::to_string(std::numeric_limits<T>::max()) + ", got " + it->dump());
    }
  }
  try {
    out = it->get<T>();
  } catch (const json::exception& e) {
    throw std::invalid_argument(path + "." + key + ": " + e.what());
  }
}

const json& object(const json& j, const char* key, const std::string& path, const json& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_object()) throw std::invalid_argument(path + "." + key + ": expected an object");
  return *it;
}

const json& array(const json& j, const char* key, const std::string& path, const json& fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_array()) throw std::invalid_argument(path + "." + key + ": expected an array");
  return *it;
}

// netd joins names into host paths (configs/<stack>/<config>,
// volumes/<stack>_<volume>/_data): every name, declared or referred to, is
// checked here, where the API reads a deploy body.
void checkNameAt(const std::string& path, NameKind kind, const std::string& name) {
  if (auto st = checkName(kind, name); !st.ok()) throw std::invalid_argument(path + ": " + st.error().message);
}

void checkObject(const json& j, const std::string& path) {
  if (!j.is_object()) throw std::invalid_argument(path + ": expected an object");
}

// Reads the array j[key] (absent or null: nothing) of objects into out, one
// T each filled by fill(item, itemPath, t); itemPath is "<path>.<key>[i]".
template <typename T, typename Fill>
void objects(const json& j, const char* key, const std::string& path, std::vector<T>& out, Fill fill) {
  static const json kEmptyArray = json::array();
  size_t i = 0;
  for (const auto& item : array(j, key, path, kEmptyArray)) {
    const std::string itemPath = path + "." + key + "[" + std::to_string(i++) + "]";
    checkObject(item, itemPath);
    T value;
    fill(item, itemPath, value);
    out.push_back(std::move(value));
  }
}

Resources resourcesFromJson(const json& j, const std::string& path) {
  Resources r;
  checkObject(j, path);
  field(j, "cpus", path, r.cpus);
  field(j, "memory", path, r.memoryBytes);
  field(j, "pids", path, r.pids);
  return r;
}

// security_opt as toJson writes it; a profile sent by an API client is
// checked here, so a bad one is refused on deploy and not at each launch.
void readSecurityOpt(const json& j, const std::string& path, ServiceSpec& s) {
  std::vector<std::string> opts;
  field(j, "security_opt", path, opts);
  for (const auto& opt : opts) {
    if (opt.rfind("seccomp=", 0) != 0 || opt.size() == 8)
      throw std::invalid_argument(path + ".security_opt: unsupported option \"" + opt + "\"");
    s.seccomp = opt.substr(8);
  }
  field(j, "seccomp_profile", path, s.seccompProfile);
  if (!s.seccomp.empty() && s.seccomp != "unconfined") {
    if (auto p = parseSeccompProfile(s.seccompProfile); !p.ok())
      throw std::invalid_argument(path + ".seccomp_profile: seccomp profile " + s.seccomp + ": " + p.error().message);
  }
}

ServiceSpec serviceFromJson(const std::string& name, const json& j, const std::string& path) {
  static const json kEmptyObject = json::object();
  checkObject(j, path);
  ServiceSpec s;
  s.name = name;
  field(j, "image", path, s.image);
  if (j.contains("command") && !j["command"].is_null()) {
    s.command.emplace();
    field(j, "command", path, *s.command);
  }
  if (j.contains("entrypoint") && !j["entrypoint"].is_null()) {
    s.entrypoint.emplace();
    field(j, "entrypoint", path, *s.entrypoint);
  }
  field(j, "environment", path, s.environment);
  field(j, "hostname", path, s.hostname);
  field(j, "working_dir", path, s.workingDir);
  field(j, "user", path, s.user);
  field(j, "labels", path, s.containerLabels);
  readSecurityOpt(j, path, s);
  objects(j, "ports", path, s.ports, [](const json& p, const std::string& pp, PortSpec& port) {
    field(p, "target", pp, port.target);
    field(p, "published", pp, port.published);
    field(p, "protocol", pp, port.protocol);
    field(p, "mode", pp, port.mode);
    field(p, "host_ip", pp, port.hostIp);
  });
  objects(j, "networks", path, s.networks, [](const json& n, const std::string& np, ServiceNetwork& sn) {
    field(n, "name", np, sn.name);
    checkNameAt(np + ".name", NameKind::kNetwork, sn.name);
    field(n, "aliases", np, sn.aliases);
    field(n, "ipv4_address", np, sn.ipv4Address);
  });
  objects(j, "volumes", path, s.volumes, [](const json& v, const std::string& vp, MountSpec& m) {
    field(v, "type", vp, m.type);
    field(v, "source", vp, m.source);
    field(v, "target", vp, m.target);
    field(v, "read_only", vp, m.readOnly);
    // A bind source is a host path and an anonymous volume has no name.
    if (m.type == "volume" && !m.source.empty()) checkNameAt(vp + ".source", NameKind::kVolume, m.source);
  });
  objects(j, "configs", path, s.configs, [](const json& c, const std::string& cp, ConfigRef& ref) {
    field(c, "source", cp, ref.source);
    field(c, "target", cp, ref.target);
    field(c, "mode", cp, ref.mode);
    checkNameAt(cp + ".source", NameKind::kConfig, ref.source);
  });
  const json& d = object(j, "deploy", path, kEmptyObject);
  std::string dp = path + ".deploy";
  field(d, "mode", dp, s.mode);
  field(d, "replicas", dp, s.replicas);
  field(d, "labels", dp, s.labels);
  const json& res = object(d, "resources", dp, kEmptyObject);
  s.limits = resourcesFromJson(object(res, "limits", dp + ".resources", kEmptyObject), dp + ".resources.limits");
  s.reservations =
      resourcesFromJson(object(res, "reservations", dp + ".resources", kEmptyObject), dp + ".resources.reservations");
  const json& rp = object(d, "restart_policy", dp, kEmptyObject);
  std::string rpp = dp + ".restart_policy";
  field(rp, "condition", rpp, s.restartPolicy.condition);
  field(rp, "delay", rpp, s.restartPolicy.delaySeconds);
  field(rp, "max_attempts", rpp, s.restartPolicy.maxAttempts);
  field(rp, "window", rpp, s.restartPolicy.windowSeconds);
  const json& uc = object(d, "update_config", dp, kEmptyObject);
  std::string ucp = dp + ".update_config";
  field(uc, "parallelism", ucp, s.updateConfig.parallelism);
  field(uc, "delay", ucp, s.updateConfig.delaySeconds);
  field(uc, "failure_action", ucp, s.updateConfig.failureAction);
  field(uc, "monitor", ucp, s.updateConfig.monitorSeconds);
  field(uc, "max_failure_ratio", ucp, s.updateConfig.maxFailureRatio);
  field(uc, "order", ucp, s.updateConfig.order);
  const json& pl = object(d, "placement", dp, kEmptyObject);
  field(pl, "constraints", dp + ".placement", s.placementConstraints);
  field(pl, "max_replicas_per_node", dp + ".placement", s.maxReplicasPerNode);
  if (j.contains("healthcheck") && !j["healthcheck"].is_null()) {
    const json& h = object(j, "healthcheck", path, kEmptyObject);
    std::string hp = path + ".healthcheck";
    Healthcheck hc;
    field(h, "test", hp, hc.test);
    field(h, "interval", hp, hc.intervalSeconds);
    field(h, "timeout", hp, hc.timeoutSeconds);
    field(h, "start_period", hp, hc.startPeriodSeconds);
    field(h, "retries", hp, hc.retries);
    field(h, "disable", hp, hc.disable);
    s.healthcheck = std::move(hc);
  }
  field(j, "stop_grace_period", path, s.stopGracePeriodSeconds);
  field(j, "stop_signal", path, s.stopSignal);
  return s;
}

}  // namespace

nlohmann::json toJson(const StackSpec& stack) {
  json j;
  j["version"] = stack.version;
  j["services"] = json::object();
  for (const auto& [name, s] : stack.services) j["services"][name] = serviceToJson(s);
  j["networks"] = json::object();
  for (const auto& [name, n] : stack.networks) {
    j["networks"][name] = {{"driver", n.driver},
                           {"attachable", n.attachable},
                           {"external", n.external},
                           {"internal", n.internal},
                           {"ipam",
                            {{"config", n.subnet.empty() && n.gateway.empty()
                                            ? json::array()
                                            : json::array({{{"subnet", n.subnet}, {"gateway", n.gateway}}})}}},
                           {"driver_opts", n.driverOpts},
                           {"labels", n.labels}};
  }
  j["volumes"] = json::object();
  for (const auto& [name, v] : stack.volumes) {
    j["volumes"][name] = {
        {"driver", v.driver}, {"external", v.external}, {"driver_opts", v.driverOpts}, {"labels", v.labels}};
  }
  j["configs"] = json::object();
  for (const auto& [name, c] : stack.configs)
    j["configs"][name] = {{"file", c.file}, {"content", c.content}, {"external", c.external}};
  return j;
}

StackSpec stackFromJson(const nlohmann::json& j) {
  static const json kEmptyObject = json::object();
  checkObject(j, "(root)");
  StackSpec stack;
  field(j, "version", "(root)", stack.version);
  for (const auto& [name, s] : object(j, "services", "(root)", kEmptyObject).items()) {
    checkNameAt("services", NameKind::kService, name);
    stack.services[name] = serviceFromJson(name, s, "services." + name);
  }
  for (const auto& [name, n] : object(j, "networks", "(root)", kEmptyObject).items()) {
    checkNameAt("networks", NameKind::kNetwork, name);
    std::string path = "networks." + name;
    checkObject(n, path);
    NetworkSpec spec;
    spec.name = name;
    field(n, "driver", path, spec.driver);
    field(n, "attachable", path, spec.attachable);
    field(n, "external", path, spec.external);
    field(n, "internal", path, spec.internal);
    field(n, "driver_opts", path, spec.driverOpts);
    field(n, "labels", path, spec.labels);
    static const json kEmptyArray = json::array();
    const json& ipam = object(n, "ipam", path, kEmptyObject);
    const json& cfg = array(ipam, "config", path + ".ipam", kEmptyArray);
    if (!cfg.empty()) {
      checkObject(cfg[0], path + ".ipam.config[0]");
      field(cfg[0], "subnet", path + ".ipam.config[0]", spec.subnet);
      field(cfg[0], "gateway", path + ".ipam.config[0]", spec.gateway);
    }
    stack.networks[name] = std::move(spec);
  }
  for (const auto& [name, v] : object(j, "volumes", "(root)", kEmptyObject).items()) {
    checkNameAt("volumes", NameKind::kVolume, name);
    std::string path = "volumes." + name;
    checkObject(v, path);
    VolumeSpec spec;
    spec.name = name;
    field(v, "driver", path, spec.driver);
    field(v, "external", path, spec.external);
    field(v, "driver_opts", path, spec.driverOpts);
    field(v, "labels", path, spec.labels);
    stack.volumes[name] = std::move(spec);
  }
  for (const auto& [name, c] : object(j, "configs", "(root)", kEmptyObject).items()) {
    checkNameAt("configs", NameKind::kConfig, name);
    std::string path = "configs." + name;
    checkObject(c, path);
    ConfigSpec spec;
    spec.name = name;
    field(c, "file", path, spec.file);
    field(c, "content", path, spec.content);
    field(c, "external", path, spec.external);
    stack.configs[name] = std::move(spec);
  }
  return stack;
}

}  // namespace skiff::runtime
