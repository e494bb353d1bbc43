// Actual state: a task is one container. Start it (image, mounts, addresses,
// veths), watch its pidfd, apply the restart policy when it exits, stop it
// (drain, stop signal, SIGKILL after the grace period), reconcile slots.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "orchestrator_impl.h"
#include "skiff/common/log.h"
#include "skiff/netd/reconcile.h"
#include "skiff/overlay/overlay.h"
#include "skiff/runtime/names.h"
#include "skiff/runtime/restart_policy.h"

namespace skiff::netd {
namespace fs = std::filesystem;

std::vector<Task*> Orchestrator::Impl::tasksOf(const std::string& service) {
  std::vector<Task*> out;
  for (auto& [id, t] : tasks_) {
    if (t->service == service) out.push_back(t.get());
  }
  return out;
}

bool Orchestrator::Impl::anyLive(const std::string& service) const {
  for (auto& [id, t] : tasks_) {
    if (t->service == service && t->live()) return true;
  }
  return false;
}

std::vector<std::string> Orchestrator::Impl::networksOf(const ServiceState& s) const {
  std::vector<std::string> out;
  bool ingress = std::any_of(s.spec.ports.begin(), s.spec.ports.end(), [](const runtime::PortSpec& p) {
    return p.published != 0 && p.mode == runtime::PortMode::kIngress;
  });
  if (ingress) out.push_back(kIngress);
  for (const auto& n : s.spec.networks) out.push_back(networkName(s.stack, n.name));
  return out;
}

void Orchestrator::Impl::setState(Task& t, TaskState state, const std::string& error) {
  // Counted where the task runs: by its node's agent (the manager sees
  // them in reports).
  const bool changed = state != t.state;
  if (changed && !swarm_) {
    auto svc = services_.find(t.service);
    if (svc != services_.end()) ++svc->second.transitions[toString(state)];
  }
  t.state = state;
  t.since = SysClock::now();
  if (!error.empty()) t.error = error;
  if (changed && embedded_) heartbeatSoon();  // the manager next door hears of it at once
}

void Orchestrator::Impl::releaseAddresses(Task& t) {
  for (const auto& ep : t.endpoints) {
    if (networks_.count(ep.network)) alloc_.releaseAddress(ep.network, ep.ip);
  }
}

Task& Orchestrator::Impl::newTask(ServiceState& svc, uint64_t slot) {
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
  return t;
}

void Orchestrator::Impl::startTask(ServiceState& svc, uint64_t slot) { startTasks(svc, {slot}); }

void Orchestrator::Impl::startTasks(ServiceState& svc, const std::vector<uint64_t>& slots) {
  if (slots.empty()) return;
  std::vector<Placement> where = place(svc, slots.size());
  for (size_t i = 0; i < slots.size(); i++) {
    Task& t = newTask(svc, slots[i]);
    if (where[i].node.empty()) {
      // Waits for a node that fits (one joins, one is set active, ...): the
      // manager's tick tries again.
      setState(t, TaskState::kPending, where[i].reason);
      log::info("netd", "task ", t.name(), " pending: ", where[i].reason);
      continue;
    }
    t.node = where[i].node;
    assignTask(svc, t);
  }
}

void Orchestrator::Impl::rejectTask(Task& t, const std::string& why) {
  releaseAddresses(t);
  setState(t, TaskState::kRejected, why);
  log::warn("netd", "task ", t.name(), " rejected: ", why);
  taskEnded(t, 1);
}

void Orchestrator::Impl::assignTask(ServiceState& svc, Task& t) {
  // Addresses come from the manager's IPAM, which spans the swarm, so a
  // replica keeps a unique address whichever node runs it.
  t.endpoints.clear();
  for (const auto& net : networksOf(svc)) {
    auto n = networks_.find(net);
    if (n == networks_.end()) continue;
    auto ip = alloc_.allocateAddress(net);
    if (!ip.ok()) {
      rejectTask(t, "network " + net + ": " + ip.error().message);
      return;
    }
    TaskEndpoint ep;
    ep.network = net;
    ep.ip = *ip;
    ep.prefix = n->second.subnet.prefix;
    ep.mac = overlay::Overlay::macFor(*ip);
    t.endpoints.push_back(ep);
  }
  // Pinned now, once: every later assignment names this id without reading
  // the image store again.
  auto image = d_.images->resolve(svc.spec.image);
  if (!image.ok()) {
    rejectTask(t, image.error().message);
    return;
  }
  t.imageId = image->id;
  setState(t, TaskState::kAssigned);
  log::info("netd", "task ", t.name(), " assigned to node ", nodeName(t.node));
  if (t.node == nodeId_) pokeAgent();
}

void Orchestrator::Impl::runTask(ServiceState& svc, Task& t) {
  const uint64_t slot = t.slot;
  auto image = d_.images->resolve(svc.spec.image);
  if (!image.ok()) {
    rejectTask(t, image.error().message);
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
  std::vector<std::string> cmd = svc.spec.command      ? *svc.spec.command
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
  c.workingDir = !svc.spec.workingDir.empty() ? svc.spec.workingDir : !ic.workingDir.empty() ? ic.workingDir : "/";
  c.user = !svc.spec.user.empty() ? svc.spec.user : ic.user;
  c.hostname = svc.spec.hostname.empty() ? t.containerId.substr(0, 12) : expandTemplate(svc.spec.hostname, templ);
  if (auto st = runtime::checkHostname(c.hostname); !st.ok()) {
    rejectTask(t, st.error().message);  // a template that expanded too long
    return;
  }
  c.limits = svc.spec.limits;
  // security_opt: Docker's default seccomp profile unless the service says
  // seccomp=unconfined or names its own profile.
  c.seccomp = runtime::seccompModeOf(svc.spec.seccomp);
  c.seccompProfile = svc.spec.seccompProfile;
  // The compose file's healthcheck replaces the image's HEALTHCHECK;
  // `disable: true` or test NONE turns it off.
  t.healthcheck = svc.spec.healthcheck ? svc.spec.healthcheck : ic.healthcheck;
  if (t.healthcheck && runtime::healthcheckArgv(*t.healthcheck).empty()) t.healthcheck.reset();
  if (c.argv.empty()) {
    rejectTask(t, "no command specified");
    return;
  }
  auto mounts = materializeMounts(svc);
  if (!mounts.ok()) {
    rejectTask(t, mounts.error().message);
    return;
  }
  c.mounts = std::move(*mounts);
  for (const auto& ep : t.endpoints) {
    if (!networks_.count(ep.network)) {
      rejectTask(t, "network " + ep.network + " is not on this node");
      return;
    }
    c.extraHosts.emplace_back(ep.ip.str(), c.hostname);
  }
  setState(t, TaskState::kStarting);
  persistContainer(t);

  auto starting = d_.launcher->begin(c, [&](pid_t pid) -> Status {
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
  if (!starting.ok()) {
    startFailed(t, starting.error());
    return;
  }
  // The shim now mounts the rootfs and execs the command; its `ready` pipe
  // says when. Already said (a fake launcher): carry on now. Otherwise the
  // loop watches it and goes on serving meanwhile.
  pollfd ready{starting->ready.get(), POLLIN, 0};
  t.starting = std::move(*starting);
  if (::poll(&ready, 1, 0) == 1) {
    finishStart(t);
    return;
  }
  auto* h = new PollHandle;
  h->poll.data = h;
  std::string id = t.id;
  h->ready = [this, id] {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    closePoll(it->second->startPoll);
    finishStart(*it->second);
  };
  int rc = uv_poll_init(d_.loop, &h->poll, t.starting->ready.get());
  if (rc != 0) {
    delete h;
    finishStart(t);  // cannot watch it: wait for it here
    return;
  }
  t.startPoll = h;
  uv_poll_start(&h->poll, UV_READABLE | UV_DISCONNECT, [](uv_poll_t* p, int, int) {
    auto* handle = static_cast<PollHandle*>(p->data);
    auto onReady = handle->ready;  // closePoll frees the handle
    if (!onReady) return;
    // Nothing may leave a libuv callback: handling this start fails, netd goes on.
    try {
      onReady();
    } catch (const std::exception& e) {
      log::error("netd", "handling a container start failed: ", e.what());
    } catch (...) {
      log::error("netd", "handling a container start failed with an unknown exception");
    }
  });
}

void Orchestrator::Impl::startFailed(Task& t, const Error& e) {
  detachEndpoints(t);
  releaseAddresses(t);
  cleanupContainer(t, false);
  setState(t, TaskState::kFailed, "starting container failed: " + e.message);
  log::warn("netd", "task ", t.name(), " failed to start: ", e.message);
  taskEnded(t, 127);
}

void Orchestrator::Impl::finishStart(Task& t) {
  // libuv made the pipe non-blocking; the shim's message is read to its EOF.
  if (int fl = ::fcntl(t.starting->ready.get(), F_GETFL); fl >= 0 && (fl & O_NONBLOCK) != 0)
    (void)::fcntl(t.starting->ready.get(), F_SETFL, fl & ~O_NONBLOCK);
  auto launched = d_.launcher->finish(t.spec, std::move(*t.starting));
  t.starting.reset();
  if (!launched.ok()) {
    startFailed(t, launched.error());
    return;
  }
  t.launched = std::move(*launched);
  t.started = SysClock::now();
  setState(t, TaskState::kRunning);
  log::info("netd", "task ", t.name(), " running (container ", t.containerId.substr(0, 12), ", pid ", t.launched->pid,
            ")");
  watchExit(t);
  if (t.stopRequested) {
    // Stopped while its shim was still at work: stop it now that it runs.
    t.stopRequested = false;
    stopTask(t);
    return;
  }
  beginReadiness(t);
}

Result<std::vector<runtime::BindMount>> Orchestrator::Impl::materializeMounts(const ServiceState& svc) {
  std::vector<runtime::BindMount> out;
  std::error_code ec;
  // Defence in depth: names were checked where the spec was read (compose,
  // stackFromJson, deploy), but none is joined into a path that netd writes
  // as root without being checked again right here.
  auto unsafe = [](runtime::NameKind kind, const std::string& name) -> std::optional<Error> {
    auto st = runtime::checkName(kind, name);
    if (st.ok()) return std::nullopt;
    return Error::msg("refused to use a name as a path under the data root: " + st.error().message);
  };
  if (auto err = unsafe(runtime::NameKind::kStack, svc.stack)) return *err;
  for (const auto& v : svc.spec.volumes) {
    if (v.type == runtime::MountType::kBind) {
      // The error_code overload: a throw here would leave the restart timer's callback.
      bool exists = fs::exists(v.source, ec);
      if (ec) {
        return Error::msg("invalid mount config: bind source path " + v.source + ": " + ec.message());
      }
      if (!exists) return Error::msg("invalid mount config: bind source path does not exist: " + v.source);
      out.push_back({v.source, v.target, v.readOnly});
    } else if (v.type == runtime::MountType::kVolume) {
      // Named volumes live under the data root and outlive replicas and
      // redeploys; anonymous ones are named after the service. A stack's are
      // <stack>_<name>; a lone container's (-v name:/path) and an external
      // one are the name itself, shared as docker's are.
      if (!v.source.empty()) {
        if (auto err = unsafe(runtime::NameKind::kVolume, v.source)) return *err;
      }
      const auto& declared = stacks_.at(svc.stack).spec.volumes;
      const auto decl = declared.find(v.source);
      const bool global = isLone(svc.stack, svc.name) || (decl != declared.end() && decl->second.external);
      std::string name = v.source.empty()
                             ? svc.name + "_anon" + std::to_string(std::hash<std::string>{}(v.target) % 100000)
                         : global ? v.source
                                  : svc.stack + "_" + v.source;
      std::string dir = d_.dataRoot + "/volumes/" + name + "/_data";
      // Before, such a volume was <stack>_<name> too: its data moves once.
      const std::string before = d_.dataRoot + "/volumes/" + svc.stack + "_" + v.source;
      if (global && !v.source.empty() && fs::exists(before, ec) && !fs::exists(d_.dataRoot + "/volumes/" + name, ec)) {
        fs::rename(before, d_.dataRoot + "/volumes/" + name, ec);
        if (ec) return Error::msg("volume " + name + ": move it from " + before + ": " + ec.message());
        log::info("netd", "volume ", svc.stack, "_", v.source, " is now ", name, " (named as docker names it)");
      }
      fs::create_directories(dir, ec);
      if (ec) return Error::msg("volume " + name + ": " + ec.message());
      out.push_back({dir, v.target, v.readOnly});
    }
  }
  for (const auto& cref : svc.spec.configs) {
    auto it = stacks_.at(svc.stack).spec.configs.find(cref.source);
    if (it == stacks_.at(svc.stack).spec.configs.end()) return Error::msg("config " + cref.source + " not found");
    if (auto err = unsafe(runtime::NameKind::kConfig, cref.source)) return *err;
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

void Orchestrator::Impl::watchExit(Task& t) {
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
    if (!ready) return;
    // Nothing may leave a libuv callback: handling this exit fails, netd goes on.
    try {
      ready();
    } catch (const std::exception& e) {
      log::error("netd", "handling a task exit failed: ", e.what());
    } catch (...) {
      log::error("netd", "handling a task exit failed with an unknown exception");
    }
  });
  t.poll = h;
}

void Orchestrator::Impl::closePoll(PollHandle*& h) {
  if (h == nullptr) return;
  uv_poll_stop(&h->poll);
  h->ready = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll),
           [](uv_handle_t* handle) { delete static_cast<PollHandle*>(handle->data); });
  h = nullptr;
}

void Orchestrator::Impl::detachEndpoints(Task& t) {
  for (const auto& ep : t.endpoints) {
    if (ep.hostIfName.empty()) continue;
    auto st = d_.overlay->detach(ep.hostIfName);
    if (!st.ok()) log::warn("overlay", "detach ", ep.hostIfName, ": ", st.error().message);
  }
}

void Orchestrator::Impl::cleanupContainer(Task& t, bool removeLogs) {
  if (t.spec.id.empty()) return;
  auto st = d_.launcher->cleanup(t.spec, removeLogs);
  if (!st.ok()) log::warn("runtime", "cleanup ", t.containerId.substr(0, 12), ": ", st.error().message);
  if (removeLogs) {
    forgetContainer(t.containerId);
    t.containerCleaned = true;
  }
}

void Orchestrator::Impl::onExit(const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) return;
  Task& t = *it->second;
  closePoll(t.poll);
  cancelTimer(t.killTimer);
  cancelTimer(t.drainTimer);
  cancelTimer(t.probeTimer);
  t.ready = false;
  // Out of rotation before anything slow (reaping, the endpoints' netlink
  // work, unmounts): a client the kernel path (--kernel-lb) connects to a
  // replica that is gone gets an error, with no retry as the proxy has.
  dropLocalBackend(t);
  auto svc = services_.find(t.service);
  if (svc != services_.end()) updateBackends(svc->second);
  if (t.checkBusy) {
    // A health check runs in its namespaces: reaped when it is back, so its
    // pid is not reused meanwhile.
    t.exitPending = true;
    return;
  }
  auto code = d_.launcher->reap(*t.launched);
  int exitCode = code.ok() ? *code : 255;
  t.exitCode = exitCode;
  t.finished = SysClock::now();
  detachEndpoints(t);
  releaseAddresses(t);
  cleanupContainer(t, false);
  if (t.unhealthy) {
    // Failed whatever its exit code (a server exits 0 on SIGTERM): the
    // restart policy replaces it as it would a crash.
    setState(t, TaskState::kFailed, "task: unhealthy container (exit code " + std::to_string(exitCode) + ")");
  } else if (t.stopRequested) {
    setState(t, TaskState::kShutdown);
  } else if (exitCode == 0) {
    setState(t, TaskState::kComplete);
  } else {
    setState(t, TaskState::kFailed, "task: non-zero exit (" + std::to_string(exitCode) + ")");
  }
  log::info("netd", "task ", t.name(), " exited with code ", exitCode, " (", toString(t.state), ")");
  svc = services_.find(t.service);
  if (svc != services_.end()) updateBackends(svc->second);
  taskEnded(t, t.unhealthy && exitCode == 0 ? 1 : exitCode);
}

void Orchestrator::Impl::taskEnded(Task& t, int exitCode) {
  if (isLocal(t) && isLone(t.stack, t.service)) rememberLoneEnd(t);
  std::string serviceName = t.service;
  uint64_t slot = t.slot;
  bool stopped = t.stopRequested && !t.unhealthy;
  t.desiredState = TaskState::kShutdown;
  auto it = services_.find(serviceName);
  if (it != services_.end()) noteUpdateFailure(it->second, t);
  // Only the manager restarts: a worker reports the end and the manager
  // places the replacement (on this node or another).
  if (swarm_ && it != services_.end() && !it->second.removed && !shuttingDown_ && !stopped &&
      t.specVersion == it->second.specVersion &&
      (it->second.spec.mode == runtime::ServiceMode::kGlobal || slot <= it->second.spec.replicas)) {
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
        ++s->second.restarts;
        reconcile(s->second);
      });
    } else {
      log::info("netd", "task ", serviceName, ".", slot, " not restarted: ", decision.reason);
      svc.haltedSlots.insert(slot);
      if (isLone(svc.stack, svc.name)) loneEnded(svc);
    }
  }
  // A stop-first slot whose old task is gone starts its new one; a failure
  // may end the update.
  it = services_.find(serviceName);
  if (it != services_.end()) driveUpdate(it->second);
  finishRemovals();
  maybeShutdownDone();
}

