// The compose parser proper: walks the YAML tree key by key with the key path
// in hand, so every error can say file:line: path: what is wrong with which
// value. Merge keys (`<<: *x`) are resolved here when a mapping is read
// (yaml-cpp 0.7 keeps them as ordinary keys) instead of rewriting the tree,
// so every value keeps its own line number.

#include "skiff/runtime/compose.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "skiff/runtime/names.h"
#include "skiff/runtime/seccomp.h"
#include "units.h"

namespace skiff::runtime {

namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string key;
  YAML::Node keyNode;
  YAML::Node value;
};

// Merge keys can fan out (`<<: [*a, *a]` nested); a bound keeps a hostile
// file from taking exponential time.
constexpr size_t kMaxMergedEntries = 10000;
constexpr int kMaxMergeDepth = 32;

using KeySet = std::set<std::string, std::less<>>;

const KeySet kUnsupportedServiceKeys = {"build",
                                        "cap_add",
                                        "cap_drop",
                                        "cgroup_parent",
                                        "cgroupns_mode",
                                        "container_name",
                                        "cpu_count",
                                        "cpu_percent",
                                        "cpu_period",
                                        "cpu_quota",
                                        "cpu_rt_period",
                                        "cpu_rt_runtime",
                                        "cpu_shares",
                                        "cpus",
                                        "cpuset",
                                        "credential_spec",
                                        "depends_on",
                                        "device_cgroup_rules",
                                        "devices",
                                        "dns",
                                        "dns_opt",
                                        "dns_search",
                                        "domainname",
                                        "expose",
                                        "external_links",
                                        "extra_hosts",
                                        "group_add",
                                        "init",
                                        "ipc",
                                        "isolation",
                                        "links",
                                        "logging",
                                        "mac_address",
                                        "mem_limit",
                                        "mem_reservation",
                                        "mem_swappiness",
                                        "memswap_limit",
                                        "network_mode",
                                        "oom_kill_disable",
                                        "oom_score_adj",
                                        "pid",
                                        "pids_limit",
                                        "platform",
                                        "privileged",
                                        "profiles",
                                        "pull_policy",
                                        "read_only",
                                        "restart",
                                        "runtime",
                                        "scale",
                                        "secrets",
                                        "shm_size",
                                        "stdin_open",
                                        "storage_opt",
                                        "sysctls",
                                        "tmpfs",
                                        "tty",
                                        "ulimits",
                                        "userns_mode",
                                        "uts",
                                        "volumes_from",
                                        "blkio_config",
                                        "extends",
                                        "annotations"};

NetworkSpec defaultNetwork() {
  NetworkSpec n;
  n.name = "default";
  return n;
}

class Parser {
 public:
  Parser(std::string file, std::string baseDir, const std::map<std::string, std::string>& env)
      : file_(std::move(file)), baseDir_(std::move(baseDir)), env_(env) {}

  ComposeResult parse(const std::string& yaml) {
    YAML::Node root;
    try {
      root = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
      throw ComposeError(file_ + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    if (root.IsNull()) throw ComposeError(file_ + ": empty compose file");
    if (!root.IsMap()) fail(root, "(root)", "top-level object must be a mapping");

    std::vector<Entry> top = entries(root, "(root)");
    const Entry* services = nullptr;
    for (const Entry& e : top) {
      if (e.key == "version") {
        stack_.version = scalar(e.value, "version");
        if (!stack_.version.empty() && (stack_.version[0] == '1' || stack_.version[0] == '2'))
          fail(e.value, "version",
               "unsupported Compose file version: " + quoted(stack_.version) + " (stack files need version 3)");
      } else if (e.key == "services") {
        services = &e;
      } else if (e.key == "networks") {
        parseTopNetworks(e.value);
      } else if (e.key == "volumes") {
        parseTopVolumes(e.value);
      } else if (e.key == "configs") {
        parseTopConfigs(e.value);
      } else if (e.key == "secrets") {
        unsupported_.insert("secrets");
      } else if (e.key == "name") {
        (void)scalar(e.value, "name");  // the stack name comes from the command line
      } else if (!isExtension(e.key)) {
        failAt(e.keyNode, "Additional property " + e.key + " is not allowed");
      }
    }
    // Services last: they refer to the top-level sections.
    if (services != nullptr && !services->value.IsNull()) {
      for (const Entry& s : entries(services->value, "services")) {
        if (isExtension(s.key)) continue;
        parseService(s);
      }
    }
    ComposeResult result;
    if (!unsupported_.empty()) {
      std::string msg = "Ignoring unsupported options: ";
      bool first = true;
      for (const auto& k : unsupported_) {
        msg += (first ? "" : ", ") + k;
        first = false;
      }
      warnings_.insert(warnings_.begin(), msg);
    }
    result.stack = std::move(stack_);
    result.warnings = std::move(warnings_);
    return result;
  }

 private:
  static std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }
  static bool isExtension(std::string_view key) { return key.starts_with("x-"); }

  std::string where(const YAML::Node& at) const {
    int line = at.Mark().line;
    return file_ + ":" + std::to_string(line < 0 ? 0 : line + 1) + ": ";
  }
  [[noreturn]] void failAt(const YAML::Node& at, const std::string& message) const {
    throw ComposeError(where(at) + message);
  }
  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& reason) const {
    failAt(at, path + ": " + reason);
  }
  // Names become host paths in netd: the one rule of names.h, at the key's line.
  void checkName(const YAML::Node& key, const std::string& section, NameKind kind, const std::string& name) const {
    if (auto st = runtime::checkName(kind, name); !st.ok()) failAt(key, section + ": " + st.error().message);
  }
  [[noreturn]] void unknownKey(const Entry& e, const std::string& path) const {
    failAt(e.keyNode, path + " Additional property " + e.key + " is not allowed");
  }

