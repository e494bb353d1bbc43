// The manager's side of the swarm: nodes and their join tokens, the
// dispatcher (an agent's heartbeat brings its tasks' states in and takes its
// assignment out), placement of tasks over nodes, and what happens when a
// node goes silent.
//
// The exchange is level-triggered, as a kubelet's: every heartbeat carries
// the whole state of the node's tasks and every answer the whole assignment
// (networks, tasks, published ports with their backends, overlay peers), so
// a lost message, a cut or a restart on either side heals with the next
// heartbeat and nothing depends on the order of deltas.

#include <algorithm>
#include <tuple>

#include "local_agent_link.h"
#include "orchestrator_impl.h"
#include "skiff/common/base64.h"
#include "skiff/common/log.h"
#include "skiff/netd/join_token.h"
#include "skiff/netd/reconcile.h"
#include "skiff/overlay/overlay.h"

namespace skiff::netd {
namespace {

std::string capitalized(const char* s) {
  std::string out = s;
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

// "198.51.100.11" or "198.51.100.11:2377" -> the IPv4 part; "" when invalid.
std::string ipPart(const std::string& addr) {
  std::string ip = addr.substr(0, addr.find(':'));
  return overlay::Ipv4::parse(ip) ? ip : "";
}

}  // namespace

void Orchestrator::Impl::persistNode(const NodeState& n) {
  auto st = d_.store->put("node", n.id, n.toJson());
  if (!st.ok()) log::error("netd", st.error().message);
}

void Orchestrator::Impl::stopClusterTimer() { cancelTimer(clusterTimer_); }

std::string Orchestrator::Impl::managerAddr() const {
  return (advertiseAddr_.empty() ? std::string("127.0.0.1") : advertiseAddr_) + ":" +
         listenAddr_.substr(listenAddr_.rfind(':') + 1);
}

Status Orchestrator::Impl::startManager() {
  if (!clusterListening_ && d_.clusterListen && !listenAddr_.empty()) {
    SKIFF_TRY(d_.clusterListen(listenAddr_));
    clusterListening_ = true;
  }
  stopClusterTimer();
  clusterTimer_ = startTimer(d_.loop, d_.heartbeatPeriod, [this] { managerTick(); });
  return okStatus();
}

void Orchestrator::Impl::managerTick() {
  cancelTimer(clusterTimer_);
  if (!swarm_) return;
  try {
    for (NodeState* n : members_.silent(SteadyClock::now(), d_.heartbeatTimeout, nodeId_)) {
      nodeDown(*n, "heartbeat failure");
    }
    schedulePending();
    for (auto& [name, svc] : services_) {
      if (svc.spec.mode == runtime::ServiceMode::kGlobal && !svc.removed) reconcileGlobal(svc);
    }
  } catch (const std::exception& e) {
    log::error("netd", "manager tick: ", e.what());
  }
  clusterTimer_ = startTimer(d_.loop, d_.heartbeatPeriod, [this] { managerTick(); });
}

std::string Orchestrator::Impl::nodeName(const std::string& id) const {
  if (id.empty()) return "";
  if (members_.get(id) == nullptr && id == nodeId_) return d_.hostname;
  return members_.nameOf(id);
}

std::vector<SchedNode> Orchestrator::Impl::schedNodes() const {
  std::vector<SchedNode> out;
  for (const auto& [id, n] : members_.all()) {
    SchedNode s;
    s.id = id;
    s.hostname = n.hostname;
    s.role = n.role;
    s.availability = n.availability;
    s.ready = n.ready;
    s.labels = n.labels;
    for (const auto& [tid, t] : tasks_) {
      if (t->node == id && t->live()) s.tasks++;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<Placement> Orchestrator::Impl::place(const ServiceState& svc, size_t count) {
  SchedService ss;
  ss.constraints = svc.spec.placementConstraints;
  ss.maxReplicasPerNode = svc.spec.maxReplicasPerNode;
  std::map<std::string, uint64_t> running;
  for (const auto& [id, t] : tasks_) {
    if (t->service == svc.name && t->live() && !t->stopRequested && !t->node.empty()) running[t->node]++;
  }
  return placeReplicas(schedNodes(), ss, running, count);
}

std::vector<std::string> Orchestrator::Impl::globalNodesOf(const ServiceState& svc) const {
  SchedService ss;
  ss.constraints = svc.spec.placementConstraints;
  ss.maxReplicasPerNode = svc.spec.maxReplicasPerNode;
  return globalNodes(schedNodes(), ss);
}

void Orchestrator::Impl::reconcileGlobal(ServiceState& svc) {
  if (shuttingDown_ || !swarm_) return;
  std::vector<std::string> wanted;
  if (!svc.removed) wanted = globalNodesOf(svc);
  std::set<std::string> want(wanted.begin(), wanted.end());
  // Nodes whose task waits on a restart delay, or that the restart policy
  // gave up on: the slot's last task says which node it was.
  std::set<std::string> held;
  std::set<uint64_t> usedSlots;
  for (const auto& [id, t] : tasks_) {
    if (t->service != svc.name) continue;
    if (svc.pendingRestarts.count(t->slot) || svc.haltedSlots.count(t->slot)) {
      held.insert(t->node);
      usedSlots.insert(t->slot);
    }
  }
  std::set<std::string> covered;
  for (auto& [id, t] : tasks_) {
    if (t->service != svc.name || !t->live() || t->stopRequested) continue;
    usedSlots.insert(t->slot);
    const NodeState* node = members_.get(t->node);
    // swarmkit keeps a global task on a paused node; it stops it on a
    // drained one, a removed one, or one the constraints no longer allow.
    const bool paused = node != nullptr && node->availability == NodeAvailability::kPause;
    if ((!want.count(t->node) && !(paused && !svc.removed)) || t->specVersion != svc.specVersion ||
        covered.count(t->node)) {
      stopTask(*t);
      continue;
    }
    covered.insert(t->node);
  }
  uint64_t nextSlot = 1;
  for (const auto& node : wanted) {
    if (covered.count(node) || held.count(node)) continue;
    while (usedSlots.count(nextSlot)) nextSlot++;
    usedSlots.insert(nextSlot);
    Task& t = newTask(svc, nextSlot);
    t.node = node;
    assignTask(svc, t);
  }
  updateBackends(svc);
}

void Orchestrator::Impl::removeStaleNetworks() {
  auto present = d_.overlay->listNetworks();
  if (!present.ok()) {
    log::warn("overlay", "list networks: ", present.error().message);
    return;
  }
  std::set<uint32_t> known;
  for (const auto& [name, n] : networks_) known.insert(n.vni);
  for (uint32_t vni : *present) {
    if (known.count(vni)) continue;
    overlay::NetworkConfig c;
    c.name = "stale-" + std::to_string(vni);
    c.vni = vni;
    auto st = d_.overlay->removeNetwork(c);
    if (st.ok()) {
      log::info("overlay", "removed the devices of network vni ", vni, " left by a previous run");
    } else {
      log::warn("overlay", "remove stale vni ", vni, ": ", st.error().message);
    }
  }
}

void Orchestrator::Impl::adoptKernelPeers(const NetworkState& n) {
  auto programmed = d_.overlay->listPeers(n.config());
  if (!programmed.ok()) {
    log::warn("overlay", "list peers of ", n.name, ": ", programmed.error().message);
    return;
  }
  for (const auto& p : *programmed) {
    if (std::find(peers_.begin(), peers_.end(), p) == peers_.end()) peers_.push_back(p);
  }
  std::sort(peers_.begin(), peers_.end());
}

void Orchestrator::Impl::schedulePending() {
  std::vector<std::string> pending;
  for (const auto& [id, t] : tasks_) {
    if (t->state == TaskState::kPending && !t->stopRequested) pending.push_back(id);
  }
  for (const auto& id : pending) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    Task& t = *it->second;
    auto svc = services_.find(t.service);
    if (svc == services_.end()) continue;
    auto where = place(svc->second, 1);
    if (where[0].node.empty()) {
      t.error = where[0].reason;
      continue;
    }
    t.node = where[0].node;
    t.error.clear();
    assignTask(svc->second, t);
    updateBackends(svc->second);
  }
}

void Orchestrator::Impl::orphanTasksOn(const std::string& nodeId, const std::string& why) {
  std::set<std::string> touched;
  for (auto& [id, t] : tasks_) {
    if (t->node != nodeId || !t->live()) continue;
    releaseAddresses(*t);
    t->desiredState = TaskState::kShutdown;
    t->finished = SysClock::now();
    setState(*t, TaskState::kOrphaned, why);
    touched.insert(t->service);
  }
  // Replacements go elsewhere at once: a node that is gone is not a failure
  // of the task, so no restart delay and no restart counted.
  for (const auto& name : touched) {
    auto svc = services_.find(name);
    if (svc == services_.end()) continue;
    updateBackends(svc->second);
    reconcile(svc->second);
  }
  finishRemovals();
}

void Orchestrator::Impl::nodeDown(NodeState& n, const std::string& why) {
  n.ready = false;
  log::warn("netd", "node ", n.hostname, " (", n.id, ") is down: ", why, "; its tasks are placed on other nodes");
  orphanTasksOn(n.id, "node " + n.hostname + " is down");
}

// ---- API: swarm and nodes --------------------------------------------------

ApiResult<json> Orchestrator::swarmInit(const std::string& advertiseAddr, const std::string& listenAddr) {
  Impl& m = *impl_;
  if (m.inSwarm()) {
    return ApiError{ErrorKind::kConflict,
                    "This node is already part of a swarm. Use \"skiff swarm leave\" to leave this "
                    "swarm and join another one."};
  }
  std::string listen = listenAddr.empty() ? "0.0.0.0:2377" : listenAddr;
  if (listen.find(':') == std::string::npos) listen += ":2377";
  std::string advertise;
  if (!advertiseAddr.empty()) {
    advertise = ipPart(advertiseAddr);
    if (advertise.empty() || !validPortSuffix(advertiseAddr))
      return ApiError{ErrorKind::kInvalid, "advertise address must be an IPv4 address: \"" + advertiseAddr + "\""};
  }
  if (ipPart(listen).empty() || !validPortSuffix(listen))
    return ApiError{ErrorKind::kInvalid, "listen address must be IPv4:PORT: \"" + listenAddr + "\""};
  m.nodeId_ = newObjectId();
  m.swarmCreated_ = SysClock::now();
  m.advertiseAddr_ = advertise;
  m.listenAddr_ = listen;
  m.swarm_ = true;
  runtime::NetworkSpec ingress;
  ingress.name = kIngress;
  auto created = m.ensureNetwork(kIngress, "", ingress, kIngressVni, std::nullopt);
  if (!created.ok()) {
    m.swarm_ = false;
    return ApiError{ErrorKind::kInternal, "swarm init: " + created.error().message};
  }
  NodeState self;
  self.id = m.nodeId_;
  self.hostname = m.d_.hostname;
  self.addr = advertise;
  self.role = NodeRole::kManager;
  self.created = self.updated = m.swarmCreated_;
  self.lastSeen = SteadyClock::now();
  self.ingressAddr = (*created)->nodeAddress;
  self.secret = randomBase36(32);  // its own agent heartbeats with it, as every node does
  m.members_.create(self);
  m.persistNode(self);
  // The cluster port only matters once another node joins; a single node
  // whose port is taken still works, and says why joins will fail.
  if (auto st = m.startManager(); !st.ok()) {
    log::error("netd", "cluster port ", listen, ": ", st.error().message);
  }
  m.persistSwarm();
  m.startLocalAgent(self.secret);
  log::info("netd", "swarm initialized: node ", m.nodeId_, " is now a manager",
            advertise.empty() ? "" : " (advertising " + advertise + ")");
  return json{{"nodeId", m.nodeId_},
              {"workerToken", m.members_.joinToken(NodeRole::kWorker)},
              {"managerAddr", m.managerAddr()}};
}

ApiResult<json> Orchestrator::joinToken(const std::string& role, bool rotate) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  if (role != "worker" && role != "manager") return ApiError{ErrorKind::kInvalid, "unknown role " + role};
  const NodeRole r = role == "worker" ? NodeRole::kWorker : NodeRole::kManager;
  if (rotate) {
    m.members_.rotate(r);
    m.persistSwarm();
    log::info("netd", "the ", role, " join token was rotated");
  }
  return json{{"role", role}, {"token", m.members_.joinToken(r)}, {"managerAddr", m.managerAddr()}};
}

ApiResult<json> Orchestrator::nodes() const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  json out = json::array();
  for (const auto& [id, n] : m.members_.all()) {
    uint64_t tasks = 0;
    for (const auto& [tid, t] : m.tasks_) {
      if (t->node == id && t->live()) tasks++;
    }
    out.push_back(json{{"id", id},
                       {"hostname", n.hostname},
                       {"status", n.ready ? "Ready" : "Down"},
                       {"availability", capitalized(toString(n.availability))},
                       {"managerStatus", n.role == NodeRole::kManager ? "Leader" : ""},
                       {"self", id == m.nodeId_},
                       {"addr", n.addr},
                       {"role", toString(n.role)},
                       {"labels", n.labels},
                       {"tasks", tasks}});
  }
  return out;
}

ApiResult<json> Orchestrator::inspectNode(const std::string& ref) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  const NodeState* n = const_cast<Impl&>(m).members_.find(ref == "self" ? m.nodeId_ : ref);
  if (n == nullptr) return ApiError{ErrorKind::kNotFound, "node " + ref + " not found"};
  json out{{"ID", n->id},
           {"CreatedAt", rfc3339(n->created)},
           {"UpdatedAt", rfc3339(n->updated)},
           {"Spec", {{"Role", toString(n->role)}, {"Availability", toString(n->availability)}, {"Labels", n->labels}}},
           {"Description", {{"Hostname", n->hostname}}},
           {"Status", {{"State", n->ready ? "ready" : "down"}, {"Addr", n->addr}}}};
  if (n->role == NodeRole::kManager) {
    out["ManagerStatus"] = json{{"Leader", true}, {"Reachability", "reachable"}, {"Addr", m.managerAddr()}};
  }
  return out;
}

ApiResult<json> Orchestrator::updateNode(const std::string& ref, const json& update) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  NodeState* n = m.members_.find(ref == "self" ? m.nodeId_ : ref);
  if (n == nullptr) return ApiError{ErrorKind::kNotFound, "node " + ref + " not found"};
  std::optional<NodeAvailability> availability;
  if (update.contains("availability")) {
    if (!update["availability"].is_string())
      return ApiError{ErrorKind::kInvalid, "availability must be one of active, pause, drain"};
    auto a = parseAvailability(update["availability"].get<std::string>());
    if (!a.ok()) return ApiError{ErrorKind::kInvalid, a.error().message};
    availability = *a;
  }
  if (update.contains("labelAdd") && !update["labelAdd"].is_object())
    return ApiError{ErrorKind::kInvalid, "labelAdd must be an object of strings"};
  if (update.contains("labelRm") && !update["labelRm"].is_array())
    return ApiError{ErrorKind::kInvalid, "labelRm must be an array of strings"};
  for (const auto& k : update.value("labelRm", json::array())) {
    if (!k.is_string()) return ApiError{ErrorKind::kInvalid, "labelRm must be an array of strings"};
    if (!n->labels.count(k.get<std::string>()) &&
        !update.value("labelAdd", json::object()).contains(k.get<std::string>()))
      return ApiError{ErrorKind::kInvalid, "key " + k.get<std::string>() + " doesn't exist in node's labels"};
  }
  const json labelAdd = update.value("labelAdd", json::object());
  for (const auto& [k, v] : labelAdd.items()) {
    if (!v.is_string()) return ApiError{ErrorKind::kInvalid, "label " + k + ": value must be a string"};
    n->labels[k] = v.get<std::string>();
  }
  for (const auto& k : update.value("labelRm", json::array())) {
    if (k.is_string()) n->labels.erase(k.get<std::string>());
  }
  const std::string id = n->id;
  bool drained = false;
  if (availability && *availability != n->availability) {
    n->availability = *availability;
    drained = *availability == NodeAvailability::kDrain;
    log::info("netd", "node ", n->hostname, " is now ", toString(*availability));
  }
  n->updated = SysClock::now();
  m.persistNode(*n);
  if (drained) {
    // Drain: the node's replicas stop and run elsewhere (as docker's).
    std::set<std::string> services;
    for (auto& [tid, t] : m.tasks_) {
      if (t->node == id && t->live()) {
        m.stopTask(*t);
        services.insert(t->service);
      }
    }
    for (const auto& s : services) {
      auto svc = m.services_.find(s);
      if (svc != m.services_.end()) m.reconcile(svc->second);
    }
  }
  m.schedulePending();
  return json::object();
}

