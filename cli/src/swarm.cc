#include "skiff/cli/swarm.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>

#include "skiff/cli/format.h"
#include "skiff/cli/views.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

// The text at a nested key ("Spec", "Role"); "" when missing or not a string.
std::string textAt(const json& root, std::initializer_list<const char*> path) {
  const json* node = &root;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_string() ? node->get<std::string>() : "";
}

// docker's formatter.PrettyPrint: the first letter upper-cased ("ready" -> "Ready").
std::string prettyPrint(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return text;
}

bool validPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value >= 1 && value <= 65535;
}

std::string joinCommand(const json& token, const json& addr) {
  return "    skiff swarm join --token " + (token.is_string() ? token.get<std::string>() : std::string()) + " " +
         (addr.is_string() ? addr.get<std::string>() : std::string()) + "\n\n";
}

}  // namespace

Result<std::string> withSwarmPort(std::string_view addr, bool emptyHostIsAny) {
  auto invalid = [&](const std::string& why) {
    return Error::msg("invalid address \"" + std::string(addr) + "\": " + why);
  };
  if (addr.empty()) return invalid("empty address");
  std::string host;
  std::string_view port;
  bool bracketed = false;
  if (addr.front() == '[') {
    const size_t close = addr.find(']');
    if (close == std::string_view::npos) return invalid("missing ']' in address");
    host = std::string(addr.substr(1, close - 1));
    bracketed = true;
    std::string_view rest = addr.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid("unexpected text after ']'");
      port = rest.substr(1);
      if (port.empty()) return invalid("missing port after ':'");
    }
  } else {
    const size_t first = addr.find(':');
    if (first != std::string_view::npos && addr.find(':', first + 1) != std::string_view::npos) {
      // Several colons without brackets: a bare IPv6 address, no port.
      host = std::string(addr);
      bracketed = true;
    } else if (first != std::string_view::npos) {
      host = std::string(addr.substr(0, first));
      port = addr.substr(first + 1);
      if (port.empty()) return invalid("missing port after ':'");
    } else {
      host = std::string(addr);
    }
  }
  if (host.empty()) {
    if (!emptyHostIsAny || bracketed) return invalid("missing host");
    host = "0.0.0.0";
  }
  if (port.empty()) port = kSwarmPort;
  if (!validPort(port)) return invalid("invalid port \"" + std::string(port) + "\"");
  return (bracketed ? "[" + host + "]" : host) + ":" + std::string(port);
}

std::string swarmInitText(const json& answer) {
  const json empty;
  const json& token = answer.is_object() && answer.contains("workerToken") ? answer["workerToken"] : empty;
  const json& addr = answer.is_object() && answer.contains("managerAddr") ? answer["managerAddr"] : empty;
  return "Swarm initialized: current node (" + cell(answer, "nodeId") + ") is now a manager.\n\n" +
         "To add a worker to this swarm, run the following command:\n\n" + joinCommand(token, addr) +
         "To add a manager to this swarm, run 'skiff swarm join-token manager' and follow the "
         "instructions.\n\n";
}

Status validateJoinTokenRole(std::string_view role) {
  if (role == "worker" || role == "manager") return okStatus();
  return Error::msg("unknown role " + std::string(role));
}

std::string joinTokenText(const json& answer, std::string_view role, bool rotate, bool quiet) {
  if (quiet) return cell(answer, "token") + "\n";
  std::string out;
  if (rotate) out += "Successfully rotated " + std::string(role) + " join token.\n\n";
  const json empty;
  const json& token = answer.is_object() && answer.contains("token") ? answer["token"] : empty;
  const json& addr = answer.is_object() && answer.contains("managerAddr") ? answer["managerAddr"] : empty;
  out += "To add a " + std::string(role) + " to this swarm, run the following command:\n\n" + joinCommand(token, addr);
  return out;
}

std::string joinedText(const json& answer) {
  return cell(answer, "role") == "manager" ? "This node joined a swarm as a manager.\n"
                                           : "This node joined a swarm as a worker.\n";
}

