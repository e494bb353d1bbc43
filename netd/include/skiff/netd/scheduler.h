#pragma once
// Scheduler: where a service's tasks run. Pure: it sees nodes and counts,
// never the kernel or the loop, so the rules are unit-tested on their own
// (tests/unit/netd/scheduler_test.cc). The manager calls it from its loop
// thread whenever a slot needs a task (a deploy, a scale, a replacement for a
// task that failed or whose node went down).
//
// The rules are swarmkit's: a node gets a task only when it is Ready, its
// availability is Active, every placement constraint of the service holds on
// it, and it is below max_replicas_per_node for the service. Among those,
// spread: the node running the fewest tasks of this service wins, ties go to
// the node with the fewest tasks overall, then to the lowest node id (so a
// plan is deterministic). Global services run one task on every node that
// passes the filters.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "skiff/common/result.h"

namespace skiff::netd {

enum class NodeRole { kWorker, kManager };
enum class NodeAvailability { kActive, kPause, kDrain };

const char* toString(NodeRole r);          // "worker" | "manager"
const char* toString(NodeAvailability a);  // "active" | "pause" | "drain"
// Parses "active", "pause", "drain" (as docker's `node update --availability`).
Result<NodeAvailability> parseAvailability(const std::string& text);

struct SchedNode {
  std::string id;
  std::string hostname;
  NodeRole role = NodeRole::kWorker;
  NodeAvailability availability = NodeAvailability::kActive;
  bool ready = true;  // false: Down (silent past its heartbeat timeout)
  std::map<std::string, std::string> labels;
  uint64_t tasks = 0;  // live tasks of every service on this node (tie-break)
};

struct SchedService {
  // docker's syntax: "node.hostname==h1", "node.role!=manager",
  // "node.labels.zone==a", "node.id==...", "node.platform.os==linux".
  std::vector<std::string> constraints;
  uint64_t maxReplicasPerNode = 0;  // 0: no limit
};

// Checks every constraint's syntax; the error names the constraint, in
// docker's words ("constraint expected one operator from ==, !=").
Status validateConstraints(const std::vector<std::string>& constraints);

// True when every constraint holds on the node (unparsable ones never hold).
bool nodeMatches(const SchedNode& node, const std::vector<std::string>& constraints);

struct Placement {
  std::string node;    // empty: no node fits
  std::string reason;  // why, when node is empty: docker's "no suitable node (...)"
};

// Places `count` new tasks of one service. `running` holds, per node id, the
// live tasks of this service already there (they count toward spread and
// max_replicas_per_node, and each placement made here counts for the next).
std::vector<Placement> placeReplicas(const std::vector<SchedNode>& nodes, const SchedService& svc,
                                     const std::map<std::string, uint64_t>& running, size_t count);

// Global mode: the ids of the nodes that should each run one task, sorted.
std::vector<std::string> globalNodes(const std::vector<SchedNode>& nodes, const SchedService& svc);

}  // namespace skiff::netd