ApiResult<json> Orchestrator::removeNode(const std::string& ref, bool force) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  NodeState* n = m.members_.find(ref);
  if (n == nullptr) return ApiError{ErrorKind::kNotFound, "node " + ref + " not found"};
  if (n->id == m.nodeId_) {
    return ApiError{ErrorKind::kConflict, "rpc error: code = FailedPrecondition desc = node " + n->id +
                                              " is a cluster manager and is a member of the raft cluster. It must "
                                              "be demoted to worker before removal"};
  }
  if (n->ready && !force) {
    return ApiError{ErrorKind::kConflict,
                    "rpc error: code = FailedPrecondition desc = node " + n->id + " is not down and can't be removed"};
  }
  NodeState gone = *n;
  m.members_.erase(gone.id);
  (void)m.d_.store->erase("node", gone.id);
  if (gone.ingressAddr) m.alloc_.releaseAddress(kIngress, *gone.ingressAddr);
  log::info("netd", "node ", gone.hostname, " (", gone.id, ") removed from the swarm");
  m.orphanTasksOn(gone.id, "node " + gone.hostname + " was removed");
  return json::object();
}

// ---- the cluster port ----------------------------------------------------

ApiResult<json> Orchestrator::clusterRequest(const std::string& path, const std::string& peer, const json& body) {
  return impl_->dispatch(path, peer, body);
}

