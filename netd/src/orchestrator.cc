#include "skiff/netd/orchestrator.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "skiff/common/log.h"
#include "skiff/netd/reconcile.h"
#include "skiff/runtime/restart_policy.h"

namespace skiff::netd {
namespace fs = std::filesystem;
using json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kIngressVni = 4096;
constexpr size_t kTaskHistory = 5;  // docker's default task-history-limit
constexpr const char* kIngress = "ingress";

std::string randomId(size_t len, const char* alphabet) {
  static std::random_device rd;
  static std::mt19937_64 gen(rd());
  size_t n = std::char_traits<char>::length(alphabet);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::string out;
  for (size_t i = 0; i < len; i++) out += alphabet[pick(gen)];
  return out;
}
std::string newContainerId() { return randomId(64, "0123456789abcdef"); }
std::string newObjectId() { return randomId(25, "abcdefghijklmnopqrstuvwxyz0123456789"); }

std::string rfc3339(SysClock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "0001-01-01T00:00:00Z";
  std::time_t secs = SysClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() % 1000000000;
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%09lldZ", static_cast<long long>(nanos));
  return std::string(buf) + frac;
}

std::string portsText(const std::vector<runtime::PortSpec>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (p.published == 0) continue;
    if (!out.empty()) out += ", ";
    out += (p.hostIp.empty() ? "*" : p.hostIp) + ":" + std::to_string(p.published) + "->" +
           std::to_string(p.target) + "/" + p.protocol;
  }
  return out;
}

std::string listenerName(const std::string& service, const runtime::PortSpec& p) {
  return service + ":" + std::to_string(p.published) + "/" + p.protocol;
}

bool validStackName(const std::string& name) {
  static const std::regex re("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$");
  return std::regex_match(name, re);
}

std::string readFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Swarm template placeholders in hostnames: {{.Service.Name}},
// {{.Task.Slot}}, {{.Task.Name}}, {{.Task.ID}}, {{.Node.Hostname}}, {{.Node.ID}}.
std::string expandTemplate(std::string text, const std::map<std::string, std::string>& values) {
  static const std::regex re(R"(\{\{\s*(\.[A-Za-z.]+)\s*\}\})");
  std::string out;
  std::sregex_iterator it(text.begin(), text.end(), re), end;
  size_t last = 0;
  for (; it != end; ++it) {
    out += text.substr(last, it->position() - last);
    auto found = values.find((*it)[1]);
    out += found != values.end() ? found->second : it->str();
    last = it->position() + it->length();
  }
  return out + text.substr(last);
}

// The owner of a uv handle allocated on the heap; freed in the close callback.
struct TimerHandle {
  uv_timer_t timer;
  std::function<void()> fire;
};

TimerHandle* startTimer(uv_loop_t* loop, std::chrono::milliseconds after, std::function<void()> fire) {
  auto* h = new TimerHandle;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->fire = std::move(fire);
  uv_timer_start(
      &h->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<TimerHandle*>(t->data);
        auto callback = std::move(self->fire);  // it may cancel (close) this very timer
        self->fire = nullptr;
        if (callback) callback();
      },
      static_cast<uint64_t>(std::max<int64_t>(0, after.count())), 0);
  return h;
}

void cancelTimer(TimerHandle*& h) {
  if (h == nullptr) return;
  uv_timer_stop(&h->timer);
  h->fire = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->timer),
           [](uv_handle_t* handle) { delete static_cast<TimerHandle*>(handle->data); });
  h = nullptr;
}