void Orchestrator::Impl::trimHistory(const std::string& service, uint64_t slot) {
  std::vector<Task*> old;
  for (auto& [id, task] : tasks_) {
    if (task->service == service && task->slot == slot && !task->live()) old.push_back(task.get());
  }
  if (old.size() <= kTaskHistory) return;
  std::sort(old.begin(), old.end(), [](Task* a, Task* b) { return a->created < b->created; });
  for (size_t i = 0; i + kTaskHistory < old.size(); i++) dropTask(*old[i]);
}

void Orchestrator::Impl::dropTask(Task& t) {
  cleanupContainer(t, true);
  closePoll(t.poll);
  cancelTimer(t.killTimer);
  cancelTimer(t.drainTimer);
  cancelTimer(t.probeTimer);
  tasks_.erase(t.id);
}

void Orchestrator::Impl::stopTask(Task& t) {
  if (t.stopRequested) return;
  t.stopRequested = true;
  t.desiredState = TaskState::kShutdown;
  if (swarm_) {
    // Its node drains and stops it once its next assignment leaves it out,
    // and reports the end; until then it stays live (its slot is not free
    // twice). The other nodes' proxies stop sending it new connections now.
    if (t.state == TaskState::kPending || t.state == TaskState::kAssigned) {
      releaseAddresses(t);
      setState(t, TaskState::kShutdown);
    }
    auto svc = services_.find(t.service);
    if (svc != services_.end()) updateBackends(svc->second);
    if (t.node == nodeId_) pokeAgent();
    return;
  }
  if (t.starting) {
    // Its command has not run yet: nothing to drain or to let finish. A
    // shim stuck on its rootfs would otherwise hold the stop (and stack rm,
    // and netd's shutdown) for ever; killed, its pipe ends and finishStart
    // sees the task run and stop.
    (void)d_.launcher->signal(t.starting->launched.pid, SIGKILL);
    return;
  }
  if (!t.launched || t.state != TaskState::kRunning) {
    if (t.live()) setState(t, TaskState::kShutdown);
    return;
  }
  auto svc = services_.find(t.service);
  if (svc == services_.end() || svc->second.drainListeners().empty()) {
    sendStopSignal(t);
    return;
  }
  // Drain before stopping: the proxy sends the replica no new connections,
  // and the stop signal waits until its open ones are done — at most half
  // the grace period (5 s at most), so the replica keeps the other half to
  // exit. Connections still open when the whole grace is over are closed
  // by the proxy.
  double grace = svc->second.spec.stopGracePeriodSeconds;
  for (const auto& l : svc->second.drainListeners()) {
    mesh_->drainBackend(l, t.containerId, std::chrono::milliseconds(static_cast<int64_t>(grace * 1000)));
  }
  updateBackends(svc->second);
  auto wait = std::chrono::milliseconds(static_cast<int64_t>(std::min(grace / 2, 5.0) * 1000));
  waitForDrain(t.id, SteadyClock::now() + wait);
}