Result<json> nodeUpdateBody(const NodeUpdateFlags& flags) {
  json body = {{"labelAdd", json::object()}, {"labelRm", json::array()}};
  if (!flags.availability.empty()) {
    std::string availability = flags.availability;
    for (auto& c : availability) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (availability != "active" && availability != "pause" && availability != "drain") {
      return Error::msg("invalid availability " + goQuote(flags.availability) +
                        ", only active, pause and drain are supported");
    }
    body["availability"] = availability;
  }
  for (const auto& label : flags.labelAdd) {
    const size_t eq = label.find('=');
    std::string key = label.substr(0, eq);
    while (!key.empty() && (key.front() == ' ' || key.front() == '\t')) key.erase(0, 1);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string prefix = "invalid argument " + goQuote(label) + " for \"--label-add\" flag: ";
    if (key.empty()) return Error::msg(prefix + "invalid label '" + label + "': empty name");
    if (key.find_first_of(" \t") != std::string::npos) {
      return Error::msg(prefix + "label '" + key + "' contains whitespaces");
    }
    body["labelAdd"][key] = eq == std::string::npos ? std::string() : label.substr(eq + 1);
  }
  for (const auto& key : flags.labelRm) body["labelRm"].push_back(key);
  return body;
}

std::string goTimeText(std::string_view text) {
  // Only what parses as RFC 3339 is rewritten, so the positions below hold:
  // "YYYY-MM-DDTHH:MM:SS" then an optional fraction, then Z or +HH:MM.
  if (!parseRfc3339(text) || text.size() < 20) return std::string(text);
  std::string out = std::string(text.substr(0, 10)) + " " + std::string(text.substr(11, 8));
  size_t pos = 19;
  if (text[pos] == '.') {
    size_t end = pos + 1;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    std::string fraction(text.substr(pos + 1, std::min<size_t>(end - pos - 1, 9)));
    while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
    if (!fraction.empty()) out += "." + fraction;
    pos = end;
  }
  const std::string_view zone = text.substr(pos);
  if (zone == "Z" || zone == "z") return out + " +0000 UTC";
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
    // Go names a zone it only knows by its offset after the offset itself.
    const std::string offset = std::string(zone.substr(0, 3)) + std::string(zone.substr(4, 2));
    return out + " " + offset + " " + offset;
  }
  return std::string(text);
}

std::string nodePrettyText(const json& node) {
  std::string out = "ID:\t\t\t" + textAt(node, {"ID"}) + "\n";
  if (const std::string name = textAt(node, {"Spec", "Name"}); !name.empty()) out += "Name:\t\t\t" + name + "\n";
  if (node.is_object() && node.contains("Spec") && node["Spec"].is_object() && node["Spec"].contains("Labels")) {
    const json& labels = node["Spec"]["Labels"];
    if (labels.is_object() && !labels.empty()) {
      out += "Labels:\n";
      // Sorted by key, as Go's template ranges over a map.
      for (const auto& [key, value] : labels.items()) {
        const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
        out += " - " + key + (v.empty() ? "" : "=" + v) + "\n";
      }
    }
  }
  out += "Hostname:              \t" + textAt(node, {"Description", "Hostname"}) + "\n";
  out += "Joined at:             \t" + goTimeText(textAt(node, {"CreatedAt"})) + "\n";
  // docker shows the role only through "Manager Status"; skiff names it too.
  out += "Role:                  \t" + textAt(node, {"Spec", "Role"}) + "\n";
  out += "Status:\n";
  out += " State:\t\t\t" + prettyPrint(textAt(node, {"Status", "State"})) + "\n";
  if (const std::string message = textAt(node, {"Status", "Message"}); !message.empty()) {
    out += " Message:              \t" + prettyPrint(message) + "\n";
  }
  out += " Availability:         \t" + prettyPrint(textAt(node, {"Spec", "Availability"})) + "\n";
  if (const std::string addr = textAt(node, {"Status", "Addr"}); !addr.empty()) out += " Address:\t\t" + addr + "\n";
  if (node.is_object() && node.contains("ManagerStatus") && node["ManagerStatus"].is_object()) {
    const json& manager = node["ManagerStatus"];
    std::string reachability = textAt(manager, {"Reachability"});
    if (reachability.empty()) reachability = "reachable";
    const bool leader = manager.contains("Leader") && manager["Leader"].is_boolean() && manager["Leader"].get<bool>();
    out += "Manager Status:\n";
    out += " Address:\t\t" + textAt(manager, {"Addr"}) + "\n";
    out += " Raft Status:\t\t" + prettyPrint(reachability) + "\n";
    out += std::string(" Leader:\t\t") + (leader ? "Yes" : "No") + "\n";
  }
  return out;
}

}  // namespace skiff::cli