struct PollHandle {
  uv_poll_t poll;
  std::function<void()> ready;
};

}  // namespace

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
    return json{{"name", name}, {"id", id}, {"stack", stack}, {"vni", vni}, {"subnet", subnet.str()},
                {"nodeAddress", nodeAddress ? nodeAddress->str() : ""}, {"spec", runtime::toJson([&] {
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

  void persistSwarm() {
    auto st = d_.store->put("swarm", "self",
                            json{{"nodeId", nodeId_}, {"createdAt", rfc3339(swarmCreated_)},
                                 {"created", std::chrono::duration_cast<std::chrono::seconds>(
                                                 swarmCreated_.time_since_epoch()).count()}});
    if (!st.ok()) log::error("netd", st.error().message);
  }
  void persistNetwork(const NetworkState& n) {
    auto st = d_.store->put("network", n.name, n.toJson());
    if (!st.ok()) log::error("netd", st.error().message);
  }
  void persistStack(const StackState& s) {
    auto st = d_.store->put("stack", s.name, json{{"name", s.name}, {"spec", runtime::toJson(s.spec)}});
    if (!st.ok()) log::error("netd", st.error().message);
  }
  void persistContainer(const Task& t) {
    auto st = d_.store->put("container", t.containerId,
                            json{{"id", t.containerId}, {"stateDir", t.spec.stateDir}, {"task", t.name()}});
    if (!st.ok()) log::error("netd", st.error().message);
  }
  void forgetContainer(const std::string& id) {
    auto st = d_.store->erase("container", id);
    if (!st.ok()) log::error("netd", st.error().message);
  }

  // ---- networks ---------------------------------------------------------

  Result<NetworkState*> ensureNetwork(const std::string& name, const std::string& stack,
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
    if (vni) {
      n.vni = *vni;
    } else if (name == kIngress) {
      n.vni = kIngressVni;
    } else {
      n.vni = nextVni_++;
    }
    nextVni_ = std::max(nextVni_, n.vni + 1);
    std::optional<overlay::Subnet> requested = subnet;
    if (!requested && !spec.subnet.empty()) {
      requested = overlay::Subnet::parse(spec.subnet);
      if (!requested) return Error::msg("network " + name + ": invalid subnet \"" + spec.subnet + "\"");
    }
    auto sub = ipam_.allocateSubnet(name, requested);
    if (!sub.ok()) return Error::msg("network " + name + ": " + sub.error().message);
    n.subnet = *sub;
    if (name == kIngress) {
      // The node's own address on ingress: the proxy's source toward replicas.
      auto addr = ipam_.allocateAddress(name);
      if (!addr.ok()) return addr.error();
      n.nodeAddress = *addr;
    }
    auto st = d_.overlay->ensureNetwork(n.config());
    if (!st.ok()) {
      (void)ipam_.releaseSubnet(name);
      return Error::msg("network " + name + ": " + st.error().message);
    }
    auto [pos, inserted] = networks_.emplace(name, std::move(n));
    persistNetwork(pos->second);
    return &pos->second;
  }

  void removeNetwork(const std::string& name) {
    auto it = networks_.find(name);
    if (it == networks_.end()) return;
    auto st = d_.overlay->removeNetwork(it->second.config());
    if (!st.ok()) log::warn("overlay", "remove network ", name, ": ", st.error().message);
    (void)ipam_.releaseSubnet(name);
    (void)d_.store->erase("network", name);
    networks_.erase(it);
  }

  // ---- tasks ------------------------------------------------------------

  std::vector<Task*> tasksOf(const std::string& service) {
    std::vector<Task*> out;
    for (auto& [id, t] : tasks_) {
      if (t->service == service) out.push_back(t.get());
    }
    return out;
  }

  bool anyLive(const std::string& service) const {
    for (auto& [id, t] : tasks_) {
      if (t->service == service && t->live()) return true;
    }
    return false;
  }

  std::vector<std::string> networksOf(const ServiceState& s) const {
    std::vector<std::string> out;
    bool ingress = std::any_of(s.spec.ports.begin(), s.spec.ports.end(), [](const runtime::PortSpec& p) {
      return p.published != 0 && p.mode == "ingress";
    });
    if (ingress) out.push_back(kIngress);
    for (const auto& n : s.spec.networks) out.push_back(s.stack + "_" + n.name);
    return out;
  }

  void setState(Task& t, const std::string& state, const std::string& error = "") {
    t.state = state;
    t.since = SysClock::now();
    if (!error.empty()) t.error = error;
  }

  void releaseAddresses(Task& t) {
    for (const auto& ep : t.endpoints) {
      if (networks_.count(ep.network)) (void)ipam_.releaseAddress(ep.network, ep.ip);
    }
  }

  void startTask(ServiceState& svc, uint64_t slot) {
    auto owned = std::make_unique<Task>();
    Task& t = *owned;
    t.id = newObjectId();
    t.containerId = newContainerId();
    t.service = svc.name;
    t.stack = svc.stack;
    t.slot = slot;
    t.specVersion = svc.specVersion;
    t.image = svc.spec.image;
    t.created = t.since = SysClock::now();
    tasks_.emplace(t.id, std::move(owned));
    trimHistory(svc.name, slot);

    auto image = d_.images->resolve(svc.spec.image);
    if (!image.ok()) {
      setState(t, "Rejected", image.error().message);
      log::warn("netd", "task ", t.name(), " rejected: ", t.error);
      taskEnded(t, 1, /*started=*/false);
      return;
    }
    t.imageId = image->id;
    const runtime::ImageConfig& ic = image->config;

    runtime::ContainerSpec& c = t.spec;
    c.id = t.containerId;
    c.lowerDirs = d_.images->layerDirs(*image);
    c.stateDir = d_.dataRoot + "/containers/" + t.containerId;
    c.logPath = c.stateDir + "/container.log";
    // ENTRYPOINT/CMD as docker combines them: a service entrypoint resets the
    // image's CMD; a service command replaces only CMD.
    std::vector<std::string> entry = svc.spec.entrypoint ? *svc.spec.entrypoint : ic.entrypoint;
    std::vector<std::string> cmd = svc.spec.command ? *svc.spec.command
                                   : svc.spec.entrypoint ? std::vector<std::string>{}
                                                         : ic.cmd;
    c.argv = entry;
    c.argv.insert(c.argv.end(), cmd.begin(), cmd.end());
    std::map<std::string, std::string> env;
    std::vector<std::string> order;
    auto setEnv = [&](const std::string& k, const std::string& v) {
      if (!env.count(k)) order.push_back(k);
      env[k] = v;
    };
    for (const auto& kv : ic.env) {
      auto eq = kv.find('=');
      setEnv(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
    }
    for (const auto& [k, v] : svc.spec.environment) setEnv(k, v);
    if (!env.count("PATH")) setEnv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::map<std::string, std::string> templ = {{".Service.Name", svc.name},
                                                {".Service.ID", svc.id},
                                                {".Task.Slot", std::to_string(slot)},
                                                {".Task.ID", t.id},
                                                {".Task.Name", t.name() + "." + t.id},
                                                {".Node.Hostname", d_.hostname},
                                                {".Node.ID", nodeId_}};
    for (const auto& k : order) c.env.push_back(k + "=" + expandTemplate(env[k], templ));
    c.workingDir = !svc.spec.workingDir.empty() ? svc.spec.workingDir
                   : !ic.workingDir.empty()     ? ic.workingDir
                                                : "/";
    c.user = !svc.spec.user.empty() ? svc.spec.user : ic.user;
    c.hostname = svc.spec.hostname.empty() ? t.containerId.substr(0, 12) : expandTemplate(svc.spec.hostname, templ);
    c.limits = svc.spec.limits;
    if (c.argv.empty()) {
      setState(t, "Rejected", "no command specified");
      taskEnded(t, 1, false);
      return;
    }
    auto mounts = materializeMounts(svc);
    if (!mounts.ok()) {
      setState(t, "Rejected", mounts.error().message);
      taskEnded(t, 1, false);
      return;
    }
    c.mounts = std::move(*mounts);

    // Addresses first, so /etc/hosts can name them.
    for (const auto& net : networksOf(svc)) {
      auto n = networks_.find(net);
      if (n == networks_.end()) continue;
      auto ip = ipam_.allocateAddress(net);
      if (!ip.ok()) {
        releaseAddresses(t);
        t.endpoints.clear();
        setState(t, "Rejected", "network " + net + ": " + ip.error().message);
        taskEnded(t, 1, false);
        return;
      }
      TaskEndpoint ep;
      ep.network = net;
      ep.ip = *ip;
      ep.prefix = n->second.subnet.prefix;
      t.endpoints.push_back(ep);
      c.extraHosts.emplace_back(ip->str(), c.hostname);
    }
    setState(t, "Starting");
    persistContainer(t);

    auto launched = d_.launcher->launch(c, [&](pid_t pid) -> Status {
      auto netns = d_.openNetns(pid);
      if (!netns.ok()) return netns.error();
      UniqueFd nsFd = std::move(*netns);
      for (size_t i = 0; i < t.endpoints.size(); i++) {
        TaskEndpoint& ep = t.endpoints[i];
        auto attached = d_.overlay->attach(networks_.at(ep.network).config(), nsFd.get(), t.containerId,
                                           "eth" + std::to_string(i), ep.ip);
        if (!attached.ok()) return Error::msg("network " + ep.network + ": " + attached.error().message);
        ep.hostIfName = attached->hostIfName;
        ep.mac = attached->mac;
      }
      return okStatus();
    });
    if (!launched.ok()) {
      detachEndpoints(t);
      releaseAddresses(t);
      cleanupContainer(t, false);
      setState(t, "Failed", "starting container failed: " + launched.error().message);
      log::warn("netd", "task ", t.name(), " failed to start: ", launched.error().message);
      taskEnded(t, 127, false);
      return;
    }
    t.launched = std::move(*launched);
    t.started = SysClock::now();
    setState(t, "Running");
    log::info("netd", "task ", t.name(), " running (container ", t.containerId.substr(0, 12), ", pid ",
              t.launched->pid, ")");
    watchExit(t);
    updateBackends(svc);
  }

  Result<std::vector<runtime::BindMount>> materializeMounts(const ServiceState& svc) {
    std::vector<runtime::BindMount> out;
    std::error_code ec;
    for (const auto& v : svc.spec.volumes) {
      if (v.type == "bind") {
        if (!fs::exists(v.source)) return Error::msg("invalid mount config: bind source path does not exist: " + v.source);
        out.push_back({v.source, v.target, v.readOnly});
      } else if (v.type == "volume") {
        // Named volumes live under the data root and outlive replicas and
        // redeploys; anonymous ones are named after the service.
        std::string name = v.source.empty() ? svc.name + "_anon" + std::to_string(std::hash<std::string>{}(v.target) % 100000)
                                            : svc.stack + "_" + v.source;
        std::string dir = d_.dataRoot + "/volumes/" + name + "/_data";
        fs::create_directories(dir, ec);
        if (ec) return Error::msg("volume " + name + ": " + ec.message());
        out.push_back({dir, v.target, v.readOnly});
      }
    }
    for (const auto& cref : svc.spec.configs) {
      auto it = stacks_.at(svc.stack).spec.configs.find(cref.source);
      if (it == stacks_.at(svc.stack).spec.configs.end()) return Error::msg("config " + cref.source + " not found");
      std::string dir = d_.dataRoot + "/configs/" + svc.stack;
      fs::create_directories(dir, ec);
      std::string file = dir + "/" + cref.source;
      {
        std::ofstream f(file, std::ios::binary | std::ios::trunc);
        f << it->second.content;
        if (!f) return Error::msg("config " + cref.source + ": cannot write " + file);
      }
      fs::permissions(file, static_cast<fs::perms>(cref.mode), ec);
      out.push_back({file, cref.target.empty() ? "/" + cref.source : cref.target, true});
    }
    return out;
  }

  void watchExit(Task& t) {
    auto* h = new PollHandle;
    h->poll.data = h;
    std::string id = t.id;
    h->ready = [this, id] { onExit(id); };
    int rc = uv_poll_init(d_.loop, &h->poll, t.launched->pidfd.get());
    if (rc != 0) {
      log::error("netd", "watch task ", t.name(), ": ", uv_strerror(rc));
      delete h;
      return;
    }
    uv_poll_start(&h->poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* self = static_cast<PollHandle*>(p->data);
      auto ready = self->ready;
      if (ready) ready();
    });
    t.poll = h;
  }

  static void closePoll(PollHandle*& h) {
    if (h == nullptr) return;
    uv_poll_stop(&h->poll);
    h->ready = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
             [](uv_handle_t* handle) { delete static_cast<PollHandle*>(handle->data); });
    h = nullptr;
  }

  void detachEndpoints(Task& t) {
    for (const auto& ep : t.endpoints) {
      if (ep.hostIfName.empty()) continue;
      auto st = d_.overlay->detach(ep.hostIfName);
      if (!st.ok()) log::warn("overlay", "detach ", ep.hostIfName, ": ", st.error().message);
    }
  }

  void cleanupContainer(Task& t, bool removeLogs) {
    if (t.spec.id.empty()) return;
    auto st = d_.launcher->cleanup(t.spec, removeLogs);
    if (!st.ok()) log::warn("runtime", "cleanup ", t.containerId.substr(0, 12), ": ", st.error().message);
    if (removeLogs) {
      forgetContainer(t.containerId);
      t.containerCleaned = true;
    }
  }

  void onExit(const std::string& taskId) {
    auto it = tasks_.find(taskId);
    if (it == tasks_.end()) return;
    Task& t = *it->second;
    closePoll(t.poll);
    cancelTimer(t.killTimer);
    auto code = d_.launcher->reap(*t.launched);
    int exitCode = code.ok() ? *code : 255;
    t.exitCode = exitCode;
    t.finished = SysClock::now();
    detachEndpoints(t);
    releaseAddresses(t);
    cleanupContainer(t, false);
    if (t.stopRequested) {
      setState(t, "Shutdown");
    } else if (exitCode == 0) {
      setState(t, "Complete");
    } else {
      setState(t, "Failed", "task: non-zero exit (" + std::to_string(exitCode) + ")");
    }
    log::info("netd", "task ", t.name(), " exited with code ", exitCode, " (", t.state, ")");
    auto svc = services_.find(t.service);
    if (svc != services_.end()) updateBackends(svc->second);
    taskEnded(t, exitCode, true);
  }

  // After a task ended (exited, or never started): restart policy, then
  // whatever the service and the removals need next.
  void taskEnded(Task& t, int exitCode, bool /*started*/) {
    std::string serviceName = t.service;
    uint64_t slot = t.slot;
    bool stopped = t.stopRequested;
    t.desiredState = "Shutdown";
    auto it = services_.find(serviceName);
    if (it != services_.end() && !it->second.removed && !shuttingDown_ && !stopped &&
        t.specVersion == it->second.specVersion && slot <= it->second.spec.replicas) {
      ServiceState& svc = it->second;
      runtime::TaskExit ex;
      ex.exitCode = exitCode;
      ex.exitedAt = SteadyClock::now();
      auto decision = runtime::decideRestart(svc.spec.restartPolicy, ex, svc.restartTimes[slot]);
      if (decision.restart) {
        auto& pending = svc.pendingRestarts[slot];
        cancelTimer(pending);
        log::info("netd", "task ", serviceName, ".", slot, " restarts in ", decision.after.count(), " ms");
        pending = startTimer(d_.loop, decision.after, [this, serviceName, slot] {
          auto s = services_.find(serviceName);
          if (s == services_.end()) return;
          auto p = s->second.pendingRestarts.find(slot);
          if (p != s->second.pendingRestarts.end()) {
            cancelTimer(p->second);
            s->second.pendingRestarts.erase(p);
          }
          s->second.restartTimes[slot].push_back(SteadyClock::now());
          reconcile(s->second);
        });
      } else {
        log::info("netd", "task ", serviceName, ".", slot, " not restarted: ", decision.reason);
        svc.haltedSlots.insert(slot);
      }
    }
    finishRemovals();
    maybeShutdownDone();
  }

  void trimHistory(const std::string& service, uint64_t slot) {
    std::vector<Task*> old;
    for (auto& [id, task] : tasks_) {
      if (task->service == service && task->slot == slot && !task->live()) old.push_back(task.get());
    }
    if (old.size() <= kTaskHistory) return;
    std::sort(old.begin(), old.end(), [](Task* a, Task* b) { return a->created < b->created; });
    for (size_t i = 0; i + kTaskHistory < old.size(); i++) dropTask(*old[i]);
  }

  void dropTask(Task& t) {
    cleanupContainer(t, true);
    closePoll(t.poll);
    cancelTimer(t.killTimer);
    tasks_.erase(t.id);
  }

  void stopTask(Task& t) {
    if (t.stopRequested) return;
    t.stopRequested = true;
    t.desiredState = "Shutdown";
    if (!t.launched || t.state != "Running") {
      if (t.live()) setState(t, "Shutdown");
      return;
    }
    auto svc = services_.find(t.service);
    double grace = svc != services_.end() ? svc->second.spec.stopGracePeriodSeconds : 10;
    if (svc != services_.end()) {
      // Drain: no new connections; open ones may finish within the grace.
      for (const auto& l : svc->second.listeners) {
        d_.proxy->drainBackend(l, t.containerId, std::chrono::milliseconds(static_cast<int64_t>(grace * 1000)));
      }
      updateBackends(svc->second);
    }
    int sig = SIGTERM;
    if (svc != services_.end()) sig = signalNumber(svc->second.spec.stopSignal);
    (void)d_.launcher->signal(t.launched->pid, sig);
    std::string id = t.id;
    t.killTimer = startTimer(d_.loop, std::chrono::milliseconds(static_cast<int64_t>(grace * 1000)), [this, id] {
      auto it = tasks_.find(id);
      if (it == tasks_.end() || !it->second->launched) return;
      log::info("netd", "task ", it->second->name(), " did not stop within its grace period; sending SIGKILL");
      cancelTimer(it->second->killTimer);
      (void)d_.launcher->signal(it->second->launched->pid, SIGKILL);
    });
  }

  static int signalNumber(const std::string& name) {
    static const std::map<std::string, int> kSignals = {
        {"SIGTERM", SIGTERM}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
        {"SIGHUP", SIGHUP},   {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}};
    auto it = kSignals.find(name);
    return it == kSignals.end() ? SIGTERM : it->second;
  }

  void updateBackends(ServiceState& svc) {
    if (svc.listeners.empty()) return;
    for (const auto& port : svc.spec.ports) {
      if (port.published == 0 || port.mode != "ingress") continue;
      // Slot order, so round robin visits replicas 1..N in turn.
      std::vector<std::pair<uint64_t, proxy::Backend>> bySlot;
      for (auto& [id, t] : tasks_) {
        if (t->service != svc.name || t->state != "Running" || t->stopRequested) continue;
        for (const auto& ep : t->endpoints) {
          if (ep.network == kIngress) bySlot.push_back({t->slot, {t->containerId, ep.ip.str(), port.target}});
        }
      }
      std::sort(bySlot.begin(), bySlot.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<proxy::Backend> backends;
      for (auto& [slot, b] : bySlot) backends.push_back(std::move(b));
      d_.proxy->setBackends(listenerName(svc.name, port), std::move(backends));
    }
  }

  void reconcile(ServiceState& svc) {
    if (shuttingDown_) return;
    std::vector<LiveTask> live;
    for (auto& [id, t] : tasks_) {
      if (t->service == svc.name && t->live()) live.push_back({t->id, t->slot, t->specVersion, t->stopRequested});
    }
    std::vector<uint64_t> occupied(svc.haltedSlots.begin(), svc.haltedSlots.end());
    for (const auto& [slot, timer] : svc.pendingRestarts) occupied.push_back(slot);
    uint64_t desired = svc.removed ? 0 : svc.spec.replicas;
    Plan plan = planService(desired, svc.specVersion, live, occupied);
    for (const auto& id : plan.stopTaskIds) {
      auto it = tasks_.find(id);
      if (it != tasks_.end()) stopTask(*it->second);
    }
    // Pending restarts of slots no longer wanted are dropped.
    for (auto it = svc.pendingRestarts.begin(); it != svc.pendingRestarts.end();) {
      if (it->first > desired) {
        cancelTimer(it->second);
        it = svc.pendingRestarts.erase(it);
      } else {
        ++it;
      }
    }
    for (uint64_t slot : plan.startSlots) startTask(svc, slot);
    updateBackends(svc);
  }

  // Services and stacks marked removed go away once their tasks are gone.
  void finishRemovals() {
    for (auto it = services_.begin(); it != services_.end();) {
      ServiceState& svc = it->second;
      if (!svc.removed || anyLive(svc.name)) {
        ++it;
        continue;
      }
      for (auto& [slot, timer] : svc.pendingRestarts) cancelTimer(timer);
      for (auto* t : tasksOf(svc.name)) dropTask(*t);
      log::info("netd", "service ", svc.name, " removed");
      it = services_.erase(it);
    }
    for (auto it = stacks_.begin(); it != stacks_.end();) {
      bool busy = std::any_of(services_.begin(), services_.end(),
                              [&](const auto& kv) { return kv.second.stack == it->first; });
      if (it->second.removed && !busy) {
        std::vector<std::string> nets;
        for (auto& [name, n] : networks_) {
          if (n.stack == it->first) nets.push_back(name);
        }
        for (const auto& n : nets) removeNetwork(n);
        (void)d_.store->erase("stack", it->first);
        log::info("netd", "stack ", it->first, " removed");
        it = stacks_.erase(it);
      } else {
        ++it;
      }
    }
    // Networks a redeploy no longer names, once no live task uses them.
    std::vector<std::string> unused;
    for (auto& [name, n] : networks_) {
      if (n.stack.empty()) continue;
      auto st = stacks_.find(n.stack);
      if (st == stacks_.end()) continue;
      std::string shortName = name.substr(n.stack.size() + 1);
      if (st->second.spec.networks.count(shortName)) continue;
      bool used = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& kv) {
        return kv.second->live() && std::any_of(kv.second->endpoints.begin(), kv.second->endpoints.end(),
                                                [&](const TaskEndpoint& ep) { return ep.network == name; });
      });
      if (!used) unused.push_back(name);
    }
    for (const auto& n : unused) removeNetwork(n);
  }

  void maybeShutdownDone() {
    if (!shuttingDown_ || !shutdownDone_) return;
    for (auto& [id, t] : tasks_) {
      if (t->live()) return;
    }
    for (auto& [name, svc] : services_) {
      for (auto& [slot, timer] : svc.pendingRestarts) cancelTimer(timer);
      svc.pendingRestarts.clear();
      for (const auto& l : svc.listeners) (void)d_.proxy->removeListener(l);
      svc.listeners.clear();
    }
    for (auto& [id, t] : tasks_) {
      cleanupContainer(*t, false);
      forgetContainer(t->containerId);
    }
    tasks_.clear();
    std::vector<std::string> nets;
    for (auto& [name, n] : networks_) nets.push_back(name);
    for (const auto& n : nets) {
      auto st = d_.overlay->removeNetwork(networks_.at(n).config());
      if (!st.ok()) log::warn("overlay", "remove network ", n, ": ", st.error().message);
    }
    auto done = std::move(shutdownDone_);
    shutdownDone_ = nullptr;
    done();
  }

  // ---- deploy -----------------------------------------------------------

  ApiResult<json> deploy(const std::string& name, const runtime::StackSpec& spec) {
    if (!swarm_) return ApiError{503, kNotManager};
    if (!validStackName(name)) return ApiError{400, "invalid stack name \"" + name + "\": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"};
    if (shuttingDown_) return ApiError{503, "netd is shutting down"};
    auto existing = stacks_.find(name);
    if (existing != stacks_.end() && existing->second.removed) {
      return ApiError{409, "stack " + name + " is being removed; try again in a moment"};
    }
    // 1. Validate everything before touching anything.
    for (const auto& [svcName, svc] : spec.services) {
      if (svc.image.empty()) return ApiError{400, "service " + svcName + ": image is required"};
      auto image = d_.images->resolve(svc.image);
      if (!image.ok()) return ApiError{400, image.error().message};
      for (const auto& n : svc.networks) {
        if (!spec.networks.count(n.name)) return ApiError{400, "service " + svcName + " uses network " + n.name + " which is not declared"};
      }
      for (const auto& v : svc.volumes) {
        if (v.type == "bind" && !fs::exists(v.source)) {
          return ApiError{400, "service " + svcName + ": invalid mount config: bind source path does not exist: " + v.source};
        }
      }
    }
    for (const auto& [netName, net] : spec.networks) {
      if (net.external) return ApiError{400, "network " + netName + " is external; external networks are not supported yet"};
      if (net.driver != "overlay") {
        return ApiError{400, "network " + netName + ": driver \"" + net.driver + "\" is not supported (only overlay)"};
      }
      if (!net.subnet.empty() && !overlay::Subnet::parse(net.subnet)) {
        return ApiError{400, "network " + netName + ": invalid subnet \"" + net.subnet + "\""};
      }
    }
    // Published ports: unique across the swarm (other stacks and this file).
    std::map<std::string, std::string> owners;  // "4000/tcp" -> service
    for (const auto& [svcName, svc] : services_) {
      if (svc.stack == name || svc.removed) continue;
      for (const auto& p : svc.spec.ports) {
        if (p.published) owners[std::to_string(p.published) + "/" + p.protocol] = svcName;
      }
    }
    struct NewListener {
      std::string service;
      runtime::PortSpec port;
    };
    std::vector<NewListener> wanted;
    std::map<std::string, std::string> inFile;
    for (const auto& [svcName, svc] : spec.services) {
      std::string full = name + "_" + svcName;
      for (const auto& p : svc.ports) {
        if (p.published == 0) continue;
        if (p.mode != "ingress") return ApiError{400, "service " + svcName + ": port mode \"host\" is not supported yet"};
        std::string key = std::to_string(p.published) + "/" + p.protocol;
        if (owners.count(key)) {
          return ApiError{409, "port " + key + " is already in use by service " + owners[key]};
        }
        if (inFile.count(key)) {
          return ApiError{400, "port " + key + " is published twice (services " + inFile[key] + " and " + full + ")"};
        }
        inFile[key] = full;
        wanted.push_back({full, p});
      }
    }
    // 2. Bind new listeners now: a port taken by another process refuses
    // the whole deploy, and the listeners bound so far are closed again.
    std::set<std::string> wantedNames;
    std::vector<std::string> added;
    for (const auto& w : wanted) {
      std::string lname = listenerName(w.service, w.port);
      wantedNames.insert(lname);
      auto svc = services_.find(w.service);
      if (svc != services_.end() &&
          std::find(svc->second.listeners.begin(), svc->second.listeners.end(), lname) != svc->second.listeners.end()) {
        continue;
      }
      proxy::ListenerConfig lc;
      lc.name = lname;
      lc.bindHost = w.port.hostIp.empty() ? "0.0.0.0" : w.port.hostIp;
      lc.port = w.port.published;
      lc.udp = w.port.protocol == "udp";
      auto st = d_.proxy->addListener(lc);
      if (!st.ok()) {
        for (const auto& a : added) (void)d_.proxy->removeListener(a);
        return ApiError{409, st.error().message};
      }
      added.push_back(lname);
    }

    // 3. Apply. Networks first (services need them).
    json messages = json::array();
    StackState& stack = stacks_[name];
    stack.name = name;
    stack.spec = spec;
    for (const auto& [netName, net] : spec.networks) {
      std::string full = name + "_" + netName;
      if (networks_.count(full)) continue;
      bool used = std::any_of(spec.services.begin(), spec.services.end(), [&](const auto& kv) {
        return std::any_of(kv.second.networks.begin(), kv.second.networks.end(),
                           [&](const runtime::ServiceNetwork& sn) { return sn.name == netName; });
      });
      if (!used) continue;  // docker creates only networks that services use
      messages.push_back("Creating network " + full);
      auto created = ensureNetwork(full, name, net, std::nullopt, std::nullopt);
      if (!created.ok()) {
        for (const auto& a : added) (void)d_.proxy->removeListener(a);
        return ApiError{500, created.error().message};
      }
    }
    for (const auto& [svcName, svcSpec] : spec.services) {
      std::string full = name + "_" + svcName;
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
          s.specVersion++;
          s.haltedSlots.clear();
          s.restartTimes.clear();
        } else if (s.spec.replicas != svcSpec.replicas) {
          messages.push_back("Updating service " + full + " (id: " + s.id + ")");
          s.haltedSlots.clear();
        }
        s.spec = svcSpec;
        s.updated = SysClock::now();
      }
      ServiceState& s = it->second;
      std::vector<std::string> keep;
      for (const auto& l : s.listeners) {
        if (wantedNames.count(l)) {
          keep.push_back(l);
        } else {
          (void)d_.proxy->removeListener(l);
        }
      }
      for (const auto& w : wanted) {
        std::string lname = listenerName(w.service, w.port);
        if (w.service == full && std::find(keep.begin(), keep.end(), lname) == keep.end()) keep.push_back(lname);
      }
      s.listeners = keep;
    }
    // Services the new file no longer has.
    for (auto& [full, s] : services_) {
      if (s.stack != name || s.removed) continue;
      if (spec.services.count(full.substr(name.size() + 1))) continue;
      messages.push_back("Removing service " + full);
      removeService(s);
    }
    persistStack(stack);
    for (auto& [full, s] : services_) {
      if (s.stack == name && !s.removed) reconcile(s);
    }
    finishRemovals();
    return json{{"messages", messages}};
  }

  void removeService(ServiceState& s) {
    s.removed = true;
    for (const auto& l : s.listeners) (void)d_.proxy->removeListener(l);
    s.listeners.clear();
    for (auto& [slot, timer] : s.pendingRestarts) cancelTimer(timer);
    s.pendingRestarts.clear();
    for (auto* t : tasksOf(s.name)) {
      if (t->live()) stopTask(*t);
    }
  }

  ServiceState* findService(const std::string& ref) {
    auto it = services_.find(ref);
    if (it != services_.end() && !it->second.removed) return &it->second;
    for (auto& [name, s] : services_) {
      if (!s.removed && s.id.rfind(ref, 0) == 0) return &s;
    }
    return nullptr;
  }
  const ServiceState* findService(const std::string& ref) const {
    return const_cast<Impl*>(this)->findService(ref);
  }

  const Task* findContainer(const std::string& ref) const {
    const Task* found = nullptr;
    for (const auto& [id, t] : tasks_) {
      bool match = t->containerId.rfind(ref, 0) == 0 || t->name() + "." + t->id == ref || t->id == ref;
      if (!match) continue;
      if (found != nullptr && !ref.empty()) {
        // Several tasks of one slot: the name means the live one.
        if (found->live() && !t->live()) continue;
        if (!found->live() && t->live()) {
          found = t.get();
          continue;
        }
        if (ref.size() < 64 && t->containerId.rfind(ref, 0) == 0) return nullptr;  // ambiguous prefix
      }
      found = t.get();
    }
    return found;
  }

  // ---- views ------------------------------------------------------------

  uint64_t runningCount(const std::string& service) const {
    uint64_t n = 0;
    for (const auto& [id, t] : tasks_) {
      if (t->service == service && t->state == "Running" && !t->stopRequested) n++;
    }
    return n;
  }

  json serviceSummary(const ServiceState& s) const {
    uint64_t running = runningCount(s.name);
    return json{{"id", s.id},
                {"name", s.name},
                {"stack", s.stack},
                {"mode", s.spec.mode},
                {"replicas", std::to_string(running) + "/" + std::to_string(s.spec.replicas)},
                {"running", running},
                {"desired", s.spec.replicas},
                {"image", s.spec.image},
                {"ports", portsText(s.spec.ports)}};
  }

  json taskJson(const Task& t) const {
    return json{{"id", t.id},
                {"name", t.name()},
                {"service", t.service},
                {"stack", t.stack},
                {"slot", t.slot},
                {"image", t.image},
                {"node", d_.hostname},
                {"desiredState", t.desiredState},
                {"currentState", t.state},
                {"since", rfc3339(t.since)},
                {"error", t.error},
                {"containerId", t.containerId},
                {"pid", t.launched && t.live() ? t.launched->pid : 0},
                {"exitCode", t.exitCode},
                {"ports", ""}};
  }

  std::string containerStatus(const Task& t) const {
    auto ago = [](SysClock::time_point tp) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(SysClock::now() - tp).count();
      if (secs < 1) return std::string("Less than a second");
      if (secs < 60) return std::to_string(secs) + " seconds";
      if (secs < 120) return std::string("About a minute");
      if (secs < 3600) return std::to_string(secs / 60) + " minutes";
      if (secs < 7200) return std::string("About an hour");
      return std::to_string(secs / 3600) + " hours";
    };
    if (t.state == "Running") return "Up " + ago(t.started);
    if (t.state == "Starting" || t.state == "New") return "Created";
    return "Exited (" + std::to_string(t.exitCode) + ") " + ago(t.finished) + " ago";
  }

  json containerSummary(const Task& t) const {
    json nets = json::object();
    for (const auto& ep : t.endpoints) nets[ep.network] = ep.ip.str();
    std::string command;
    for (const auto& a : t.spec.argv) command += (command.empty() ? "" : " ") + a;
    return json{{"id", t.containerId},
                {"names", t.name() + "." + t.id},
                {"image", t.image},
                {"command", command},
                {"created", rfc3339(t.created)},
                {"status", containerStatus(t)},
                {"state", t.state == "Running" ? "running" : t.live() ? "created" : "exited"},
                {"pid", t.launched && t.state == "Running" ? t.launched->pid : 0},
                {"networks", nets}};
  }
};