ApiResult<json> Orchestrator::Impl::dispatch(const std::string& path, const std::string& peer, const json& body) {
  if (!swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  if (path == "/cluster/v1/join") return clusterJoin(body, peer);
  if (path == "/cluster/v1/heartbeat") return clusterHeartbeat(body);
  if (path == "/cluster/v1/image") return clusterImage(body);
  if (path == "/cluster/v1/layer") return clusterLayer(body);
  return ApiError{ErrorKind::kNotFound, "page not found: " + path};
}

// ---- the manager's own agent ---------------------------------------------

void Orchestrator::Impl::startLocalAgent(const std::string& secret) {
  if (agent_) retiredAgents_.push_back(std::move(agent_));  // it may still stop replicas
  if (!agentLink_) {
    agentLink_ = makeLocalAgentLink(
        d_.loop, [this](const std::string& path, const json& body) { return dispatch(path, "local", body); });
  }
  OrchestratorDeps deps = d_;
  deps.mesh = mesh_;  // one routing mesh per node
  deps.cluster = agentLink_.get();
  deps.clusterListen = nullptr;
  deps.clusterClose = nullptr;
  deps.onReconcile = nullptr;
  agent_ = std::make_unique<Impl>(std::move(deps));
  Impl& a = *agent_;
  a.worker_ = true;
  a.embedded_ = true;
  a.nodeId_ = nodeId_;
  a.nodeSecret_ = secret;
  a.managerAddr_ = "local";
  a.advertiseAddr_ = advertiseAddr_;
  a.mtu_ = mtu_;
  a.swarmCreated_ = swarmCreated_;
  a.removeStaleNetworks();  // a previous life's devices; the first assignment brings back the wanted ones
  a.startHeartbeats();
}

void Orchestrator::Impl::stopLocalAgent() {
  cancelTimer(pokeTimer_);
  if (!agent_) return;
  agent_->leaveAsWorker("left the swarm with its manager");
  retiredAgents_.push_back(std::move(agent_));
}

void Orchestrator::Impl::pokeAgent() {
  if (!agent_ || pokeTimer_ != nullptr) return;
  pokeTimer_ = startTimer(d_.loop, std::chrono::milliseconds(0), [this] {
    cancelTimer(pokeTimer_);
    if (agent_) agent_->heartbeatSoon();
  });
}

namespace {
// body[key] when it is a string, else "" (the cluster port's peers are not
// trusted: a number where a string belongs must not throw).
std::string stringOr(const json& body, const char* key, const std::string& fallback = "") {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : fallback;
}
}  // namespace

ApiResult<json> Orchestrator::Impl::clusterJoin(const json& body, const std::string& peer) {
  for (const char* key : {"token", "advertiseAddr", "hostname"}) {
    if (body.contains(key) && !body[key].is_string())
      return ApiError{ErrorKind::kInvalid, std::string(key) + " must be a string"};
  }
  const std::string token = stringOr(body, "token");
  const auto role = members_.roleOf(token);
  if (!role) {
    log::warn("netd", "join from ", peer, " refused: invalid token");
    return ApiError{ErrorKind::kForbidden,
                    std::string("rpc error: code = InvalidArgument desc = ") + kInvalidJoinToken};
  }
  if (*role == NodeRole::kManager) {
    // One manager keeps the desired state (a later step puts it on a
    // replicated store); a second one would have nothing to agree with.
    return ApiError{ErrorKind::kInvalid,
                    "this swarm keeps its state on a single manager: more managers are not "
                    "supported yet; join with the worker token"};
  }
  std::string addr = ipPart(stringOr(body, "advertiseAddr"));
  if (addr.empty()) addr = peer;
  if (addr.empty()) return ApiError{ErrorKind::kInvalid, "no advertise address and none seen on the connection"};
  if (const NodeState* there = members_.readyAt(addr)) {
    return ApiError{ErrorKind::kConflict,
                    "a node with address " + addr + " (" + there->hostname + ") is already part of this swarm"};
  }
  auto ingress = alloc_.allocateAddress(kIngress);
  if (!ingress.ok()) return ApiError{ErrorKind::kUnavailable, "ingress: " + ingress.error().message};
  const NodeState& n =
      members_.admit(stringOr(body, "hostname", addr), addr, *ingress, SysClock::now(), SteadyClock::now());
  persistNode(n);
  log::info("netd", "node ", n.hostname, " (", n.id, ", ", addr, ") joined as a worker");
  schedulePending();
  pokeAgent();  // its ingress address is a peer of this node now
  return json{{"nodeId", n.id},
              {"secret", n.secret},
              {"role", "worker"},
              {"advertiseAddr", addr},
              {"heartbeatMs", d_.heartbeatPeriod.count()}};
}

NodeState* Orchestrator::Impl::authenticate(const json& body) {
  // The manager's own agent too: it comes through the same door.
  return members_.authenticate(stringOr(body, "nodeId"), stringOr(body, "secret"));
}

// The image a task runs, for a worker that lacks it: the config bytes (its
// sha256 is the id) and the layer digests; the worker asks for the layers
// it does not have, one per request.
ApiResult<json> Orchestrator::Impl::clusterImage(const json& body) {
  const NodeState* n = authenticate(body);
  if (n == nullptr) return ApiError{ErrorKind::kUnauthorized, "node is not a member of this swarm"};
  const std::string ref = body.value("image", "");
  auto image = d_.images->resolve(ref);
  if (!image.ok()) return ApiError{ErrorKind::kNotFound, image.error().message};
  auto config = d_.images->exportImageConfig(image->id);
  if (!config.ok()) return ApiError{ErrorKind::kInternal, config.error().message};
  log::info("netd", "node ", n->hostname, " fetches image ", image->id.substr(7, 12));
  return json{{"id", image->id}, {"config", base64Encode(*config)}, {"layers", image->layers}, {"tags", image->tags}};
}

ApiResult<json> Orchestrator::Impl::clusterLayer(const json& body) {
  if (authenticate(body) == nullptr) return ApiError{ErrorKind::kUnauthorized, "node is not a member of this swarm"};
  const std::string digest = body.value("digest", "");
  auto archive = d_.images->exportLayer(digest);
  if (!archive.ok())
    return ApiError{archive.error().code == ENOENT ? ErrorKind::kNotFound : ErrorKind::kInternal,
                    archive.error().message};
  return json{{"digest", digest}, {"archive", base64Encode(*archive)}};
}

ApiResult<json> Orchestrator::Impl::clusterHeartbeat(const json& body) {
  NodeState* found = authenticate(body);
  if (found == nullptr) return ApiError{ErrorKind::kUnauthorized, "node is not a member of this swarm"};
  NodeState& n = *found;
  n.lastSeen = SteadyClock::now();
  if (!n.ready) {
    n.ready = true;
    log::info("netd", "node ", n.hostname, " is ready again");
  }
  if (body.contains("tasks") && body["tasks"].is_array()) takeReports(n, body["tasks"]);
  if (body.contains("stats")) takeStats(n, body["stats"]);
  return assignmentFor(n);
}

void Orchestrator::Impl::takeReports(NodeState& n, const json& reports) {
  std::map<std::string, const json*> byId;
  for (const auto& r : reports) {
    if (r.is_object() && r.contains("id") && r["id"].is_string()) byId[r["id"].get<std::string>()] = &r;
  }
  std::set<std::string> touched;
  std::vector<std::string> ended;
  for (auto& [id, t] : tasks_) {
    if (t->node != n.id || !t->live()) continue;
    auto r = byId.find(id);
    if (r == byId.end()) {
      // Started there before (Running) and now unknown to the node: it was
      // restarted or lost the task. Not yet started (Assigned): it will be.
      if (t->state == TaskState::kRunning) {
        if (t->stopRequested) {
          setState(*t, TaskState::kShutdown);
        } else {
          setState(*t, TaskState::kFailed, "task is no longer on node " + n.hostname);
        }
        t->finished = SysClock::now();
        ended.push_back(id);
      }
      continue;
    }
    const json& rep = *r->second;
    auto state = parseTaskState(rep.value("state", ""));
    if (!state) continue;  // a state this manager does not know: the next report says more
    if (*state == TaskState::kRunning || *state == TaskState::kStarting || *state == TaskState::kPreparing) {
      // Readiness as the node saw it: the mesh's rotation and the update follow it.
      bool ready = *state == TaskState::kRunning && rep.value("ready", false);
      t->health = rep.value("health", "");
      if (ready != t->ready) {
        t->ready = ready;
        if (ready) t->readySince = SteadyClock::now();
        touched.insert(t->service);
      }
      if (t->state != *state) {
        setState(*t, *state);
        if (*state == TaskState::kRunning) {
          t->started = SysClock::now();
          log::info("netd", "task ", t->name(), " running on node ", n.hostname);
        }
        touched.insert(t->service);
      }
    } else if (*state == TaskState::kComplete || *state == TaskState::kFailed || *state == TaskState::kShutdown ||
               *state == TaskState::kRejected) {
      t->exitCode = rep.value("exitCode", 0);
      t->finished = SysClock::now();
      setState(*t, *state, rep.value("error", ""));
      log::info("netd", "task ", t->name(), " on node ", n.hostname, " ended: ", toString(*state),
                t->error.empty() ? "" : " (" + t->error + ")");
      ended.push_back(id);
    }
  }
  for (const auto& id : ended) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    Task& t = *it->second;
    releaseAddresses(t);
    touched.insert(t.service);
    // A task that failed without an exit code of its own (it never started,
    // or was unhealthy and exited 0) is a failure to the restart policy.
    const bool failed = t.state == TaskState::kFailed || t.state == TaskState::kRejected;
    taskEnded(t, failed && t.exitCode == 0 ? 1 : t.exitCode);
  }
  for (const auto& s : touched) {
    auto svc = services_.find(s);
    if (svc == services_.end()) continue;
    updateBackends(svc->second);
    driveUpdate(svc->second);
  }
  // Another node's replica came or went: this node's peers and backends follow.
  if (!touched.empty() && n.id != nodeId_) pokeAgent();
}

