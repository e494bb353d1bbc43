// toYaml: `skiff stack config` without --format. It prints the same
// normalized tree as toJson (one source of truth for keys), emitted as block
// YAML the way docker prints a stack file.

#include <yaml-cpp/yaml.h>

#include "skiff/runtime/compose.h"

namespace skiff::runtime {

namespace {

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
      out << YAML::DoubleQuoted << j.get<std::string>();
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << j.dump();  // numbers and booleans print as JSON does
      break;
  }
}

// Empty values (defaults nobody set) only clutter the printout.
nlohmann::json prune(const nlohmann::json& j) {
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) {
      nlohmann::json p = prune(v);
      if (p.is_null() || ((p.is_object() || p.is_array() || p.is_string()) && p.empty())) continue;
      out[k] = std::move(p);
    }
    return out;
  }
  return j;
}

}  // namespace

std::string toYaml(const StackSpec& stack) {
  YAML::Emitter out;
  emit(out, prune(toJson(stack)));
  return std::string(out.c_str()) + "\n";
}

}  // namespace skiff::runtime
