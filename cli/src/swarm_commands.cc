#include "swarm_commands.h"

#include <chrono>
#include <iostream>

#include "skiff/cli/http_client.h"
#include "skiff/cli/views.h"

namespace skiff::cli {

namespace {

using nlohmann::json;

double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// An argument check failed before any request: docker prints the text alone.
int refuse(const Error& error) {
  std::cerr << error.message << "\n";
  return 1;
}

}  // namespace

std::optional<std::string> resolveNodeName(const Daemon& daemon, const std::string& name) {
  if (name != "self") return name;
  auto info = daemon.call("GET", "/v1/info");
  if (!info) return std::nullopt;
  const std::string id = info->is_object() && info->contains("swarm") ? cell((*info)["swarm"], "nodeId") : "";
  if (!id.empty()) return id;
  // No node ID: this node is probably no manager (or in no swarm). A swarm
  // route gets the daemon's own words for it, as docker does.
  if (!daemon.call("GET", "/v1/nodes")) return std::nullopt;
  std::cerr << "node ID not found in /info\n";
  return std::nullopt;
}

SwarmCommands::SwarmCommands(CLI::App& app, Commands& commands) : commands_(commands) {
  addSwarm(app);
  addNode(app);
}

void SwarmCommands::addSwarm(CLI::App& app) {
  auto* swarm = app.add_subcommand("swarm", "Manage the swarm")->require_subcommand(1);

  auto* init = swarm->add_subcommand("init", "Initialize a swarm (this node becomes its manager)");
  init->add_option("--advertise-addr", advertiseAddr_, "Advertised address (format: \"<ip|interface>[:port]\")");
  init->add_option("--listen-addr", listenAddr_, "Listen address (format: \"<ip|interface>[:port]\")")
      ->capture_default_str();
  commands_.bind(init, [this] { return this->init(); });

  auto* joinToken = swarm->add_subcommand("join-token", "Manage join tokens");
  joinToken->add_option("ROLE", role_, "worker or manager")->required();
  joinToken->add_flag("--rotate", rotate_, "Rotate join token");
  joinToken->add_flag("-q,--quiet", quiet_, "Only display token");
  commands_.bind(joinToken, [this] { return this->joinToken(); });

  auto* join = swarm->add_subcommand("join", "Join a swarm as a node and/or manager");
  join->add_option("--token", token_, "Token for entry into the swarm");
  join->add_option("--advertise-addr", advertiseAddr_, "Advertised address (format: \"<ip|interface>[:port]\")");
  join->add_option("HOST:PORT", remoteAddr_, "A manager of the swarm (port 2377 when omitted)")->required();
  commands_.bind(join, [this] { return this->join(); });

  auto* leave = swarm->add_subcommand("leave", "Leave the swarm");
  leave->add_flag("-f,--force", force_, "Force this node to leave the swarm, ignoring warnings");
  commands_.bind(leave, [this] { return this->leave(); });
}

void SwarmCommands::addNode(CLI::App& app) {
  auto* node = app.add_subcommand("node", "Manage swarm nodes")->require_subcommand(1);

  commands_.addListCommand(
      node, "List nodes in the swarm", "Format output using a custom template", "Only display IDs", nodeView(),
      "/v1/nodes", [](const json& answer, const ListFlags&) -> Result<std::vector<Row>> { return nodeRows(answer); });

  commands_.addInspectCommand(
      node, "Display detailed information on one or more nodes", "NODE", "Node IDs, ID prefixes, hostnames or self",
      "/v1/nodes/", [](const json& n) { std::cout << nodePrettyText(n); }, resolveNodeName);

  auto* update = node->add_subcommand("update", "Update a node");
  update->add_option("--availability", update_.availability,
                     "Availability of the node (\"active\", \"pause\", \"drain\")");
  update->add_option("--label-add", update_.labelAdd, "Add or update a node label (\"key=value\")")
      ->allow_extra_args(false)
      ->expected(1)
      ->take_all();
  update->add_option("--label-rm", update_.labelRm, "Remove a node label if exists")
      ->allow_extra_args(false)
      ->expected(1)
      ->take_all();
  update->add_option("NODE", node_, "Node ID, ID prefix or hostname")->required();
  commands_.bind(update, [this] { return nodeUpdate(); });

  auto* rm = node->add_subcommand("rm", "Remove one or more nodes from the swarm")->alias("remove");
  rm->add_flag("-f,--force", force_, "Force remove a node from the swarm");
  rm->add_option("NODE", nodes_, "Node IDs, ID prefixes or hostnames")->required();
  commands_.bind(rm, [this] { return nodeRm(); });

  auto* ps = node->add_subcommand("ps", "List tasks running on a node, defaults to current node");
  ps->add_option("NODE", psFlags_.target, "Node ID, ID prefix, hostname or self (default self)");
  ps->add_option("--format", psFlags_.format, "Pretty-print tasks using a Go template");
  ps->add_flag("--no-trunc", psFlags_.noTrunc, "Do not truncate output");
  ps->add_flag("-q,--quiet", psFlags_.quiet, "Only display task IDs");
  commands_.bind(ps, [this] { return nodePs(); });
}

int SwarmCommands::init() const {
  auto listen = withSwarmPort(listenAddr_, /*emptyHostIsAny=*/true);
  if (!listen) return refuse(listen.error());
  auto answer = commands_.daemon().call("POST", "/v1/swarm/init",
                                        json{{"advertiseAddr", advertiseAddr_}, {"listenAddr", listen.value()}});
  if (!answer) return 1;
  std::cout << swarmInitText(*answer);
  return 0;
}

int SwarmCommands::joinToken() const {
  if (auto role = validateJoinTokenRole(role_); !role) return refuse(role.error());
  auto answer = commands_.daemon().call("POST", "/v1/swarm/join-token", json{{"role", role_}, {"rotate", rotate_}});
  if (!answer) return 1;
  std::cout << joinTokenText(*answer, role_, rotate_, quiet_);
  return 0;
}

int SwarmCommands::join() const {
  // Refused here rather than by the daemon, with cobra's words for a
  // required flag, so a forgotten token costs no connection to the manager.
  if (token_.empty()) return refuse(Error::msg("required flag(s) \"token\" not set"));
  auto remote = withSwarmPort(remoteAddr_);
  if (!remote) return refuse(remote.error());
  auto answer = commands_.daemon().call(
      "POST", "/v1/swarm/join",
      json{{"token", token_}, {"remoteAddr", remote.value()}, {"advertiseAddr", advertiseAddr_}});
  if (!answer) return 1;
  std::cout << joinedText(*answer);
  return 0;
}

int SwarmCommands::leave() const {
  auto answer = commands_.daemon().call("POST", "/v1/swarm/leave", json{{"force", force_}});
  if (!answer) return 1;
  std::cout << "Node left the swarm.\n";
  return 0;
}

int SwarmCommands::nodeUpdate() const {
  auto body = nodeUpdateBody(update_);
  if (!body) return refuse(body.error());
  if (!commands_.daemon().call("POST", "/v1/nodes/" + escapePath(node_) + "/update", body.value())) return 1;
  std::cout << node_ << "\n";  // docker prints the name as given
  return 0;
}

int SwarmCommands::nodeRm() const {
  const Daemon daemon = commands_.daemon();
  // Every node is tried; the exit code is 1 if any was refused.
  return forEachItem(nodes_, [&](const std::string& name) {
    if (!daemon.call("DELETE", "/v1/nodes/" + escapePath(name) + (force_ ? "?force=1" : ""))) return false;
    std::cout << name << "\n";
    return true;
  });
}

int SwarmCommands::nodePs() const {
  const Daemon daemon = commands_.daemon();
  // The template is checked before "self" costs a request.
  if (auto tmpl = listTemplate(taskView(), psFlags_); !tmpl) return refuse(tmpl.error());
  auto node = resolveNodeName(daemon, psFlags_.target.empty() ? "self" : psFlags_.target);
  if (!node) return 1;
  return runList(daemon, taskView(), psFlags_, "/v1/tasks?" + queryParam("node", *node),
                 [](const json& answer, const ListFlags& flags) -> Result<std::vector<Row>> {
                   return taskRows(answer, nowSeconds(), flags.noTrunc || flags.quiet);
                 });
}

}  // namespace skiff::cli