// ---- public surface ------------------------------------------------------

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
    log::info("netd", "cleaning up container ", id.substr(0, 12), " left by a previous run");
    auto st = m.d_.launcher->cleanup(spec, true);
    if (!st.ok()) log::warn("runtime", "cleanup ", id.substr(0, 12), ": ", st.error().message);
    (void)m.d_.store->erase("container", id);
  }
  auto swarm = m.d_.store->get("swarm", "self");
  if (!swarm.ok()) return swarm.error();
  if (!swarm->has_value()) return okStatus();
  const json& sw = **swarm;
  m.swarm_ = true;
  m.nodeId_ = sw.value("nodeId", newObjectId());
  m.swarmCreated_ = SysClock::time_point(std::chrono::seconds(sw.value("created", int64_t{0})));
  // Networks keep their VNI and subnet across restarts.
  auto nets = m.d_.store->list("network");
  if (!nets.ok()) return nets.error();
  std::sort(nets->begin(), nets->end(), [](const auto& a, const auto& b) {
    return (a.first == kIngress) > (b.first == kIngress);
  });
  for (const auto& [name, doc] : *nets) {
    runtime::NetworkSpec spec;
    try {
      spec = runtime::stackFromJson(json{{"networks", {{doc["spec"].value("name", name), doc["spec"]}}}})
                 .networks.begin()->second;
    } catch (const std::exception&) {
      spec.name = name;
    }
    auto created = m.ensureNetwork(name, doc.value("stack", ""), spec, doc.value("vni", 0u),
                                   overlay::Subnet::parse(doc.value("subnet", "")));
    if (!created.ok()) log::error("netd", "restore network ", name, ": ", created.error().message);
  }
  auto stacks = m.d_.store->list("stack");
  if (!stacks.ok()) return stacks.error();
  for (const auto& [name, doc] : *stacks) {
    try {
      auto spec = runtime::stackFromJson(doc.at("spec"));
      auto result = m.deploy(name, spec);
      if (auto* err = std::get_if<ApiError>(&result)) {
        log::error("netd", "restore stack ", name, ": ", err->message);
      } else {
        log::info("netd", "stack ", name, " restored");
      }
    } catch (const std::exception& e) {
      log::error("netd", "restore stack ", name, ": ", e.what());
    }
  }
  return okStatus();
}

