// StackSpec <-> JSON, the one wire format between the CLI and netd and the
// output of `skiff stack config --format json`. Keys are compose's
// (snake_case, deploy.resources.limits.memory, ...), values normalized:
// memory in bytes, cpus a number, durations in seconds. Lists whose order
// matters (service networks, ports, volumes) stay lists so a round trip is
// exact. stackFromJson fills missing fields with the defaults of stack.h and
// throws std::invalid_argument naming the first field of the wrong type.

#include <cmath>
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

json updateConfigToJson(const UpdateConfig& uc) {
  return {{"parallelism", uc.parallelism},
          {"delay", uc.delaySeconds},
          {"failure_action", toString(uc.failureAction)},
          {"monitor", uc.monitorSeconds},
          {"max_failure_ratio", uc.maxFailureRatio},
          {"order", toString(uc.order)}};
}

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
                     {"protocol", toString(p.protocol)},
                     {"mode", toString(p.mode)},
                     {"host_ip", p.hostIp}});
  }
  j["ports"] = ports;
  json nets = json::array();
  for (const auto& n : s.networks)
    nets.push_back({{"name", n.name}, {"aliases", n.aliases}, {"ipv4_address", n.ipv4Address}});
  j["networks"] = nets;
  json vols = json::array();
  for (const auto& v : s.volumes)
    vols.push_back({{"type", toString(v.type)}, {"source", v.source}, {"target", v.target}, {"read_only", v.readOnly}});
  j["volumes"] = vols;
  json cfgs = json::array();
  for (const auto& c : s.configs) cfgs.push_back({{"source", c.source}, {"target", c.target}, {"mode", c.mode}});
  j["configs"] = cfgs;
  const auto& rp = s.restartPolicy;
  j["deploy"] = {
      {"mode", toString(s.mode)},
      {"replicas", s.replicas},
      {"labels", s.labels},
      {"resources", {{"limits", resourcesToJson(s.limits)}, {"reservations", resourcesToJson(s.reservations)}}},
      {"restart_policy",
       {{"condition", toString(rp.condition)},
        {"delay", rp.delaySeconds},
        {"max_attempts", rp.maxAttempts},
        {"window", rp.windowSeconds}}},
      {"update_config", updateConfigToJson(s.updateConfig)},
      {"rollback_config", updateConfigToJson(s.rollbackConfig)},
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

// A value as an error message shows it: numbers, booleans and null as
// written, a string quoted and cut at 40 bytes, an array or object by its
// kind only. Never dump() a structure here: dump() recurses once per level,
// and a body nested 200k deep would overflow the daemon's stack.
std::string describe(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() <= 40) return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
    return json(s.substr(0, 40)).dump(-1, ' ', false, json::error_handler_t::replace) + " (" +
           std::to_string(s.size()) + " bytes)";
  }
  return v.dump();
}

template <typename T>
struct Expected {
  static constexpr const char* kText = "a value of another type";
};
template <>
struct Expected<std::string> {
  static constexpr const char* kText = "a string";
};
template <>
struct Expected<bool> {
  static constexpr const char* kText = "true or false";
};
template <>
struct Expected<std::vector<std::string>> {
  static constexpr const char* kText = "an array of strings";
};
template <>
struct Expected<std::map<std::string, std::string>> {
  static constexpr const char* kText = "an object of strings";
};

// The largest number of seconds (or cores) a field may hold: docker keeps
// durations and CPUs in int64 nanoseconds, and netd converts them so too.
constexpr double kMaxSeconds = 9223372036.0;

// Reads j[key] into out when present (null counts as absent: the default
// stays); a value of the wrong type or out of range -> invalid_argument naming
// the field and the value. Numbers are never negative in a stack, integers
// are whole and in the field's range, other numbers finite and at most
// kMaxSeconds.
template <typename T>
void field(const json& j, const char* key, const std::string& path, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  auto bad = [&](const std::string& expected) {
    return std::invalid_argument(path + "." + key + ": expected " + expected + ", got " + describe(*it));
  };
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann would wrap -1, truncate 1.5 or 70000 (into a port) and cast
    // 1e30 (undefined behaviour) silently.
    const uint64_t max = static_cast<uint64_t>(std::numeric_limits<T>::max());
    const bool whole = it->is_number_unsigned() || (it->is_number_integer() && it->template get<int64_t>() >= 0);
    if (!whole || it->template get<uint64_t>() > max) throw bad("an integer from 0 to " + std::to_string(max));
    out = static_cast<T>(it->template get<uint64_t>());
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number() || !std::isfinite(it->template get<double>()) || it->template get<double>() < 0 ||
        it->template get<double>() > kMaxSeconds) {
      throw bad("a number from 0 to " + std::to_string(static_cast<int64_t>(kMaxSeconds)));
    }
    out = it->template get<T>();
  } else {
    try {
      out = it->template get<T>();
    } catch (const json::exception&) {
      throw bad(Expected<T>::kText);
    }
  }
}

// A string field that must be one of allowed (as the compose parser's oneOf).
// A kind (stack.h) written as its word; absent keeps `out`.
template <typename Kind>
void oneOf(const json& j, const char* key, const std::string& path, Kind& out) {
  std::string word = toString(out);
  field(j, key, path, word);
  if (auto k = parseKind<Kind>(word)) {
    out = *k;
    return;
  }
  throw std::invalid_argument(path + "." + key + ": invalid value " + describe(json(word)) + " (must be one of " +
                              kindWords<Kind>() + ")");
}

