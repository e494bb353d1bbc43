// Desired state: swarm, stacks and their networks; deploy validates whole
// before it changes anything. See orchestrator.h for the design note.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "orchestrator_impl.h"
#include "skiff/common/log.h"
#include "skiff/netd/join_token.h"
#include "skiff/runtime/names.h"

namespace skiff::netd {
namespace fs = std::filesystem;
namespace {

// docker's driver option for an overlay's MTU (a smaller underlay, jumbo
// frames); absent: the underlay's MTU - 50.
Result<std::optional<int>> mtuFromOptions(const runtime::NetworkSpec& spec) {
  auto o = spec.driverOpts.find("com.docker.network.driver.mtu");
  if (o == spec.driverOpts.end()) return std::optional<int>();
  int mtu = 0;
  const char* end = o->second.data() + o->second.size();
  auto [stop, ec] = std::from_chars(o->second.data(), end, mtu);
  if (ec != std::errc() || stop != end || mtu < 68 || mtu > 65535)
    return Error::msg("invalid com.docker.network.driver.mtu \"" + o->second + "\" (want 68..65535)");
  return std::optional<int>(mtu);
}

}  // namespace

void Orchestrator::Impl::persistSwarm() {
  json doc{{"nodeId", nodeId_},
           {"role", swarm_ ? "manager" : "worker"},
           {"advertiseAddr", advertiseAddr_},
           {"createdAt", rfc3339(swarmCreated_)},
           {"created", std::chrono::duration_cast<std::chrono::seconds>(swarmCreated_.time_since_epoch()).count()}};
  if (swarm_) {
    doc["listenAddr"] = listenAddr_;
    doc["clusterKey"] = members_.clusterKey();
    doc["workerSecret"] = members_.roleSecret(NodeRole::kWorker);
    doc["managerSecret"] = members_.roleSecret(NodeRole::kManager);
  } else {
    doc["managerAddr"] = managerAddr_;
    doc["secret"] = nodeSecret_;
  }
  auto st = d_.store->put("swarm", "self", doc);
  if (!st.ok()) log::error("netd", st.error().message);
}

void Orchestrator::Impl::persistNetwork(const NetworkState& n) {
  auto st = d_.store->put("network", n.name, n.toJson());
  if (!st.ok()) log::error("netd", st.error().message);
}

Status Orchestrator::Impl::persistStack(const StackState& s) {
  json doc{{"name", s.name}, {"spec", runtime::toJson(s.spec)}};
  if (s.lone) doc["container"] = json{{"autoRemove", s.lone->autoRemove}, {"stopTimeout", s.lone->stopTimeout}};
  // Restore deploys what is stored: no write then, so a full disk does not
  // keep stored stacks from starting.
  auto stored = d_.store->get("stack", s.name);
  if (stored.ok() && stored->has_value() && **stored == doc) return okStatus();
  auto st = d_.store->put("stack", s.name, doc);
  if (!st.ok()) {
    log::error("netd", "cannot save stack ", s.name, ": ", st.error().message);
    return Error::msg("cannot save the swarm state: " + st.error().message);
  }
  return okStatus();
}

void Orchestrator::Impl::persistContainer(const Task& t) {
  auto st = d_.store->put("container", t.containerId,
                          json{{"id", t.containerId}, {"stateDir", t.spec.stateDir}, {"task", t.name()}});
  if (!st.ok()) log::error("netd", st.error().message);
}

void Orchestrator::Impl::forgetContainer(const std::string& id) {
  auto st = d_.store->erase("container", id);
  if (!st.ok()) log::error("netd", st.error().message);
}

Result<NetworkState*> Orchestrator::Impl::ensureNetwork(const std::string& name, const std::string& stack,
                                                        const runtime::NetworkSpec& spec, std::optional<uint32_t> vni,
                                                        std::optional<overlay::Subnet> subnet) {
  auto it = networks_.find(name);
  if (it != networks_.end()) return &it->second;
  NetworkState n;
  n.name = name;
  n.id = newObjectId();
  n.stack = stack;
  n.spec = spec;
  n.mtu = mtu_;
  n.local = advertiseAddr_;
  auto mtuOption = mtuFromOptions(spec);
  if (!mtuOption.ok()) return Error::msg("network " + name + ": " + mtuOption.error().message);
  if (*mtuOption) n.mtu = **mtuOption;
  std::optional<overlay::Subnet> requested = subnet;
  if (!requested && !spec.subnet.empty()) {
    requested = overlay::Subnet::parse(spec.subnet);
    if (!requested) return Error::msg("network " + name + ": invalid subnet \"" + spec.subnet + "\"");
  }
  auto allocated = alloc_.allocateNetwork(name, vni, requested);
  if (!allocated.ok()) return Error::msg("network " + name + ": " + allocated.error().message);
  n.vni = allocated->vni;
  n.subnet = allocated->subnet;
  if (name == kIngress) {
    // The node's own address on ingress: the proxy's source toward replicas.
    auto addr = alloc_.allocateAddress(name);
    if (!addr.ok()) {
      alloc_.releaseNetwork(name);
      return addr.error();
    }
    n.nodeAddress = *addr;
  }
  // The manager allocates; each node's agent makes the devices when its
  // assignment names the network.
  auto [pos, inserted] = networks_.emplace(name, std::move(n));
  persistNetwork(pos->second);
  return &pos->second;
}

void Orchestrator::Impl::removeNetwork(const std::string& name) {
  auto it = networks_.find(name);
  if (it == networks_.end()) return;
  if (ownsKernel()) {
    // An agent: the kernel's devices.
    auto st = d_.overlay->removeNetwork(it->second.config());
    if (!st.ok()) log::warn("overlay", "remove network ", name, ": ", st.error().message);
    // Its peers' kernel entries went with its VXLAN device.
    const uint32_t vni = it->second.vni;
    std::erase_if(peers_, [vni](const overlay::Peer& p) { return p.vni == vni; });
  }
  if (!embedded_) {
    // The manager: the swarm's VNI and subnet, and the record of them (a
    // worker has neither; its node's store is its own).
    alloc_.releaseNetwork(name);
    (void)d_.store->erase("network", name);
  }
  networks_.erase(it);
}

std::optional<ApiError> Orchestrator::Impl::checkNetworkSpec(const std::string& name,
                                                             const runtime::NetworkSpec& net) const {
  if (net.driver != "overlay") {
    return ApiError{ErrorKind::kInvalid,
                    "network " + name + ": driver \"" + net.driver + "\" is not supported (only overlay)"};
  }
  if (auto mtu = mtuFromOptions(net); !mtu.ok())
    return ApiError{ErrorKind::kInvalid, "network " + name + ": " + mtu.error().message};
  if (!net.subnet.empty() && !overlay::Subnet::parse(net.subnet))
    return ApiError{ErrorKind::kInvalid, "network " + name + ": invalid subnet \"" + net.subnet + "\""};
  return std::nullopt;
}

std::optional<ApiError> Orchestrator::Impl::checkExternalNetwork(const std::string& name, bool lone) const {
  auto n = networks_.find(name);
  if (n == networks_.end()) {
    return ApiError{ErrorKind::kInvalid,
                    lone ? "network " + name + " not found"
                         : "network \"" + name +
                               "\" is declared as external, but could not be found. You need to create a "
                               "swarm-scoped network before the stack is deployed"};
  }
  if (name == kIngress) {
    return ApiError{ErrorKind::kInvalid,
                    "The network \"ingress\" cannot be used with services. Only networks scoped to the swarm can be "
                    "used, such as those created with the overlay driver."};
  }
  // As docker's: a container joins only a network made attachable.
  if (lone && !n->second.spec.attachable) {
    return ApiError{ErrorKind::kInvalid, "Could not attach to network " + name + ": network " + name +
                                             " not manually attachable (its stack's file makes it so with "
                                             "\"attachable: true\")"};
  }
  return std::nullopt;
}

ApiResult<json> Orchestrator::Impl::deploy(const std::string& name, const runtime::StackSpec& spec,
                                           const std::optional<LoneContainer>& lone) {
  if (!swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  auto fullName = [&](const std::string& svc) { return serviceFullName(name, svc, lone.has_value()); };
  // Names become host paths and device names: the one rule of runtime/names.h.
  // Services and networks are named <stack>_<name>, a length swarmkit bounds too.
  if (auto st = runtime::checkName(runtime::NameKind::kStack, name); !st.ok())
    return ApiError{ErrorKind::kInvalid, st.error().message};
  for (const auto& [n, svc] : spec.services) {
    if (auto st = runtime::checkName(runtime::NameKind::kService, fullName(n)); !st.ok())
      return ApiError{ErrorKind::kInvalid, st.error().message};
  }
  for (const auto& [n, net] : spec.networks) {
    if (net.external) continue;  // names a network that exists, checked below
    if (auto st = runtime::checkName(runtime::NameKind::kNetwork, name + "_" + n); !st.ok())
      return ApiError{ErrorKind::kInvalid, st.error().message};
  }
  if (shuttingDown_) return ApiError{ErrorKind::kUnavailable, "netd is shutting down"};
  auto existing = stacks_.find(name);
  if (existing != stacks_.end() && existing->second.removed) {
    return ApiError{ErrorKind::kConflict, "stack " + name + " is being removed; try again in a moment"};
  }
  // Stacks and lone containers share one namespace of names.
  if (existing != stacks_.end() && existing->second.lone.has_value() != lone.has_value()) {
    return ApiError{ErrorKind::kConflict,
                    lone ? "Conflict. The container name \"/" + name + "\" is already in use by stack " + name +
                               ". You have to remove (or rename) that stack to be able to reuse that name."
                         : "the name " + name +
                               " is already in use by a container (skiff run); remove it with \"skiff rm -f " + name +
                               "\" first"};
  }
  // 1. Validate everything before touching anything.
  for (const auto& [svcName, svc] : spec.services) {
    auto old = services_.find(fullName(svcName));
    if (old != services_.end() && old->second.stack != name) {
      return ApiError{
          ErrorKind::kConflict,
          lone ? "Conflict. The container name \"/" + name + "\" is already in use by service " + old->first +
                     ". You have to remove (or rename) that service to be able to reuse that name."
          : isLone(old->second.stack, old->first)
              ? "service " + old->first + ": the name is already in use by a container (skiff run)"
              : "service " + old->first + ": the name is already in use by a service of stack " + old->second.stack};
    }
    if (old != services_.end() && old->second.removed) {
      return ApiError{ErrorKind::kConflict, "service " + old->first + " is being removed; try again in a moment"};
    }
    if (svc.image.empty()) return ApiError{ErrorKind::kInvalid, "service " + svcName + ": image is required"};
    if (svc.replicas > kMaxReplicas) {
      return ApiError{ErrorKind::kInvalid, "service " + svcName + ": replicas " + std::to_string(svc.replicas) +
                                               " is more than this node can address (at most " +
                                               std::to_string(kMaxReplicas) + ")"};
    }
    auto image = d_.images->resolve(svc.image);
    if (!image.ok()) return ApiError{ErrorKind::kInvalid, image.error().message};
    // API clients do not go through the compose parser's checks.
    if (auto st = validateConstraints(svc.placementConstraints); !st.ok())
      return ApiError{ErrorKind::kInvalid, "service " + svcName + ": " + st.error().message};
    if (auto st = runtime::checkHostname(svc.hostname, svc.hostname.find("{{") != std::string::npos); !st.ok())
      return ApiError{ErrorKind::kInvalid, "service " + svcName + ": " + st.error().message};
    for (const auto& n : svc.networks) {
      if (!spec.networks.count(n.name))
        return ApiError{ErrorKind::kInvalid,
                        "service " + svcName + " uses network " + n.name + " which is not declared"};
    }
    for (const auto& v : svc.volumes) {
      if (v.type == runtime::MountType::kBind && !fs::exists(v.source)) {
        return ApiError{ErrorKind::kInvalid,
                        "service " + svcName + ": invalid mount config: bind source path does not exist: " + v.source};
      }
    }
  }
  for (const auto& [netName, net] : spec.networks) {
    if (net.external) {
      if (auto err = checkExternalNetwork(net.externalName.empty() ? netName : net.externalName, lone.has_value()))
        return *err;
      continue;
    }
    if (auto err = checkNetworkSpec(netName, net)) return *err;
  }
  // Published ports: unique across the swarm (other stacks and this file).
  std::map<std::string, std::string> owners;  // "4000/tcp" -> service
  for (const auto& [svcName, svc] : services_) {
    if (svc.stack == name || svc.removed) continue;
    for (const auto& p : svc.spec.ports) {
      if (p.published) owners[std::to_string(p.published) + "/" + runtime::toString(p.protocol)] = svcName;
    }
  }
  struct NewListener {
    std::string service;
    runtime::PortSpec port;
  };
  std::vector<NewListener> wanted;
  std::map<std::string, std::string> inFile;
  for (const auto& [svcName, svc] : spec.services) {
    std::string full = fullName(svcName);
    for (const auto& p : svc.ports) {
      if (p.published == 0) continue;
      if (p.mode != runtime::PortMode::kIngress)
        return ApiError{ErrorKind::kInvalid, "service " + svcName + ": port mode \"host\" is not supported yet"};
      std::string key = std::to_string(p.published) + "/" + runtime::toString(p.protocol);
      if (owners.count(key)) {
        return ApiError{ErrorKind::kConflict, "port " + key + " is already in use by service " + owners[key]};
      }
      if (inFile.count(key)) {
        return ApiError{ErrorKind::kInvalid,
                        "port " + key + " is published twice (services " + inFile[key] + " and " + full + ")"};
      }
      inFile[key] = full;
      wanted.push_back({full, p});
    }
  }
  // 2. Try each new port on this node now: one taken by another process
  // refuses the whole deploy. The listener is closed again at once; every
  // node's agent binds it when its assignment names it. Listeners are named
  // by port, so a port that moves to another service of this stack (a
  // renamed service, say) keeps its listener.
  std::map<std::string, std::string> wantedOwner;  // listener -> service
  for (const auto& w : wanted) {
    std::string lname = listenerName(w.port);
    wantedOwner[lname] = w.service;
    bool bound = std::any_of(services_.begin(), services_.end(), [&](const auto& kv) {
      return kv.second.stack == name &&
             std::find(kv.second.listeners.begin(), kv.second.listeners.end(), lname) != kv.second.listeners.end();
    });
    if (bound) continue;
    proxy::ListenerConfig lc;
    lc.name = lname;
    lc.bindHost = w.port.hostIp.empty() ? "0.0.0.0" : w.port.hostIp;
    lc.port = w.port.published;
    lc.udp = w.port.protocol == runtime::Protocol::kUdp;
    auto st = mesh_->addListener(lc);
    if (!st.ok()) return ApiError{ErrorKind::kConflict, st.error().message};
    (void)mesh_->removeListener(lname);
  }

  // 3. Apply. Networks first (services need them).
  json messages = json::array();
  std::vector<std::string> createdNetworks;
  for (const auto& [netName, net] : spec.networks) {
    std::string full = name + "_" + netName;
    if (net.external || networks_.count(full)) continue;
    bool used = std::any_of(spec.services.begin(), spec.services.end(), [&](const auto& kv) {
      return std::any_of(kv.second.networks.begin(), kv.second.networks.end(),
                         [&](const runtime::ServiceNetwork& sn) { return sn.name == netName; });
    });
    if (!used) continue;  // docker creates only networks that services use
    messages.push_back("Creating network " + full);
    auto created = ensureNetwork(full, name, net, std::nullopt, std::nullopt);
    if (!created.ok()) {
      // Nothing of this deploy stays: its networks go again.
      for (const auto& n : createdNetworks) removeNetwork(n);
      return ApiError{ErrorKind::kInternal, created.error().message};
    }
    createdNetworks.push_back(full);
  }
  // Saved before anything in memory changes: a deploy the store could not
  // keep (a full disk) fails whole instead of vanishing at the next restart.
  StackState toSave;
  toSave.name = name;
  toSave.spec = spec;
  toSave.lone = lone;
  if (auto st = persistStack(toSave); !st.ok()) {
    for (const auto& n : createdNetworks) removeNetwork(n);
    return ApiError{ErrorKind::kInternal, st.error().message};
  }
  StackState& stack = stacks_[name];
  stack.name = name;
  stack.spec = spec;
  stack.lone = lone;
  for (const auto& [svcName, svcSpec] : spec.services) {
    std::string full = fullName(svcName);
    auto it = services_.find(full);
    if (it == services_.end()) {
      messages.push_back("Creating service " + full);
      ServiceState s;
      s.name = full;
      s.id = newObjectId();
      s.stack = name;
      s.spec = svcSpec;
      s.created = s.updated = SysClock::now();
      it = services_.emplace(full, std::move(s)).first;
      log::info("netd", "service ", full, " created (", svcSpec.replicas, " replicas of ", svcSpec.image, ")");
    } else {
      ServiceState& s = it->second;
      runtime::ServiceSpec a = s.spec, b = svcSpec;
      a.replicas = b.replicas = 0;
      bool changed = !(a == b);
      auto image = d_.images->resolve(svcSpec.image);
      bool imageChanged = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& kv) {
        return kv.second->service == full && kv.second->live() && image.ok() && kv.second->imageId != image->id;
      });
      if (changed || imageChanged) {
        messages.push_back("Updating service " + full + " (id: " + s.id + ")");
        // Rolled out as its update_config says (reconcile below drives it).
        beginUpdate(s, svcSpec, false);
        if (s.spec.mode == runtime::ServiceMode::kGlobal) s.update.reset();  // replaced at once
      } else {
        if (s.spec.replicas != svcSpec.replicas) {
          messages.push_back("Updating service " + full + " (id: " + s.id + ")");
          s.haltedSlots.clear();
        }
        s.spec = svcSpec;
        s.updated = SysClock::now();
      }
    }
    ServiceState& s = it->second;
    std::vector<std::string> keep;
    for (const auto& l : s.listeners) {
      auto owner = wantedOwner.find(l);
      if (owner == wantedOwner.end()) {
        continue;  // the port is no longer published: agents close it
      } else if (owner->second == full) {
        keep.push_back(l);
      }  // else another service of this stack takes the listener over
    }
    for (const auto& [lname, owner] : wantedOwner) {
      if (owner == full && std::find(keep.begin(), keep.end(), lname) == keep.end()) keep.push_back(lname);
    }
    s.listeners = keep;
  }
  // Services the new file no longer has.
  for (auto& [full, s] : services_) {
    if (s.stack != name || s.removed) continue;
    if (lone ? spec.services.count(full) : spec.services.count(full.substr(name.size() + 1))) continue;
    messages.push_back("Removing service " + full);
    // Listeners another service took over are no longer this one's to
    // close; its replicas are still drained on them, so that connections they
    // hold finish before the stop signal.
    for (const auto& l : s.listeners) {
      if (wantedOwner.count(l)) s.handedOver.push_back(l);
    }
    std::erase_if(s.listeners, [&](const std::string& l) { return wantedOwner.count(l) != 0; });
    removeService(s);
  }
  for (auto& [full, s] : services_) {
    if (s.stack == name && !s.removed) reconcile(s);
  }
  finishRemovals();
  pokeAgent();
  return json{{"messages", messages}};
}