void Orchestrator::shutdown(std::function<void()> done) {
  Impl& m = *impl_;
  m.shuttingDown_ = true;
  m.shutdownDone_ = std::move(done);
  for (auto& [id, t] : m.tasks_) {
    if (t->live()) m.stopTask(*t);
  }
  m.maybeShutdownDone();
}

ApiResult<json> Orchestrator::info() const {
  const Impl& m = *impl_;
  return json{{"swarm",
               {{"nodeId", m.nodeId_},
                {"state", m.swarm_ ? "active" : "inactive"},
                {"createdAt", m.swarm_ ? rfc3339(m.swarmCreated_) : ""}}},
              {"version", "0.1.0"},
              {"dataRoot", m.d_.dataRoot},
              {"hostname", m.d_.hostname},
              {"cgroup", m.d_.cgroupVersion}};
}

ApiResult<json> Orchestrator::swarmInit(const std::string& advertiseAddr) {
  Impl& m = *impl_;
  if (m.swarm_) {
    return ApiError{409, "This node is already part of a swarm. Use \"skiff swarm leave\" to leave this swarm and join another one."};
  }
  (void)advertiseAddr;  // one node: the swarm works on loopback alone
  m.nodeId_ = newObjectId();
  m.swarmCreated_ = SysClock::now();
  m.swarm_ = true;
  runtime::NetworkSpec ingress;
  ingress.name = kIngress;
  auto created = m.ensureNetwork(kIngress, "", ingress, kIngressVni, std::nullopt);
  if (!created.ok()) {
    m.swarm_ = false;
    return ApiError{500, "swarm init: " + created.error().message};
  }
  m.persistSwarm();
  log::info("netd", "swarm initialized: node ", m.nodeId_, " is now a manager");
  return json{{"nodeId", m.nodeId_}};
}