void Orchestrator::Impl::waitForDrain(const std::string& taskId, SteadyClock::time_point deadline) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end() || !it->second->launched || it->second->state != TaskState::kRunning) return;
  Task& t = *it->second;
  cancelTimer(t.drainTimer);
  if (activeConnections(t) == 0 || SteadyClock::now() >= deadline) {
    sendStopSignal(t);
    return;
  }
  t.drainTimer =
      startTimer(d_.loop, std::chrono::milliseconds(50), [this, taskId, deadline] { waitForDrain(taskId, deadline); });
}

uint64_t Orchestrator::Impl::activeConnections(const Task& t) const {
  auto svc = services_.find(t.service);
  if (svc == services_.end()) return 0;
  uint64_t active = 0;
  const auto where = svc->second.drainListeners();
  for (const auto& l : mesh_->stats()) {
    if (std::find(where.begin(), where.end(), l.name) == where.end()) continue;
    for (const auto& b : l.backends) {
      if (b.id == t.containerId) active += b.activeConnections;
    }
  }
  return active;
}

void Orchestrator::Impl::sendStopSignal(Task& t) {
  auto svc = services_.find(t.service);
  double grace = svc != services_.end() ? svc->second.spec.stopGracePeriodSeconds : 10;
  int sig = svc != services_.end() ? signalNumber(svc->second.spec.stopSignal) : SIGTERM;
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

int Orchestrator::Impl::signalNumber(const std::string& name) {
  static const std::map<std::string, int> kSignals = {{"SIGTERM", SIGTERM}, {"SIGINT", SIGINT}, {"SIGQUIT", SIGQUIT},
                                                      {"SIGKILL", SIGKILL}, {"SIGHUP", SIGHUP}, {"SIGUSR1", SIGUSR1},
                                                      {"SIGUSR2", SIGUSR2}};
  auto it = kSignals.find(name);
  return it == kSignals.end() ? SIGTERM : it->second;
}

std::vector<proxy::Backend> Orchestrator::Impl::backendsFor(const ServiceState& svc,
                                                            const runtime::PortSpec& port) const {
  // Slot order, so round robin visits replicas 1..N in turn.
  std::vector<std::pair<uint64_t, proxy::Backend>> bySlot;
  for (const auto& [id, t] : tasks_) {
    if (t->service != svc.name || t->state != TaskState::kRunning) continue;
    // A replica being stopped leaves every node's rotation; its own node's
    // proxy still counts its open connections while it drains (a backend
    // that left the list with connections open stays in its stats).
    if (t->stopRequested) continue;
    // Not ready (starting, unhealthy, not accepting yet): out of rotation.
    if (!t->ready) continue;
    // (The pid, for the kernel path's socket check, is the node's agent's to add.)
    for (const auto& ep : t->endpoints) {
      if (ep.network == kIngress) bySlot.push_back({t->slot, {t->containerId, ep.ip.str(), port.target, 0}});
    }
  }
  std::stable_sort(bySlot.begin(), bySlot.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<proxy::Backend> backends;
  for (auto& [slot, b] : bySlot) backends.push_back(std::move(b));
  return backends;
}

void Orchestrator::Impl::updateBackends(ServiceState& svc) {
  // The manager's backends reach every node with its next assignment
  // (its own node's agent asks for it now); an agent's come that way.
  if (swarm_ && !svc.listeners.empty()) pokeAgent();
}

void Orchestrator::Impl::dropLocalBackend(const Task& t) {
  for (auto& [listener, backends] : lastBackends_) {
    auto gone = std::remove_if(backends.begin(), backends.end(),
                               [&](const proxy::Backend& b) { return b.id == t.containerId; });
    if (gone == backends.end()) continue;
    backends.erase(gone, backends.end());
    mesh_->setBackends(listener, backends);
  }
}

void Orchestrator::Impl::reconcile(ServiceState& svc) {
  // A reconcile within one (a start that ends at once) is part of its time.
  if (!d_.onReconcile || timingReconcile_) {
    reconcileNow(svc);
    return;
  }
  timingReconcile_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }  // also when reconcileNow throws
  } reset{timingReconcile_};
  auto start = SteadyClock::now();
  reconcileNow(svc);
  d_.onReconcile(SteadyClock::now() - start);
}