  static const char* typeName(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map:
        return "a mapping";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Null:
        return "null";
      default:
        return "a string";
    }
  }

  // A mapping's entries with `<<` merge keys resolved: explicit keys win, then
  // earlier merge sources over later ones (YAML merge-key spec).
  std::vector<Entry> entries(const YAML::Node& map, const std::string& path, int depth = 0) {
    if (!map.IsMap()) fail(map, path, std::string("expected a mapping, got ") + typeName(map));
    if (depth > kMaxMergeDepth) fail(map, path, "merge keys nested too deeply");
    std::vector<Entry> own;
    std::vector<YAML::Node> sources;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) fail(it->first, path, "keys must be strings");
      std::string key = it->first.Scalar();
      if (key == "<<" && it->first.Tag() != "!") {
        if (it->second.IsMap()) {
          sources.push_back(it->second);
        } else if (it->second.IsSequence()) {
          // A copy: it->second lives in a proxy that dies with this full
          // expression, so a range-for over it would read freed stack.
          const YAML::Node list = it->second;
          for (const auto& s : list) sources.push_back(s);
        } else {
          fail(it->second, path + ".<<", "merge key needs a mapping or a list of mappings");
        }
        continue;
      }
      own.push_back(Entry{std::move(key), it->first, it->second});
    }
    std::set<std::string> seen;
    for (const auto& e : own) seen.insert(e.key);
    for (const auto& src : sources) {
      for (auto& e : entries(src, path + ".<<", depth + 1)) {
        if (seen.insert(e.key).second) own.push_back(std::move(e));
        if (++mergedEntries_ > kMaxMergedEntries) fail(src, path, "merge keys expand too far");
      }
    }
    return own;
  }

  std::vector<YAML::Node> items(const YAML::Node& seq, const std::string& path) const {
    if (seq.IsNull()) return {};
    if (!seq.IsSequence()) fail(seq, path, std::string("expected a list, got ") + typeName(seq));
    return {seq.begin(), seq.end()};
  }

  std::optional<std::string> lookupEnv(const std::string& name) const {
    auto it = env_.find(name);
    if (it == env_.end()) return std::nullopt;
    return it->second;
  }

  // An interpolated scalar value; null reads as "".
  std::string scalar(const YAML::Node& n, const std::string& path) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) fail(n, path, std::string("expected a string, got ") + typeName(n));
    try {
      return units::interpolate(
          n.Scalar(), [this](const std::string& name) { return lookupEnv(name); },
          [this](const std::string& name) {
            if (warnedVars_.insert(name).second)
              warnings_.push_back("The " + quoted(name) + " variable is not set. Defaulting to a blank string.");
          });
    } catch (const std::invalid_argument& e) {
      fail(n, path, e.what());
    }
  }

  template <typename F>
  auto convert(const YAML::Node& n, const std::string& path, F&& f) {
    std::string s = scalar(n, path);
    try {
      return f(s);
    } catch (const std::invalid_argument& e) {
      fail(n, path, e.what());
    } catch (const std::out_of_range&) {
      fail(n, path, "value out of range " + quoted(s));
    }
  }

  bool boolean(const YAML::Node& n, const std::string& path) {
    return convert(n, path, [](const std::string& s) { return units::parseBool(s); });
  }
  uint64_t unsignedInt(const YAML::Node& n, const std::string& path) {
    return convert(n, path, [](const std::string& s) { return units::parseUnsigned(s); });
  }
  double duration(const YAML::Node& n, const std::string& path) {
    return convert(n, path, [](const std::string& s) { return parseDurationSeconds(s); });
  }
  // A kind written as its word (stack.h): "tcp", "on-failure", ...
  template <typename Kind>
  Kind oneOf(const YAML::Node& n, const std::string& path) {
    std::string v = scalar(n, path);
    if (auto k = parseKind<Kind>(v)) return *k;
    fail(n, path, "invalid value " + quoted(v) + " (must be one of " + kindWords<Kind>() + ")");
  }

  // `KEY=VALUE` list or mapping. A bare KEY (or KEY: with no value) takes the
  // value from the environment when fromEnv, as compose does, else "".
  std::map<std::string, std::string> keyValues(const YAML::Node& n, const std::string& path, bool fromEnv) {
    std::map<std::string, std::string> out;
    if (n.IsNull()) return out;
    auto bare = [&](const std::string& key) {
      if (!fromEnv) {
        out[key] = "";
      } else if (auto v = lookupEnv(key)) {
        out[key] = *v;
      }
    };
    if (n.IsSequence()) {
      for (const auto& item : items(n, path)) {
        std::string s = scalar(item, path);
        size_t eq = s.find('=');
        if (eq == 0 || s.empty()) fail(item, path, "invalid entry " + quoted(s));
        if (eq == std::string::npos)
          bare(s);
        else
          out[s.substr(0, eq)] = s.substr(eq + 1);
      }
      return out;
    }
    for (const auto& e : entries(n, path)) {
      if (e.value.IsNull())
        bare(e.key);
      else
        out[e.key] = scalar(e.value, path + "." + e.key);
    }
    return out;
  }

  std::vector<std::string> stringList(const YAML::Node& n, const std::string& path) {
    std::vector<std::string> out;
    for (const auto& item : items(n, path)) out.push_back(scalar(item, path));
    return out;
  }

  // deploy.placement.constraints: each must parse by the scheduler's rule, or
  // the file is refused at that line (docker only finds out at deploy).
  std::vector<std::string> constraintList(const YAML::Node& n, const std::string& path) {
    std::vector<std::string> out;
    const std::vector<YAML::Node> list = items(n, path);
    for (size_t i = 0; i < list.size(); i++) {
      std::string text = scalar(list[i], path);
      auto parsed = parsePlacementConstraint(text);
      if (!parsed.ok()) {
        fail(list[i], path + "[" + std::to_string(i) + "]",
             "invalid constraint " + quoted(text) + ": " + parsed.error().message);
      }
      out.push_back(std::move(text));
    }
    return out;
  }

  // command/entrypoint: a string is split like a shell would, a list is taken as is.
  std::vector<std::string> commandLine(const YAML::Node& n, const std::string& path) {
    if (n.IsSequence()) return stringList(n, path);
    return convert(n, path, [](const std::string& s) { return units::splitShellWords(s); });
  }

  std::string absolutePath(const std::string& p) const {
    fs::path path(p);
    if (p == "~" || p.starts_with("~/")) {
      auto home = lookupEnv("HOME");
      path = fs::path(home ? *home : "/") / p.substr(p.size() > 1 ? 2 : 1);
    } else if (path.is_relative()) {
      path = fs::path(baseDir_.empty() ? "." : baseDir_) / path;
    }
    return path.lexically_normal().string();
  }

  std::string readFile(const YAML::Node& at, const std::string& path, const std::string& file) const {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(at, path, "cannot read " + quoted(file));
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }

  // ---- top-level sections ------------------------------------------------

  // `external: true` or `external: {name: x}` (the latter is still external;
  // x goes to *name).
  bool external(const YAML::Node& n, const std::string& path, std::string* name = nullptr) {
    if (n.IsMap()) {
      for (const auto& e : entries(n, path)) {
        if (e.key == "name") {
          std::string v = scalar(e.value, path + ".name");
          if (name != nullptr) *name = v;
        } else {
          unknownKey(e, path);
        }
      }
      return true;
    }
    return boolean(n, path);
  }

  void parseTopNetworks(const YAML::Node& n) {
    if (n.IsNull()) return;
    for (const auto& net : entries(n, "networks")) {
      if (isExtension(net.key)) continue;
      std::string path = "networks." + net.key;
      checkName(net.keyNode, "networks", NameKind::kNetwork, net.key);
      NetworkSpec spec;
      spec.name = net.key;
      if (!net.value.IsNull()) {
        for (const auto& e : entries(net.value, path)) {
          std::string p = path + "." + e.key;
          if (e.key == "driver")
            spec.driver = scalar(e.value, p);
          else if (e.key == "driver_opts")
            spec.driverOpts = keyValues(e.value, p, false);
          else if (e.key == "attachable")
            spec.attachable = boolean(e.value, p);
          else if (e.key == "external")
            spec.external = external(e.value, p, &spec.externalName);
          else if (e.key == "internal")
            spec.internal = boolean(e.value, p);
          else if (e.key == "labels")
            spec.labels = keyValues(e.value, p, false);
          else if (e.key == "name")
            spec.externalName = scalar(e.value, p);
          else if (e.key == "ipam")
            parseIpam(e.value, p, spec);
          else if (e.key == "enable_ipv6")
            unsupported_.insert("networks.enable_ipv6");
          else if (!isExtension(e.key))
            unknownKey(e, path);
        }
      }
      // A stack's own networks are <stack>_<key>, whatever `name:` says.
      if (!spec.external && !spec.externalName.empty()) {
        unsupported_.insert("networks.name");
        spec.externalName.clear();
      }
      stack_.networks[spec.name] = std::move(spec);
    }
  }

  void parseIpam(const YAML::Node& n, const std::string& path, NetworkSpec& spec) {
    if (n.IsNull()) return;
    for (const auto& e : entries(n, path)) {
      std::string p = path + "." + e.key;
      if (e.key == "driver") {
        std::string d = scalar(e.value, p);
        if (d != "default") fail(e.value, p, "unsupported IPAM driver " + quoted(d));
      } else if (e.key == "options") {
        (void)keyValues(e.value, p, false);
      } else if (e.key == "config") {
        auto cfgs = items(e.value, p);
        if (cfgs.size() > 1) fail(e.value, p, "only one IPAM config per network is supported");
        for (const auto& c : cfgs) {
          for (const auto& ce : entries(c, p)) {
            std::string cp = p + "." + ce.key;
            if (ce.key == "subnet")
              spec.subnet = scalar(ce.value, cp);
            else if (ce.key == "gateway")
              spec.gateway = scalar(ce.value, cp);
            else if (ce.key == "ip_range" || ce.key == "aux_addresses")
              unsupported_.insert("networks.ipam.config." + ce.key);
            else
              unknownKey(ce, p);
          }
        }
      } else {
        unknownKey(e, path);
      }
    }
  }

  void parseTopVolumes(const YAML::Node& n) {
    if (n.IsNull()) return;
    for (const auto& vol : entries(n, "volumes")) {
      if (isExtension(vol.key)) continue;
      std::string path = "volumes." + vol.key;
      checkName(vol.keyNode, "volumes", NameKind::kVolume, vol.key);
      VolumeSpec spec;
      spec.name = vol.key;
      if (!vol.value.IsNull()) {
        for (const auto& e : entries(vol.value, path)) {
          std::string p = path + "." + e.key;
          if (e.key == "driver")
            spec.driver = scalar(e.value, p);
          else if (e.key == "driver_opts")
            spec.driverOpts = keyValues(e.value, p, false);
          else if (e.key == "external")
            spec.external = external(e.value, p);
          else if (e.key == "labels")
            spec.labels = keyValues(e.value, p, false);
          else if (e.key == "name")
            (void)scalar(e.value, p);
          else if (!isExtension(e.key))
            unknownKey(e, path);
        }
      }
      stack_.volumes[spec.name] = std::move(spec);
    }
  }

  void parseTopConfigs(const YAML::Node& n) {
    if (n.IsNull()) return;
    for (const auto& cfg : entries(n, "configs")) {
      if (isExtension(cfg.key)) continue;
      std::string path = "configs." + cfg.key;
      checkName(cfg.keyNode, "configs", NameKind::kConfig, cfg.key);
      ConfigSpec spec;
      spec.name = cfg.key;
      for (const auto& e : entries(cfg.value, path)) {
        std::string p = path + "." + e.key;
        if (e.key == "file") {
          spec.file = absolutePath(scalar(e.value, p));
          spec.content = readFile(e.value, p, spec.file);
        } else if (e.key == "external") {
          spec.external = external(e.value, p);
        } else if (e.key == "name" || e.key == "labels") {
          (void)(e.key == "name" ? scalar(e.value, p) : std::string());
        } else if (e.key == "template_driver") {
          unsupported_.insert("configs.template_driver");
        } else if (!isExtension(e.key)) {
          unknownKey(e, path);
        }
      }
      if (spec.file.empty() && !spec.external) fail(cfg.keyNode, path, "needs either file or external");
      stack_.configs[spec.name] = std::move(spec);
    }
  }

  // ---- services ----------------------------------------------------------

  void parseService(const Entry& s) {
    std::string path = "services." + s.key;
    checkName(s.keyNode, "services", NameKind::kService, s.key);
    ServiceSpec svc;
    svc.name = s.key;
    std::map<std::string, std::string> envFromFiles;
    bool explicitNetworks = false;
    for (const auto& e : entries(s.value, path)) {
      const std::string& k = e.key;
      std::string p = path + "." + k;
      if (k == "image")
        svc.image = scalar(e.value, p);
      else if (k == "command")
        svc.command = commandLine(e.value, p);
      else if (k == "entrypoint")
        svc.entrypoint = commandLine(e.value, p);
      else if (k == "environment")
        svc.environment = keyValues(e.value, p, true);
      else if (k == "env_file")
        parseEnvFiles(e.value, p, envFromFiles);
      else if (k == "hostname") {
        svc.hostname = scalar(e.value, p);
        const bool templated = svc.hostname.find("{{") != std::string::npos;
        if (auto st = runtime::checkHostname(svc.hostname, templated); !st.ok()) fail(e.value, p, st.error().message);
      } else if (k == "working_dir")
        svc.workingDir = scalar(e.value, p);
      else if (k == "user")
        svc.user = scalar(e.value, p);
      else if (k == "labels")
        svc.containerLabels = keyValues(e.value, p, false);
      else if (k == "ports")
        parsePorts(e.value, p, svc);
      else if (k == "networks") {
        explicitNetworks = true;
        parseServiceNetworks(e.value, p, svc);
      } else if (k == "volumes")
        parseServiceVolumes(e.value, p, svc);
      else if (k == "configs")
        parseServiceConfigs(e.value, p, svc);
      else if (k == "deploy")
        parseDeploy(e.value, p, svc);
      else if (k == "healthcheck")
        svc.healthcheck = parseHealthcheck(e.value, p);
      else if (k == "stop_grace_period")
        svc.stopGracePeriodSeconds = duration(e.value, p);
      else if (k == "stop_signal")
        svc.stopSignal = scalar(e.value, p);
      else if (k == "security_opt")
        parseSecurityOpt(e.value, p, svc);
      else if (kUnsupportedServiceKeys.count(k) != 0)
        unsupported_.insert(k);
      else if (!isExtension(k))
        unknownKey(e, path);
    }
    for (auto& [key, value] : envFromFiles) svc.environment.try_emplace(key, value);
    if (svc.image.empty()) failAt(s.keyNode, path + ": service has no image (skiff does not build images on deploy)");
    if (!explicitNetworks) {
      // docker stack deploy puts such services on the stack's implicit
      // network "default", an overlay like any other.
      stack_.networks.try_emplace("default", defaultNetwork());
      svc.networks.push_back(ServiceNetwork{"default", {}, {}});
    }
    stack_.services[svc.name] = std::move(svc);
  }

  // seccomp=FILE (a profile in Docker's JSON, checked here so a bad file is
  // refused with its name), seccomp=unconfined, and no-new-privileges, which
  // every replica already has. Docker's older "seccomp:FILE" is accepted.
  void parseSecurityOpt(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    for (const auto& item : items(n, path)) {
      const std::string opt = scalar(item, path);
      const auto sep = opt.find_first_of("=:");
      const std::string key = opt.substr(0, sep);
      const std::string value = sep == std::string::npos ? "" : opt.substr(sep + 1);
      if (key == "no-new-privileges" && (value.empty() || value == "true")) continue;
      if (key != "seccomp" || value.empty()) {
        fail(item, path,
             "unsupported security option " + quoted(opt) +
                 " (skiff knows seccomp=PROFILE.json, seccomp=unconfined, no-new-privileges)");
      }
      svc.seccomp = value == "unconfined" ? value : absolutePath(value);
      svc.seccompProfile.clear();
      if (value == "unconfined") continue;
      svc.seccompProfile = readFile(item, path, svc.seccomp);
      if (auto profile = parseSeccompProfile(svc.seccompProfile); !profile.ok())
        fail(item, path, "seccomp profile " + quoted(svc.seccomp) + ": " + profile.error().message);
    }
  }

  void parseEnvFiles(const YAML::Node& n, const std::string& path, std::map<std::string, std::string>& out) {
    std::vector<std::pair<YAML::Node, std::string>> files;
    if (n.IsSequence()) {
      for (const auto& item : items(n, path)) files.emplace_back(item, scalar(item, path));
    } else {
      files.emplace_back(n, scalar(n, path));
    }
    for (const auto& [node, name] : files) {
      std::string text = readFile(node, path, absolutePath(name));
      std::istringstream in(text);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#') continue;
        line = line.substr(start);
        size_t eq = line.find('=');
        if (eq == std::string::npos) {
          if (auto v = lookupEnv(line)) out.try_emplace(line, *v);
        } else {
          out.try_emplace(line.substr(0, eq), line.substr(eq + 1));  // first file wins, as compose
        }
      }
    }
  }

  void parsePorts(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    const std::vector<YAML::Node> list = items(n, path);
    for (size_t i = 0; i < list.size(); i++) {
      const YAML::Node& item = list[i];
      const size_t first = svc.ports.size();
      if (item.IsMap()) {
        PortSpec port;
        for (const auto& e : entries(item, path)) {
          std::string p = path + "." + e.key;
          auto portNumber = [&] {
            return convert(e.value, p, [](const std::string& s) { return units::parsePortNumber(s); });
          };
          if (e.key == "target")
            port.target = portNumber();
          else if (e.key == "published")
            port.published = portNumber();
          else if (e.key == "protocol")
            port.protocol = oneOf<Protocol>(e.value, p);
          else if (e.key == "mode")
            port.mode = oneOf<PortMode>(e.value, p);
          else if (e.key == "host_ip")
            port.hostIp = scalar(e.value, p);
          else if (e.key == "name" || e.key == "app_protocol")
            (void)scalar(e.value, p);
          else
            unknownKey(e, path);
        }
        if (port.target == 0) fail(item, path, "port needs a target");
        svc.ports.push_back(std::move(port));
      } else {
        auto expanded = convert(item, path, [](const std::string& s) { return units::parsePortShort(s); });
        svc.ports.insert(svc.ports.end(), expanded.begin(), expanded.end());
      }
      for (size_t k = first; k < svc.ports.size(); k++) {
        claimPublishedPort(item, path + "[" + std::to_string(i) + "]", svc.name, svc.ports[k]);
      }
    }
  }

  // A published port belongs to one service of the stack: the routing mesh
  // listens on it on every node. Refused here, at the line of the second
  // publisher, so `stack config` catches what deploy would refuse. Two
  // host-mode ports may share a number (docker places them on different
  // nodes); an ingress port shares it with nothing.
  void claimPublishedPort(const YAML::Node& at, const std::string& path, const std::string& service,
                          const PortSpec& port) {
    if (port.published == 0) return;
    std::string key = std::to_string(port.published) + "/" + toString(port.protocol);
    bool host = port.mode == PortMode::kHost;
    auto [it, fresh] = publishedBy_.try_emplace(key, PortOwner{service, host});
    if (fresh) return;
    if (host && it->second.hostMode) return;
    fail(at, path, "port " + key + " is already published by service " + it->second.service);
  }

  void requireNetwork(const YAML::Node& at, const std::string& path, const std::string& name) const {
    if (stack_.networks.count(name) == 0 && name != "default")
      fail(at, path, "undefined network " + quoted(name) + " (declare it under the top-level networks)");
  }

  void parseServiceNetworks(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    auto add = [&](const std::string& name, const YAML::Node& at) {
      requireNetwork(at, path, name);
      if (name == "default") stack_.networks.try_emplace("default", defaultNetwork());
      svc.networks.push_back(ServiceNetwork{name, {}, {}});
      return &svc.networks.back();
    };
    if (n.IsSequence()) {
      for (const auto& item : items(n, path)) add(scalar(item, path), item);
      return;
    }
    for (const auto& net : entries(n, path)) {
      ServiceNetwork* sn = add(net.key, net.keyNode);
      if (net.value.IsNull()) continue;
      std::string np = path + "." + net.key;
      for (const auto& e : entries(net.value, np)) {
        std::string p = np + "." + e.key;
        if (e.key == "aliases")
          sn->aliases = stringList(e.value, p);
        else if (e.key == "ipv4_address")
          sn->ipv4Address = scalar(e.value, p);
        else if (e.key == "ipv6_address" || e.key == "priority" || e.key == "link_local_ips")
          unsupported_.insert("networks." + e.key);
        else
          unknownKey(e, np);
      }
    }
  }

  void finishMount(const YAML::Node& at, const std::string& path, MountSpec& m) {
    if (m.target.empty() || m.target[0] != '/')
      fail(at, path, "volume target must be an absolute path, got " + quoted(m.target));
    if (m.type == MountType::kBind) {
      if (m.source.empty()) fail(at, path, "bind mount needs a source");
      m.source = absolutePath(m.source);
    } else if (m.type == MountType::kVolume && !m.source.empty() && stack_.volumes.count(m.source) == 0) {
      fail(at, path, "undefined volume " + quoted(m.source) + " (declare it under the top-level volumes)");
    }
  }

  void parseServiceVolumes(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    for (const auto& item : items(n, path)) {
      MountSpec m;
      if (item.IsMap()) {
        bool typed = false;
        for (const auto& e : entries(item, path)) {
          std::string p = path + "." + e.key;
          if (e.key == "type") {
            m.type = oneOf<MountType>(e.value, p);
            typed = true;
          } else if (e.key == "source")
            m.source = scalar(e.value, p);
          else if (e.key == "target")
            m.target = scalar(e.value, p);
          else if (e.key == "read_only")
            m.readOnly = boolean(e.value, p);
          else if (e.key == "consistency" || e.key == "bind" || e.key == "volume" || e.key == "tmpfs") {
            // Options with no effect on a single-host bind/volume mount.
          } else
            unknownKey(e, path);
        }
        if (!typed) fail(item, path, "volume needs a type (bind, volume or tmpfs)");
      } else {
        std::string spec = scalar(item, path);
        std::vector<std::string> parts;
        size_t start = 0;
        for (size_t i = 0; i <= spec.size(); ++i) {
          if (i == spec.size() || spec[i] == ':') {
            parts.push_back(spec.substr(start, i - start));
            start = i + 1;
          }
        }
        if (parts.size() > 3 || spec.empty()) fail(item, path, "invalid volume " + quoted(spec));
        if (parts.size() == 1) {
          m.type = MountType::kVolume;  // anonymous
          m.target = parts[0];
        } else {
          m.source = parts[0];
          m.target = parts[1];
          bool path_like = m.source.starts_with("/") || m.source.starts_with(".") || m.source.starts_with("~");
          m.type = path_like ? MountType::kBind : MountType::kVolume;
        }
        if (parts.size() == 3) {
          std::istringstream opts(parts[2]);
          std::string opt;
          static const KeySet kModes = {"rw",     "z",       "Z",     "nocopy", "cached",  "delegated", "consistent",
                                        "shared", "rshared", "slave", "rslave", "private", "rprivate"};
          while (std::getline(opts, opt, ',')) {
            if (opt == "ro")
              m.readOnly = true;
            else if (kModes.count(opt) == 0)
              fail(item, path, "invalid mode " + quoted(opt) + " in volume " + quoted(spec));
          }
        }
      }
      finishMount(item, path, m);
      svc.volumes.push_back(std::move(m));
    }
  }

  void parseServiceConfigs(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    for (const auto& item : items(n, path)) {
      ConfigRef ref;
      if (item.IsMap()) {
        for (const auto& e : entries(item, path)) {
          std::string p = path + "." + e.key;
          if (e.key == "source")
            ref.source = scalar(e.value, p);
          else if (e.key == "target")
            ref.target = scalar(e.value, p);
          else if (e.key == "uid" || e.key == "gid")
            (void)scalar(e.value, p);
          else if (e.key == "mode") {
            ref.mode = convert(e.value, p, [](const std::string& s) {
              // YAML 1.1 octal (0440) as compose files write it; 0o440 too.
              std::string digits = s.starts_with("0o") ? s.substr(2) : s;
              int base = (s.size() > 1 && s[0] == '0') ? 8 : 10;
              size_t used = 0;
              unsigned long v = std::stoul(digits, &used, base);
              if (used != digits.size() || v > 07777) throw std::invalid_argument("invalid mode " + s);
              return static_cast<uint32_t>(v);
            });
          } else
            unknownKey(e, path);
        }
      } else {
        ref.source = scalar(item, path);
      }
      if (stack_.configs.count(ref.source) == 0)
        fail(item, path, "undefined config " + quoted(ref.source) + " (declare it under the top-level configs)");
      if (ref.target.empty()) ref.target = "/" + ref.source;
      svc.configs.push_back(std::move(ref));
    }
  }

  void parseResources(const YAML::Node& n, const std::string& path, Resources& r) {
    if (n.IsNull()) return;
    for (const auto& e : entries(n, path)) {
      std::string p = path + "." + e.key;
      if (e.key == "cpus")
        r.cpus = convert(e.value, p, [](const std::string& s) { return units::parseNonNegativeDouble(s); });
      else if (e.key == "memory")
        r.memoryBytes = convert(e.value, p, [](const std::string& s) { return parseMemoryBytes(s); });
      else if (e.key == "pids")
        r.pids = static_cast<int64_t>(unsignedInt(e.value, p));
      else if (e.key == "generic_resources" || e.key == "devices")
        unsupported_.insert("deploy.resources." + e.key);
      else
        unknownKey(e, path);
    }
  }

  void parseRestartPolicy(const YAML::Node& n, const std::string& path, RestartPolicy& rp) {
    if (n.IsNull()) return;
    for (const auto& e : entries(n, path)) {
      std::string p = path + "." + e.key;
      if (e.key == "condition")
        rp.condition = oneOf<RestartCondition>(e.value, p);
      else if (e.key == "delay")
        rp.delaySeconds = duration(e.value, p);
      else if (e.key == "max_attempts")
        rp.maxAttempts = unsignedInt(e.value, p);
      else if (e.key == "window")
        rp.windowSeconds = duration(e.value, p);
      else
        unknownKey(e, path);
    }
  }

  // update_config and rollback_config share their keys and defaults (docker's
  // too); a rollback cannot itself roll back, so there failure_action is
  // pause or continue only, as docker refuses it.
  void parseUpdateConfig(const YAML::Node& n, const std::string& path, UpdateConfig& uc, bool isRollback) {
    if (n.IsNull()) return;
    for (const auto& u : entries(n, path)) {
      std::string up = path + "." + u.key;
      if (u.key == "parallelism") {
        uc.parallelism = unsignedInt(u.value, up);
      } else if (u.key == "delay") {
        uc.delaySeconds = duration(u.value, up);
      } else if (u.key == "failure_action") {
        uc.failureAction = oneOf<FailureAction>(u.value, up);
        if (isRollback && uc.failureAction == FailureAction::kRollback)
          fail(u.value, up, "invalid value \"rollback\" (must be one of pause, continue: a rollback cannot roll back)");
      } else if (u.key == "monitor") {
        uc.monitorSeconds = duration(u.value, up);
      } else if (u.key == "max_failure_ratio") {
        uc.maxFailureRatio =
            convert(u.value, up, [](const std::string& s) { return units::parseNonNegativeDouble(s); });
      } else if (u.key == "order") {
        uc.order = oneOf<UpdateOrder>(u.value, up);
      } else {
        unknownKey(u, path);
      }
    }
  }

  void parseDeploy(const YAML::Node& n, const std::string& path, ServiceSpec& svc) {
    if (n.IsNull()) return;
    std::optional<Entry> misplacedRestart;
    bool restartPolicySeen = false;
    for (const auto& e : entries(n, path)) {
      std::string p = path + "." + e.key;
      if (e.key == "mode") {
        svc.mode = oneOf<ServiceMode>(e.value, p);
      } else if (e.key == "replicas") {
        svc.replicas = unsignedInt(e.value, p);
      } else if (e.key == "resources") {
        if (e.value.IsNull()) continue;
        for (const auto& r : entries(e.value, p)) {
          std::string rp = p + "." + r.key;
          if (r.key == "limits")
            parseResources(r.value, rp, svc.limits);
          else if (r.key == "reservations")
            parseResources(r.value, rp, svc.reservations);
          else if (r.key == "restart_policy")
            misplacedRestart = r;  // the seed's file does this
          else
            unknownKey(r, p);
        }
      } else if (e.key == "restart_policy") {
        restartPolicySeen = true;
        parseRestartPolicy(e.value, p, svc.restartPolicy);
      } else if (e.key == "update_config") {
        parseUpdateConfig(e.value, p, svc.updateConfig, false);
      } else if (e.key == "rollback_config") {
        parseUpdateConfig(e.value, p, svc.rollbackConfig, true);
      } else if (e.key == "placement") {
        if (e.value.IsNull()) continue;
        for (const auto& pl : entries(e.value, p)) {
          std::string pp = p + "." + pl.key;
          if (pl.key == "constraints")
            svc.placementConstraints = constraintList(pl.value, pp);
          else if (pl.key == "max_replicas_per_node")
            svc.maxReplicasPerNode = unsignedInt(pl.value, pp);
          else if (pl.key == "preferences")
            unsupported_.insert("deploy.placement.preferences");
          else
            unknownKey(pl, p);
        }
      } else if (e.key == "labels") {
        svc.labels = keyValues(e.value, p, false);
      } else if (e.key == "endpoint_mode") {
        if (oneOf<EndpointMode>(e.value, p) == EndpointMode::kDnsrr) unsupported_.insert("deploy.endpoint_mode");
      } else if (!isExtension(e.key)) {
        unknownKey(e, path);
      }
    }
    if (misplacedRestart) {
      std::string mp = path + ".resources.restart_policy";
      if (restartPolicySeen) {
        warnings_.push_back(where(misplacedRestart->keyNode) + mp + " belongs under " + path + "; ignored because " +
                            path + ".restart_policy is set");
      } else {
        parseRestartPolicy(misplacedRestart->value, mp, svc.restartPolicy);
        warnings_.push_back(where(misplacedRestart->keyNode) + mp + " belongs under " + path + " (" + path +
                            ".restart_policy); applied it anyway");
      }
    }
  }

  std::optional<Healthcheck> parseHealthcheck(const YAML::Node& n, const std::string& path) {
    if (n.IsNull()) return std::nullopt;
    Healthcheck hc;
    for (const auto& e : entries(n, path)) {
      std::string p = path + "." + e.key;
      if (e.key == "test") {
        if (e.value.IsSequence()) {
          hc.test = stringList(e.value, p);
          if (hc.test.empty() || (hc.test[0] != "CMD" && hc.test[0] != "CMD-SHELL" && hc.test[0] != "NONE"))
            fail(e.value, p, "a test list must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"");
        } else {
          hc.test = {"CMD-SHELL", scalar(e.value, p)};
        }
      } else if (e.key == "interval")
        hc.intervalSeconds = duration(e.value, p);
      else if (e.key == "timeout")
        hc.timeoutSeconds = duration(e.value, p);
      else if (e.key == "start_period")
        hc.startPeriodSeconds = duration(e.value, p);
      else if (e.key == "retries")
        hc.retries = unsignedInt(e.value, p);
      else if (e.key == "disable")
        hc.disable = boolean(e.value, p);
      else if (e.key == "start_interval")
        unsupported_.insert("healthcheck.start_interval");
      else
        unknownKey(e, path);
    }
    if (hc.disable) hc.test = {"NONE"};
    if (!hc.test.empty() && hc.test[0] == "NONE") hc.disable = true;
    return hc;
  }

  std::string file_;
  std::string baseDir_;
  const std::map<std::string, std::string>& env_;
  StackSpec stack_;
  std::vector<std::string> warnings_;
  std::set<std::string> unsupported_;
  std::set<std::string> warnedVars_;
  size_t mergedEntries_ = 0;
  struct PortOwner {
    std::string service;
    bool hostMode = false;
  };
  std::map<std::string, PortOwner> publishedBy_;  // "4000/tcp" -> the first service publishing it
};