ApiResult<json> Orchestrator::swarmLeave(bool force) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, "This node is not part of a swarm"};
  if (!force) {
    return ApiError{409, "You are attempting to leave the swarm on a node that is participating as a manager. "
                         "Removing the last manager erases all current state of the swarm. Use `--force` to ignore "
                         "this message."};
  }
  for (auto& [name, s] : m.stacks_) s.removed = true;
  for (auto& [name, s] : m.services_) {
    if (!s.removed) m.removeService(s);
  }
  // Stacks and their networks go as their tasks exit; ingress and the store
  // go now (a later init makes them anew).
  m.swarm_ = false;
  m.finishRemovals();
  if (m.networks_.count(kIngress)) m.removeNetwork(kIngress);
  (void)m.d_.store->erase("swarm", "self");
  log::info("netd", "node left the swarm");
  return json::object();
}

ApiResult<json> Orchestrator::nodes() const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  return json::array({json{{"id", m.nodeId_},
                           {"hostname", m.d_.hostname},
                           {"status", "Ready"},
                           {"availability", "Active"},
                           {"managerStatus", "Leader"},
                           {"self", true}}});
}

ApiResult<json> Orchestrator::deployStack(const std::string& name, const runtime::StackSpec& spec) {
  return impl_->deploy(name, spec);
}