void Orchestrator::Impl::reconcileNow(ServiceState& svc) {
  if (shuttingDown_) return;
  if (svc.spec.mode == runtime::ServiceMode::kGlobal) {
    reconcileGlobal(svc);
    return;
  }
  std::vector<LiveTask> live;
  for (auto& [id, t] : tasks_) {
    if (t->service == svc.name && t->live()) live.push_back({t->id, t->slot, t->specVersion, t->stopRequested});
  }
  std::vector<uint64_t> occupied(svc.haltedSlots.begin(), svc.haltedSlots.end());
  for (const auto& [slot, timer] : svc.pendingRestarts) occupied.push_back(slot);
  uint64_t desired = svc.removed ? 0 : svc.spec.replicas;
  // A rolling update (running or paused) replaces outdated tasks itself.
  bool rolling =
      svc.update && (svc.update->outcome == UpdateOutcome::kUpdating || svc.update->outcome == UpdateOutcome::kPaused);
  Plan plan = planService(desired, svc.specVersion, live, occupied, rolling);
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
  startTasks(svc, plan.startSlots);
  updateBackends(svc);
  driveUpdate(svc);
}

std::string Orchestrator::Impl::networkName(const std::string& stack, const std::string& key) const {
  auto st = stacks_.find(stack);
  if (st != stacks_.end()) {
    auto n = st->second.spec.networks.find(key);
    if (n != st->second.spec.networks.end() && n->second.external)
      return n->second.externalName.empty() ? key : n->second.externalName;
  }
  return stack + "_" + key;
}

