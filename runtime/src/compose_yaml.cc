// toYaml: `skiff stack config` without --format. It prints the same
// normalized tree as toJson (one source of truth for keys), emitted as block
// YAML the way docker prints a stack file.

#include <yaml-cpp/yaml.h>

#include <iomanip>
#include <sstream>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {

namespace {

std::string escapeDollars(const std::string& s);

void emit(YAML::Emitter& out, const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j) emit(out, v);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      out << YAML::DoubleQuoted << escapeDollars(j.get<std::string>());
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << j.dump();  // numbers and booleans print as JSON does
      break;
  }
}

// Empty values (defaults nobody set) only clutter the printout; but in
// environment/labels/driver_opts an empty string is a value.
nlohmann::json prune(const nlohmann::json& j, bool keepEmptyValues = false) {
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(prune(v));
    return out;
  }
  if (!j.is_object()) return j;
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : j.items()) {
    bool keep = k == "environment" || k == "labels" || k == "driver_opts";
    nlohmann::json p = prune(v, keep);
    bool empty = p.is_null() || ((p.is_object() || p.is_array()) && p.empty()) ||
                 (p.is_string() && p.get_ref<const std::string&>().empty());
    if (empty && !(keepEmptyValues && p.is_string())) continue;
    out[k] = std::move(p);
  }
  return out;
}

std::string durationText(double seconds) {
  std::ostringstream out;
  out << std::setprecision(15) << seconds << "s";
  return out.str();
}

void durationsToText(nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (j.contains(k) && j[k].is_number()) j[k] = durationText(j[k].get<double>());
  }
}

// Makes the printout a valid compose file again (as docker's is): durations
// with units, service networks as a mapping, unpublished ports without
// `published`, `$` escaped, config contents left to the file.
void toComposeShape(nlohmann::json& j) {
  if (j.contains("services")) {
    for (auto& [name, svc] : j["services"].items()) {
      if (svc.contains("networks")) {
        nlohmann::json nets = nlohmann::json::object();
        for (auto& n : svc["networks"]) {
          std::string netName = n.value("name", "");
          n.erase("name");
          nets[netName] = n;
        }
        svc["networks"] = nets;
      }
      if (svc.contains("ports")) {
        for (auto& p : svc["ports"]) {
          if (p.value("published", 0) == 0) p.erase("published");
        }
      }
      durationsToText(svc, {"stop_grace_period"});
      if (svc.contains("healthcheck")) durationsToText(svc["healthcheck"], {"interval", "timeout", "start_period"});
      if (svc.contains("deploy")) {
        auto& d = svc["deploy"];
        if (d.contains("restart_policy")) durationsToText(d["restart_policy"], {"delay", "window"});
        if (d.contains("update_config")) durationsToText(d["update_config"], {"delay", "monitor"});
        if (d.contains("rollback_config")) durationsToText(d["rollback_config"], {"delay", "monitor"});
      }
    }
  }
  if (j.contains("configs")) {
    for (auto& [name, c] : j["configs"].items()) c.erase("content");
  }
}

std::string escapeDollars(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '$') out += '$';
  }
  return out;
}

}  // namespace

std::string toYaml(const StackSpec& stack) {
  YAML::Emitter out;
  nlohmann::json j = prune(toJson(stack));
  toComposeShape(j);
  emit(out, j);
  return std::string(out.c_str()) + "\n";
}

}  // namespace skiff::runtime
