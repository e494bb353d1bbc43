// `skiff run`'s flags as a compose document (JSON is YAML), parsed by the
// compose parser: one set of rules for a port, a mount or a memory value.

#include "skiff/cli/run.h"

#include <array>
#include <random>

#include "skiff/runtime/compose.h"
#include "skiff/runtime/stack.h"

namespace skiff::cli {
namespace {

using json = nlohmann::json;

// Compose interpolates ${VAR}; docker run does not: every '$' stays one.
std::string literal(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '$') out += '$';
    out += c;
  }
  return out;
}

json literals(const std::vector<std::string>& items) {
  json out = json::array();
  for (const auto& i : items) out.push_back(literal(i));
  return out;
}

bool validContainerName(const std::string& name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.empty() || !alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// "on-failure:3" -> the swarm restart policy a replica of one slot follows.
Result<json> restartPolicy(const std::string& text) {
  // docker restarts at once (then backs off); swarm's default delay is 5 s.
  json policy{{"delay", "100ms"}};
  if (text == "no" || text.empty()) {
    policy["condition"] = "none";
  } else if (text == "always" || text == "unless-stopped") {
    policy["condition"] = "any";
  } else if (text.rfind("on-failure", 0) == 0) {
    policy["condition"] = "on-failure";
    std::string count = text.substr(std::string("on-failure").size());
    if (!count.empty()) {
      if (count[0] != ':' || count.size() == 1 || count.size() > 10 ||
          count.find_first_not_of("0123456789", 1) != std::string::npos)
        return Error::msg("invalid argument \"" + text +
                          "\" for \"--restart\" flag: maximum retry count must be a number");
      policy["max_attempts"] = std::stoull(count.substr(1));
    }
  } else {
    return Error::msg("invalid argument \"" + text + "\" for \"--restart\" flag: invalid restart policy '" + text +
                      "' (no, always, unless-stopped, on-failure[:max-retries])");
  }
  return policy;
}

struct FlagOf {
  const char* key;  // the compose key under services.<name>.
  const char* flag;
  const std::vector<std::string>* values;  // a list flag: the value [i] names
};

// "skiff run:1: services.web.ports[0]: invalid port ..." -> the flag's words.
std::string flagError(const std::string& what, const std::string& name, const RunFlags& f,
                      const std::vector<std::string>& env) {
  const std::string prefix = "services." + name + ".";
  size_t at = what.find(prefix);
  if (at == std::string::npos) return what.substr(what.find(": ") == std::string::npos ? 0 : what.find(": ") + 2);
  std::string rest = what.substr(at + prefix.size());  // "ports[0]: reason"
  const std::vector<FlagOf> flags = {{"ports", "-p, --publish", &f.publish},
                                     {"environment", "-e, --env", &env},
                                     {"volumes", "-v, --volume", &f.volumes},
                                     {"deploy.resources.limits.cpus", "--cpus", nullptr},
                                     {"deploy.resources.limits.memory", "-m, --memory", nullptr},
                                     {"working_dir", "-w, --workdir", nullptr},
                                     {"user", "-u, --user", nullptr},
                                     {"stop_grace_period", "--stop-timeout", nullptr},
                                     {"image", "IMAGE", nullptr},
                                     {"command", "COMMAND", nullptr}};
  for (const auto& k : flags) {
    const std::string key = k.key;
    if (rest.rfind(key, 0) != 0) continue;
    size_t colon = rest.find(": ");
    std::string reason = colon == std::string::npos ? rest : rest.substr(colon + 2);
    std::string value;
    if (k.values != nullptr && rest.size() > key.size() && rest[key.size()] == '[') {
      size_t i = std::strtoul(rest.c_str() + key.size() + 1, nullptr, 10);
      if (i < k.values->size()) value = (*k.values)[i];
    } else if (key == "deploy.resources.limits.cpus") {
      value = f.cpus;
    } else if (key == "deploy.resources.limits.memory") {
      value = f.memory;
    }
    std::string out = "invalid argument ";
    if (!value.empty()) out.append("\"").append(value).append("\" ");
    return out.append("for \"").append(k.flag).append("\" flag: ").append(reason);
  }
  return rest;
}

}  // namespace