std::vector<std::string> Orchestrator::Impl::externalUsersOf(const std::string& name) const {
  std::vector<std::string> users;
  for (const auto& [stackName, st] : stacks_) {
    if (st.removed) continue;
    for (const auto& [key, n] : st.spec.networks) {
      if (n.external && networkName(stackName, key) == name) {
        users.push_back((st.lone ? "container " : "stack ") + stackName);
        break;
      }
    }
  }
  return users;
}

void Orchestrator::Impl::removeUnusedNetworks(const std::vector<StackState>& erased) {
  if (restoring_) return;
  std::set<std::string> candidates;
  // The manager: a stack's network whose stack is gone (kept for another
  // that used it). An agent has networks of stacks it runs nothing of: the
  // manager's assignment decides there.
  if (swarm_) {
    for (const auto& [name, n] : networks_) {
      if (!n.stack.empty() && !stacks_.count(n.stack)) candidates.insert(name);
    }
  }
  for (const auto& st : erased) {
    for (const auto& [name, n] : networks_) {
      if (n.stack == st.name) candidates.insert(name);
    }
  }
  // Networks a redeploy no longer names.
  for (const auto& [name, n] : networks_) {
    auto st = stacks_.find(n.stack);
    if (n.stack.empty() || st == stacks_.end()) continue;
    auto declared = st->second.spec.networks.find(name.substr(n.stack.size() + 1));
    if (declared == st->second.spec.networks.end() || declared->second.external) candidates.insert(name);
  }
  for (const auto& name : candidates) {
    if (!externalUsersOf(name).empty()) continue;
    bool used = std::any_of(tasks_.begin(), tasks_.end(), [&](const auto& kv) {
      return kv.second->live() && std::any_of(kv.second->endpoints.begin(), kv.second->endpoints.end(),
                                              [&](const TaskEndpoint& ep) { return ep.network == name; });
    });
    if (!used) removeNetwork(name);
  }
}

