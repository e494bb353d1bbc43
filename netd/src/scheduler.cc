#include "skiff/netd/scheduler.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "skiff/runtime/stack.h"

// Placement follows swarmkit's scheduler (manager/scheduler): each node runs
// through a fixed filter pipeline (ready and active, then the constraints,
// then max replicas per node); the first filter a node fails counts one
// failure for that filter, and when no node passes, the counts become docker's
// explanation, "no suitable node (scheduling constraints not satisfied on 3
// nodes)", most failures first. Constraints parse with the compose parser's
// rule (runtime::parsePlacementConstraint, swarmkit's syntax) and match as
// swarmkit's manager/constraint does: values compare case-insensitively (node.hostname, node.role,
// and label values alike), label names case-sensitively, and a key the
// scheduler does not know never holds, whatever the operator.

namespace skiff::netd {

namespace {

using runtime::PlacementConstraint;

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool equalFold(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool startsWithFold(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && equalFold(s.substr(0, prefix.size()), prefix);
}

// The node's platform: every skiff node is Linux; the architecture is the
// manager's own (nodes do not report theirs yet), named as `uname -m` does.
const char* machineArch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__i386__)
  return "i386";
#elif defined(__arm__)
  return "armv7l";
#else
  return "";
#endif
}

bool holds(const PlacementConstraint& c, const SchedNode& node) {
  auto match = [&](const std::string& what) { return equalFold(c.value, what) == c.equal; };
  static const std::string kNodeLabels = "node.labels.";
  static const std::string kEngineLabels = "engine.labels.";
  if (equalFold(c.key, "node.id")) return match(node.id);
  if (equalFold(c.key, "node.hostname")) return match(node.hostname);
  if (equalFold(c.key, "node.role")) return match(toString(node.role));
  if (equalFold(c.key, "node.platform.os")) return match("linux");
  if (equalFold(c.key, "node.platform.arch")) return match(machineArch());
  if (c.key.size() > kNodeLabels.size() && startsWithFold(c.key, kNodeLabels)) {
    // The label's name is case-sensitive; a missing label reads as "".
    auto it = node.labels.find(c.key.substr(kNodeLabels.size()));
    return match(it == node.labels.end() ? std::string() : it->second);
  }
  if (c.key.size() > kEngineLabels.size() && startsWithFold(c.key, kEngineLabels)) {
    return match("");  // skiff nodes carry no engine labels
  }
  // node.ip and anything unknown: the node has no such attribute here, and
  // swarmkit's rule is that an unknown key never holds.
  return false;
}

// Parsed constraints; an unparsable one becomes a key that never holds.
std::vector<PlacementConstraint> parseAll(const std::vector<std::string>& constraints) {
  std::vector<PlacementConstraint> out;
  for (const std::string& text : constraints) {
    auto c = runtime::parsePlacementConstraint(text);
    out.push_back(c.ok() ? c.value() : PlacementConstraint{"", true, ""});
  }
  return out;
}

bool matchesAll(const SchedNode& node, const std::vector<PlacementConstraint>& constraints) {
  return std::all_of(constraints.begin(), constraints.end(),
                     [&](const PlacementConstraint& c) { return holds(c, node); });
}

// The filters in pipeline order; a node is counted against the first it fails.
enum Filter { kReady = 0, kConstraints = 1, kMaxReplicas = 2, kFilterCount = 3 };

std::string explainFilter(Filter f, uint64_t nodes) {
  std::string n = std::to_string(nodes) + (nodes == 1 ? " node" : " nodes");
  switch (f) {
    case kReady:
      return n + " not available for new tasks";
    case kConstraints:
      return "scheduling constraints not satisfied on " + n;
    case kMaxReplicas:
      return "max replicas per node limit exceed";  // sic: docker's words, no count
    default:
      return "";
  }
}

// docker's task error: the filters that failed, most failures first (ties in
// pipeline order), joined by "; ".
std::string explain(const std::array<uint64_t, kFilterCount>& failures) {
  std::array<Filter, kFilterCount> order = {kReady, kConstraints, kMaxReplicas};
  std::stable_sort(order.begin(), order.end(), [&](Filter a, Filter b) { return failures[a] > failures[b]; });
  std::string text;
  for (Filter f : order) {
    if (failures[f] == 0) continue;
    if (!text.empty()) text += "; ";
    text += explainFilter(f, failures[f]);
  }
  return text.empty() ? "no suitable node" : "no suitable node (" + text + ")";
}

bool available(const SchedNode& n) { return n.ready && n.availability == NodeAvailability::kActive; }

}  // namespace

