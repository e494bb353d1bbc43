// What the API shows: docker-like JSON for services, tasks, containers and
// networks, read from the orchestrator's state (nothing here changes it).

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "orchestrator_impl.h"
#include "skiff/common/duration.h"

namespace skiff::netd {
namespace fs = std::filesystem;

uint64_t Orchestrator::Impl::servingCount(const std::string& service) const {
  uint64_t n = 0;
  for (const auto& [id, t] : tasks_) {
    if (t->service == service && t->state == TaskState::kRunning && t->ready && !t->stopRequested) n++;
  }
  return n;
}

json Orchestrator::Impl::serviceSummary(const ServiceState& s) const {
  uint64_t running = servingCount(s.name);
  // Global: one per node that passes the filters (docker shows "3/3" too).
  uint64_t desired = s.spec.mode == runtime::ServiceMode::kGlobal ? globalNodesOf(s).size() : s.spec.replicas;
  return json{{"id", s.id},
              {"name", s.name},
              {"stack", s.stack},
              {"mode", runtime::toString(s.spec.mode)},
              {"replicas", std::to_string(running) + "/" + std::to_string(desired)},
              {"running", running},
              {"desired", desired},
              {"image", s.spec.image},
              {"ports", portsText(s.spec.ports)}};
}

json Orchestrator::Impl::taskJson(const Task& t) const {
  // A task of this node: its process is its agent's (the manager's record
  // has none).
  const Task* here = runningHere(t.id);
  const Task* running = here != nullptr ? here : &t;
  return json{{"id", t.id},
              {"name", t.name()},
              {"service", t.service},
              {"stack", t.stack},
              {"slot", t.slot},
              {"image", t.image},
              {"node", nodeName(t.node)},
              {"nodeId", t.node},
              {"desiredState", toString(t.desiredState)},
              {"currentState", toString(t.state)},
              {"since", rfc3339(t.since)},
              {"error", t.error},
              {"containerId", t.containerId},
              {"pid", running->launched && running->live() ? running->launched->pid : 0},
              {"exitCode", t.exitCode},
              {"specVersion", t.specVersion},
              {"ready", t.ready},
              {"health", t.health},
              {"ports", ""}};
}

std::string exitedStatus(int exitCode, SysClock::time_point finished) {
  return "Exited (" + std::to_string(exitCode) + ") " +
         humanDuration(std::chrono::duration<double>(SysClock::now() - finished).count()) + " ago";
}

std::string Orchestrator::Impl::containerStatus(const Task& t) const {
  if (t.state == TaskState::kRunning) {
    // docker's: "Up 5 seconds (healthy)", "(health: starting)", "(unhealthy)".
    std::string up = "Up " + humanDuration(std::chrono::duration<double>(SysClock::now() - t.started).count());
    if (t.health == "starting") return up + " (health: starting)";
    if (!t.health.empty()) up += " (" + t.health + ")";  // in place: GCC 12 -O3 -Wrestrict
    return up;
  }
  if (t.state == TaskState::kStarting || t.state == TaskState::kNew) return "Created";
  return exitedStatus(t.exitCode, t.finished);
}

json Orchestrator::Impl::containerSummary(const Task& t) const {
  json nets = json::object();
  for (const auto& ep : t.endpoints) nets[ep.network] = ep.ip.str();
  // Its service's published ports (the routing mesh's, on every node).
  auto svc = services_.find(t.service);
  const std::string ports = svc != services_.end() && t.live() ? portsText(svc->second.spec.ports) : "";
  std::string command;
  for (const auto& a : t.spec.argv) {
    if (!command.empty()) command += ' ';  // in place: GCC 12 -O3 -Wrestrict on "" + string
    command += a;
  }
  return json{{"id", t.containerId},
              {"names", containerName(t)},
              {"image", t.image},
              {"command", command},
              {"created", rfc3339(t.created)},
              {"status", containerStatus(t)},
              {"state", t.state == TaskState::kRunning ? "running"
                        : t.live()                     ? "created"
                                                       : "exited"},
              {"pid", t.launched && t.state == TaskState::kRunning ? t.launched->pid : 0},
              {"ports", ports},
              {"networks", nets}};
}

ApiResult<json> Orchestrator::info() const {
  const Impl& m = *impl_;
  return json{{"swarm",
               {{"nodeId", m.inSwarm() ? m.nodeId_ : ""},
                {"state", m.inSwarm() ? "active" : "inactive"},
                {"role", m.swarm_    ? "manager"
                         : m.worker_ ? "worker"
                                     : ""},
                {"nodeAddr", m.advertiseAddr_},
                {"managerAddr", m.swarm_ ? m.managerAddr() : m.managerAddr_},
                {"nodes", m.swarm_ ? m.members_.size() : 0},
                {"createdAt", m.swarm_ ? rfc3339(m.swarmCreated_) : ""}}},
              {"version", "0.1.0"},
              {"dataRoot", m.d_.dataRoot},
              {"hostname", m.d_.hostname},
              {"cgroup", m.d_.cgroupVersion}};
}

ApiResult<json> Orchestrator::listStacks() const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  json out = json::array();
  for (const auto& [name, s] : m.stacks_) {
    if (!s.removed && !s.lone) out.push_back(json{{"name", name}, {"services", s.spec.services.size()}});
  }
  return out;
}