void Orchestrator::Impl::finishRemovals() {
  for (auto it = services_.begin(); it != services_.end();) {
    ServiceState& svc = it->second;
    if (!svc.removed || anyLive(svc.name)) {
      ++it;
      continue;
    }
    for (auto& [slot, timer] : svc.pendingRestarts) cancelTimer(timer);
    cancelTimer(svc.updateTimer);
    cancelTimer(svc.loneTimer);
    for (auto* t : tasksOf(svc.name)) dropTask(*t);
    (void)d_.store->erase("previous", svc.name);
    log::info("netd", "service ", svc.name, " removed");
    it = services_.erase(it);
  }
  std::vector<StackState> erased;
  for (auto it = stacks_.begin(); it != stacks_.end();) {
    bool busy =
        std::any_of(services_.begin(), services_.end(), [&](const auto& kv) { return kv.second.stack == it->first; });
    if (it->second.removed && !busy) {
      (void)d_.store->erase("stack", it->first);
      if (it->second.lone) forgetLoneEnd(it->first);
      log::info("netd", "stack ", it->first, " removed");
      erased.push_back(std::move(it->second));
      it = stacks_.erase(it);
    } else {
      ++it;
    }
  }
  removeUnusedNetworks(erased);
  pokeAgent();  // what this node runs and carries may have changed
  // After `swarm leave`: ingress carries the proxy's connections to draining
  // replicas, so it goes (with every network left: those `network create`
  // made, those kept past their stack) only when the last of them is gone.
  if (!inSwarm() && std::none_of(tasks_.begin(), tasks_.end(), [](const auto& kv) { return kv.second->live(); })) {
    std::vector<std::string> left;
    for (const auto& [name, n] : networks_) {
      if (n.stack.empty() || !stacks_.count(n.stack)) left.push_back(name);
    }
    for (const auto& n : left) removeNetwork(n);
  }
}

