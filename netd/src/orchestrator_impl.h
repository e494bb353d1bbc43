#pragma once
// The orchestrator's inside, shared by its files (not a public header):
//   orchestrator.cc        desired state: swarm, deploy/update/remove, networks, persistence
//   orchestrator_tasks.cc  actual state: a task's life (start, exit, restart, stop), reconcile
//   orchestrator_views.cc  what the API shows: docker-like JSON of services, tasks, containers
//   orchestrator_util.cc   the small helpers declared here
//   orchestrator_cluster.cc the manager's side of the swarm: the dispatcher (joins and
//                          heartbeats in, assignments out), placement, nodes going down
//   orchestrator_agent.cc  an agent's side (a worker's, or a manager's own
//                          node's): join, heartbeats, carrying out an
//                          assignment (networks, tasks, listeners, overlay peers)
//   local_agent_link.h     how a manager's own agent reaches it: the cluster
//                          port's requests, in process
//   orchestrator_update.cc rolling updates and rollbacks (update.h's planner
//                          carried out), readiness: health checks and port probes
//   orchestrator_containers.cc lone containers (`skiff run`): a one-replica
//                          service pinned to its node, outside `stack ls`
//   orchestrator_stats.cc  `skiff stats`: each replica's cgroup figures and mesh
//                          counters, from this node or from its node's heartbeats
// The parts with their own narrow headers, each tested alone:
//   store.h (desired state behind an interface), allocator.h (VNIs, subnets,
//   addresses), scheduler.h (placement), membership.h (nodes and join
//   secrets), mesh.h (the routing mesh), task_state.h, errors.h.
// Everything runs on the daemon's loop thread.

#include <uv.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skiff/netd/allocator.h"
#include "skiff/netd/cluster_client.h"
#include "skiff/netd/membership.h"
#include "skiff/netd/orchestrator.h"
#include "skiff/netd/scheduler.h"
#include "skiff/netd/task_state.h"
#include "skiff/netd/update.h"
#include "skiff/overlay/peers.h"

namespace skiff::netd {

using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

inline constexpr uint32_t kIngressVni = Allocator::kIngressVni;
inline constexpr size_t kTaskHistory = 5;  // docker's default task-history-limit
inline constexpr const char* kIngress = Allocator::kIngress;
// Replicas per service on this node: a network's /24 addresses 253 hosts,
// one of them the node's ingress address; more would only fail in IPAM.
inline constexpr uint64_t kMaxReplicas = 250;

std::string newContainerId();  // 64 hex
std::string newObjectId();     // 25 chars [a-z0-9], docker's task/service/network id form
std::string rfc3339(SysClock::time_point t);
// docker's status of an ended container: "Exited (0) 3 seconds ago".
std::string exitedStatus(int exitCode, SysClock::time_point finished);
std::string portsText(const std::vector<runtime::PortSpec>& ports);  // "*:4000->80/tcp"
// The proxy listener of a published port: "4000/tcp" (+ "@<host ip>"). Ports
// are unique in the swarm, so the port names the listener.
std::string listenerName(const runtime::PortSpec& p);
bool validStackName(const std::string& name);
// True for "IP" and for "IP:PORT" with PORT 1..65535 written in digits: the
// part after the first ':' is checked, the address is not.
bool validPortSuffix(const std::string& hostPort);
// The last maxBytes of a log file (from a line start): logs are never
// rotated, so the API answers with their tail instead of the whole file.
inline constexpr size_t kLogTailBytes = 1 << 20;
std::string readLogTail(const std::string& path, size_t maxBytes = kLogTailBytes);
// The bytes from offset on (at most maxBytes); *end: the offset after them.
std::string readLogFrom(const std::string& path, uint64_t offset, uint64_t* end, size_t maxBytes = kLogTailBytes);
// Swarm template placeholders in hostnames and env: {{.Service.Name}},
// {{.Task.Slot}}, {{.Task.Name}}, {{.Task.ID}}, {{.Node.Hostname}}, {{.Node.ID}}.
std::string expandTemplate(std::string text, const std::map<std::string, std::string>& values);

// The owner of a uv handle allocated on the heap; freed in the close callback.
struct TimerHandle {
  uv_timer_t timer;
  std::function<void()> fire;
};
TimerHandle* startTimer(uv_loop_t* loop, std::chrono::milliseconds after, std::function<void()> fire);
void cancelTimer(TimerHandle*& h);  // stops, closes, and nulls h

struct PollHandle {
  uv_poll_t poll;
  std::function<void()> ready;
};

struct NetworkState {
  std::string name;  // "getstartedlab_webnet" or "ingress"
  std::string id;
  std::string stack;  // "" for ingress and for those `network create` made
  uint32_t vni = 0;
  overlay::Subnet subnet{};
  int mtu = 1450;
  std::optional<overlay::Ipv4> nodeAddress;
  std::string local;  // this node's VTEP address ("" on a swarm of one: the kernel picks)
  runtime::NetworkSpec spec;

