#include "skiff/netd/membership.h"

#include "skiff/netd/join_token.h"

namespace skiff::netd {
namespace {

using json = nlohmann::json;

NodeRole roleFrom(const std::string& s) { return s == "manager" ? NodeRole::kManager : NodeRole::kWorker; }

// Docker's object id form: 25 characters of [a-z0-9].
std::string nodeId() { return randomBase36(25); }

}  // namespace

json NodeState::toJson() const {
  return json{{"id", id},
              {"hostname", hostname},
              {"addr", addr},
              {"role", toString(role)},
              {"availability", toString(availability)},
              {"labels", labels},
              {"secret", secret},
              {"created", std::chrono::duration_cast<std::chrono::seconds>(created.time_since_epoch()).count()},
              {"ingressAddr", ingressAddr ? ingressAddr->str() : ""}};
}

NodeState NodeState::fromJson(const json& j) {
  NodeState n;
  n.id = j.value("id", "");
  n.hostname = j.value("hostname", "");
  n.addr = j.value("addr", "");
  n.role = roleFrom(j.value("role", "worker"));
  auto a = parseAvailability(j.value("availability", "active"));
  n.availability = a.ok() ? *a : NodeAvailability::kActive;
  if (j.contains("labels") && j["labels"].is_object()) n.labels = j["labels"].get<std::map<std::string, std::string>>();
  n.secret = j.value("secret", "");
  n.created = n.updated = std::chrono::system_clock::time_point(std::chrono::seconds(j.value("created", int64_t{0})));
  n.ingressAddr = overlay::Ipv4::parse(j.value("ingressAddr", ""));
  return n;
}

void Membership::create(NodeState self) {
  clusterKey_ = randomBase36(kClusterKeyLength);
  workerSecret_ = randomBase36(kRoleSecretLength);
  managerSecret_ = randomBase36(kRoleSecretLength);
  nodes_.clear();
  std::string id = self.id;
  nodes_[id] = std::move(self);
}

void Membership::restore(std::string clusterKey, std::string workerSecret, std::string managerSecret,
                         std::vector<NodeState> nodes) {
  clusterKey_ = std::move(clusterKey);
  workerSecret_ = std::move(workerSecret);
  managerSecret_ = std::move(managerSecret);
  nodes_.clear();
  for (auto& n : nodes) {
    std::string id = n.id;
    nodes_[id] = std::move(n);
  }
}

void Membership::clear() {
  clusterKey_.clear();
  workerSecret_.clear();
  managerSecret_.clear();
  nodes_.clear();
}

std::string Membership::joinToken(NodeRole role) const { return makeJoinToken(clusterKey_, roleSecret(role)); }

void Membership::rotate(NodeRole role) {
  (role == NodeRole::kManager ? managerSecret_ : workerSecret_) = randomBase36(kRoleSecretLength);
}

std::optional<NodeRole> Membership::roleOf(const std::string& token) const {
  if (clusterKey_.empty()) return std::nullopt;
  // Both compared, whatever the first gives: the time does not tell which.
  const bool worker = tokenEquals(token, joinToken(NodeRole::kWorker));
  const bool manager = tokenEquals(token, joinToken(NodeRole::kManager));
  if (worker) return NodeRole::kWorker;
  if (manager) return NodeRole::kManager;
  return std::nullopt;
}

const NodeState* Membership::readyAt(const std::string& addr) const {
  for (const auto& [id, n] : nodes_) {
    if (n.addr == addr && n.ready) return &n;
  }
  return nullptr;
}

NodeState& Membership::admit(const std::string& hostname, const std::string& addr,
                             std::optional<overlay::Ipv4> ingressAddr, std::chrono::system_clock::time_point now,
                             std::chrono::steady_clock::time_point seen) {
  NodeState n;
  do {
    n.id = nodeId();
  } while (nodes_.count(n.id));
  n.hostname = hostname;
  n.addr = addr;
  n.secret = randomBase36(32);
  n.created = n.updated = now;
  n.lastSeen = seen;
  n.ingressAddr = ingressAddr;
  std::string id = n.id;
  return nodes_[id] = std::move(n);
}

NodeState* Membership::authenticate(const std::string& nodeId, const std::string& secret) {
  auto it = nodes_.find(nodeId);
  if (it == nodes_.end() || it->second.secret.empty() || !tokenEquals(secret, it->second.secret)) return nullptr;
  return &it->second;
}

NodeState* Membership::find(const std::string& ref) {
  if (ref.empty()) return nullptr;
  auto it = nodes_.find(ref);
  if (it != nodes_.end()) return &it->second;
  NodeState* found = nullptr;
  for (auto& [id, n] : nodes_) {
    if (n.hostname == ref || id.rfind(ref, 0) == 0) {
      if (found != nullptr) return nullptr;  // ambiguous
      found = &n;
    }
  }
  return found;
}

NodeState* Membership::get(const std::string& id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

const NodeState* Membership::get(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::string Membership::nameOf(const std::string& id) const {
  const NodeState* n = get(id);
  return n != nullptr ? n->hostname : id;
}

void Membership::erase(const std::string& id) { nodes_.erase(id); }

std::vector<NodeState*> Membership::silent(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout,
                                           const std::string& self) {
  std::vector<NodeState*> out;
  for (auto& [id, n] : nodes_) {
    if (id == self || !n.ready) continue;
    if (now - n.lastSeen > timeout) out.push_back(&n);
  }
  return out;
}

}  // namespace skiff::netd