void Orchestrator::Impl::maybeShutdownDone() {
  if (!shuttingDown_ || !shutdownDone_ || checksInFlight_ > 0 || agentsRunning_ > 0) return;
  for (auto& [id, t] : tasks_) {
    if (t->live() && isLocal(*t)) return;
  }
  for (auto& [name, svc] : services_) {
    cancelTimer(svc.updateTimer);
    cancelTimer(svc.loneTimer);
    for (auto& [slot, timer] : svc.pendingRestarts) cancelTimer(timer);
    svc.pendingRestarts.clear();
    svc.listeners.clear();
  }
  for (const auto& l : agentListeners_) (void)mesh_->removeListener(l);
  agentListeners_.clear();
  // Task history is not kept across restarts, so neither are its logs.
  for (auto& [id, t] : tasks_) cleanupContainer(*t, true);
  tasks_.clear();
  // The kernel's devices are the agents' (a manager's networks are records).
  std::vector<std::string> nets;
  for (auto& [name, n] : networks_) nets.push_back(name);
  for (const auto& n : nets) {
    if (!ownsKernel()) break;
    auto st = d_.overlay->removeNetwork(networks_.at(n).config());
    if (!st.ok()) log::warn("overlay", "remove network ", n, ": ", st.error().message);
  }
  auto done = std::move(shutdownDone_);
  shutdownDone_ = nullptr;
  done();
}

}  // namespace skiff::netd