std::vector<overlay::Peer> Orchestrator::Impl::peersFor(const std::string& nodeId) const {
  std::vector<overlay::Peer> out;
  for (const auto& [id, t] : tasks_) {
    if (t->node.empty() || t->node == nodeId || !t->live()) continue;
    const NodeState* node = members_.get(t->node);
    if (node == nullptr || node->addr.empty()) continue;
    auto vtep = overlay::Ipv4::parse(node->addr);
    if (!vtep) continue;
    for (const auto& ep : t->endpoints) {
      auto net = networks_.find(ep.network);
      if (net == networks_.end()) continue;
      out.push_back({net->second.vni, ep.ip, overlay::Overlay::macFor(ep.ip), *vtep});
    }
  }
  // Other nodes' own ingress addresses: the source of their proxies'
  // connections, which replicas here answer.
  auto ingress = networks_.find(kIngress);
  if (ingress != networks_.end()) {
    for (const auto& [id, n] : members_.all()) {
      if (id == nodeId || !n.ingressAddr) continue;
      auto vtep = overlay::Ipv4::parse(n.addr);
      if (!vtep) continue;
      out.push_back({ingress->second.vni, *n.ingressAddr, overlay::Overlay::macFor(*n.ingressAddr), *vtep});
    }
  }
  return out;
}