  overlay::NetworkConfig config() const {
    overlay::NetworkConfig c;
    c.name = name;
    c.vni = vni;
    c.subnet = subnet;
    c.mtu = mtu;
    if (nodeAddress) c.nodeAddress = std::make_pair(*nodeAddress, subnet.prefix);
    c.local = local;
    return c;
  }
  json toJson() const {
    return json{{"name", name},
                {"id", id},
                {"stack", stack},
                {"vni", vni},
                {"subnet", subnet.str()},
                {"nodeAddress", nodeAddress ? nodeAddress->str() : ""},
                {"spec", runtime::toJson([&] {
                   runtime::StackSpec s;
                   s.networks[spec.name] = spec;
                   return s;
                 }())["networks"][spec.name]}};
  }
};

struct TaskEndpoint {
  std::string network;
  overlay::Ipv4 ip{};
  int prefix = 24;
  std::string hostIfName;
  std::string mac;
};

struct Task {
  std::string id;           // 25 chars, docker's task id form
  std::string containerId;  // 64 hex
  std::string service;
  std::string stack;
  std::string node;  // id of the node that runs it ("" while Pending)
  uint64_t slot = 0;
  uint64_t specVersion = 0;
  std::string image;  // as the user wrote it
  // The image id it runs: resolved once when the manager assigns it (workers
  // fetch that id if they lack it) or when a node starts it.
  std::string imageId;
  TaskState desiredState = TaskState::kRunning;
  TaskState state = TaskState::kNew;
  std::string error;
  SysClock::time_point created, since, started, finished;
  int exitCode = 0;
  bool stopRequested = false;
  bool containerCleaned = false;
  std::optional<runtime::Launched> launched;
  // Between clone and exec: the shim mounts the rootfs; startPoll watches
  // its `ready` pipe.
  std::optional<runtime::Starting> starting;
  PollHandle* startPoll = nullptr;
  runtime::ContainerSpec spec;
  std::vector<TaskEndpoint> endpoints;
  PollHandle* poll = nullptr;
  TimerHandle* killTimer = nullptr;
  TimerHandle* drainTimer = nullptr;
  bool reported = false;  // worker: its final state went to the manager in a heartbeat
  // Readiness: a running task enters the proxy's rotation once it is ready:
  // healthy (its health check passed), or, without a health check, once its
  // published TCP target port accepts a connection (at once when it has none).
  bool ready = false;
  SteadyClock::time_point readySince{};
  std::optional<runtime::Healthcheck> healthcheck;  // the service's, else the image's
  std::string health;                               // "" (no check), "starting", "healthy", "unhealthy"
  uint64_t healthFailures = 0;
  std::string healthOutput;  // the last check's output
  TimerHandle* probeTimer = nullptr;
  bool checkBusy = false;    // a health check runs on the thread pool
  bool exitPending = false;  // it exited meanwhile: reaped once the check is back
  bool unhealthy = false;    // stopped for failing its health check: a failure
  bool live() const { return isLive(state); }
  std::string name() const { return service + "." + std::to_string(slot); }
};
// Tasks and services of lone containers are the ones named like their stack
// (a stack's services always have a "<stack>_" prefix).
inline bool isLone(const std::string& stack, const std::string& service) { return !stack.empty() && stack == service; }
// What `ps` calls it: "getstartedlab_web.1.<task id>", a lone container its name.
inline std::string containerName(const Task& t) {
  return isLone(t.stack, t.service) ? t.service : t.name() + "." + t.id;
}

struct ServiceState {
  std::string name;  // "getstartedlab_web"
  std::string id;
  std::string stack;
  runtime::ServiceSpec spec;
  uint64_t specVersion = 1;
  SysClock::time_point created, updated;
  std::vector<std::string> listeners;
  // Listeners this removed service handed to another service of its stack
  // (a rename): its replicas drain there but do not own them.
  std::vector<std::string> handedOver;
  // Where its replicas may hold connections: listeners + handedOver.
  std::vector<std::string> drainListeners() const {
    std::vector<std::string> all = listeners;
    all.insert(all.end(), handedOver.begin(), handedOver.end());
    return all;
  }
  std::map<uint64_t, std::vector<SteadyClock::time_point>> restartTimes;
  std::map<uint64_t, TimerHandle*> pendingRestarts;
  std::set<uint64_t> haltedSlots;  // restart policy said no: the slot stays empty
  // Metrics: restarts the restart policy ordered, and entries of tasks run
  // on this node into each state (toString(TaskState) -> count).
  uint64_t restarts = 0;
  std::map<std::string, uint64_t> transitions;
  bool removed = false;
  // Rolling updates: the run in progress or the last one (paused, completed),
  // whether it is a rollback, and the spec it would roll back to.
  std::optional<UpdateRun> update;
  bool rollingBack = false;
  SysClock::time_point updateStarted, updateCompleted;
  std::optional<runtime::ServiceSpec> previousSpec;
  uint64_t previousVersion = 0;
  uint64_t lastVersion = 1;  // versions are never reused, also across rollbacks
  TimerHandle* updateTimer = nullptr;
  TimerHandle* loneTimer = nullptr;  // a lone container's --rm, after its task's end
  // driveUpdate is not re-entered (a start can make a task ready at once):
  // a call while it runs makes it step once more instead.
  bool driving = false, driveAgain = false;
};

// A replica's mesh counters: one proxy's, or summed over the nodes' proxies.
struct MeshCounters {
  uint64_t connections = 0, active = 0, bytesIn = 0, bytesOut = 0;
  void add(const MeshCounters& o) {
    connections += o.connections;
    active += o.active;
    bytesIn += o.bytesIn;
    bytesOut += o.bytesOut;
  }
};

// A replica's cgroup figures as its node read them, at sampledAtNs (that
// node's CLOCK_REALTIME): CPU % compares two readings of one node's clock.
struct TaskUsage {
  runtime::CgroupStats cgroup;
  int64_t sampledAtNs = 0;
  std::string error;  // why there are no figures
};

// A lone container (`skiff run`): a stack of its name holding one service of
// its name, pinned to the node it was run on, that `stack ls` and `service ls`
// leave out. Its tasks are its lives (a start after a stop is a new task).
struct LoneContainer {
  bool autoRemove = false;  // --rm: removed once it stops or exits
  double stopTimeout = 10;  // the grace it was run with (`stop -t` changes it for one stop)
};

// Store kind of a lone container's last life once it ended, by name: tasks
// are not stored, and `ps -a` lists a stopped container after a restart too.
inline constexpr const char* kLoneEnded = "container-ended";

struct StackState {
  std::string name;
  runtime::StackSpec spec;
  bool removed = false;
  std::optional<LoneContainer> lone;
};

// A service's name: "<stack>_<service>", a lone container's is its own.
inline std::string serviceFullName(const std::string& stack, const std::string& service, bool lone) {
  return lone ? stack : stack + "_" + service;
}

class Orchestrator::Impl {
 public:
  explicit Impl(OrchestratorDeps deps) : d_(std::move(deps)) {
    if (d_.mesh == nullptr && d_.proxy != nullptr) ownMesh_ = std::make_unique<ProxyMesh>(*d_.proxy);
    mesh_ = d_.mesh != nullptr ? d_.mesh : ownMesh_.get();
  }
  // Destroyed without shutdown() (tests, a failed start): the recurring
  // cluster timer must not fire into a dead object.
  ~Impl() {
    cancelTimer(clusterTimer_);
    cancelTimer(pokeTimer_);
    agent_.reset();  // before the link it talks through
  }