const char* toString(NodeRole r) { return r == NodeRole::kManager ? "manager" : "worker"; }

const char* toString(NodeAvailability a) {
  switch (a) {
    case NodeAvailability::kActive:
      return "active";
    case NodeAvailability::kPause:
      return "pause";
    case NodeAvailability::kDrain:
      return "drain";
  }
  return "active";
}

Result<NodeAvailability> parseAvailability(const std::string& text) {
  if (text == "active") return NodeAvailability::kActive;
  if (text == "pause") return NodeAvailability::kPause;
  if (text == "drain") return NodeAvailability::kDrain;
  return Error::msg("invalid availability \"" + text + "\": expected active, pause or drain", EINVAL);
}

Status validateConstraints(const std::vector<std::string>& constraints) {
  for (const std::string& text : constraints) {
    auto c = runtime::parsePlacementConstraint(text);
    if (!c.ok()) {
      return Error::msg("invalid constraint \"" + text + "\": " + c.error().message, EINVAL);
    }
  }
  return okStatus();
}

bool nodeMatches(const SchedNode& node, const std::vector<std::string>& constraints) {
  return matchesAll(node, parseAll(constraints));
}

std::vector<Placement> placeReplicas(const std::vector<SchedNode>& nodes, const SchedService& svc,
                                     const std::map<std::string, uint64_t>& running, size_t count) {
  const std::vector<PlacementConstraint> constraints = parseAll(svc.constraints);
  // Per node: this service's tasks there and all tasks there, both updated as
  // this call places tasks, so each placement sees the ones before it.
  std::vector<uint64_t> mine(nodes.size(), 0);
  std::vector<uint64_t> total(nodes.size(), 0);
  std::vector<bool> fits(nodes.size(), false);  // ready, active, constraints hold
  std::array<uint64_t, kFilterCount> staticFailures{};
  for (size_t i = 0; i < nodes.size(); i++) {
    auto it = running.find(nodes[i].id);
    mine[i] = it == running.end() ? 0 : it->second;
    total[i] = nodes[i].tasks;
    if (!available(nodes[i])) {
      staticFailures[kReady]++;
    } else if (!matchesAll(nodes[i], constraints)) {
      staticFailures[kConstraints]++;
    } else {
      fits[i] = true;
    }
  }

  std::vector<Placement> out;
  out.reserve(count);
  for (size_t k = 0; k < count; k++) {
    std::array<uint64_t, kFilterCount> failures = staticFailures;
    size_t best = nodes.size();
    for (size_t i = 0; i < nodes.size(); i++) {
      if (!fits[i]) continue;
      if (svc.maxReplicasPerNode != 0 && mine[i] >= svc.maxReplicasPerNode) {
        failures[kMaxReplicas]++;
        continue;
      }
      if (best == nodes.size() || mine[i] < mine[best] ||
          (mine[i] == mine[best] &&
           (total[i] < total[best] || (total[i] == total[best] && nodes[i].id < nodes[best].id)))) {
        best = i;
      }
    }
    if (best == nodes.size()) {
      out.push_back(Placement{"", explain(failures)});
      continue;
    }
    mine[best]++;
    total[best]++;
    out.push_back(Placement{nodes[best].id, ""});
  }
  return out;
}

std::vector<std::string> globalNodes(const std::vector<SchedNode>& nodes, const SchedService& svc) {
  const std::vector<PlacementConstraint> constraints = parseAll(svc.constraints);
  std::vector<std::string> out;
  for (const SchedNode& n : nodes) {
    if (available(n) && matchesAll(n, constraints)) out.push_back(n.id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace skiff::netd