json Orchestrator::Impl::assignmentFor(const NodeState& n) const {
  json networks = json::array();
  for (const auto& [name, net] : networks_) {
    json j = net.toJson();
    j["mtu"] = net.mtu;
    j["nodeAddress"] = name == kIngress && n.ingressAddr ? n.ingressAddr->str() : "";
    networks.push_back(std::move(j));
  }
  json tasks = json::array();
  std::set<std::string> stacks, services;
  // By service and slot: a node starts its replicas in slot order.
  std::vector<const Task*> mine;
  for (const auto& [id, t] : tasks_) {
    if (t->node != n.id || !t->live() || t->stopRequested || t->state == TaskState::kPending) continue;
    mine.push_back(t.get());
  }
  std::sort(mine.begin(), mine.end(), [](const Task* a, const Task* b) {
    return std::tie(a->service, a->slot, a->id) < std::tie(b->service, b->slot, b->id);
  });
  for (const Task* t : mine) {
    json eps = json::array();
    for (const auto& ep : t->endpoints)
      eps.push_back(json{{"network", ep.network}, {"ip", ep.ip.str()}, {"prefix", ep.prefix}});
    tasks.push_back(json{{"id", t->id},
                         {"containerId", t->containerId},
                         {"service", t->service},
                         {"stack", t->stack},
                         {"slot", t->slot},
                         {"specVersion", t->specVersion},
                         {"imageId", t->imageId},
                         {"endpoints", eps}});
    stacks.insert(t->stack);
    services.insert(t->service);
  }
  // Lone containers that ran on this node and still exist: it keeps their
  // last task once ended, which `ps -a`, `logs` and `start` name.
  json containers = json::array();
  std::set<std::string> lone;
  for (const auto& [id, t] : tasks_) {
    if (t->node != n.id || !isLone(t->stack, t->service)) continue;
    auto st = stacks_.find(t->stack);
    if (st == stacks_.end()) continue;
    if (!st->second.removed) {
      if (lone.insert(t->service).second) containers.push_back(t->service);
    } else if (t->live()) {
      lone.insert(t->service);  // being removed: its spec carries the grace (rm -f: none) it stops with
    }
  }
  for (const auto& c : lone) {
    services.insert(c);  // its spec too: a stopped container is still one
    stacks.insert(c);
  }
  json listeners = json::array();
  std::map<std::string, std::string> nodeOfContainer;  // the backends' nodes, for the node's metrics
  for (const auto& [id, t] : tasks_) nodeOfContainer[t->containerId] = t->node;
  for (const auto& [name, svc] : services_) {
    if (svc.listeners.empty()) continue;
    for (const auto& port : svc.spec.ports) {
      if (port.published == 0 || port.mode != runtime::PortMode::kIngress) continue;
      json backends = json::array();
      for (const auto& b : backendsFor(svc, port))
        backends.push_back(
            json{{"id", b.id}, {"host", b.host}, {"port", b.port}, {"node", nodeName(nodeOfContainer[b.id])}});
      listeners.push_back(json{{"name", listenerName(port)},
                               {"service", name},
                               {"published", port.published},
                               {"protocol", runtime::toString(port.protocol)},
                               {"hostIp", port.hostIp},
                               {"backends", backends}});
    }
    services.insert(name);
    stacks.insert(svc.stack);
  }
  json stackSpecs = json::object();
  for (const auto& s : stacks) {
    auto st = stacks_.find(s);
    if (st != stacks_.end()) stackSpecs[s] = runtime::toJson(st->second.spec);
  }
  json serviceDocs = json::object();
  for (const auto& s : services) {
    auto svc = services_.find(s);
    if (svc == services_.end()) continue;
    serviceDocs[s] = json{{"id", svc->second.id},
                          {"stack", svc->second.stack},
                          {"name", svc->second.spec.name},
                          {"specVersion", svc->second.specVersion}};
  }
  json peers = json::array();
  for (const auto& p : peersFor(n.id))
    peers.push_back(json{{"vni", p.vni}, {"ip", p.ip.str()}, {"mac", p.mac}, {"vtep", p.vtep.str()}});
  return json{{"nodeId", n.id},          {"networks", networks},     {"stacks", stackSpecs},
              {"services", serviceDocs}, {"tasks", tasks},           {"listeners", listeners},
              {"peers", peers},          {"containers", containers}, {"heartbeatMs", d_.heartbeatPeriod.count()}};
}