void Orchestrator::Impl::removeService(ServiceState& s) {
  s.removed = true;
  // The published ports stay bound until the replicas have drained
  // (finishRemovals closes them): requests in flight finish.
  for (auto& [slot, timer] : s.pendingRestarts) cancelTimer(timer);
  s.pendingRestarts.clear();
  for (auto* t : tasksOf(s.name)) {
    if (t->live()) stopTask(*t);
  }
}

ServiceState* Orchestrator::Impl::findService(const std::string& ref) {
  // A lone container is not a service to `service` commands: scaled or
  // unpinned, it would no longer be one container on its node.
  auto it = services_.find(ref);
  if (it != services_.end() && !it->second.removed && !isLone(it->second.stack, it->first)) return &it->second;
  for (auto& [name, s] : services_) {
    if (!s.removed && !isLone(s.stack, name) && s.id.rfind(ref, 0) == 0) return &s;
  }
  return nullptr;
}

const ServiceState* Orchestrator::Impl::findService(const std::string& ref) const {
  return const_cast<Impl*>(this)->findService(ref);
}

const Task* Orchestrator::Impl::findContainer(const std::string& ref) const {
  if (ref.empty()) return nullptr;
  // As docker resolves: an exact id or name first (of several lives of one
  // name, the live one, else the newest), then a unique id prefix — so a
  // container named "db" is not shadowed by another whose id starts so.
  const Task* exact = nullptr;
  for (const auto& [id, t] : tasks_) {
    bool match = t->containerId == ref || t->name() + "." + t->id == ref || t->id == ref ||
                 (isLone(t->stack, t->service) && t->service == ref);
    if (!match) continue;
    if (exact == nullptr || (t->live() && !exact->live()) ||
        (t->live() == exact->live() && t->created > exact->created))
      exact = t.get();
  }
  if (exact != nullptr) return exact;
  const Task* found = nullptr;
  for (const auto& [id, t] : tasks_) {
    if (t->containerId.rfind(ref, 0) != 0) continue;
    if (found != nullptr) return nullptr;  // a prefix of two containers' ids
    found = t.get();
  }
  return found;
}