ApiResult<json> Orchestrator::listServices(const std::string& stackFilter) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  json out = json::array();
  for (const auto& [name, s] : m.services_) {
    if (s.removed || isLone(s.stack, s.name) || (!stackFilter.empty() && s.stack != stackFilter)) continue;
    out.push_back(m.serviceSummary(s));
  }
  if (!stackFilter.empty() && out.empty())
    return ApiError{ErrorKind::kNotFound, "Nothing found in stack: " + stackFilter};
  return out;
}

ApiResult<json> Orchestrator::inspectService(const std::string& name) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  const ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{ErrorKind::kNotFound, "no such service: " + name};
  json ports = json::array();
  // Endpoint.Ports also says what serves each published port on this node:
  // "proxy", or "socket-lb+proxy" (netd --kernel-lb); "host" for mode host.
  json servedPorts = json::array();
  json vips = json::array();
  for (const auto& p : s->spec.ports) {
    ports.push_back(json{{"Protocol", runtime::toString(p.protocol)},
                         {"TargetPort", p.target},
                         {"PublishedPort", p.published},
                         {"PublishMode", runtime::toString(p.mode)}});
    servedPorts.push_back(ports.back());
    servedPorts.back()["Path"] = p.mode == runtime::PortMode::kHost ? "host"
                                 : m.mesh_ != nullptr               ? m.mesh_->pathOf(listenerName(p))
                                                                    : "proxy";
  }
  runtime::StackSpec one;
  one.services[s->spec.name] = s->spec;
  json specJson = runtime::toJson(one)["services"][s->spec.name];
  json labels = json::object();
  for (const auto& [k, v] : s->spec.labels) labels[k] = v;
  labels["com.docker.stack.namespace"] = s->stack;
  json networks = json::array();
  for (const auto& n : m.networksOf(*s)) {
    auto it = m.networks_.find(n);
    if (it != m.networks_.end()) networks.push_back(json{{"Target", it->second.id}, {"Name", n}});
  }
  json inspected{{"ID", s->id},
                 {"Version", {{"Index", s->specVersion}}},
                 {"CreatedAt", rfc3339(s->created)},
                 {"UpdatedAt", rfc3339(s->updated)},
                 {"Spec",
                  {{"Name", s->name},
                   {"Labels", labels},
                   {"TaskTemplate",
                    {{"ContainerSpec",
                      {{"Image", s->spec.image},
                       {"Command", s->spec.entrypoint ? json(*s->spec.entrypoint) : json(nullptr)},
                       {"Args", s->spec.command ? json(*s->spec.command) : json(nullptr)},
                       {"StopGracePeriod", static_cast<int64_t>(s->spec.stopGracePeriodSeconds * 1e9)}}},
                     {"Resources",
                      {{"Limits",
                        {{"NanoCPUs", static_cast<int64_t>(s->spec.limits.cpus * 1e9)},
                         {"MemoryBytes", s->spec.limits.memoryBytes}}}}},
                     {"RestartPolicy",
                      {{"Condition", runtime::toString(s->spec.restartPolicy.condition)},
                       {"Delay", static_cast<int64_t>(s->spec.restartPolicy.delaySeconds * 1e9)},
                       {"MaxAttempts", s->spec.restartPolicy.maxAttempts},
                       {"Window", static_cast<int64_t>(s->spec.restartPolicy.windowSeconds * 1e9)}}},
                     {"Networks", networks}}},
                   {"Mode", s->spec.mode == runtime::ServiceMode::kGlobal
                                ? json{{"Global", json::object()}}
                                : json{{"Replicated", {{"Replicas", s->spec.replicas}}}}},
                   {"EndpointSpec", {{"Mode", "vip"}, {"Ports", ports}}}}},
                 {"Endpoint", {{"Ports", servedPorts}, {"VirtualIPs", vips}}},
                 {"Skiff", {{"Spec", specJson}, {"Running", m.servingCount(s->name)}}}};
  if (!s->spec.placementConstraints.empty() || s->spec.maxReplicasPerNode != 0) {
    json placement{{"Constraints", s->spec.placementConstraints}};
    if (s->spec.maxReplicasPerNode != 0) placement["MaxReplicas"] = s->spec.maxReplicasPerNode;
    inspected["Spec"]["TaskTemplate"]["Placement"] = placement;
  }
  if (s->update) inspected["UpdateStatus"] = m.updateStatus(*s);
  if (s->previousSpec) inspected["PreviousSpec"] = json{{"Image", s->previousSpec->image}};
  return inspected;
}