  OrchestratorDeps d_;
  std::unique_ptr<ProxyMesh> ownMesh_;
  Mesh* mesh_ = nullptr;  // d_.mesh, or ownMesh_ on d_.proxy
  bool swarm_ = false;
  std::string nodeId_;
  SysClock::time_point swarmCreated_;
  Allocator alloc_;  // VNIs, subnets and addresses, swarm-wide (the manager's)
  int mtu_ = 1450;
  std::map<std::string, NetworkState> networks_;
  std::map<std::string, StackState> stacks_;
  std::map<std::string, ServiceState> services_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;  // by task id; live and history
  std::function<void()> shutdownDone_;
  bool shuttingDown_ = false;
  // While restore() deploys the stored stacks one by one: no network is
  // judged unused before every stack that may use it is back.
  bool restoring_ = false;
  int checksInFlight_ = 0;        // health checks on the thread pool: shutdown waits for them
  bool timingReconcile_ = false;  // an outer reconcile is being timed

  // ---- the swarm: both roles -------------------------------------------
  // Every node runs its tasks through an agent (worker_): a worker's Impl is
  // one; a manager's Impl keeps the swarm's desired and observed state only,
  // and its node's tasks run in agent_, a second Impl that reaches this one
  // through agentLink_ with the requests a remote agent sends to port 2377
  // (swarmkit's design: the manager's node runs an agent like any other).
  bool worker_ = false;          // an agent: runs the tasks assigned to nodeId_
  bool embedded_ = false;        // the manager's own agent (keeps nothing in the store)
  std::unique_ptr<Impl> agent_;  // manager: its node's agent
  std::unique_ptr<ClusterClient> agentLink_;
  // Agents of an earlier swarm of this node (left, then init again): they
  // stop their replicas, then wait for netd's shutdown.
  std::vector<std::unique_ptr<Impl>> retiredAgents_;
  // Agent: the backends of each bound port, as the last assignment named
  // them; a replica that exits here leaves them at once (dropLocalBackend).
  std::map<std::string, std::vector<proxy::Backend>> lastBackends_;
  void dropLocalBackend(const Task& t);
  // netd stops: this node's replicas stop (the agent's), then done().
  void beginShutdown(std::function<void()> done);
  int agentsRunning_ = 0;             // manager: agents still stopping their replicas
  TimerHandle* pokeTimer_ = nullptr;  // manager: the agent asked for its assignment soon
  // Manager: starts (or, empty secret, stops) the node's own agent.
  void startLocalAgent(const std::string& secret);
  void stopLocalAgent();
  // Manager: something this node's assignment holds changed; its agent
  // asks for the assignment on the next turn of the loop.
  void pokeAgent();
  // Agent of a manager: a task here changed; report on the next turn.
  void heartbeatSoon();
  // Devices, endpoints and peers in the kernel are an agent's: a worker's
  // Impl, or the manager's own agent (also after either left the swarm).
  bool ownsKernel() const { return worker_ || embedded_ || agentLink_ == nullptr; }
  // The Impl that runs this node's tasks: agent_ on a manager, else this.
  Impl& node() { return agent_ ? *agent_ : *this; }
  const Impl& node() const { return agent_ ? *agent_ : *this; }
  // Manager: its agent's copy of a task of this node (the process, the
  // cgroup), or null.
  const Task* runningHere(const std::string& taskId) const {
    if (!agent_) return nullptr;
    auto it = agent_->tasks_.find(taskId);
    return it == agent_->tasks_.end() ? nullptr : it->second.get();
  }
  // What the cluster port answers (join, heartbeat, image, layer).
  ApiResult<json> dispatch(const std::string& path, const std::string& peer, const json& body);
  std::string advertiseAddr_;            // this node's address for cluster traffic and VXLAN
  std::vector<overlay::Peer> peers_;     // remote peers programmed in this node's kernel
  TimerHandle* clusterTimer_ = nullptr;  // manager: node watch; worker: heartbeat
  bool inSwarm() const { return swarm_ || worker_; }
  // The task is this Impl's to run (an agent's, on its node).
  bool isLocal(const Task& t) const { return worker_ && !t.node.empty() && t.node == nodeId_; }
  void applyPeers(const std::vector<overlay::Peer>& wanted);
  void stopClusterTimer();