Orchestrator::Orchestrator(OrchestratorDeps deps) : impl_(std::make_unique<Impl>(std::move(deps))) {
  if (!impl_->d_.openNetns) {
    impl_->d_.openNetns = [](pid_t pid) -> Result<UniqueFd> {
      std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return Error::fromErrno("open " + path);
      return fd;
    };
  }
  impl_->d_.images->setInUse([this](const std::string& id) { return imageInUse(id); });
  auto mtu = impl_->d_.overlay->underlayMtu();
  impl_->mtu_ = (mtu.ok() ? *mtu : 1500) - 50;
}

Orchestrator::~Orchestrator() = default;

Status Orchestrator::restore() {
  Impl& m = *impl_;
  // Containers a previous netd left behind (it died without stopping them):
  // their cgroups still hold the processes; cleanup kills and removes them.
  auto leftovers = m.d_.store->list("container");
  if (!leftovers.ok()) return leftovers.error();
  for (const auto& [id, doc] : *leftovers) {
    runtime::ContainerSpec spec;
    spec.id = id;
    spec.stateDir = doc.value("stateDir", m.d_.dataRoot + "/containers/" + id);
    spec.logPath = spec.stateDir + "/container.log";
    log::info("netd", "cleaning up container ", id.substr(0, 12), " left by a previous run");
    auto st = m.d_.launcher->cleanup(spec, true);
    if (!st.ok()) log::warn("runtime", "cleanup ", id.substr(0, 12), ": ", st.error().message);
    (void)m.d_.store->erase("container", id);
  }
  auto swarm = m.d_.store->get("swarm", "self");
  if (!swarm.ok()) return swarm.error();
  if (!swarm->has_value()) {
    m.removeStaleNetworks();
    return okStatus();
  }
  const json& sw = **swarm;
  m.nodeId_ = sw.value("nodeId", newObjectId());
  m.swarmCreated_ = SysClock::time_point(std::chrono::seconds(sw.value("created", int64_t{0})));
  m.advertiseAddr_ = sw.value("advertiseAddr", "");
  if (sw.value("role", "manager") == "worker") {
    // A worker keeps nothing but its membership: the manager's next
    // assignment brings networks, tasks, listeners and peers back.
    m.worker_ = true;
    m.managerAddr_ = sw.value("managerAddr", "");
    m.nodeSecret_ = sw.value("secret", "");
    m.removeStaleNetworks();  // the manager's next assignment brings them back
    m.startHeartbeats();
    log::info("netd", "rejoining the swarm of manager ", m.managerAddr_, " as worker ", m.nodeId_);
    return okStatus();
  }
  m.swarm_ = true;
  m.listenAddr_ = sw.value("listenAddr", "0.0.0.0:2377");
  auto nodes = m.d_.store->list("node");
  if (!nodes.ok()) return nodes.error();
  std::vector<NodeState> known;
  for (const auto& [id, doc] : *nodes) {
    NodeState n = NodeState::fromJson(doc);
    // Agents get a heartbeat timeout's grace after a manager restart.
    n.lastSeen = SteadyClock::now();
    known.push_back(std::move(n));
  }
  m.members_.restore(sw.value("clusterKey", ""), sw.value("workerSecret", ""), sw.value("managerSecret", ""),
                     std::move(known));
  // Networks keep their VNI and subnet across restarts.
  auto nets = m.d_.store->list("network");
  if (!nets.ok()) return nets.error();
  std::sort(nets->begin(), nets->end(),
            [](const auto& a, const auto& b) { return (a.first == kIngress) > (b.first == kIngress); });
  for (const auto& [name, doc] : *nets) {
    runtime::NetworkSpec spec;
    try {
      spec = runtime::stackFromJson(json{{"networks", {{doc["spec"].value("name", name), doc["spec"]}}}})
                 .networks.begin()
                 ->second;
    } catch (const std::exception&) {
      spec.name = name;
    }
    auto created = m.ensureNetwork(name, doc.value("stack", ""), spec, doc.value("vni", 0u),
                                   overlay::Subnet::parse(doc.value("subnet", "")));
    if (!created.ok()) log::error("netd", "restore network ", name, ": ", created.error().message);
  }
  // Nodes keep their ingress addresses.
  for (auto& [id, n] : m.members_.all()) {
    if (n.ingressAddr && id != m.nodeId_) (void)m.alloc_.allocateAddress(kIngress, *n.ingressAddr);
  }
  if (auto st = m.startManager(); !st.ok())
    log::error("netd", "cluster port ", m.listenAddr_, ": ", st.error().message);
  auto stacks = m.d_.store->list("stack");
  if (!stacks.ok()) return stacks.error();
  m.restoring_ = true;
  for (const auto& [name, doc] : *stacks) {
    runtime::StackSpec spec;
    std::string failure;
    try {
      spec = runtime::stackFromJson(doc.at("spec"));
      std::optional<LoneContainer> lone;
      if (const auto c = doc.find("container"); c != doc.end() && c->is_object()) {
        lone = LoneContainer{c->value("autoRemove", false), c->value("stopTimeout", 10.0)};
      }
      auto result = m.deploy(name, spec, lone);
      if (auto* err = std::get_if<ApiError>(&result)) failure = err->message;
      if (failure.empty()) m.restorePreviousSpecs(name);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (failure.empty()) {
      log::info("netd", "stack ", name, " restored");
      continue;
    }
    // Keep it listed, so the user sees it and can `stack rm` it (which also
    // frees its networks) or deploy it again once the cause is fixed.
    log::error("netd", "restore stack ", name, ": ", failure);
    StackState& kept = m.stacks_[name];
    kept.name = name;
    kept.spec = spec;
    if (const auto c = doc.find("container"); c != doc.end() && c->is_object())
      kept.lone = LoneContainer{c->value("autoRemove", false), c->value("stopTimeout", 10.0)};
  }
  m.restoring_ = false;
  m.removeUnusedNetworks({});
  // This node's agent, with the secret its node keeps (a store from before
  // the manager's agent had one gets one now).
  if (NodeState* self = m.members_.get(m.nodeId_); self != nullptr) {
    if (self->secret.empty()) {
      self->secret = randomBase36(32);
      m.persistNode(*self);
    }
    m.startLocalAgent(self->secret);
  }
  return okStatus();
}

void Orchestrator::shutdown(std::function<void()> done) { impl_->beginShutdown(std::move(done)); }

void Orchestrator::Impl::beginShutdown(std::function<void()> done) {
  shuttingDown_ = true;
  shutdownDone_ = std::move(done);
  // Only this node's replicas stop: other nodes' go on (their agents keep
  // them running while the manager is away, as swarm's do).
  stopClusterTimer();
  cancelTimer(pokeTimer_);
  if (d_.clusterClose) d_.clusterClose();
  for (auto& [id, t] : tasks_) {
    if (t->live() && isLocal(*t)) stopTask(*t);
  }
  // A manager's own agents stop theirs; it is done once they are.
  std::vector<Impl*> agents;
  if (agent_) agents.push_back(agent_.get());
  for (auto& a : retiredAgents_) agents.push_back(a.get());
  agentsRunning_ = static_cast<int>(agents.size());
  for (Impl* a : agents) {
    a->beginShutdown([this] {
      --agentsRunning_;
      maybeShutdownDone();
    });
  }
  maybeShutdownDone();
}

ApiResult<json> Orchestrator::deployStack(const std::string& name, const runtime::StackSpec& spec) {
  return impl_->deploy(name, spec);
}

ApiResult<json> Orchestrator::removeStack(const std::string& name) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  auto it = m.stacks_.find(name);
  if (it == m.stacks_.end() || it->second.removed || it->second.lone)
    return ApiError{ErrorKind::kNotFound, "Nothing found in stack: " + name};
  json messages = json::array();
  it->second.removed = true;
  for (auto& [full, s] : m.services_) {
    if (s.stack == name && !s.removed) {
      messages.push_back("Removing service " + full);
      m.removeService(s);
    }
  }
  for (const auto& [net, n] : m.networks_) {
    if (n.stack != name) continue;
    auto users = m.externalUsersOf(net);
    if (users.empty()) {
      messages.push_back("Removing network " + net);
      continue;
    }
    std::string who;
    for (const auto& u : users) who += (who.empty() ? "" : ", ") + u;
    messages.push_back("Keeping network " + net + ": in use by " + who);
  }
  m.finishRemovals();
  return json{{"messages", messages}};
}