std::string trimSpace(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) b++;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) e--;
  return s.substr(b, e - b);
}

// swarmkit's key pattern: ^(?i)[a-z_][a-z0-9\-_.]+$ (so two characters at least).
bool validConstraintKey(const std::string& k) {
  auto start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  if (k.size() < 2 || !start(k[0])) return false;
  return std::all_of(k.begin() + 1, k.end(), [&](char c) {
    return start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

// swarmkit's value pattern: letters, digits, white space and :-_.*()?+[]\^$|/
// — nothing that is or may become an operator (<, >, ~, =, !).
bool validConstraintValue(const std::string& v) {
  static const std::string kExtra = ":-_.*()?+[]\\^$|/";
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || std::isspace(u) || kExtra.find(c) != std::string::npos;
  });
}

}  // namespace

Result<PlacementConstraint> parsePlacementConstraint(const std::string& text) {
  for (const auto& [op, equal] : {std::pair{"==", true}, std::pair{"!=", false}}) {
    size_t at = text.find(op);
    if (at == std::string::npos) continue;
    PlacementConstraint c{trimSpace(text.substr(0, at)), equal, trimSpace(text.substr(at + 2))};
    if (!validConstraintKey(c.key)) return Error::msg("key '" + c.key + "' is invalid", EINVAL);
    if (!validConstraintValue(c.value)) return Error::msg("value '" + c.value + "' is invalid", EINVAL);
    return c;
  }
  return Error::msg("constraint expected one operator from ==, !=", EINVAL);
}

ComposeResult parseComposeString(const std::string& yaml, const std::string& fileNameForErrors,
                                 const std::string& baseDir, const std::map<std::string, std::string>& env) {
  return Parser(fileNameForErrors, baseDir, env).parse(yaml);
}

ComposeResult parseComposeFile(const std::string& path, const std::map<std::string, std::string>& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ComposeError(path + ": cannot open compose file");
  std::ostringstream buf;
  buf << in.rdbuf();
  fs::path p(path);
  std::string baseDir = fs::absolute(p).parent_path().string();
  return parseComposeString(buf.str(), path, baseDir, env);
}

}  // namespace skiff::runtime