ApiResult<json> Orchestrator::serviceLogs(const std::string& name) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  const ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{ErrorKind::kNotFound, "no such service: " + name};
  // This node's replicas (its agent's): their log files are here.
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.node().tasks_) {
    if (t->service == s->name && !t->spec.logPath.empty()) tasks.push_back(t.get());
  }
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) { return a->created < b->created; });
  json lines = json::array();
  for (const Task* t : tasks) {
    std::istringstream in(readLogTail(t->spec.logPath));
    std::string line;
    while (std::getline(in, line)) {
      lines.push_back(json{{"task", t->name() + "." + t->id}, {"node", m.d_.hostname}, {"text", line}});
    }
  }
  return json{{"lines", lines}};
}

ApiResult<json> Orchestrator::listTasks(const std::string& serviceFilter, const std::string& stackFilter,
                                        const std::string& nodeFilter) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  std::string service = serviceFilter;
  if (!service.empty()) {
    const ServiceState* s = m.findService(service);
    if (s == nullptr) return ApiError{ErrorKind::kNotFound, "no such service: " + serviceFilter};
    service = s->name;
  }
  if (!stackFilter.empty() && !m.stacks_.count(stackFilter))
    return ApiError{ErrorKind::kNotFound, "Nothing found in stack: " + stackFilter};
  std::string node;
  if (!nodeFilter.empty()) {
    const NodeState* n = const_cast<Impl&>(m).members_.find(nodeFilter == "self" ? m.nodeId_ : nodeFilter);
    if (n == nullptr) return ApiError{ErrorKind::kNotFound, "node " + nodeFilter + " not found"};
    node = n->id;
  }
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.tasks_) {
    if (!node.empty() && t->node != node) continue;
    if (!service.empty() && t->service != service) continue;
    if (!stackFilter.empty() && t->stack != stackFilter) continue;
    tasks.push_back(t.get());
  }
  // Per service and slot, newest first — the order docker's `service ps` shows.
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) {
    if (a->service != b->service) return a->service < b->service;
    if (a->slot != b->slot) return a->slot < b->slot;
    return a->created > b->created;
  });
  json out = json::array();
  for (const Task* t : tasks) out.push_back(m.taskJson(*t));
  return out;
}