  // ---- manager ----------------------------------------------------------
  std::string listenAddr_;
  Membership members_;  // the swarm's nodes and join secrets
  bool clusterListening_ = false;

  void persistNode(const NodeState& n);
  // Where nodes reach this manager: "<advertise or 127.0.0.1>:<cluster port>".
  std::string managerAddr() const;
  Status startManager();  // cluster listener + node watch (init, restore)
  void managerTick();
  std::string nodeName(const std::string& id) const;
  std::vector<SchedNode> schedNodes() const;
  // Places `count` new tasks of a service: node ids ("" with the reason).
  std::vector<Placement> place(const ServiceState& svc, size_t count);
  void schedulePending();
  void nodeDown(NodeState& n, const std::string& why);
  void orphanTasksOn(const std::string& nodeId, const std::string& why);
  ApiResult<json> clusterJoin(const json& body, const std::string& peer);
  ApiResult<json> clusterHeartbeat(const json& body);
  NodeState* authenticate(const json& body);
  ApiResult<json> clusterImage(const json& body);
  ApiResult<json> clusterLayer(const json& body);
  void takeReports(NodeState& n, const json& reports);
  json assignmentFor(const NodeState& n) const;
  std::vector<overlay::Peer> peersFor(const std::string& nodeId) const;
  // The manager: a published port's backends, for every node's assignment.
  std::vector<proxy::Backend> backendsFor(const ServiceState& svc, const runtime::PortSpec& port) const;