ApiResult<json> Orchestrator::listStacks() const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  json out = json::array();
  for (const auto& [name, s] : m.stacks_) {
    if (!s.removed) out.push_back(json{{"name", name}, {"services", s.spec.services.size()}});
  }
  return out;
}

ApiResult<json> Orchestrator::removeStack(const std::string& name) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  auto it = m.stacks_.find(name);
  if (it == m.stacks_.end() || it->second.removed) return ApiError{404, "Nothing found in stack: " + name};
  json messages = json::array();
  it->second.removed = true;
  for (auto& [full, s] : m.services_) {
    if (s.stack == name && !s.removed) {
      messages.push_back("Removing service " + full);
      m.removeService(s);
    }
  }
  for (const auto& [net, n] : m.networks_) {
    if (n.stack == name) messages.push_back("Removing network " + net);
  }
  m.finishRemovals();
  return json{{"messages", messages}};
}

ApiResult<json> Orchestrator::listServices(const std::string& stackFilter) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  json out = json::array();
  for (const auto& [name, s] : m.services_) {
    if (s.removed || (!stackFilter.empty() && s.stack != stackFilter)) continue;
    out.push_back(m.serviceSummary(s));
  }
  if (!stackFilter.empty() && out.empty()) return ApiError{404, "Nothing found in stack: " + stackFilter};
  return out;
}