// Containers are this node's: its agent runs them.
ApiResult<json> Orchestrator::listContainers(bool all) const {
  const Impl& m = impl_->node();
  json out = json::array();
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.tasks_) {
    if (t->spec.id.empty() || t->containerCleaned) continue;  // never got a container
    if (!all && t->state != TaskState::kRunning) continue;
    // A lone container is its newest task: its earlier lives are history.
    if (isLone(t->stack, t->service) && m.newestTaskOf(t->service) != t.get()) continue;
    tasks.push_back(t.get());
  }
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) { return a->created > b->created; });
  for (const Task* t : tasks) out.push_back(m.containerSummary(*t));
  // A stopped container netd has run no task of since it restarted: its
  // last life, as kept (tasks are not stored).
  if (!all) return out;
  for (const auto& [name, st] : impl_->stacks_) {
    if (!st.lone) continue;
    if (auto kept = impl_->endedLone(name)) out.push_back((*kept)["row"]);
  }
  return out;
}

ApiResult<json> Orchestrator::inspectContainer(const std::string& ref) const {
  const Impl& m = impl_->node();
  // A stopped container's name before another's id prefix, as for a task.
  if (auto kept = impl_->endedLone(ref, /*nameOnly=*/true)) return (*kept)["inspect"];
  const Task* t = m.findContainer(ref);
  if (t != nullptr && !t->spec.id.empty()) return m.containerInspect(*t);
  if (auto kept = impl_->endedLone(ref)) return (*kept)["inspect"];
  return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
}

json Orchestrator::Impl::containerInspect(const Task& t) const {
  json nets = json::object();
  for (const auto& ep : t.endpoints) {
    auto n = networks_.find(ep.network);
    nets[ep.network] = json{{"NetworkID", n != networks_.end() ? n->second.id : ""},
                            {"EndpointID", ep.hostIfName},
                            {"IPAddress", ep.ip.str()},
                            {"IPPrefixLen", ep.prefix},
                            {"MacAddress", ep.mac},
                            {"Gateway", ""}};
  }
  bool running = t.state == TaskState::kRunning;
  json env = t.spec.env;
  json cmd = t.spec.argv;
  return json{{"Id", t.containerId},
              {"Name", std::string(1, '/').append(containerName(t))},
              {"Created", rfc3339(t.created)},
              {"Path", t.spec.argv.empty() ? "" : t.spec.argv[0]},
              {"Image", t.imageId},
              {"State",
               {{"Status", running    ? "running"
                           : t.live() ? "created"
                                      : "exited"},
                {"Running", running},
                {"Pid", running && t.launched ? t.launched->pid : 0},
                {"ExitCode", t.exitCode},
                {"Error", t.error},
                {"StartedAt", rfc3339(t.started)},
                {"FinishedAt", rfc3339(t.finished)}}},
              {"LogPath", t.spec.logPath},
              {"Config",
               {{"Hostname", t.spec.hostname},
                {"Image", t.image},
                {"Env", env},
                {"Cmd", cmd},
                {"WorkingDir", t.spec.workingDir},
                {"User", t.spec.user},
                {"Labels",
                 {{"com.docker.swarm.service.name", t.service},
                  {"com.docker.swarm.task.id", t.id},
                  {"com.docker.swarm.task.name", t.name() + "." + t.id},
                  {"com.docker.stack.namespace", t.stack}}}}},
              {"HostConfig",
               {{"Memory", t.spec.limits.memoryBytes},
                {"NanoCpus", static_cast<int64_t>(t.spec.limits.cpus * 1e9)},
                {"PidsLimit", t.spec.limits.pids},
                {"SecurityOpt", runtime::securityOptOf(t.spec.seccomp, t.spec.seccompProfile)}}},
              {"NetworkSettings", {{"Networks", nets}}}};
}

