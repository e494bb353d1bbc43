#include "skiff/cli/views.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "skiff/cli/format.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

// Docker's truncation widths for the cells that can grow without bound.
constexpr size_t kErrorWidth = 30;    // service ps ERROR
constexpr size_t kCommandWidth = 20;  // container ls COMMAND

// One row per element of the daemon's array; anything else lists nothing.
template <typename ToRow>
std::vector<Row> rowsOf(const json& items, ToRow toRow) {
  std::vector<Row> rows;
  if (!items.is_array()) return rows;
  for (const auto& item : items) rows.push_back(toRow(item));
  return rows;
}

std::string text(const json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return std::to_string(static_cast<int64_t>(d));
    return value.dump();
  }
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_array()) {
    std::string out;
    for (const auto& item : value) {
      if (!out.empty()) out += ", ";
      out += text(item);
    }
    return out;
  }
  return value.dump();
}

// "created" may come as RFC 3339 text or epoch seconds.
std::string since(const json& value, double now) {
  if (value.is_number()) return humanDuration(now - value.get<double>()) + " ago";
  if (value.is_string()) return humanSince(value.get<std::string>(), now);
  return "";
}

// sortorder.NaturalLess: runs of digits compare by value, the rest bytewise.
bool naturalLess(const std::string& a, const std::string& b) {
  auto isDigit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (isDigit(a[i]) && isDigit(b[j])) {
      size_t ei = i, ej = j;
      while (ei < a.size() && isDigit(a[ei])) ++ei;
      while (ej < b.size() && isDigit(b[ej])) ++ej;
      // Leading zeros do not count; then the longer run is the larger number.
      size_t zi = i, zj = j;
      while (zi + 1 < ei && a[zi] == '0') ++zi;
      while (zj + 1 < ej && b[zj] == '0') ++zj;
      const std::string_view na(a.data() + zi, ei - zi), nb(b.data() + zj, ej - zj);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      if (ei - i != ej - j) return ei - i < ej - j;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

ListView makeView(std::vector<Field> fields, std::string defaultFormat, std::string quiet) {
  return ListView{std::move(fields), std::move(defaultFormat), std::move(quiet)};
}

}  // namespace

std::string cell(const json& object, const std::string& key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it == object.end() ? std::string() : text(*it);
}

const ListView& serviceView() {
  static const ListView view =
      makeView({{"ID", "ID"},
                {"Name", "NAME"},
                {"Mode", "MODE"},
                {"Replicas", "REPLICAS"},
                {"Image", "IMAGE"},
                {"Ports", "PORTS"},
                {"Stack", "STACK"}},
               "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}", "{{.ID}}");
  return view;
}

const ListView& taskView() {
  static const ListView view = makeView(
      {{"ID", "ID"},
       {"Name", "NAME"},
       {"Image", "IMAGE"},
       {"Node", "NODE"},
       {"DesiredState", "DESIRED STATE"},
       {"CurrentState", "CURRENT STATE"},
       {"Error", "ERROR"},
       {"Ports", "PORTS"}},
      "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}",
      "{{.ID}}");
  return view;
}

const ListView& containerView() {
  static const ListView view = makeView(
      {{"ID", "CONTAINER ID"},
       {"Image", "IMAGE"},
       {"Command", "COMMAND"},
       {"CreatedAt", "CREATED AT"},
       {"RunningFor", "CREATED"},
       {"Status", "STATUS"},
       {"State", "STATE"},
       {"Ports", "PORTS"},
       {"Names", "NAMES"},
       {"Networks", "NETWORKS"},
       {"Pid", "PID"}},
      "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", "{{.ID}}");
  return view;
}

const ListView& imageView() {
  static const ListView view =
      makeView({{"Repository", "REPOSITORY"},
                {"Tag", "TAG"},
                {"ID", "IMAGE ID"},
                {"CreatedSince", "CREATED"},
                {"CreatedAt", "CREATED AT"},
                {"Size", "SIZE"}},
               "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}", "{{.ID}}");
  return view;
}

const ListView& networkView() {
  static const ListView view = makeView({{"ID", "NETWORK ID"},
                                         {"Name", "NAME"},
                                         {"Driver", "DRIVER"},
                                         {"Scope", "SCOPE"},
                                         {"VNI", "VNI"},
                                         {"Subnet", "SUBNET"}},
                                        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", "{{.ID}}");
  return view;
}

const ListView& stackView() {
  static const ListView view =
      makeView({{"Name", "NAME"}, {"Services", "SERVICES"}}, "table {{.Name}}\t{{.Services}}", "{{.Name}}");
  return view;
}

const ListView& nodeView() {
  static const ListView view = makeView(
      {{"ID", "ID"},
       {"Hostname", "HOSTNAME"},
       {"Status", "STATUS"},
       {"Availability", "AVAILABILITY"},
       {"ManagerStatus", "MANAGER STATUS"},
       {"Self", ""},
       {"SelfMark", " "},
       {"Addr", "ADDRESS"},
       {"Role", "ROLE"},
       {"Tasks", "TASKS"}},
      // docker's "{{.ID}} {{if .Self}}*{{else}} {{end}}": every ID cell is
      // two characters wider, "*" marking this node, and the header "ID  ".
      // docker's last column, ENGINE VERSION, has no meaning for netd.
      "table {{.ID}} {{.SelfMark}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}", "{{.ID}}");
  return view;
}

std::vector<Row> serviceRows(const json& services) {
  return rowsOf(services, [](const json& s) -> Row {
    return {{"ID", shortId(cell(s, "id"))},    {"Name", cell(s, "name")},   {"Mode", cell(s, "mode")},
            {"Replicas", cell(s, "replicas")}, {"Image", cell(s, "image")}, {"Ports", cell(s, "ports")},
            {"Stack", cell(s, "stack")}};
  });
}

std::vector<Row> taskRows(const json& tasks, double now, bool noTrunc) {
  std::set<std::string> seen;
  return rowsOf(tasks, [&](const json& t) -> Row {
    std::string name = cell(t, "name");
    if (!seen.insert(name).second) name = "\\_ " + name;
    std::string state = cell(t, "currentState");
    const std::string ago = humanSince(cell(t, "since"), now);
    if (!ago.empty()) state += " " + ago;
    std::string error = cell(t, "error");
    if (!error.empty()) error = goQuote(noTrunc ? error : ellipsis(error, kErrorWidth));
    std::string image = cell(t, "image");
    if (!noTrunc) image = image.substr(0, image.find("@sha256:"));
    return {{"ID", noTrunc ? cell(t, "id") : shortId(cell(t, "id"))},
            {"Name", name},
            {"Image", image},
            {"Node", cell(t, "node")},
            {"DesiredState", cell(t, "desiredState")},
            {"CurrentState", state},
            {"Error", error},
            {"Ports", cell(t, "ports")}};
  });
}

std::vector<Row> containerRows(const json& containers, double now, bool noTrunc) {
  return rowsOf(containers, [&](const json& c) -> Row {
    std::string command = cell(c, "command");
    if (c.is_object() && c.contains("command") && c["command"].is_array()) {
      command.clear();
      for (const auto& word : c["command"]) {
        // Appended in place: GCC 12 -O3 warns (-Wrestrict) on "" + std::string.
        if (!command.empty()) command += ' ';
        command += text(word);
      }
    }
    std::string networks;
    if (c.is_object() && c.contains("networks") && c["networks"].is_object()) {
      for (const auto& [name, address] : c["networks"].items()) {
        (void)address;
        networks += (networks.empty() ? "" : ",") + name;
      }
    }
    return {{"ID", noTrunc ? cell(c, "id") : shortId(cell(c, "id"))},
            {"Image", cell(c, "image")},
            {"Command", goQuote(noTrunc ? command : ellipsis(command, kCommandWidth))},
            {"CreatedAt", cell(c, "created")},
            {"RunningFor", c.is_object() && c.contains("created") ? since(c["created"], now) : ""},
            {"Status", cell(c, "status")},
            {"State", cell(c, "state")},
            {"Ports", cell(c, "ports")},
            {"Names", cell(c, "names")},
            {"Networks", networks},
            {"Pid", cell(c, "pid")}};
  });
}

std::vector<Row> imageRows(const json& images, double now) {
  return rowsOf(images, [&](const json& i) -> Row {
    const bool hasSize = i.is_object() && i.contains("size") && i["size"].is_number();
    return {{"Repository", cell(i, "repository").empty() ? "<none>" : cell(i, "repository")},
            {"Tag", cell(i, "tag").empty() ? "<none>" : cell(i, "tag")},
            {"ID", shortId(cell(i, "id"))},
            {"CreatedSince", i.is_object() && i.contains("created") ? since(i["created"], now) : ""},
            {"CreatedAt", cell(i, "created")},
            {"Size", hasSize ? humanSize(i["size"].get<double>()) : cell(i, "size")}};
  });
}

std::vector<Row> networkRows(const json& networks) {
  return rowsOf(networks, [](const json& n) -> Row {
    return {{"ID", shortId(cell(n, "id"))}, {"Name", cell(n, "name")}, {"Driver", cell(n, "driver")},
            {"Scope", cell(n, "scope")},    {"VNI", cell(n, "vni")},   {"Subnet", cell(n, "subnet")}};
  });
}

std::vector<Row> stackRows(const json& stacks) {
  return rowsOf(stacks, [](const json& s) -> Row {
    return {{"Name", cell(s, "name")}, {"Services", cell(s, "services")}};
  });
}

std::vector<Row> nodeRows(const json& nodes) {
  auto rows = rowsOf(nodes, [](const json& n) -> Row {
    const bool self = n.is_object() && n.value("self", false);
    return {{"ID", cell(n, "id")},
            {"Hostname", cell(n, "hostname")},
            {"Status", cell(n, "status")},
            {"Availability", cell(n, "availability")},
            {"ManagerStatus", cell(n, "managerStatus")},
            {"Self", self ? "true" : "false"},
            {"SelfMark", self ? "*" : " "},
            {"Addr", cell(n, "addr")},
            {"Role", cell(n, "role")},
            {"Tasks", cell(n, "tasks")}};
  });
  // docker lists nodes by hostname in natural order (lab2 before lab10).
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return naturalLess(a.at("Hostname"), b.at("Hostname")); });
  return rows;
}

}  // namespace skiff::cli