ApiResult<json> Orchestrator::inspectService(const std::string& name) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  const ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{404, "no such service: " + name};
  json ports = json::array();
  json vips = json::array();
  for (const auto& p : s->spec.ports) {
    ports.push_back(json{{"Protocol", p.protocol}, {"TargetPort", p.target}, {"PublishedPort", p.published},
                         {"PublishMode", p.mode}});
  }
  runtime::StackSpec one;
  one.services[s->spec.name] = s->spec;
  json specJson = runtime::toJson(one)["services"][s->spec.name];
  json labels = json::object();
  for (const auto& [k, v] : s->spec.labels) labels[k] = v;
  labels["com.docker.stack.namespace"] = s->stack;
  json networks = json::array();
  for (const auto& n : m.networksOf(*s)) {
    auto it = m.networks_.find(n);
    if (it != m.networks_.end()) networks.push_back(json{{"Target", it->second.id}, {"Name", n}});
  }
  return json{{"ID", s->id},
              {"Version", {{"Index", s->specVersion}}},
              {"CreatedAt", rfc3339(s->created)},
              {"UpdatedAt", rfc3339(s->updated)},
              {"Spec",
               {{"Name", s->name},
                {"Labels", labels},
                {"TaskTemplate",
                 {{"ContainerSpec",
                   {{"Image", s->spec.image},
                    {"Command", s->spec.entrypoint ? json(*s->spec.entrypoint) : json(nullptr)},
                    {"Args", s->spec.command ? json(*s->spec.command) : json(nullptr)},
                    {"StopGracePeriod", static_cast<int64_t>(s->spec.stopGracePeriodSeconds * 1e9)}}},
                  {"Resources",
                   {{"Limits",
                     {{"NanoCPUs", static_cast<int64_t>(s->spec.limits.cpus * 1e9)},
                      {"MemoryBytes", s->spec.limits.memoryBytes}}}}},
                  {"RestartPolicy",
                   {{"Condition", s->spec.restartPolicy.condition},
                    {"Delay", static_cast<int64_t>(s->spec.restartPolicy.delaySeconds * 1e9)},
                    {"MaxAttempts", s->spec.restartPolicy.maxAttempts},
                    {"Window", static_cast<int64_t>(s->spec.restartPolicy.windowSeconds * 1e9)}}},
                  {"Networks", networks}}},
                {"Mode", s->spec.mode == "global" ? json{{"Global", json::object()}}
                                                  : json{{"Replicated", {{"Replicas", s->spec.replicas}}}}},
                {"EndpointSpec", {{"Mode", "vip"}, {"Ports", ports}}}}},
              {"Endpoint", {{"Ports", ports}, {"VirtualIPs", vips}}},
              {"Skiff", {{"Spec", specJson}, {"Running", m.runningCount(s->name)}}}};
}

ApiResult<json> Orchestrator::scaleService(const std::string& name, uint64_t replicas) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{404, "no such service: " + name};
  if (s->spec.mode == "global") return ApiError{400, "scale can only be used with replicated mode"};
  s->spec.replicas = replicas;
  s->haltedSlots.clear();
  s->updated = SysClock::now();
  // Keep the stored stack in step, so a restart brings back this scale.
  auto st = m.stacks_.find(s->stack);
  if (st != m.stacks_.end()) {
    st->second.spec.services[s->spec.name].replicas = replicas;
    m.persistStack(st->second);
  }
  m.reconcile(*s);
  return json{{"message", s->name + " scaled to " + std::to_string(replicas)}};
}

ApiResult<json> Orchestrator::serviceLogs(const std::string& name) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  const ServiceState* s = m.findService(name);
  if (s == nullptr) return ApiError{404, "no such service: " + name};
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.tasks_) {
    if (t->service == s->name && !t->spec.logPath.empty()) tasks.push_back(t.get());
  }
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) { return a->created < b->created; });
  json lines = json::array();
  for (const Task* t : tasks) {
    std::istringstream in(readFileText(t->spec.logPath));
    std::string line;
    while (std::getline(in, line)) {
      lines.push_back(json{{"task", t->name() + "." + t->id}, {"node", m.d_.hostname}, {"text", line}});
    }
  }
  return json{{"lines", lines}};
}