// A path inside the container: absolute and without a ".." component (the
// runtime refuses those at launch; here the deploy is refused naming the field).
void checkContainerPath(const std::string& fieldPath, const std::string& target) {
  bool dotDot = false;
  for (size_t start = 0; start <= target.size();) {
    size_t end = target.find('/', start);
    if (end == std::string::npos) end = target.size();
    if (target.compare(start, end - start, "..") == 0 && end - start == 2) dotDot = true;
    start = end + 1;
  }
  if (target.empty() || target[0] != '/' || dotDot) {
    throw std::invalid_argument(fieldPath + ": must be an absolute path without \"..\", got " + describe(json(target)));
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

UpdateConfig updateConfigFromJson(const json& j, const std::string& path) {
  UpdateConfig uc;
  checkObject(j, path);
  field(j, "parallelism", path, uc.parallelism);
  field(j, "delay", path, uc.delaySeconds);
  oneOf(j, "failure_action", path, uc.failureAction);
  field(j, "monitor", path, uc.monitorSeconds);
  field(j, "max_failure_ratio", path, uc.maxFailureRatio);
  oneOf(j, "order", path, uc.order);
  return uc;
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
    oneOf(p, "protocol", pp, port.protocol);
    oneOf(p, "mode", pp, port.mode);
    field(p, "host_ip", pp, port.hostIp);
    if (port.target == 0) throw std::invalid_argument(pp + ".target: a port needs a target from 1 to 65535");
  });
  objects(j, "networks", path, s.networks, [](const json& n, const std::string& np, ServiceNetwork& sn) {
    field(n, "name", np, sn.name);
    checkNameAt(np + ".name", NameKind::kNetwork, sn.name);
    field(n, "aliases", np, sn.aliases);
    field(n, "ipv4_address", np, sn.ipv4Address);
  });
  objects(j, "volumes", path, s.volumes, [](const json& v, const std::string& vp, MountSpec& m) {
    oneOf(v, "type", vp, m.type);
    field(v, "source", vp, m.source);
    field(v, "target", vp, m.target);
    field(v, "read_only", vp, m.readOnly);
    checkContainerPath(vp + ".target", m.target);
    // A relative bind source would be resolved against netd's working folder.
    if (m.type == MountType::kBind && (m.source.empty() || m.source[0] != '/'))
      throw std::invalid_argument(vp + ".source: a bind source must be an absolute path, got " +
                                  describe(json(m.source)));
    // A bind source is a host path and an anonymous volume has no name.
    if (m.type == MountType::kVolume && !m.source.empty()) checkNameAt(vp + ".source", NameKind::kVolume, m.source);
  });
  objects(j, "configs", path, s.configs, [](const json& c, const std::string& cp, ConfigRef& ref) {
    field(c, "source", cp, ref.source);
    field(c, "target", cp, ref.target);
    field(c, "mode", cp, ref.mode);
    checkNameAt(cp + ".source", NameKind::kConfig, ref.source);
    if (ref.target.empty()) ref.target = "/" + ref.source;  // the compose parser's default
    checkContainerPath(cp + ".target", ref.target);
    if (ref.mode > 07777) throw std::invalid_argument(cp + ".mode: expected a file mode from 0 to 07777 (4095)");
  });
  const json& d = object(j, "deploy", path, kEmptyObject);
  std::string dp = path + ".deploy";
  oneOf(d, "mode", dp, s.mode);
  field(d, "replicas", dp, s.replicas);
  field(d, "labels", dp, s.labels);
  const json& res = object(d, "resources", dp, kEmptyObject);
  s.limits = resourcesFromJson(object(res, "limits", dp + ".resources", kEmptyObject), dp + ".resources.limits");
  s.reservations =
      resourcesFromJson(object(res, "reservations", dp + ".resources", kEmptyObject), dp + ".resources.reservations");
  const json& rp = object(d, "restart_policy", dp, kEmptyObject);
  std::string rpp = dp + ".restart_policy";
  oneOf(rp, "condition", rpp, s.restartPolicy.condition);
  field(rp, "delay", rpp, s.restartPolicy.delaySeconds);
  field(rp, "max_attempts", rpp, s.restartPolicy.maxAttempts);
  field(rp, "window", rpp, s.restartPolicy.windowSeconds);
  s.updateConfig = updateConfigFromJson(object(d, "update_config", dp, kEmptyObject), dp + ".update_config");
  s.rollbackConfig = updateConfigFromJson(object(d, "rollback_config", dp, kEmptyObject), dp + ".rollback_config");
  // As the compose parser: a rollback cannot itself roll back.
  if (s.rollbackConfig.failureAction == FailureAction::kRollback)
    throw std::invalid_argument(dp +
                                ".rollback_config.failure_action: invalid value \"rollback\" (must be one of pause, "
                                "continue: a rollback cannot roll back)");
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
    if (!n.externalName.empty()) j["networks"][name]["external_name"] = n.externalName;
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
    field(n, "external_name", path, spec.externalName);
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