  // ---- worker -----------------------------------------------------------
  // A join: checked first (joinRequest), then the manager's answer applied
  // (joined), with the exchange in between blocking (postNow) or not (post).
  struct JoinRequest {
    std::string remote, advertise;
    json body;
  };
  bool joining_ = false;  // an asynchronous join waits for the manager
  std::variant<JoinRequest, ApiError> joinRequest(const std::string& token, const std::string& remoteAddr,
                                                  const std::string& advertiseAddr) const;
  ApiResult<json> joined(const JoinRequest& r, const Result<ClusterReply>& reply);
  std::string managerAddr_, nodeSecret_;
  std::set<std::string> agentListeners_;               // published ports bound by an assignment
  std::map<std::string, std::string> listenerErrors_;  // ports that could not be bound: why
  // Per bound port: its backends' container ids -> their nodes' hostnames.
  std::map<std::string, std::map<std::string, std::string>> backendNodes_;
  bool heartbeatBusy_ = false;
  bool heartbeatAgain_ = false;  // heartbeatSoon() while one was on its way
  bool managerReachable_ = true;
  std::unique_ptr<ClusterClient> ownClient_;
  ClusterClient& client();
  void startHeartbeats();
  void heartbeat();
  json reportTasks();
  void applyAssignment(const json& a);
  // Images a task needs that this node lacks come from the manager, layer
  // by layer (only those missing here), verified by content on import.
  std::set<std::string> fetching_;  // image ids being fetched
  void fetchImage(const std::string& imageId);
  void fetchLayers(const std::string& imageId, std::string config, std::string tag, std::vector<std::string> missing);
  void imageFetched(const std::string& imageId, const std::string& error);
  void leaveAsWorker(const std::string& why);

  // ---- persistence ------------------------------------------------------

  void persistSwarm();
  void persistNetwork(const NetworkState& n);
  // Fails when the store cannot save it: deploy and scale answer 500 then.
  Status persistStack(const StackState& s);
  void persistContainer(const Task& t);
  void forgetContainer(const std::string& id);

  // ---- networks ---------------------------------------------------------

