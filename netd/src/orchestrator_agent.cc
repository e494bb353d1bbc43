// A worker's side of the swarm: join, then one heartbeat per period to the
// manager, carrying the state of this node's tasks; the answer is the whole
// assignment, carried out here: overlay networks (bridge + VXLAN with this
// node's address as VTEP), the tasks to run (addresses chosen by the
// manager), the routing mesh's listeners with every replica of the swarm as
// backends, and the remote peers programmed statically into the kernel.
// Also `swarm leave` for both roles.
//
// A worker never restarts a task on its own: it reports the end and the
// manager decides where the replacement runs. While the manager is away
// (cut, restarting) the worker keeps what runs and keeps asking.

#include <algorithm>

#include "orchestrator_impl.h"
#include "skiff/common/base64.h"
#include "skiff/common/log.h"
#include "skiff/netd/join_token.h"
#include "skiff/overlay/overlay.h"

namespace skiff::netd {
namespace {

constexpr std::chrono::milliseconds kJoinTimeout{8000};

std::string withPort(const std::string& addr) { return addr.find(':') == std::string::npos ? addr + ":2377" : addr; }

}  // namespace

ClusterClient& Orchestrator::Impl::client() {
  if (d_.cluster != nullptr) return *d_.cluster;
  if (!ownClient_) ownClient_ = makeClusterClient(d_.loop);
  return *ownClient_;
}

// The checks a join makes before it asks the manager: the request's
// manager address ("IP:PORT") and advertise address, or the refusal.
std::variant<Orchestrator::Impl::JoinRequest, ApiError> Orchestrator::Impl::joinRequest(
    const std::string& token, const std::string& remoteAddr, const std::string& advertiseAddr) const {
  if (inSwarm()) {
    return ApiError{ErrorKind::kConflict,
                    "This node is already part of a swarm. Use \"skiff swarm leave\" to leave this "
                    "swarm and join another one."};
  }
  if (joining_) return ApiError{ErrorKind::kConflict, "This node is already joining a swarm; try again in a moment."};
  if (token.empty()) return ApiError{ErrorKind::kInvalid, kInvalidJoinToken};
  JoinRequest r;
  r.remote = withPort(remoteAddr);
  if (!overlay::Ipv4::parse(r.remote.substr(0, r.remote.rfind(':'))) || !validPortSuffix(r.remote))
    return ApiError{ErrorKind::kInvalid, "invalid manager address \"" + remoteAddr + "\" (want IPv4[:PORT])"};
  r.advertise = advertiseAddr.substr(0, advertiseAddr.find(':'));
  if ((!r.advertise.empty() && !overlay::Ipv4::parse(r.advertise)) || !validPortSuffix(advertiseAddr))
    return ApiError{ErrorKind::kInvalid, "advertise address must be an IPv4 address: \"" + advertiseAddr + "\""};
  r.body = json{{"token", token}, {"hostname", d_.hostname}, {"advertiseAddr", r.advertise}};
  log::info("netd", "joining the swarm of manager ", r.remote);
  return r;
}

ApiResult<json> Orchestrator::swarmJoin(const std::string& token, const std::string& remoteAddr,
                                        const std::string& advertiseAddr) {
  Impl& m = *impl_;
  auto req = m.joinRequest(token, remoteAddr, advertiseAddr);
  if (auto* refused = std::get_if<ApiError>(&req)) return *refused;
  const auto& r = std::get<Impl::JoinRequest>(req);
  return m.joined(r, m.client().postNow(r.remote, "/cluster/v1/join", r.body, kJoinTimeout));
}

void Orchestrator::swarmJoin(const std::string& token, const std::string& remoteAddr, const std::string& advertiseAddr,
                             std::function<void(ApiResult<json>)> done) {
  Impl& m = *impl_;
  auto req = m.joinRequest(token, remoteAddr, advertiseAddr);
  if (auto* refused = std::get_if<ApiError>(&req)) {
    done(*refused);
    return;
  }
  auto r = std::get<Impl::JoinRequest>(req);
  m.joining_ = true;
  m.client().post(r.remote, "/cluster/v1/join", r.body, kJoinTimeout,
                  [&m, r, done = std::move(done)](Result<ClusterReply> reply) {
                    m.joining_ = false;
                    done(m.joined(r, reply));
                  });
}

ApiResult<json> Orchestrator::Impl::joined(const JoinRequest& r, const Result<ClusterReply>& reply) {
  Impl& m = *this;
  const std::string& remote = r.remote;
  if (m.inSwarm()) {
    return ApiError{ErrorKind::kConflict, "This node joined another swarm meanwhile."};
  }
  if (!reply.ok()) {
    return ApiError{ErrorKind::kUnavailable,
                    "could not join the swarm: the manager at " + remote + " did not answer: " + reply.error().message};
  }
  if (reply->status != 200) {
    ErrorKind kind = reply->status >= 400 && reply->status < 600 ? kindOfStatus(reply->status) : ErrorKind::kBadGateway;
    return ApiError{kind, reply->body.value("message", "the manager refused the join")};
  }
  const json& a = reply->body;
  if (!a.is_object() || a.value("nodeId", "").empty() || a.value("secret", "").empty())
    return ApiError{ErrorKind::kBadGateway, "the manager at " + remote + " answered the join without a node id"};
  m.nodeId_ = a.value("nodeId", "");
  m.nodeSecret_ = a.value("secret", "");
  m.advertiseAddr_ = a.value("advertiseAddr", r.advertise);
  m.managerAddr_ = remote;
  m.swarmCreated_ = SysClock::now();
  m.worker_ = true;
  m.managerReachable_ = true;
  m.persistSwarm();
  m.startHeartbeats();
  log::info("netd", "joined the swarm of manager ", remote, " as worker ", m.nodeId_, " (advertising ",
            m.advertiseAddr_, ")");
  return json{{"nodeId", m.nodeId_}, {"role", "worker"}};
}

ApiResult<json> Orchestrator::swarmLeave(bool force) {
  Impl& m = *impl_;
  if (m.worker_) {
    m.leaveAsWorker("left the swarm");
    return json::object();
  }
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, "This node is not part of a swarm"};
  if (!force) {
    return ApiError{ErrorKind::kConflict,
                    "You are attempting to leave the swarm on a node that is participating as a manager. "
                    "Removing the last manager erases all current state of the swarm. Use `--force` to ignore "
                    "this message."};
  }
  m.stopClusterTimer();
  if (m.d_.clusterClose) m.d_.clusterClose();
  m.clusterListening_ = false;
  for (auto& [name, s] : m.stacks_) s.removed = true;
  for (auto& [name, s] : m.services_) {
    if (!s.removed) m.removeService(s);
  }
  // This node's replicas stop (its agent leaves too). Replicas on other
  // nodes are theirs now: their agents stop them when they find the manager
  // gone from under them (their heartbeats are refused).
  m.stopLocalAgent();
  for (auto& [id, t] : m.tasks_) {
    if (t->live()) {
      m.releaseAddresses(*t);
      m.setState(*t, TaskState::kOrphaned, "the manager left the swarm");
    }
  }
  // Stacks and their networks go; ingress and the store go now (a later
  // init makes them anew).
  m.swarm_ = false;
  m.finishRemovals();  // ingress goes there too, once no replica drains through it
  for (const auto& [id, n] : m.members_.all()) (void)m.d_.store->erase("node", id);
  m.members_.clear();
  (void)m.d_.store->erase("swarm", "self");
  log::info("netd", "node left the swarm");
  return json::object();
}