Result<nlohmann::json> runBody(const RunFlags& f, const std::string& cwd,
                               const std::map<std::string, std::string>& env) {
  if (f.image.empty()) return Error::msg("\"skiff run\" requires at least 1 argument.");
  const std::string name = f.name.empty() ? madeUpContainerName() : f.name;
  if (!validContainerName(name))
    return Error::msg("Invalid container name (" + name + "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
  json svc{{"image", literal(f.image)}};
  if (!f.command.empty()) svc["command"] = literals(f.command);
  // -e K takes K's value from here; an unset K is left out (docker's way).
  std::vector<std::string> environment;
  for (const auto& e : f.env) {
    if (e.find('=') != std::string::npos) {
      environment.push_back(e);
    } else if (auto v = env.find(e); v != env.end()) {
      environment.push_back(e + "=" + v->second);
    }
  }
  if (!environment.empty()) svc["environment"] = literals(environment);
  if (!f.publish.empty()) svc["ports"] = literals(f.publish);
  if (!f.volumes.empty()) svc["volumes"] = literals(f.volumes);
  if (!f.workdir.empty()) svc["working_dir"] = literal(f.workdir);
  if (!f.user.empty()) svc["user"] = literal(f.user);
  if (!f.stopTimeout.empty()) {
    if (f.stopTimeout.size() > 9 || f.stopTimeout.find_first_not_of("0123456789") != std::string::npos)
      return Error::msg("invalid argument \"" + f.stopTimeout +
                        "\" for \"--stop-timeout\" flag: not a number of seconds");
    svc["stop_grace_period"] = f.stopTimeout + "s";
  }
  auto restart = restartPolicy(f.restart);
  if (!restart.ok()) return restart.error();
  json deploy{{"restart_policy", *restart}};
  json limits = json::object();
  if (!f.cpus.empty()) limits["cpus"] = literal(f.cpus);
  if (!f.memory.empty()) limits["memory"] = literal(f.memory);
  if (!limits.empty()) deploy["resources"] = json{{"limits", limits}};
  svc["deploy"] = deploy;
  json doc{{"version", "3.8"}};
  if (!f.networks.empty()) {
    svc["networks"] = literals(f.networks);
    json nets = json::object();
    for (const auto& n : f.networks) nets[literal(n)] = json{{"external", true}};
    doc["networks"] = nets;
  }
  // -v name:/path makes the named volume as it goes (compose wants it declared).
  json volumes = json::object();
  for (const auto& v : f.volumes) {
    const std::string source = v.substr(0, v.find(':'));
    if (v.find(':') != std::string::npos && !source.empty() && source.find('/') == std::string::npos &&
        source[0] != '.' && source[0] != '~')
      volumes[literal(source)] = json::object();
  }
  if (!volumes.empty()) doc["volumes"] = volumes;
  doc["services"] = json{{name, svc}};
  try {
    auto parsed = runtime::parseComposeString(doc.dump(), "skiff run", cwd, {});
    json service = runtime::toJson(parsed.stack)["services"][name];
    // Compose puts a service without networks on the stack's "default"; a
    // lone container without --network has none but ingress (its ports).
    if (f.networks.empty()) service.erase("networks");
    return json{{"name", name}, {"service", service}, {"autoRemove", f.autoRemove}};
  } catch (const runtime::ComposeError& e) {
    return Error::msg(flagError(e.what(), name, f, environment));
  }
}

std::string madeUpContainerName() {
  static constexpr std::array<const char*, 16> kAdjectives = {
      "admiring", "brave", "clever", "dreamy", "eager", "festive", "gallant", "happy",
      "jolly",    "kind",  "lucid",  "modest", "nifty", "quirky",  "serene",  "vibrant"};
  static constexpr std::array<const char*, 16> kSurnames = {
      "babbage", "curie",    "dijkstra", "euler",   "feynman", "hopper",   "kahn",   "lamport",
      "liskov",  "lovelace", "noether",  "ritchie", "shannon", "thompson", "turing", "wozniak"};
  std::random_device rd;
  std::string out = kAdjectives[rd() % kAdjectives.size()];
  return out.append("_").append(kSurnames[rd() % kSurnames.size()]);
}

}  // namespace skiff::cli