ApiResult<json> Orchestrator::createNetwork(const std::string& name, const runtime::NetworkSpec& requested) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  if (auto st = runtime::checkName(runtime::NameKind::kNetwork, name); !st.ok())
    return ApiError{ErrorKind::kInvalid, st.error().message};
  if (name == kIngress || m.networks_.count(name))
    return ApiError{ErrorKind::kConflict, "network with name " + name + " already exists"};
  runtime::NetworkSpec spec = requested;
  spec.name = name;
  if (spec.external)
    return ApiError{ErrorKind::kInvalid,
                    "network " + name + ": external names a network that exists; create makes one"};
  if (auto err = m.checkNetworkSpec(name, spec)) return *err;
  if (spec.internal) return ApiError{ErrorKind::kInvalid, "network " + name + ": --internal is not supported yet"};
  if (!spec.gateway.empty()) {
    auto subnet = overlay::Subnet::parse(spec.subnet);
    if (!subnet || subnet->gateway().str() != spec.gateway)
      return ApiError{ErrorKind::kInvalid, "network " + name + ": gateway " + spec.gateway +
                                               " is not supported: the gateway is the subnet's first address"};
  }
  auto created = m.ensureNetwork(name, "", spec, std::nullopt, std::nullopt);
  if (!created.ok()) return ApiError{ErrorKind::kInvalid, created.error().message};
  log::info("netd", "network ", name, " created (vni ", (*created)->vni, ", ", (*created)->subnet.str(), ")");
  m.pokeAgent();
  return json{{"id", (*created)->id}, {"name", name}};
}