ApiResult<json> Orchestrator::containerLogs(const std::string& ref, std::optional<uint64_t> since) const {
  const Impl& m = impl_->node();
  // A stopped container's name before another's id prefix, as for a task.
  auto named = impl_->endedLone(ref, /*nameOnly=*/true);
  const Task* t = named ? nullptr : m.findContainer(ref);
  std::string path, id;
  bool running = false;
  int exitCode = 0;
  if (t != nullptr && !t->spec.id.empty()) {
    path = t->spec.logPath;
    id = t->containerId;
    running = t->live();
    exitCode = t->exitCode;
  } else if (auto kept = named ? named : impl_->endedLone(ref)) {
    // A stopped container's log, kept across a restart.
    path = (*kept)["inspect"].value("LogPath", "");
    id = (*kept)["inspect"].value("Id", "");
    exitCode = (*kept)["inspect"]["State"].value("ExitCode", 0);
  } else {
    return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
  }
  // `logs -f` asks again from where the last answer ended, until the
  // container no longer runs and nothing is left to read.
  uint64_t end = 0;
  std::string text = since ? readLogFrom(path, *since, &end) : readLogTail(path);
  if (!since) {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    end = ec ? 0 : size;
  }
  json out{{"text", text}, {"id", id}, {"offset", end}, {"running", running}};
  if (!running) out["exitCode"] = exitCode;
  return out;
}

ApiResult<json> Orchestrator::listNetworks() const {
  const Impl& m = *impl_;
  json out = json::array();
  for (const auto& [name, n] : m.networks_) {
    out.push_back(json{{"id", n.id},
                       {"name", name},
                       {"driver", "overlay"},
                       {"scope", "swarm"},
                       {"vni", n.vni},
                       {"subnet", n.subnet.str()}});
  }
  return out;
}

ApiResult<json> Orchestrator::inspectNetwork(const std::string& name) const {
  const Impl& m = *impl_;
  const NetworkState* n = nullptr;
  for (const auto& [key, net] : m.networks_) {
    if (key == name || net.id.rfind(name, 0) == 0) n = &net;
  }
  if (n == nullptr) return ApiError{ErrorKind::kNotFound, "network " + name + " not found"};
  json containers = json::object();
  for (const auto& [id, t] : m.tasks_) {
    if (!t->live()) continue;
    for (const auto& ep : t->endpoints) {
      if (ep.network != n->name) continue;
      containers[t->containerId] = json{{"Name", containerName(*t)},
                                        {"EndpointID", ep.hostIfName},
                                        {"MacAddress", ep.mac},
                                        {"IPv4Address", ep.ip.str() + "/" + std::to_string(ep.prefix)}};
    }
  }
  json peers = json::array({json{{"Name", m.d_.hostname}, {"IP", "127.0.0.1"}}});
  json config = json{{"Subnet", n->subnet.str()}, {"Gateway", n->subnet.gateway().str()}};
  json labels = json::object();
  if (!n->stack.empty()) labels["com.docker.stack.namespace"] = n->stack;
  return json{{"Name", n->name},
              {"Id", n->id},
              {"Scope", "swarm"},
              {"Driver", "overlay"},
              {"Ingress", n->name == kIngress},
              {"IPAM", {{"Driver", "default"}, {"Config", json::array({config})}}},
              {"Options", {{"com.docker.network.driver.overlay.vxlanid_list", std::to_string(n->vni)}}},
              {"VNI", n->vni},
              {"MTU", n->mtu},
              {"NodeAddress", n->nodeAddress ? n->nodeAddress->str() : ""},
              {"Labels", labels},
              {"Peers", peers},
              {"Containers", containers}};
}