// ---- both roles ------------------------------------------------------------

void Orchestrator::Impl::applyPeers(const std::vector<overlay::Peer>& wanted) {
  std::map<uint32_t, const NetworkState*> byVni;
  for (const auto& [name, n] : networks_) byVni[n.vni] = &n;
  overlay::PeerDiff diff = overlay::diffPeers(peers_, wanted);
  if (diff.add.empty() && diff.remove.empty()) return;
  std::vector<overlay::Peer> now;
  std::set<overlay::Peer> removed(diff.remove.begin(), diff.remove.end());
  for (const auto& p : peers_) {
    if (!removed.count(p)) now.push_back(p);
  }
  for (const auto& p : diff.remove) {
    auto n = byVni.find(p.vni);
    if (n == byVni.end()) continue;  // its network went, and its entries with it
    auto st = d_.overlay->removeRemotePeer(n->second->config(), p.vtep, p.mac, p.ip);
    if (!st.ok()) {
      log::warn("overlay", "remove peer ", p.ip.str(), ": ", st.error().message);
      now.push_back(p);  // try again next time
    }
  }
  for (const auto& p : diff.add) {
    auto n = byVni.find(p.vni);
    if (n == byVni.end()) continue;  // the network comes with a later assignment
    auto st = d_.overlay->addRemotePeer(n->second->config(), p.vtep, p.mac, p.ip);
    if (!st.ok()) {
      log::warn("overlay", "add peer ", p.ip.str(), " via ", p.vtep.str(), ": ", st.error().message);
      continue;
    }
    now.push_back(p);
  }
  std::sort(now.begin(), now.end());
  peers_ = std::move(now);
}

}  // namespace skiff::netd