  Result<NetworkState*> ensureNetwork(const std::string& name, const std::string& stack,
                                      const runtime::NetworkSpec& spec, std::optional<uint32_t> vni,
                                      std::optional<overlay::Subnet> subnet);
  void removeNetwork(const std::string& name);
  // Why a stack (or, `lone`, a container) cannot join the existing network
  // `name` it declares external; nullopt when it can.
  std::optional<ApiError> checkExternalNetwork(const std::string& name, bool lone) const;
  // What skiff cannot make of a network's spec (driver, mtu, subnet).
  std::optional<ApiError> checkNetworkSpec(const std::string& name, const runtime::NetworkSpec& net) const;
  // The network a stack's key stands for: "<stack>_<key>", or the existing
  // network an external declaration names.
  std::string networkName(const std::string& stack, const std::string& key) const;
  // The stacks and containers (not being removed) that declare `name`
  // external, as "stack X" / "container X".
  std::vector<std::string> externalUsersOf(const std::string& name) const;
  // Networks that no stack names any more and no live task uses go: those
  // of the stacks just `erased` and of redeploys that dropped them. A
  // stack's own network outlives its stack while another declares it
  // external, and goes with the last of those.
  void removeUnusedNetworks(const std::vector<StackState>& erased);

  // ---- tasks ------------------------------------------------------------

  std::vector<Task*> tasksOf(const std::string& service);
  bool anyLive(const std::string& service) const;
  std::vector<std::string> networksOf(const ServiceState& s) const;
  void setState(Task& t, TaskState state, const std::string& error = "");
  void releaseAddresses(Task& t);
  void startTask(ServiceState& svc, uint64_t slot);
  void startTasks(ServiceState& svc, const std::vector<uint64_t>& slots);
  Task& newTask(ServiceState& svc, uint64_t slot);
  // Manager: addresses for a placed task, then run it here or hand it to its node.
  void assignTask(ServiceState& svc, Task& t);
  // Any node: start the container of a task whose addresses are set.
  void runTask(ServiceState& svc, Task& t);
  void rejectTask(Task& t, const std::string& why);
  // The container's shim is done (exec'd or failed): Running, or Failed.
  void finishStart(Task& t);
  void startFailed(Task& t, const Error& e);
  Result<std::vector<runtime::BindMount>> materializeMounts(const ServiceState& svc);
  void watchExit(Task& t);
  static void closePoll(PollHandle*& h);
  void detachEndpoints(Task& t);
  void cleanupContainer(Task& t, bool removeLogs);
  void onExit(const std::string& taskId);

  // After a task ended (exited, or never started): restart policy, then
  // whatever the service and the removals need next.
  void taskEnded(Task& t, int exitCode);
  void trimHistory(const std::string& service, uint64_t slot);
  void dropTask(Task& t);
  // Drains the replica in the proxy, then sends the stop signal, then
  // SIGKILL after the grace period.
  void stopTask(Task& t);
  void waitForDrain(const std::string& taskId, SteadyClock::time_point deadline);
  uint64_t activeConnections(const Task& t) const;
  void sendStopSignal(Task& t);
  static int signalNumber(const std::string& name);
  void updateBackends(ServiceState& svc);
  void reconcile(ServiceState& svc);  // timed for d_.onReconcile; the work is reconcileNow
  void reconcileNow(ServiceState& svc);

  // ---- updates and readiness (orchestrator_update.cc) -------------------
  // A changed spec: the current one becomes the previous, a new version
  // starts a rolling update (replicated services; global ones replace at once).
  void beginUpdate(ServiceState& svc, runtime::ServiceSpec next, bool rollback);
  void driveUpdate(ServiceState& svc);  // planner steps, carried out
  void stepOnce(ServiceState& svc);
  void rollback(ServiceState& svc);
  // A task of the service ended: counts against the update when it was new.
  void noteUpdateFailure(ServiceState& svc, const Task& t);
  json updateStatus(const ServiceState& svc) const;
  Status persistServiceSpec(const ServiceState& svc);
  void persistPreviousSpec(const ServiceState& svc);    // "previous"/<service>, for rollback after a restart
  void restorePreviousSpecs(const std::string& stack);  // after restore() deployed the stack
  void beginReadiness(Task& t);
  void probe(const std::string& taskId);
  void runHealthCheck(const std::string& taskId);
  void healthResult(const std::string& taskId, const Result<runtime::ExecResult>& r);
  void becameReady(Task& t);
  void unready(Task& t, const std::string& why);
  // Global mode: one task on every node that passes the service's filters.
  void reconcileGlobal(ServiceState& svc);
  std::vector<std::string> globalNodesOf(const ServiceState& svc) const;
  // Start-up: skiff devices and peer entries a previous life left in the
  // kernel that the current state does not name go; peers on a network this
  // node keeps are adopted so the next diff removes the stale ones.
  void removeStaleNetworks();
  void adoptKernelPeers(const NetworkState& n);