std::vector<Orchestrator::ServiceCount> Orchestrator::serviceCounts() const {
  std::vector<ServiceCount> out;
  for (const auto& [name, s] : impl_->services_) {
    if (s.removed) continue;
    // Desired as `service ls` counts it: a global service wants one per eligible node.
    uint64_t desired = s.spec.mode == runtime::ServiceMode::kGlobal ? impl_->globalNodesOf(s).size() : s.spec.replicas;
    // State changes are counted where tasks run: this node's agent.
    const auto& agentServices = impl_->node().services_;
    auto here = agentServices.find(name);
    ServiceCount c{s.stack,
                   name,
                   impl_->servingCount(name),
                   desired,
                   {},
                   {},
                   s.restarts,
                   here != agentServices.end() ? here->second.transitions : s.transitions,
                   {}};
    for (const auto& p : s.spec.ports) {
      if (p.published == 0) continue;
      std::string label = std::to_string(p.published);
      label += '/';
      label += runtime::toString(p.protocol);
      c.listeners[listenerName(p)] = label;
      // A worker learns the nodes of other nodes' replicas from its assignment.
      const auto& known = impl_->node().backendNodes_;
      auto nodes = known.find(listenerName(p));
      if (nodes != known.end()) c.backendNodes.insert(nodes->second.begin(), nodes->second.end());
    }
    // A replica that ended by itself (exited, was killed, failed its health
    // check, its node went) is a backend that is down while its slot (a
    // global service: its node) is still wanted and has no ready replica;
    // then its series goes. Of several (a crash loop), the newest.
    const bool global = s.spec.mode == runtime::ServiceMode::kGlobal;
    std::set<std::string> globalNodes;
    if (global) {
      for (auto& n : impl_->globalNodesOf(s)) globalNodes.insert(std::move(n));
    }
    auto keyOf = [&](const Task& t) { return global ? t.node : std::to_string(t.slot); };
    std::map<std::string, const Task*> lastDied;
    std::set<std::string> served;
    for (const auto& [id, t] : impl_->tasks_) {
      if (t->service != name || t->started == SysClock::time_point{}) continue;
      // Every replica that ran keeps its node, also while it drains.
      c.backendNodes[t->containerId] = t->node.empty() ? impl_->d_.hostname : impl_->nodeName(t->node);
      if (t->state == TaskState::kRunning && t->ready) served.insert(keyOf(*t));
      if (t->live() || (t->stopRequested && !t->unhealthy)) continue;
      const Task*& last = lastDied[keyOf(*t)];
      if (last == nullptr || t->started > last->started) last = t.get();
    }
    for (const auto& [key, t] : lastDied) {
      const bool wanted =
          global ? globalNodes.count(t->node) != 0 : t->slot <= s.spec.replicas && !s.haltedSlots.count(t->slot);
      if (wanted && !served.count(key)) c.downBackends.push_back(t->containerId);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Orchestrator::NetworkPeers> Orchestrator::peerCounts() const {
  const Impl& m = impl_->node();  // the kernel's entries are the agent's
  std::map<uint32_t, std::string> byVni;
  for (const auto& [name, n] : m.networks_) byVni[n.vni] = name;
  std::map<std::string, NetworkPeers> counts;
  std::map<std::string, std::set<overlay::Ipv4>> vteps;
  // Every network this node carries has a row, also without peers.
  for (const auto& [vni, name] : byVni) counts[name].network = name;
  for (const auto& p : m.peers_) {
    auto n = byVni.find(p.vni);
    if (n == byVni.end()) continue;
    NetworkPeers& c = counts[n->second];
    // A half entry (adopted from a previous life) is one kernel entry, not two.
    const overlay::Ipv4 none{};
    if (p.vtep != none) {
      ++c.fdbEntries;
      vteps[n->second].insert(p.vtep);
    }
    if (p.ip != none) ++c.neighbours;
  }
  std::vector<NetworkPeers> out;
  for (auto& [name, c] : counts) {
    c.remoteVteps = vteps[name].size();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace skiff::netd