ApiResult<json> Orchestrator::deleteNetwork(const std::string& ref) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  auto it = m.networks_.find(ref);
  if (it == m.networks_.end() && !ref.empty()) {
    // An id prefix, if it names one network only.
    for (auto n = m.networks_.begin(); n != m.networks_.end(); ++n) {
      if (n->second.id.rfind(ref, 0) != 0) continue;
      if (it != m.networks_.end())
        return ApiError{ErrorKind::kConflict, "network " + ref + " is ambiguous (" + it->first + ", " + n->first + ")"};
      it = n;
    }
  }
  if (it == m.networks_.end()) return ApiError{ErrorKind::kNotFound, "network " + ref + " not found"};
  const std::string name = it->first;
  if (name == kIngress)
    return ApiError{ErrorKind::kConflict, "ingress is the routing mesh's network: \"skiff swarm leave\" removes it"};
  if (!it->second.stack.empty() && m.stacks_.count(it->second.stack)) {
    return ApiError{ErrorKind::kConflict, "network " + name + " belongs to stack " + it->second.stack +
                                              ": \"skiff stack rm " + it->second.stack + "\" removes it"};
  }
  std::vector<std::string> users = m.externalUsersOf(name);
  for (const auto& [id, t] : m.tasks_) {
    const bool on = t->live() && std::any_of(t->endpoints.begin(), t->endpoints.end(),
                                             [&](const TaskEndpoint& ep) { return ep.network == name; });
    const std::string who = (isLone(t->stack, t->service) ? "container " : "stack ") + t->stack;
    if (on && std::find(users.begin(), users.end(), who) == users.end()) users.push_back(who);
  }
  if (!users.empty()) {
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
    return ApiError{ErrorKind::kConflict, "network " + name + " is in use by " + list};
  }
  m.removeNetwork(name);
  m.pokeAgent();
  return json{{"name", name}};
}