  // Services and stacks marked removed go away once their tasks are gone.
  void finishRemovals();
  void maybeShutdownDone();

  // ---- deploy -----------------------------------------------------------

  ApiResult<json> deploy(const std::string& name, const runtime::StackSpec& spec,
                         const std::optional<LoneContainer>& lone = std::nullopt);
  // ---- lone containers (orchestrator_containers.cc) ----
  StackState* findLone(const std::string& ref);  // by name, or a container id (prefix) of one of its tasks
  ApiResult<json> setLoneRunning(StackState& st, bool run, std::optional<double> timeout);
  ApiResult<json> removeLone(StackState& st, double grace);  // stops it (grace s), then it goes
  // A task of it is live and not being stopped: what `start` and `rm` ask.
  // The newest task of a service (a lone container's current life), or null.
  const Task* newestTaskOf(const std::string& service) const {
    const Task* newest = nullptr;
    for (const auto& [id, t] : tasks_) {
      if (t->service == service && (newest == nullptr || t->created > newest->created)) newest = t.get();
    }
    return newest;
  }
  // Stores how many replicas a lone container runs (1 or 0) and with which
  // stop grace, so that a netd restart finds it as it is now; then its service.
  Status storeLone(StackState& st, ServiceState& s, uint64_t replicas, double grace);
  bool runningNotStopping(const std::string& service) const {
    return std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& kv) {
      return kv.second->service == service && kv.second->live() && !kv.second->stopRequested;
    });
  }
  // Its slot ended by itself and will not restart: stays stopped across a
  // netd restart (replicas 0 stored), and goes when it was run with --rm.
  void loneEnded(ServiceState& s);
  // The node that ran it keeps its ended life (kLoneEnded: its `ps` row,
  // its inspect, its log's tail) for `ps -a`, `inspect` and `logs` after a
  // restart. endedLone: that of the container `ref` (name or id prefix) of
  // this manager's, while its node has run no task of it since; its row's
  // status says how long ago it ended.
  void rememberLoneEnd(const Task& t);
  std::optional<json> endedLone(const std::string& ref, bool nameOnly = false) const;
  void forgetLoneEnd(const std::string& name);
  void removeService(ServiceState& s);
  ServiceState* findService(const std::string& ref);
  const ServiceState* findService(const std::string& ref) const;
  const Task* findContainer(const std::string& ref) const;

  // ---- stats (orchestrator_stats.cc) ------------------------------------
  // Manager: what workers' heartbeats said, the latest report of each: use
  // of their replicas (by task id) and their proxies' counters (by node id,
  // then backend = container id).
  std::map<std::string, TaskUsage> remoteUsage_;
  std::map<std::string, std::map<std::string, MeshCounters>> remoteMesh_;
  TaskUsage localUsage(const Task& t) const;
  std::map<std::string, MeshCounters> localMesh() const;  // by container id
  json statsRow(const Task& t, const std::map<std::string, MeshCounters>& local) const;
  // Worker: the heartbeat's "stats" ({"tasks": [...], "mesh": [...]});
  // manager: takes one in.
  json statsReport() const;
  void takeStats(const NodeState& n, const json& stats);

  // ---- views ------------------------------------------------------------

  // Replicas running and in rotation (ready): what "5/5" promises a curl.
  uint64_t servingCount(const std::string& service) const;
  json serviceSummary(const ServiceState& s) const;
  json taskJson(const Task& t) const;
  std::string containerStatus(const Task& t) const;
  json containerSummary(const Task& t) const;
  json containerInspect(const Task& t) const;
};

}  // namespace skiff::netd
