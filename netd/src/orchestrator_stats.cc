// `skiff stats`: what each running replica uses and what the routing mesh
// carried to it, as figures a client turns into docker's columns.
//
// Design note: netd answers cumulative counters only (CPU ns, connections,
// bytes) and the instant values (memory, pids, open connections); rates and
// CPU % are the client's, from two answers, so the daemon keeps no history
// and no timer for them. A replica's cgroup is read by the node that runs it:
// here for this node's replicas, at the request; a worker reads its own at
// each heartbeat and sends them with it, so the manager answers for other
// nodes with the figures of their last heartbeat (sampledAt says when, on
// that node's clock, which is what CPU % is measured against). A replica's
// mesh counters are those of every node's proxy summed: a request may enter
// the swarm at any node and reach the replica over the overlay. Everything
// runs on the loop thread; the cgroup reads are a few small sysfs files.

#include <algorithm>
#include <ctime>
#include <optional>

#include "orchestrator_impl.h"
#include "skiff/common/log.h"

namespace skiff::netd {
namespace {

int64_t realtimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A count: a JSON integer that is not negative (however it was written).
std::optional<uint64_t> countOf(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

uint64_t countAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() ? countOf(*it).value_or(0) : 0;
}

json meshJson(const MeshCounters& m) {
  return json{{"connections", m.connections}, {"active", m.active}, {"bytesIn", m.bytesIn}, {"bytesOut", m.bytesOut}};
}

MeshCounters meshFromJson(const json& j) {
  MeshCounters m;
  m.connections = countAt(j, "connections");
  m.active = countAt(j, "active");
  m.bytesIn = countAt(j, "bytesIn");
  m.bytesOut = countAt(j, "bytesOut");
  return m;
}

json usageJson(const TaskUsage& u) {
  json j{{"sampledAt", u.sampledAtNs}, {"error", u.error}};
  const bool have = u.error.empty() && u.sampledAtNs > 0;
  j["cpuNs"] = have && u.cgroup.cpuNs ? json(*u.cgroup.cpuNs) : json(nullptr);
  j["memoryUsage"] = have ? u.cgroup.memoryUsage : 0;
  j["memoryLimit"] = have ? u.cgroup.memoryLimit : 0;
  j["pids"] = have ? u.cgroup.pids : 0;
  return j;
}

TaskUsage usageFromJson(const json& j) {
  TaskUsage u;
  if (auto it = j.find("cpuNs"); it != j.end()) u.cgroup.cpuNs = countOf(*it);
  u.cgroup.memoryUsage = countAt(j, "memoryUsage");
  u.cgroup.memoryLimit = countAt(j, "memoryLimit");
  u.cgroup.pids = countAt(j, "pids");
  if (auto it = j.find("sampledAt"); it != j.end() && it->is_number_integer()) u.sampledAtNs = it->get<int64_t>();
  if (auto it = j.find("error"); it != j.end() && it->is_string()) u.error = it->get<std::string>();
  return u;
}

}  // namespace

TaskUsage Orchestrator::Impl::localUsage(const Task& t) const {
  TaskUsage u;
  if (t.state != TaskState::kRunning || !t.launched || t.spec.id.empty()) {
    u.error = "not running";
    return u;
  }
  auto read = d_.launcher->stats(t.spec);
  u.sampledAtNs = realtimeNs();
  if (!read.ok()) {
    u.error = read.error().message;
    return u;
  }
  u.cgroup = *read;
  return u;
}

std::map<std::string, MeshCounters> Orchestrator::Impl::localMesh() const {
  std::map<std::string, MeshCounters> out;
  if (mesh_ == nullptr) return out;
  // A replica is a backend of each published port of its service: summed.
  for (const auto& l : mesh_->stats()) {
    for (const auto& b : l.backends) {
      out[b.id].add(MeshCounters{b.connections, b.activeConnections, b.bytesIn, b.bytesOut});
    }
  }
  return out;
}

json Orchestrator::Impl::statsRow(const Task& t, const std::map<std::string, MeshCounters>& local) const {
  MeshCounters mesh;
  if (auto it = local.find(t.containerId); it != local.end()) mesh.add(it->second);
  if (swarm_) {
    for (const auto& [nodeId, byBackend] : remoteMesh_) {
      if (nodeId == nodeId_ || members_.get(nodeId) == nullptr) continue;
      if (auto it = byBackend.find(t.containerId); it != byBackend.end()) mesh.add(it->second);
    }
  }
  TaskUsage usage;
  // This node's: read from its cgroup now, by its agent.
  if (const Task* here = runningHere(t.id); here != nullptr) {
    usage = agent_->localUsage(*here);
  } else if (!swarm_) {
    usage = localUsage(t);
  } else if (t.state != TaskState::kRunning) {
    usage.error = "not running";
  } else if (auto it = remoteUsage_.find(t.id); it != remoteUsage_.end()) {
    usage = it->second;
  } else {
    usage.error = "no report from node " + nodeName(t.node) + " yet";
  }
  json row{{"id", t.containerId},
           {"taskId", t.id},
           {"name", t.name() + "." + t.id},
           {"service", t.service},
           {"stack", t.stack},
           {"slot", t.slot},
           {"node", {{"id", t.node}, {"hostname", t.node.empty() ? d_.hostname : nodeName(t.node)}}},
           {"running", t.state == TaskState::kRunning},
           {"mesh", meshJson(mesh)}};
  row.update(usageJson(usage));
  return row;
}

ApiResult<json> Orchestrator::stats(const std::vector<std::string>& containers) const {
  const Impl& m = *impl_;
  const auto local = m.localMesh();
  json out = json::array();
  if (!containers.empty()) {
    std::set<const Task*> shown;
    std::vector<const Task*> picked;
    for (const auto& ref : containers) {
      const Task* t = m.findContainer(ref);
      // A task that never got a container (the manager knows one ran once it started).
      const bool container = t != nullptr && (m.swarm_ ? t->started != SysClock::time_point{} : !t->spec.id.empty());
      if (!container || ref.empty()) {
        return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
      }
      if (shown.insert(t).second) picked.push_back(t);
    }
    for (const Task* t : picked) out.push_back(m.statsRow(*t, local));
    return out;
  }
  std::vector<const Task*> running;
  for (const auto& [id, t] : m.tasks_) {
    if (t->state == TaskState::kRunning && !t->containerId.empty()) running.push_back(t.get());
  }
  // As `container ls`: by service, then slot (a stable order for a live view).
  std::sort(running.begin(), running.end(), [](const Task* a, const Task* b) {
    return std::tie(a->service, a->slot, a->id) < std::tie(b->service, b->slot, b->id);
  });
  for (const Task* t : running) out.push_back(m.statsRow(*t, local));
  return out;
}

json Orchestrator::Impl::statsReport() const {
  json tasks = json::array();
  for (const auto& [id, t] : tasks_) {
    if (t->state != TaskState::kRunning) continue;
    json row = usageJson(localUsage(*t));
    row["id"] = id;
    tasks.push_back(std::move(row));
  }
  json mesh = json::array();
  for (const auto& [backend, counters] : localMesh()) {
    json row = meshJson(counters);
    row["id"] = backend;
    mesh.push_back(std::move(row));
  }
  return json{{"tasks", tasks}, {"mesh", mesh}};
}

void Orchestrator::Impl::takeStats(const NodeState& n, const json& stats) {
  if (!stats.is_object()) return;
  // The node's proxy: its latest counters replace the last report's.
  auto& mesh = remoteMesh_[n.id];
  mesh.clear();
  if (auto it = stats.find("mesh"); it != stats.end() && it->is_array()) {
    for (const auto& row : *it) {
      if (row.is_object() && row.contains("id") && row["id"].is_string())
        mesh[row["id"].get<std::string>()] = meshFromJson(row);
    }
  }
  // Its replicas: kept only for tasks this manager places on that node, so
  // the map holds no more than the live tasks.
  for (auto it = remoteUsage_.begin(); it != remoteUsage_.end();) {
    auto t = tasks_.find(it->first);
    const bool keep = t != tasks_.end() && t->second->live() && t->second->node != n.id;
    it = keep ? std::next(it) : remoteUsage_.erase(it);
  }
  if (auto it = stats.find("tasks"); it != stats.end() && it->is_array()) {
    for (const auto& row : *it) {
      if (!row.is_object() || !row.contains("id") || !row["id"].is_string()) continue;
      const std::string id = row["id"].get<std::string>();
      auto t = tasks_.find(id);
      if (t == tasks_.end() || t->second->node != n.id || !t->second->live()) continue;
      remoteUsage_[id] = usageFromJson(row);
    }
  }
}

}  // namespace skiff::netd