void Orchestrator::Impl::leaveAsWorker(const std::string& why) {
  worker_ = false;
  stopClusterTimer();
  for (auto& [id, t] : tasks_) {
    if (t->live()) stopTask(*t);
  }
  for (auto& [name, s] : stacks_) s.removed = true;
  for (auto& [name, s] : services_) s.removed = true;
  for (const auto& l : agentListeners_) (void)mesh_->removeListener(l);
  agentListeners_.clear();
  backendNodes_.clear();
  lastBackends_.clear();
  for (auto& [name, s] : services_) s.listeners.clear();
  applyPeers({});
  if (!embedded_) (void)d_.store->erase("swarm", "self");  // the manager's own agent keeps nothing there
  log::info("netd", "node ", why, " (was worker ", nodeId_, " of manager ", managerAddr_, ")");
  managerAddr_.clear();
  nodeSecret_.clear();
  finishRemovals();
}

void Orchestrator::Impl::startHeartbeats() {
  stopClusterTimer();
  clusterTimer_ = startTimer(d_.loop, std::chrono::milliseconds(0), [this] { heartbeat(); });
}

json Orchestrator::Impl::reportTasks() {
  json out = json::array();
  for (const auto& [id, t] : tasks_) {
    out.push_back(json{{"id", id},
                       {"state", toString(t->state)},
                       {"error", t->error},
                       {"exitCode", t->exitCode},
                       {"ready", t->ready},
                       {"health", t->health}});
  }
  return out;
}

