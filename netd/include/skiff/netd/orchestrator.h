#pragma once
// Orchestrator: one node of a swarm. On a manager it holds the desired state
// (swarm, stacks, services; persisted in the Store) and the observed state
// (tasks: one container each, wherever they run), and reconciles them:
// place a task per missing slot, stop extra or outdated ones, restart ended
// ones as the service's restart_policy says, and hand every node its
// assignment (networks, tasks, published ports with their backends, overlay
// peers). On every node an agent carries out its node's assignment and
// reports back. A manager's own node has an agent too, reaching its manager
// through an in-process link with the same requests, bodies and node secret
// a remote agent sends to port 2377 (swarmkit's design): the manager never
// starts a container itself.
//
// The network model is docker's: each stack network is an overlay (bridge +
// VXLAN, VNI, a /24 from the cluster IPAM); services with published ports
// also join `ingress`, whose bridge carries an address in the node's own
// namespace so the routing-mesh proxy reaches every replica. A replica gets
// one veth per network (eth0, eth1, ... in the order ingress, then the
// service's networks).
//
// Events: a task's exit arrives at once through its pidfd (uv_poll); stops
// escalate from the stop signal to SIGKILL after stop_grace_period; restarts
// wait restart_policy.delay on a uv timer. Everything runs on the daemon's
// loop thread; handles are owned by small heap objects freed in their close
// callbacks and find their task by id, so a task that is gone is never
// touched by a late callback.

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "skiff/common/result.h"
#include "skiff/netd/cluster_client.h"
#include "skiff/netd/errors.h"
#include "skiff/netd/mesh.h"
#include "skiff/netd/store.h"
#include "skiff/overlay/ipam.h"
#include "skiff/overlay/overlay.h"
#include "skiff/proxy/proxy.h"
#include "skiff/runtime/container.h"
#include "skiff/runtime/image.h"
#include "skiff/runtime/stack.h"

namespace skiff::netd {

inline constexpr const char* kNotManager =
    "this node is not a swarm manager. Use \"skiff swarm init\" or \"skiff swarm join\" to connect "
    "this node to swarm and try again.";

struct OrchestratorDeps {
  uv_loop_t* loop = nullptr;
  Store* store = nullptr;
  runtime::ImageStore* images = nullptr;
  runtime::ContainerLauncher* launcher = nullptr;
  overlay::Overlay* overlay = nullptr;
  // The routing mesh: `mesh` when set (tests pass a fake), else the real
  // proxy through a ProxyMesh.
  proxy::Proxy* proxy = nullptr;
  Mesh* mesh = nullptr;
  std::string dataRoot;
  std::string hostname;
  std::string cgroupVersion;  // "v1" | "v2", for info
  // The cluster port (2377): start serving the manager's side on "IP:PORT"
  // (the route handler is clusterRequest) and stop it. Unset: no cluster port.
  std::function<Status(const std::string& listenAddr)> clusterListen;
  std::function<void()> clusterClose;
  // A worker's way to the manager; default: makeClusterClient(loop).
  ClusterClient* cluster = nullptr;
  // Heartbeats: agents send one every period; a node silent for
  // heartbeatTimeout is Down and its tasks are placed elsewhere.
  std::chrono::milliseconds heartbeatPeriod{1000};
  std::chrono::milliseconds heartbeatTimeout{4000};
  // Opens a started container's network namespace (beforeExec). Default:
  // /proc/<pid>/ns/net; tests pass a stand-in fd to go with fake launchers.
  std::function<Result<UniqueFd>(pid_t)> openNetns;
  // Readiness of a replica without a health check: does host:port accept a
  // TCP connection (from the node's namespace, over ingress)? `done` runs on
  // the loop thread, possibly before probeTcp returns. Default: a libuv
  // connect with a 1 s timeout; tests pass their own.
  std::function<void(const std::string& host, uint16_t port, std::function<void(bool)> done)> probeTcp;
  // Told how long each reconcile of a service took (metrics); may be unset.
  std::function<void(std::chrono::nanoseconds)> onReconcile;
};

class Orchestrator {
 public:
  explicit Orchestrator(OrchestratorDeps deps);
  ~Orchestrator();

  // Loads the swarm and stacks from the store and reconciles them.
  Status restore();
  // Stops every task (stop signal, then SIGKILL after grace) and tears down
  // the node's networks; `done` runs on the loop when all are gone. Desired
  // state stays in the store.
  void shutdown(std::function<void()> done);

