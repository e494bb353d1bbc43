#pragma once
// The orchestrator's inside, shared by its files (not a public header):
//   orchestrator.cc        desired state: swarm, deploy/update/remove, networks, persistence
//   orchestrator_tasks.cc  actual state: a task's life (start, exit, restart, stop), reconcile
//   orchestrator_views.cc  what the API shows: docker-like JSON of services, tasks, containers
//   orchestrator_util.cc   the small helpers declared here
// Everything runs on the daemon's loop thread.

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skiff/netd/orchestrator.h"

namespace skiff::netd {

using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

inline constexpr uint32_t kIngressVni = 4096;
inline constexpr size_t kTaskHistory = 5;  // docker's default task-history-limit
inline constexpr const char* kIngress = "ingress";
// Replicas per service on this node: a network's /24 addresses 253 hosts,
// one of them the node's ingress address; more would only fail in IPAM.
inline constexpr uint64_t kMaxReplicas = 250;

std::string newContainerId();  // 64 hex
std::string newObjectId();     // 25 chars [a-z0-9], docker's task/service/network id form
std::string rfc3339(SysClock::time_point t);
std::string portsText(const std::vector<runtime::PortSpec>& ports);  // "*:4000->80/tcp"
// The proxy listener of a published port: "4000/tcp" (+ "@<host ip>"). Ports
// are unique in the swarm, so the port names the listener.
std::string listenerName(const runtime::PortSpec& p);
bool validStackName(const std::string& name);
// The last maxBytes of a log file (from a line start): logs are never
// rotated, so the API answers with their tail instead of the whole file.
inline constexpr size_t kLogTailBytes = 1 << 20;
std::string readLogTail(const std::string& path, size_t maxBytes = kLogTailBytes);
// Swarm template placeholders in hostnames and env: {{.Service.Name}},
// {{.Task.Slot}}, {{.Task.Name}}, {{.Task.ID}}, {{.Node.Hostname}}, {{.Node.ID}}.
std::string expandTemplate(std::string text, const std::map<std::string, std::string>& values);

// The owner of a uv handle allocated on the heap; freed in the close callback.
struct TimerHandle {
  uv_timer_t timer;
  std::function<void()> fire;
};
TimerHandle* startTimer(uv_loop_t* loop, std::chrono::milliseconds after,
                        std::function<void()> fire);
void cancelTimer(TimerHandle*& h);  // stops, closes, and nulls h

struct PollHandle {
  uv_poll_t poll;
  std::function<void()> ready;
};

struct NetworkState {
  std::string name;  // "getstartedlab_webnet" or "ingress"
  std::string id;
  std::string stack;  // "" for ingress
  uint32_t vni = 0;
  overlay::Subnet subnet{};
  int mtu = 1450;
  std::optional<overlay::Ipv4> nodeAddress;
  runtime::NetworkSpec spec;

  overlay::NetworkConfig config() const {
    overlay::NetworkConfig c;
    c.name = name;
    c.vni = vni;
    c.subnet = subnet;
    c.mtu = mtu;
    if (nodeAddress) c.nodeAddress = std::make_pair(*nodeAddress, subnet.prefix);
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
  uint64_t slot = 0;
  uint64_t specVersion = 0;
  std::string image;  // as the user wrote it
  std::string imageId;
  std::string desiredState = "Running";
  std::string state = "New";  // New Starting Running Complete Failed Shutdown Rejected
  std::string error;
  SysClock::time_point created, since, started, finished;
  int exitCode = 0;
  bool stopRequested = false;
  bool containerCleaned = false;
  std::optional<runtime::Launched> launched;
  runtime::ContainerSpec spec;
  std::vector<TaskEndpoint> endpoints;
  PollHandle* poll = nullptr;
  TimerHandle* killTimer = nullptr;
  TimerHandle* drainTimer = nullptr;
  bool live() const { return state == "New" || state == "Starting" || state == "Running"; }
  std::string name() const { return service + "." + std::to_string(slot); }
};

struct ServiceState {
  std::string name;  // "getstartedlab_web"
  std::string id;
  std::string stack;
  runtime::ServiceSpec spec;
  uint64_t specVersion = 1;
  SysClock::time_point created, updated;
  std::vector<std::string> listeners;
  std::map<uint64_t, std::vector<SteadyClock::time_point>> restartTimes;
  std::map<uint64_t, TimerHandle*> pendingRestarts;
  std::set<uint64_t> haltedSlots;  // restart policy said no: the slot stays empty
  bool removed = false;
};

struct StackState {
  std::string name;
  runtime::StackSpec spec;
  bool removed = false;
};

class Orchestrator::Impl {
 public:
  explicit Impl(OrchestratorDeps deps) : d_(std::move(deps)) {}

  OrchestratorDeps d_;
  bool swarm_ = false;
  std::string nodeId_;
  SysClock::time_point swarmCreated_;
  overlay::Ipam ipam_;
  uint32_t nextVni_ = kIngressVni + 1;
  int mtu_ = 1450;
  std::map<std::string, NetworkState> networks_;
  std::map<std::string, StackState> stacks_;
  std::map<std::string, ServiceState> services_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;  // by task id; live and history
  std::function<void()> shutdownDone_;
  bool shuttingDown_ = false;

  // ---- persistence ------------------------------------------------------

  void persistSwarm();
  void persistNetwork(const NetworkState& n);
  void persistStack(const StackState& s);
  void persistContainer(const Task& t);
  void forgetContainer(const std::string& id);

  // ---- networks ---------------------------------------------------------

  Result<NetworkState*> ensureNetwork(const std::string& name, const std::string& stack,
                                      const runtime::NetworkSpec& spec, std::optional<uint32_t> vni,
                                      std::optional<overlay::Subnet> subnet);
  void removeNetwork(const std::string& name);

  // ---- tasks ------------------------------------------------------------

  std::vector<Task*> tasksOf(const std::string& service);
  bool anyLive(const std::string& service) const;
  std::vector<std::string> networksOf(const ServiceState& s) const;
  void setState(Task& t, const std::string& state, const std::string& error = "");
  void releaseAddresses(Task& t);
  void startTask(ServiceState& svc, uint64_t slot);
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
  void reconcile(ServiceState& svc);

  // Services and stacks marked removed go away once their tasks are gone.
  void finishRemovals();
  void maybeShutdownDone();

  // ---- deploy -----------------------------------------------------------

  ApiResult<json> deploy(const std::string& name, const runtime::StackSpec& spec);
  void removeService(ServiceState& s);
  ServiceState* findService(const std::string& ref);
  const ServiceState* findService(const std::string& ref) const;
  const Task* findContainer(const std::string& ref) const;

  // ---- views ------------------------------------------------------------

  uint64_t runningCount(const std::string& service) const;
  json serviceSummary(const ServiceState& s) const;
  json taskJson(const Task& t) const;
  std::string containerStatus(const Task& t) const;
  json containerSummary(const Task& t) const;
};

}  // namespace skiff::netd