void Orchestrator::Impl::heartbeatSoon() {
  if (!worker_ || shuttingDown_) return;
  if (heartbeatBusy_) {
    heartbeatAgain_ = true;  // once the answer to the one on its way is in
    return;
  }
  cancelTimer(clusterTimer_);
  clusterTimer_ = startTimer(d_.loop, std::chrono::milliseconds(0), [this] { heartbeat(); });
}

void Orchestrator::Impl::heartbeat() {
  cancelTimer(clusterTimer_);
  if (!worker_ || shuttingDown_) return;
  auto again = [this] {
    if (!worker_ || shuttingDown_ || clusterTimer_ != nullptr) return;
    auto after = heartbeatAgain_ ? std::chrono::milliseconds(0) : d_.heartbeatPeriod;
    heartbeatAgain_ = false;
    clusterTimer_ = startTimer(d_.loop, after, [this] { heartbeat(); });
  };
  if (heartbeatBusy_) {
    again();
    return;
  }
  // Ended tasks in this report may be dropped once the manager has it.
  std::vector<std::string> ended;
  for (const auto& [id, t] : tasks_) {
    if (!t->live()) ended.push_back(id);
  }
  json body{{"nodeId", nodeId_}, {"secret", nodeSecret_}, {"hostname", d_.hostname}, {"tasks", reportTasks()}};
  body["stats"] = statsReport();  // its replicas' use and its proxy's counters, for `skiff stats`
  heartbeatBusy_ = true;
  auto timeout = std::max(std::chrono::milliseconds(2000), 2 * d_.heartbeatPeriod);
  client().post(managerAddr_, "/cluster/v1/heartbeat", std::move(body), timeout,
                [this, ended, again](Result<ClusterReply> reply) {
                  heartbeatBusy_ = false;
                  if (!worker_ || shuttingDown_) return;
                  try {
                    if (!reply.ok()) {
                      if (managerReachable_)
                        log::warn("netd", "manager ", managerAddr_, " unreachable: ", reply.error().message,
                                  "; replicas here keep running");
                      managerReachable_ = false;
                    } else if (reply->status == 401) {
                      log::warn("netd",
                                "the manager no longer knows this node "
                                "(it was removed from the swarm)");
                      leaveAsWorker("was removed from the swarm");
                      return;
                    } else if (reply->status != 200) {
                      log::warn("netd", "heartbeat to ", managerAddr_, ": ", reply->status, " ",
                                reply->body.value("message", ""));
                    } else {
                      if (!managerReachable_) log::info("netd", "manager ", managerAddr_, " reachable again");
                      managerReachable_ = true;
                      for (const auto& id : ended) {
                        auto it = tasks_.find(id);
                        if (it != tasks_.end()) it->second->reported = true;
                      }
                      // The manager next door: the next assignment, which
                      // lets the reported ones go, comes at once.
                      if (embedded_ && !ended.empty()) heartbeatAgain_ = true;
                      applyAssignment(reply->body);
                    }
                  } catch (const std::exception& e) {
                    log::error("netd", "heartbeat: ", e.what());
                  }
                  again();
                });
}