ApiResult<json> Orchestrator::scaleService(const std::string& name, uint64_t replicas) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{ErrorKind::kNotFound, "no such service: " + name};
  if (s->spec.mode == runtime::ServiceMode::kGlobal)
    return ApiError{ErrorKind::kInvalid, "scale can only be used with replicated mode"};
  if (replicas > kMaxReplicas) {
    return ApiError{ErrorKind::kInvalid, "replicas " + std::to_string(replicas) +
                                             " is more than this node can address (at most " +
                                             std::to_string(kMaxReplicas) + ")"};
  }
  // Keep the stored stack in step, so a restart brings back this scale; a
  // scale the store cannot keep is refused before anything changes.
  auto st = m.stacks_.find(s->stack);
  if (st != m.stacks_.end()) {
    StackState scaled = st->second;
    scaled.spec.services[s->spec.name].replicas = replicas;
    if (auto saved = m.persistStack(scaled); !saved.ok()) return ApiError{ErrorKind::kInternal, saved.error().message};
    st->second.spec.services[s->spec.name].replicas = replicas;
  }
  s->spec.replicas = replicas;
  s->haltedSlots.clear();
  s->updated = SysClock::now();
  m.reconcile(*s);
  return json{{"message", s->name + " scaled to " + std::to_string(replicas)}};
}

bool Orchestrator::imageInUse(const std::string& imageId) const {
  for (const auto& [id, t] : impl_->tasks_) {
    if (t->live() && t->imageId == imageId) return true;
  }
  return false;
}

}  // namespace skiff::netd
