#pragma once
// Membership: the manager's table of the swarm's nodes and the secrets that
// let them in — the cluster key and the worker and manager role secrets
// (join tokens are made of them), each node's own secret (every heartbeat
// presents it), its role, availability, labels, addresses and when it was
// last heard. The dispatcher (orchestrator_cluster.cc) admits joins and
// heartbeats through it and persists what changes; it holds no loop, no
// store and no clock of its own (times are passed in), so it is tested
// alone (netd_membership_test).
//
// Thread: the caller's (the manager's loop).

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/netd/scheduler.h"
#include "skiff/overlay/ipam.h"

namespace skiff::netd {

// A node of the swarm, as the manager knows it.
struct NodeState {
  std::string id;
  std::string hostname;
  std::string addr;  // advertise address: cluster traffic and the VXLAN VTEP
  NodeRole role = NodeRole::kWorker;
  NodeAvailability availability = NodeAvailability::kActive;
  std::map<std::string, std::string> labels;
  std::string secret;  // issued at join; every heartbeat presents it
  bool ready = true;
  std::chrono::steady_clock::time_point lastSeen;
  std::chrono::system_clock::time_point created, updated;
  std::optional<overlay::Ipv4> ingressAddr;  // its address on ingress (its proxy's source)

  nlohmann::json toJson() const;  // for the store (with the secret)
  static NodeState fromJson(const nlohmann::json& j);
};

class Membership {
 public:
  // A new swarm whose first node is the manager itself: a fresh cluster key
  // and fresh role secrets.
  void create(NodeState self);
  // A restart: what the store kept.
  void restore(std::string clusterKey, std::string workerSecret, std::string managerSecret,
               std::vector<NodeState> nodes);
  // Left the swarm: nothing is kept.
  void clear();

  const std::string& clusterKey() const { return clusterKey_; }
  const std::string& roleSecret(NodeRole role) const {
    return role == NodeRole::kManager ? managerSecret_ : workerSecret_;
  }
  // "SWMTKN-1-<cluster key>-<role secret>".
  std::string joinToken(NodeRole role) const;
  // A new role secret: tokens given out before no longer let anyone in.
  void rotate(NodeRole role);
  // The role a join token grants, compared in constant time with both; none
  // for a wrong, truncated or rotated token.
  std::optional<NodeRole> roleOf(const std::string& token) const;

  // A ready node that already has this address, or null.
  const NodeState* readyAt(const std::string& addr) const;
  // Adds a worker with a fresh id and secret.
  NodeState& admit(const std::string& hostname, const std::string& addr, std::optional<overlay::Ipv4> ingressAddr,
                   std::chrono::system_clock::time_point now, std::chrono::steady_clock::time_point seen);
  // The node a request's id and secret name (secret compared in constant
  // time), the manager's own node too (its agent heartbeats like any
  // other); never a node without a secret (one a store from before kept).
  NodeState* authenticate(const std::string& nodeId, const std::string& secret);

  // By id, unique id prefix or hostname (null when none or ambiguous).
  NodeState* find(const std::string& ref);
  NodeState* get(const std::string& id);
  const NodeState* get(const std::string& id) const;
  // Its hostname, or the id itself when no such node is known.
  std::string nameOf(const std::string& id) const;
  void erase(const std::string& id);
  // Ready nodes other than `self` not heard from for longer than timeout.
  std::vector<NodeState*> silent(std::chrono::steady_clock::time_point now, std::chrono::milliseconds timeout,
                                 const std::string& self);

  const std::map<std::string, NodeState>& all() const { return nodes_; }
  std::map<std::string, NodeState>& all() { return nodes_; }
  size_t size() const { return nodes_.size(); }

 private:
  std::string clusterKey_, workerSecret_, managerSecret_;
  std::map<std::string, NodeState> nodes_;  // by id
};

}  // namespace skiff::netd