void Orchestrator::Impl::fetchImage(const std::string& imageId) {
  if (!fetching_.insert(imageId).second) return;  // already on its way
  log::info("netd", "fetching image ", imageId.substr(7, 12), " from the manager");
  client().post(managerAddr_, "/cluster/v1/image",
                json{{"nodeId", nodeId_}, {"secret", nodeSecret_}, {"image", imageId}},
                std::chrono::milliseconds(10000), [this, imageId](Result<ClusterReply> reply) {
                  try {
                    if (!reply.ok()) return imageFetched(imageId, reply.error().message);
                    if (reply->status != 200) return imageFetched(imageId, reply->body.value("message", "refused"));
                    auto config = base64Decode(reply->body.value("config", ""));
                    if (!config) return imageFetched(imageId, "bad image config from the manager");
                    std::vector<std::string> missing;
                    for (const auto& l : reply->body.value("layers", json::array())) {
                      if (l.is_string() && !d_.images->hasLayer(l.get<std::string>()))
                        missing.push_back(l.get<std::string>());
                    }
                    std::string tag;
                    auto tags = reply->body.value("tags", json::array());
                    if (!tags.empty() && tags[0].is_string()) tag = tags[0].get<std::string>();
                    fetchLayers(imageId, std::move(*config), tag, std::move(missing));
                  } catch (const std::exception& e) {
                    imageFetched(imageId, e.what());
                  }
                });
}

void Orchestrator::Impl::fetchLayers(const std::string& imageId, std::string config, std::string tag,
                                     std::vector<std::string> missing) {
  if (!worker_) return imageFetched(imageId, "left the swarm");
  if (missing.empty()) {
    auto imported = d_.images->importImage(config, tag);
    if (!imported.ok()) return imageFetched(imageId, imported.error().message);
    if (imported->id != imageId)
      return imageFetched(imageId, "the manager sent image " + imported->id + ", not " + imageId);
    // Each task names its image by the service's reference: tag it so here.
    for (const auto& [id, t] : tasks_) {
      if (t->imageId == imageId && t->image != tag) (void)d_.images->tag(imageId, t->image);
    }
    log::info("netd", "image ", imageId.substr(7, 12), " fetched from the manager");
    return imageFetched(imageId, "");
  }
  std::string digest = missing.back();
  missing.pop_back();
  client().post(managerAddr_, "/cluster/v1/layer",
                json{{"nodeId", nodeId_}, {"secret", nodeSecret_}, {"digest", digest}},
                std::chrono::milliseconds(60000),
                [this, imageId, config = std::move(config), tag = std::move(tag), missing = std::move(missing),
                 digest](Result<ClusterReply> reply) mutable {
                  try {
                    if (!reply.ok()) return imageFetched(imageId, reply.error().message);
                    if (reply->status != 200) return imageFetched(imageId, reply->body.value("message", "refused"));
                    auto archive = base64Decode(reply->body.value("archive", ""));
                    if (!archive) return imageFetched(imageId, "bad layer archive from the manager");
                    auto st = d_.images->importLayer(digest, *archive);
                    if (!st.ok()) return imageFetched(imageId, st.error().message);
                    fetchLayers(imageId, std::move(config), std::move(tag), std::move(missing));
                  } catch (const std::exception& e) {
                    imageFetched(imageId, e.what());
                  }
                });
}