ApiResult<json> Orchestrator::listTasks(const std::string& serviceFilter, const std::string& stackFilter) const {
  const Impl& m = *impl_;
  if (!m.swarm_) return ApiError{503, kNotManager};
  std::string service = serviceFilter;
  if (!service.empty()) {
    const ServiceState* s = m.findService(service);
    if (s == nullptr) return ApiError{404, "no such service: " + serviceFilter};
    service = s->name;
  }
  if (!stackFilter.empty() && !m.stacks_.count(stackFilter)) return ApiError{404, "Nothing found in stack: " + stackFilter};
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.tasks_) {
    if (!service.empty() && t->service != service) continue;
    if (!stackFilter.empty() && t->stack != stackFilter) continue;
    tasks.push_back(t.get());
  }
  // Per service and slot, newest first — the order docker's `service ps` shows.
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) {
    if (a->service != b->service) return a->service < b->service;
    if (a->slot != b->slot) return a->slot < b->slot;
    return a->created > b->created;
  });
  json out = json::array();
  for (const Task* t : tasks) out.push_back(m.taskJson(*t));
  return out;
}

ApiResult<json> Orchestrator::listContainers(bool all) const {
  const Impl& m = *impl_;
  json out = json::array();
  std::vector<const Task*> tasks;
  for (const auto& [id, t] : m.tasks_) {
    if (t->spec.id.empty() || t->containerCleaned) continue;  // never got a container
    if (!all && t->state != "Running") continue;
    tasks.push_back(t.get());
  }
  std::sort(tasks.begin(), tasks.end(), [](const Task* a, const Task* b) { return a->created > b->created; });
  for (const Task* t : tasks) out.push_back(m.containerSummary(*t));
  return out;
}

ApiResult<json> Orchestrator::inspectContainer(const std::string& ref) const {
  const Impl& m = *impl_;
  const Task* t = m.findContainer(ref);
  if (t == nullptr || t->spec.id.empty()) return ApiError{404, "No such container: " + ref};
  json nets = json::object();
  for (const auto& ep : t->endpoints) {
    auto n = m.networks_.find(ep.network);
    nets[ep.network] = json{{"NetworkID", n != m.networks_.end() ? n->second.id : ""},
                            {"EndpointID", ep.hostIfName},
                            {"IPAddress", ep.ip.str()},
                            {"IPPrefixLen", ep.prefix},
                            {"MacAddress", ep.mac},
                            {"Gateway", ""}};
  }
  bool running = t->state == "Running";
  json env = t->spec.env;
  json cmd = t->spec.argv;
  return json{{"Id", t->containerId},
              {"Name", "/" + t->name() + "." + t->id},
              {"Created", rfc3339(t->created)},
              {"Path", t->spec.argv.empty() ? "" : t->spec.argv[0]},
              {"Image", t->imageId},
              {"State",
               {{"Status", running ? "running" : t->live() ? "created" : "exited"},
                {"Running", running},
                {"Pid", running && t->launched ? t->launched->pid : 0},
                {"ExitCode", t->exitCode},
                {"Error", t->error},
                {"StartedAt", rfc3339(t->started)},
                {"FinishedAt", rfc3339(t->finished)}}},
              {"LogPath", t->spec.logPath},
              {"Config",
               {{"Hostname", t->spec.hostname},
                {"Image", t->image},
                {"Env", env},
                {"Cmd", cmd},
                {"WorkingDir", t->spec.workingDir},
                {"User", t->spec.user},
                {"Labels",
                 {{"com.docker.swarm.service.name", t->service},
                  {"com.docker.swarm.task.id", t->id},
                  {"com.docker.swarm.task.name", t->name() + "." + t->id},
                  {"com.docker.stack.namespace", t->stack}}}}},
              {"HostConfig",
               {{"Memory", t->spec.limits.memoryBytes},
                {"NanoCpus", static_cast<int64_t>(t->spec.limits.cpus * 1e9)},
                {"PidsLimit", t->spec.limits.pids}}},
              {"NetworkSettings", {{"Networks", nets}}}};
}

ApiResult<json> Orchestrator::containerLogs(const std::string& ref) const {
  const Impl& m = *impl_;
  const Task* t = m.findContainer(ref);
  if (t == nullptr || t->spec.id.empty()) return ApiError{404, "No such container: " + ref};
  return json{{"text", readFileText(t->spec.logPath)}};
}

ApiResult<json> Orchestrator::listNetworks() const {
  const Impl& m = *impl_;
  json out = json::array();
  for (const auto& [name, n] : m.networks_) {
    out.push_back(json{{"id", n.id}, {"name", name}, {"driver", "overlay"}, {"scope", "swarm"},
                       {"vni", n.vni}, {"subnet", n.subnet.str()}});
  }
  return out;
}

ApiResult<json> Orchestrator::inspectNetwork(const std::string& name) const {
  const Impl& m = *impl_;
  const NetworkState* n = nullptr;
  for (const auto& [key, net] : m.networks_) {
    if (key == name || net.id.rfind(name, 0) == 0) n = &net;
  }
  if (n == nullptr) return ApiError{404, "network " + name + " not found"};
  json containers = json::object();
  for (const auto& [id, t] : m.tasks_) {
    if (!t->live()) continue;
    for (const auto& ep : t->endpoints) {
      if (ep.network != n->name) continue;
      containers[t->containerId] = json{{"Name", t->name() + "." + t->id},
                                        {"EndpointID", ep.hostIfName},
                                        {"MacAddress", ep.mac},
                                        {"IPv4Address", ep.ip.str() + "/" + std::to_string(ep.prefix)}};
    }
  }
  json peers = json::array({json{{"Name", m.d_.hostname}, {"IP", "127.0.0.1"}}});
  json config = json{{"Subnet", n->subnet.str()}, {"Gateway", n->subnet.gateway().str()}};
  json labels = json::object();
  if (!n->stack.empty()) labels["com.docker.stack.namespace"] = n->stack;
  return json{{"Name", n->name},
                           {"Id", n->id},
                           {"Scope", "swarm"},
                           {"Driver", "overlay"},
                           {"Ingress", n->name == kIngress},
                           {"IPAM", {{"Driver", "default"}, {"Config", json::array({config})}}},
                           {"Options", {{"com.docker.network.driver.overlay.vxlanid_list", std::to_string(n->vni)}}},
                           {"VNI", n->vni},
                           {"MTU", n->mtu},
                           {"NodeAddress", n->nodeAddress ? n->nodeAddress->str() : ""},
                           {"Labels", labels},
                           {"Peers", peers},
                           {"Containers", containers}};
}

bool Orchestrator::imageInUse(const std::string& imageId) const {
  for (const auto& [id, t] : impl_->tasks_) {
    if (t->live() && t->imageId == imageId) return true;
  }
  return false;
}

std::vector<Orchestrator::ServiceCount> Orchestrator::serviceCounts() const {
  std::vector<ServiceCount> out;
  for (const auto& [name, s] : impl_->services_) {
    if (s.removed) continue;
    out.push_back({s.stack, name, impl_->runningCount(name), s.spec.replicas});
  }
  return out;
}

}  // namespace skiff::netd