  // API operations. Each validates fully before it changes anything.
  ApiResult<nlohmann::json> info() const;
  ApiResult<nlohmann::json> swarmInit(const std::string& advertiseAddr, const std::string& listenAddr = "0.0.0.0:2377");
  // Worker: joins the swarm whose manager listens on remoteAddr ("IP:PORT").
  // This form waits for the manager on the caller's thread, up to the join
  // timeout (8 s); netd's API uses the other, which asks the manager from
  // the thread pool and calls `done` on the loop thread.
  ApiResult<nlohmann::json> swarmJoin(const std::string& token, const std::string& remoteAddr,
                                      const std::string& advertiseAddr);
  void swarmJoin(const std::string& token, const std::string& remoteAddr, const std::string& advertiseAddr,
                 std::function<void(ApiResult<nlohmann::json>)> done);
  ApiResult<nlohmann::json> joinToken(const std::string& role, bool rotate);
  ApiResult<nlohmann::json> swarmLeave(bool force);
  ApiResult<nlohmann::json> nodes() const;
  ApiResult<nlohmann::json> inspectNode(const std::string& ref) const;
  ApiResult<nlohmann::json> updateNode(const std::string& ref, const nlohmann::json& update);
  ApiResult<nlohmann::json> removeNode(const std::string& ref, bool force);
  // The manager's side of the cluster port: "/cluster/v1/join" and
  // "/cluster/v1/heartbeat"; `peer` is the client's address.
  ApiResult<nlohmann::json> clusterRequest(const std::string& path, const std::string& peer,
                                           const nlohmann::json& body);
  ApiResult<nlohmann::json> deployStack(const std::string& name, const runtime::StackSpec& spec);
  ApiResult<nlohmann::json> listStacks() const;
  ApiResult<nlohmann::json> removeStack(const std::string& name);
  ApiResult<nlohmann::json> listServices(const std::string& stackFilter) const;
  ApiResult<nlohmann::json> inspectService(const std::string& name) const;
  ApiResult<nlohmann::json> scaleService(const std::string& name, uint64_t replicas);
  // `service update`: {"image", "envAdd", "envRm", "replicas", "force",
  // "updateConfig": {...}}, rolled out as the service's update_config says;
  // `service rollback`: back to the spec before the last update.
  ApiResult<nlohmann::json> updateService(const std::string& name, const nlohmann::json& update);
  ApiResult<nlohmann::json> rollbackService(const std::string& name);
  ApiResult<nlohmann::json> serviceLogs(const std::string& name) const;
  ApiResult<nlohmann::json> listTasks(const std::string& serviceFilter, const std::string& stackFilter,
                                      const std::string& nodeFilter = "") const;
  // Lone containers (`skiff run`, netd/API.md): a one-replica service named
  // after the container, pinned to this node, whose ports are published
  // through the routing mesh under the rules of services'; `stack ls` and
  // `service ls` leave it out. ref: its name or a container id (prefix).
  ApiResult<nlohmann::json> runContainer(const std::string& name, runtime::ServiceSpec spec, bool autoRemove);
  ApiResult<nlohmann::json> startContainer(const std::string& ref);
  // restarting: a start follows (`restart`), so --rm does not remove it.
  ApiResult<nlohmann::json> stopContainer(const std::string& ref, std::optional<double> timeoutSeconds,
                                          bool restarting = false);
  ApiResult<nlohmann::json> removeContainer(const std::string& ref, bool force);
  ApiResult<nlohmann::json> listContainers(bool all) const;
  ApiResult<nlohmann::json> inspectContainer(const std::string& ref) const;
  // since: a byte offset in its log (`logs -f`); none: the log's tail.
  ApiResult<nlohmann::json> containerLogs(const std::string& ref, std::optional<uint64_t> since = std::nullopt) const;
  ApiResult<nlohmann::json> listNetworks() const;
  ApiResult<nlohmann::json> inspectNetwork(const std::string& name) const;
  // `network create` / `network rm`: an overlay of no stack, which stacks
  // (external) and containers (--network, if attachable) join; removed only
  // when nothing uses it.
  ApiResult<nlohmann::json> createNetwork(const std::string& name, const runtime::NetworkSpec& spec);
  ApiResult<nlohmann::json> deleteNetwork(const std::string& name);
  // `skiff stats`: one row per running replica (netd/API.md, GET /v1/stats),
  // on a manager for every node (other nodes' figures from their last
  // heartbeat), on a worker for its own. `containers` (ids, id prefixes or
  // names, as inspect takes them) picks rows in that order, an ended one
  // included with its figures absent; an unknown one is docker's
  // "No such container: X".
  ApiResult<nlohmann::json> stats(const std::vector<std::string>& containers) const;
  // True when a live task runs this image (image rm refuses then).
  bool imageInUse(const std::string& imageId) const;

  // For metrics: replicas per service and state.
  struct ServiceCount {
    std::string stack, service;
    uint64_t running = 0, desired = 0;
    // The service's proxy listeners: name -> port label ("4000/tcp").
    std::map<std::string, std::string> listeners;
    // Its replicas' container ids (the proxy's backend ids) -> the hostname
    // of the node that runs each.
    std::map<std::string, std::string> backendNodes;
    // Restarts by the restart policy (counted where it is decided: the
    // manager), and entries of this node's tasks into each state ("running").
    uint64_t restarts = 0;
    std::map<std::string, uint64_t> transitions;
    // Replicas that ended without being asked to (exited, killed, their node
    // gone) and whose slot has no ready replacement yet: skiff_backend_up 0
    // until one is in rotation. The manager knows them all, a worker its own.
    std::vector<std::string> downBackends;
  };
  std::vector<ServiceCount> serviceCounts() const;
  // Remote peers programmed in this node's kernel, per overlay network: FDB
  // entries (MAC -> VTEP), neighbour entries (IP -> MAC), distinct VTEPs.
  struct NetworkPeers {
    std::string network;
    uint64_t fdbEntries = 0, neighbours = 0, remoteVteps = 0;
  };
  std::vector<NetworkPeers> peerCounts() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::netd