void Orchestrator::Impl::imageFetched(const std::string& imageId, const std::string& error) {
  fetching_.erase(imageId);
  if (!error.empty()) log::warn("netd", "image ", imageId.substr(7, 12), ": ", error);
  std::vector<std::string> waiting;
  for (const auto& [id, t] : tasks_) {
    if (t->imageId == imageId && t->state == TaskState::kPreparing && !t->stopRequested) waiting.push_back(id);
  }
  for (const auto& id : waiting) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    Task& t = *it->second;
    auto svc = services_.find(t.service);
    if (!error.empty() || svc == services_.end()) {
      rejectTask(t, "image " + t.image + ": " + (error.empty() ? "service gone" : error));
      continue;
    }
    t.error.clear();
    runTask(svc->second, t);
  }
}

void Orchestrator::Impl::applyAssignment(const json& a) {
  // 1. Networks: the manager's VNIs and subnets, this node's VTEP address.
  std::set<std::string> wantedNets;
  for (const auto& nj : a.value("networks", json::array())) {
    NetworkState n;
    n.name = nj.value("name", "");
    n.id = nj.value("id", "");
    n.stack = nj.value("stack", "");
    n.vni = nj.value("vni", 0u);
    n.mtu = nj.value("mtu", mtu_);
    n.local = advertiseAddr_;
    n.spec.name = n.name;
    auto subnet = overlay::Subnet::parse(nj.value("subnet", ""));
    if (n.name.empty() || n.vni == 0 || !subnet) continue;
    n.subnet = *subnet;
    n.nodeAddress = overlay::Ipv4::parse(nj.value("nodeAddress", ""));
    wantedNets.insert(n.name);
    auto have = networks_.find(n.name);
    if (have != networks_.end()) {
      const NetworkState& h = have->second;
      if (h.vni == n.vni && h.subnet.str() == n.subnet.str() && h.nodeAddress == n.nodeAddress && h.local == n.local)
        continue;
      removeNetwork(n.name);
    }
    auto st = d_.overlay->ensureNetwork(n.config());
    if (!st.ok()) {
      log::error("overlay", "network ", n.name, ": ", st.error().message);
      continue;
    }
    networks_[n.name] = n;
    adoptKernelPeers(networks_[n.name]);
  }

  // 2. What the tasks need to start: stack specs (configs, volumes) and the
  // services they belong to.
  // (Kept in locals: items() of a temporary would dangle.)
  const json stackDocs = a.value("stacks", json::object());
  const json serviceDocs = a.value("services", json::object());
  std::map<std::string, std::string> badStacks;  // a stack this node cannot read: why
  for (const auto& [name, spec] : stackDocs.items()) {
    try {
      runtime::StackSpec parsed = runtime::stackFromJson(spec);
      StackState& s = stacks_[name];
      s.name = name;
      s.spec = std::move(parsed);
      s.removed = false;
    } catch (const std::exception& e) {
      std::string why = "stack ";
      why.append(name).append(": ").append(e.what());
      auto& said = badStacks[name];
      said = why;
      log::error("netd", "assignment: ", why);
    }
  }
  for (const auto& [full, sj] : serviceDocs.items()) {
    auto st = stacks_.find(sj.value("stack", ""));
    if (st == stacks_.end()) continue;
    auto spec = st->second.spec.services.find(sj.value("name", ""));
    if (spec == st->second.spec.services.end()) continue;
    ServiceState& s = services_[full];
    s.name = full;
    s.id = sj.value("id", "");
    s.stack = st->first;
    s.spec = spec->second;
    s.specVersion = sj.value("specVersion", uint64_t{1});
    s.removed = false;
  }

  // 3. The routing mesh: every published port of the swarm, with every
  // running replica of the swarm behind it.
  std::set<std::string> wantedListeners;
  std::map<std::string, std::vector<std::string>> listenersOf;
  for (const auto& lj : a.value("listeners", json::array())) {
    std::string name = lj.value("name", "");
    if (name.empty()) continue;
    wantedListeners.insert(name);
    listenersOf[lj.value("service", "")].push_back(name);
    if (!agentListeners_.count(name)) {
      proxy::ListenerConfig lc;
      lc.name = name;
      std::string hostIp = lj.value("hostIp", "");
      lc.bindHost = hostIp.empty() ? "0.0.0.0" : hostIp;
      lc.port = lj.value("published", uint16_t{0});
      lc.udp = lj.value("protocol", "tcp") == "udp";
      auto st = mesh_->addListener(lc);
      if (!st.ok()) {
        // Tried again with every assignment; said once (and again if it changes).
        auto& last = listenerErrors_[name];
        if (last != st.error().message) log::error("proxy", "published port ", name, ": ", st.error().message);
        last = st.error().message;
        continue;
      }
      listenerErrors_.erase(name);
      agentListeners_.insert(name);
    }
    std::vector<proxy::Backend> backends;
    auto& nodes = backendNodes_[name];
    nodes.clear();
    for (const auto& bj : lj.value("backends", json::array())) {
      proxy::Backend b{bj.value("id", ""), bj.value("host", ""), bj.value("port", uint16_t{0})};
      nodes[b.id] = bj.value("node", "");
      // A replica this node runs: its process, for the kernel path's check.
      // This node knows its own replicas better than an assignment the
      // manager made from an older report: one that is no longer ready
      // (unhealthy, stopping, gone) is not put back in rotation.
      bool outOfRotation = false;
      for (const auto& [tid, t] : tasks_) {
        if (t->containerId != b.id) continue;
        if (t->launched && t->live()) b.pid = t->launched->pid;
        outOfRotation = !t->live() || !t->ready || t->stopRequested;
      }
      if (!outOfRotation) backends.push_back(std::move(b));
    }
    lastBackends_[name] = backends;
    mesh_->setBackends(name, std::move(backends));
  }
  for (auto it = agentListeners_.begin(); it != agentListeners_.end();) {
    if (wantedListeners.count(*it)) {
      ++it;
      continue;
    }
    (void)mesh_->removeListener(*it);
    backendNodes_.erase(*it);
    lastBackends_.erase(*it);
    it = agentListeners_.erase(it);
  }
  for (auto& [name, s] : services_) {
    // A port another service took over (a renamed service): this one's
    // replicas still drain there before they stop, as on the manager.
    for (const auto& l : s.listeners) {
      const auto& now = listenersOf[name];
      if (wantedListeners.count(l) && std::find(now.begin(), now.end(), l) == now.end() &&
          std::find(s.handedOver.begin(), s.handedOver.end(), l) == s.handedOver.end())
        s.handedOver.push_back(l);
    }
    std::erase_if(s.handedOver, [&](const std::string& l) { return !wantedListeners.count(l); });
    s.listeners = listenersOf[name];
  }

  // 4. Tasks: stop what is no longer assigned (first, as the manager
  // decided: a start-first update stops a slot's old replica before it
  // starts the next slot's new one), forget ended ones the manager has
  // heard about, start what is new.
  std::set<std::string> assigned;
  for (const auto& tj : a.value("tasks", json::array())) {
    std::string id = tj.value("id", "");
    if (!id.empty()) assigned.insert(id);
  }
  // A lone container the manager still has keeps its newest task once it
  // ended: stopped, not gone (`ps -a`, its logs).
  std::set<std::string> keptLone;
  for (const auto& c : a.value("containers", json::array())) {
    if (c.is_string()) keptLone.insert(c.get<std::string>());
  }
  std::vector<std::string> forget;
  for (auto& [id, t] : tasks_) {
    if (assigned.count(id)) continue;
    if (t->live()) {
      stopTask(*t);
    } else if (t->reported && !(keptLone.count(t->service) && newestTaskOf(t->service) == t.get())) {
      forget.push_back(id);
    }
  }
  for (const auto& id : forget) {
    auto it = tasks_.find(id);
    if (it != tasks_.end()) dropTask(*it->second);
  }
  for (const auto& tj : a.value("tasks", json::array())) {
    std::string id = tj.value("id", "");
    if (id.empty()) continue;
    if (tasks_.count(id)) continue;
    auto svc = services_.find(tj.value("service", ""));
    if (svc == services_.end()) {
      // Not runnable here: the manager hears why (and its restart policy
      // decides), instead of waiting for a start that never comes.
      auto bad = badStacks.find(tj.value("stack", ""));
      std::string why = bad != badStacks.end() ? bad->second : "unknown service " + tj.value("service", "");
      log::error("netd", "assignment: task ", id, ": ", why);
      auto owned = std::make_unique<Task>();
      owned->id = id;
      owned->containerId = tj.value("containerId", "");
      owned->service = tj.value("service", "");
      owned->stack = tj.value("stack", "");
      owned->node = nodeId_;
      owned->slot = tj.value("slot", uint64_t{0});
      owned->created = owned->since = SysClock::now();
      Task& t = *owned;
      tasks_.emplace(id, std::move(owned));
      setState(t, TaskState::kRejected, why);
      continue;
    }
    auto owned = std::make_unique<Task>();
    Task& t = *owned;
    t.id = id;
    t.containerId = tj.value("containerId", "");
    t.service = svc->first;
    t.stack = svc->second.stack;
    t.node = nodeId_;
    t.slot = tj.value("slot", uint64_t{0});
    t.specVersion = tj.value("specVersion", uint64_t{1});
    t.image = svc->second.spec.image;
    t.created = t.since = SysClock::now();
    for (const auto& ej : tj.value("endpoints", json::array())) {
      auto ip = overlay::Ipv4::parse(ej.value("ip", ""));
      if (!ip) continue;
      TaskEndpoint ep;
      ep.network = ej.value("network", "");
      ep.ip = *ip;
      ep.prefix = ej.value("prefix", 24);
      ep.mac = overlay::Overlay::macFor(*ip);
      t.endpoints.push_back(ep);
    }
    t.imageId = tj.value("imageId", "");
    if (t.containerId.size() != 64) continue;
    tasks_.emplace(id, std::move(owned));
    trimHistory(t.service, t.slot);
    // The manager's image, by id: a node without it (or with another image
    // under the same tag) fetches it first.
    auto local = d_.images->resolve(t.image);
    if (!t.imageId.empty() && (!local.ok() || local->id != t.imageId)) {
      setState(t, TaskState::kPreparing, "fetching image " + t.image + " from the manager");
      fetchImage(t.imageId);
      continue;
    }
    runTask(svc->second, t);
  }

  // 5. Overlay peers: every endpoint on other nodes, written statically.
  std::vector<overlay::Peer> peers;
  for (const auto& pj : a.value("peers", json::array())) {
    auto ip = overlay::Ipv4::parse(pj.value("ip", ""));
    auto vtep = overlay::Ipv4::parse(pj.value("vtep", ""));
    if (!ip || !vtep) continue;
    peers.push_back({pj.value("vni", 0u), *ip, pj.value("mac", ""), *vtep});
  }
  applyPeers(peers);

  // 6. What the manager no longer names and nothing here uses goes.
  std::vector<std::string> unusedNets;
  for (const auto& [name, n] : networks_) {
    if (wantedNets.count(name)) continue;
    bool used = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& kv) {
      return kv.second->live() && std::any_of(kv.second->endpoints.begin(), kv.second->endpoints.end(),
                                              [&](const TaskEndpoint& ep) { return ep.network == name; });
    });
    if (!used) unusedNets.push_back(name);
  }
  for (const auto& n : unusedNets) removeNetwork(n);
  for (auto it = services_.begin(); it != services_.end();) {
    if (!serviceDocs.contains(it->first) && !anyLive(it->first)) {
      for (auto* t : tasksOf(it->first)) dropTask(*t);
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = stacks_.begin(); it != stacks_.end();) {
    bool busy =
        std::any_of(services_.begin(), services_.end(), [&](const auto& kv) { return kv.second.stack == it->first; });
    it = busy ? std::next(it) : stacks_.erase(it);
  }
}

}  // namespace skiff::netd
