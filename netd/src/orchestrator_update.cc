// Rolling updates and readiness. A changed service spec does not replace its
// replicas at once: update.h's planner moves the slots in batches as
// update_config says, and a slot moves on only when its new task is ready —
// healthy, or (without a health check) accepting connections on its
// published port. Only ready tasks are in the routing mesh's rotation, so a
// replica that is still starting, or that fails its health check, gets no
// request. A failed update pauses, continues or rolls back to the previous
// spec as failure_action says.

#include <algorithm>

#include "orchestrator_impl.h"
#include "skiff/common/log.h"

namespace skiff::netd {
namespace {

std::chrono::milliseconds millis(double seconds, double fallback) {
  if (seconds <= 0) seconds = fallback;
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// The default TCP probe: a libuv connect, given up after a second.
struct ProbeConn {
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_timer_t timer;
  std::function<void(bool)> done;
  int open = 0;  // handles not yet closed
  bool closing = false;
};

void answer(ProbeConn* p, bool ok) {
  if (!p->done) return;
  auto done = std::move(p->done);
  p->done = nullptr;
  done(ok);
}

void closeProbe(ProbeConn* p) {
  if (p->closing) return;
  p->closing = true;
  auto onClose = [](uv_handle_t* h) {
    auto* c = static_cast<ProbeConn*>(h->data);
    if (--c->open == 0) delete c;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&p->tcp), onClose);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->timer), onClose);
}

void probeWithLibuv(uv_loop_t* loop, const std::string& host, uint16_t port, std::function<void(bool)> done) {
  sockaddr_in addr{};
  if (uv_ip4_addr(host.c_str(), port, &addr) != 0) return done(false);
  auto* p = new ProbeConn;
  p->done = std::move(done);
  uv_tcp_init(loop, &p->tcp);
  uv_timer_init(loop, &p->timer);
  p->tcp.data = p->timer.data = p->req.data = p;
  p->open = 2;
  int rc = uv_tcp_connect(&p->req, &p->tcp, reinterpret_cast<const sockaddr*>(&addr), [](uv_connect_t* req, int st) {
    auto* c = static_cast<ProbeConn*>(req->data);
    answer(c, st == 0);
    closeProbe(c);
  });
  if (rc != 0) {
    answer(p, false);
    closeProbe(p);
    return;
  }
  uv_timer_start(
      &p->timer,
      [](uv_timer_t* t) {
        auto* c = static_cast<ProbeConn*>(t->data);
        answer(c, false);
        closeProbe(c);  // the pending connect ends with ECANCELED
      },
      1000, 0);
}

// A health check's run on the thread pool.
struct CheckWork {
  uv_work_t req;
  Orchestrator::Impl* self = nullptr;
  runtime::ContainerLauncher* launcher = nullptr;
  std::string taskId;
  runtime::ContainerSpec spec;
  pid_t pid = -1;
  runtime::ExecSpec exec;
  std::optional<Result<runtime::ExecResult>> result;
};

}  // namespace

// ---- updates --------------------------------------------------------------

void Orchestrator::Impl::beginUpdate(ServiceState& svc, runtime::ServiceSpec next, bool rollback) {
  svc.previousSpec = svc.spec;
  svc.previousVersion = svc.specVersion;
  svc.spec = std::move(next);
  persistPreviousSpec(svc);
  svc.specVersion = ++svc.lastVersion;
  svc.haltedSlots.clear();
  svc.restartTimes.clear();
  svc.updated = SysClock::now();
  svc.rollingBack = rollback;
  svc.updateStarted = SysClock::now();
  svc.updateCompleted = {};
  const auto& config = rollback ? svc.spec.rollbackConfig : svc.spec.updateConfig;
  svc.update = netd::beginUpdate(config, svc.spec.replicas, SteadyClock::now());
  log::info("netd", "service ", svc.name, rollback ? " rolling back" : " updating", " to version ", svc.specVersion,
            " (parallelism ", config.parallelism, ", delay ", config.delaySeconds, "s, ",
            runtime::toString(config.order), ")");
}

void Orchestrator::Impl::driveUpdate(ServiceState& svc) {
  if (!swarm_ || shuttingDown_ || svc.removed || !svc.update || svc.update->outcome != UpdateOutcome::kUpdating) return;
  if (svc.spec.mode == runtime::ServiceMode::kGlobal) return;
  if (svc.driving) {
    svc.driveAgain = true;
    return;
  }
  svc.driving = true;
  std::string name = svc.name;
  do {
    svc.driveAgain = false;
    stepOnce(svc);
    // A step may end in a rollback, or (through a task that failed at once)
    // leave the service: look it up again.
    auto it = services_.find(name);
    if (it == services_.end()) return;
  } while (svc.driveAgain && svc.update && svc.update->outcome == UpdateOutcome::kUpdating);
  svc.driving = false;
}

void Orchestrator::Impl::stepOnce(ServiceState& svc) {
  cancelTimer(svc.updateTimer);
  std::map<uint64_t, UpdateSlot> slots;
  for (uint64_t i = 1; i <= svc.spec.replicas; i++) {
    slots[i].slot = i;
    slots[i].restartPending = svc.pendingRestarts.count(i) != 0;
  }
  for (const auto& [id, t] : tasks_) {
    if (t->service != svc.name || !t->live()) continue;
    auto s = slots.find(t->slot);
    if (s == slots.end()) continue;
    UpdateSlot& u = s->second;
    if (t->specVersion != svc.specVersion) {
      if (t->stopRequested) {
        u.oldStopping = true;
      } else {
        u.oldTasks.push_back(id);
      }
    } else if (!t->stopRequested && (u.newTask.empty() || (t->ready && !u.newReady))) {
      u.newTask = id;
      u.newReady = t->state == TaskState::kRunning && t->ready;
      u.newReadySince = t->readySince;
    }
  }
  std::vector<UpdateSlot> view;
  for (auto& [slot, u] : slots) view.push_back(std::move(u));
  const UpdateStep step = stepUpdate(*svc.update, view, SteadyClock::now());
  for (const auto& id : step.stopTasks) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    log::info("netd", "update ", svc.name, ": slot ", it->second->slot, ": stopping the old task");
    stopTask(*it->second);
  }
  if (!step.startSlots.empty()) {
    for (auto slot : step.startSlots) log::info("netd", "update ", svc.name, ": slot ", slot, ": starting a new task");
    startTasks(svc, step.startSlots);
  }
  switch (step.outcome) {
    case UpdateOutcome::kUpdating:
      break;
    case UpdateOutcome::kCompleted:
      svc.updateCompleted = SysClock::now();
      log::info("netd", "service ", svc.name, svc.rollingBack ? " rollback completed" : " update completed");
      return;
    case UpdateOutcome::kPaused:
      log::warn("netd", "service ", svc.name, ": ", step.message);
      return;
    case UpdateOutcome::kRollback:
      log::warn("netd", "service ", svc.name, ": ", step.message);
      rollback(svc);
      return;
  }
  updateBackends(svc);
  if (step.wakeAt) {
    auto after = std::chrono::duration_cast<std::chrono::milliseconds>(*step.wakeAt - SteadyClock::now());
    std::string name = svc.name;
    cancelTimer(svc.updateTimer);
    svc.updateTimer = startTimer(d_.loop, std::max(after, std::chrono::milliseconds(1)), [this, name] {
      auto it = services_.find(name);
      if (it == services_.end()) return;
      cancelTimer(it->second.updateTimer);
      driveUpdate(it->second);
    });
  }
}

void Orchestrator::Impl::rollback(ServiceState& svc) {
  std::string why = svc.update ? svc.update->message : "";
  if (!svc.previousSpec) {
    log::warn("netd", "service ", svc.name, ": no previous spec to roll back to");
    return;
  }
  runtime::ServiceSpec previous = *svc.previousSpec;
  uint64_t previousVersion = svc.previousVersion;
  beginUpdate(svc, std::move(previous), true);
  // The previous spec's tasks are still that version: they stay, only the
  // new ones are replaced.
  svc.specVersion = previousVersion;
  if (!why.empty()) svc.update->message = why;
  if (auto st = persistServiceSpec(svc); !st.ok())
    log::error("netd", "service ", svc.name, ": rolled back, but not saved: ", st.error().message);
  reconcile(svc);
}

void Orchestrator::Impl::noteUpdateFailure(ServiceState& svc, const Task& t) {
  if (!svc.update || svc.update->outcome != UpdateOutcome::kUpdating || t.specVersion != svc.specVersion) return;
  if (t.stopRequested && !t.unhealthy) return;
  auto monitor = millis(svc.update->config.monitorSeconds, 0);
  if (t.ready && SteadyClock::now() > t.readySince + monitor) return;
  log::warn("netd", "update ", svc.name, ": task ", t.name(), " failed: ", t.error.empty() ? "exited" : t.error);
  netd::noteFailure(*svc.update, t.id);
}

json Orchestrator::Impl::updateStatus(const ServiceState& svc) const {
  if (!svc.update) return nullptr;
  const UpdateRun& run = *svc.update;
  std::string message = run.message;
  if (run.outcome == UpdateOutcome::kCompleted) {
    // A rollback keeps saying why it happened.
    message = !svc.rollingBack  ? "update completed"
              : message.empty() ? "rollback completed"
                                : "rollback completed (" + message + ")";
  } else if (message.empty()) {
    message = svc.rollingBack ? "rollback in progress" : "update in progress";
  }
  json j{{"State", updateStateWord(run.outcome, svc.rollingBack)},
         {"StartedAt", rfc3339(svc.updateStarted)},
         {"Message", message}};
  if (run.outcome == UpdateOutcome::kCompleted) j["CompletedAt"] = rfc3339(svc.updateCompleted);
  return j;
}

// The spec a service would roll back to, kept so that `service rollback`
// works after a restart as in docker (whose raft store keeps PreviousSpec).
// "previous"/<service> holds it with the spec it is previous to, each in
// the stack's wire format with that one service (and the stack's networks,
// which it names): restore takes it back only for a service that still runs
// that spec, so a document a failed write left behind, or one of an
// earlier service of the same name, is never rolled back to. Losing it
// loses only the rollback, so a failed write is said and not returned.
void Orchestrator::Impl::persistPreviousSpec(const ServiceState& svc) {
  auto st = stacks_.find(svc.stack);
  if (!svc.previousSpec || st == stacks_.end()) return;
  auto wire = [&](const runtime::ServiceSpec& spec) {
    runtime::StackSpec one = st->second.spec;
    one.services = {{svc.spec.name, spec}};
    return runtime::toJson(one);
  };
  auto saved =
      d_.store->put("previous", svc.name,
                    json{{"service", svc.spec.name}, {"spec", wire(*svc.previousSpec)}, {"current", wire(svc.spec)}});
  if (!saved.ok())
    log::error("netd", "service ", svc.name, ": previous spec not saved (", saved.error().message,
               "); after a restart `service rollback` has nothing to go back to");
}

void Orchestrator::Impl::restorePreviousSpecs(const std::string& stack) {
  auto docs = d_.store->list("previous");
  if (!docs.ok()) return;
  for (const auto& [full, doc] : *docs) {
    auto svc = services_.find(full);
    if (svc == services_.end() || svc->second.stack != stack) continue;
    try {
      const std::string name = doc.at("service").get<std::string>();
      runtime::ServiceSpec current = runtime::stackFromJson(doc.at("current")).services.at(name);
      runtime::ServiceSpec running = svc->second.spec;
      current.replicas = running.replicas = 0;  // scaled since: still the same spec
      if (!(current == running)) {
        log::warn("netd", "service ", full, ": the stored previous spec belongs to another spec; not restored");
        continue;
      }
      svc->second.previousSpec = runtime::stackFromJson(doc.at("spec")).services.at(name);
      // A version no task of this life runs: a rollback replaces every replica.
      svc->second.previousVersion = ++svc->second.lastVersion;
    } catch (const std::exception& e) {
      log::warn("netd", "service ", full, ": previous spec not restored: ", e.what());
    }
  }
}

Status Orchestrator::Impl::persistServiceSpec(const ServiceState& svc) {
  auto st = stacks_.find(svc.stack);
  if (st == stacks_.end()) return okStatus();
  StackState changed = st->second;
  changed.spec.services[svc.spec.name] = svc.spec;
  if (auto saved = persistStack(changed); !saved.ok()) return saved;
  st->second.spec.services[svc.spec.name] = svc.spec;
  return okStatus();
}

// ---- readiness ------------------------------------------------------------

void Orchestrator::Impl::beginReadiness(Task& t) {
  t.ready = false;
  cancelTimer(t.probeTimer);
  if (t.healthcheck) {
    t.health = "starting";
    t.healthFailures = 0;
    std::string id = t.id;
    t.probeTimer = startTimer(d_.loop, millis(t.healthcheck->intervalSeconds, 30), [this, id] { runHealthCheck(id); });
    return;
  }
  probe(t.id);
}

void Orchestrator::Impl::probe(const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) return;
  Task& t = *it->second;
  cancelTimer(t.probeTimer);
  if (t.state != TaskState::kRunning || t.stopRequested || t.ready) return;
  auto svc = services_.find(t.service);
  // The published TCP target port on the ingress address: what the mesh dials.
  std::optional<uint16_t> port;
  if (svc != services_.end()) {
    for (const auto& p : svc->second.spec.ports) {
      if (p.published != 0 && p.mode == runtime::PortMode::kIngress && p.protocol == runtime::Protocol::kTcp) {
        port = p.target;
        break;
      }
    }
  }
  auto ep =
      std::find_if(t.endpoints.begin(), t.endpoints.end(), [](const TaskEndpoint& e) { return e.network == kIngress; });
  if (!port || ep == t.endpoints.end()) {
    becameReady(t);
    return;
  }
  if (!d_.probeTcp) {
    d_.probeTcp = [loop = d_.loop](const std::string& host, uint16_t p, std::function<void(bool)> done) {
      probeWithLibuv(loop, host, p, std::move(done));
    };
  }
  d_.probeTcp(ep->ip.str(), *port, [this, taskId, port = *port](bool ok) {
    auto again = tasks_.find(taskId);
    if (again == tasks_.end()) return;
    Task& task = *again->second;
    if (task.state != TaskState::kRunning || task.stopRequested || task.ready) return;
    if (ok) {
      task.healthOutput.clear();
      becameReady(task);
      return;
    }
    task.healthOutput = "port " + std::to_string(port) + " does not accept connections yet";
    cancelTimer(task.probeTimer);
    task.probeTimer = startTimer(d_.loop, std::chrono::milliseconds(100), [this, taskId] { probe(taskId); });
  });
}

void Orchestrator::Impl::becameReady(Task& t) {
  if (t.ready) return;
  t.ready = true;
  t.readySince = SteadyClock::now();
  log::info("netd", "task ", t.name(), " ready", t.health.empty() ? "" : " (" + t.health + ")", ": in rotation");
  if (embedded_) heartbeatSoon();  // the manager next door puts it in rotation
  auto svc = services_.find(t.service);
  if (svc == services_.end()) return;
  updateBackends(svc->second);
  driveUpdate(svc->second);
}

void Orchestrator::Impl::unready(Task& t, const std::string& why) {
  if (!t.ready) return;
  t.ready = false;
  log::warn("netd", "task ", t.name(), " out of rotation: ", why);
  if (embedded_) heartbeatSoon();
  dropLocalBackend(t);  // this node's own proxy stops at once
  auto svc = services_.find(t.service);
  if (svc != services_.end()) updateBackends(svc->second);
}

void Orchestrator::Impl::runHealthCheck(const std::string& taskId) {
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) return;
  Task& t = *it->second;
  cancelTimer(t.probeTimer);
  if (t.state != TaskState::kRunning || !t.launched || t.stopRequested || !t.healthcheck || t.checkBusy) return;
  auto* w = new CheckWork;
  w->req.data = w;
  w->self = this;
  w->launcher = d_.launcher;
  w->taskId = taskId;
  w->spec = t.spec;
  w->pid = t.launched->pid;
  w->exec.argv = runtime::healthcheckArgv(*t.healthcheck);
  w->exec.timeout = millis(t.healthcheck->timeoutSeconds, 30);
  t.checkBusy = true;
  checksInFlight_++;
  int rc = uv_queue_work(
      d_.loop, &w->req,
      [](uv_work_t* req) {
        auto* work = static_cast<CheckWork*>(req->data);
        work->result = work->launcher->exec(work->spec, work->pid, work->exec);
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<CheckWork> work(static_cast<CheckWork*>(req->data));
        Result<runtime::ExecResult> r =
            work->result ? std::move(*work->result) : Result<runtime::ExecResult>(Error::msg("check cancelled"));
        // Nothing may leave a libuv callback.
        try {
          work->self->healthResult(work->taskId, r);
        } catch (const std::exception& e) {
          log::error("netd", "handling a health check failed: ", e.what());
        }
      });
  if (rc != 0) {
    delete w;
    checksInFlight_--;
    t.checkBusy = false;
    log::error("netd", "health check of ", t.name(), ": ", uv_strerror(rc));
  }
}

void Orchestrator::Impl::healthResult(const std::string& taskId, const Result<runtime::ExecResult>& r) {
  checksInFlight_--;
  auto it = tasks_.find(taskId);
  if (it == tasks_.end()) {
    maybeShutdownDone();
    return;
  }
  Task& t = *it->second;
  t.checkBusy = false;
  if (t.exitPending) {
    t.exitPending = false;
    onExit(taskId);
    return;
  }
  if (t.state != TaskState::kRunning || t.stopRequested || !t.healthcheck) {
    maybeShutdownDone();
    return;
  }
  const runtime::Healthcheck& hc = *t.healthcheck;
  bool ok = r.ok() && !r->timedOut && r->exitCode == 0;
  if (!r.ok()) {
    t.healthOutput = r.error().message;
  } else if (r->timedOut) {
    t.healthOutput = "Health check exceeded timeout (" + std::to_string(millis(hc.timeoutSeconds, 30).count()) + "ms)";
  } else {
    t.healthOutput = r->output;
  }
  bool inStartPeriod = SysClock::now() < t.started + millis(hc.startPeriodSeconds, 0);
  if (ok) {
    t.healthFailures = 0;
    t.health = "healthy";
    becameReady(t);
  } else if (!inStartPeriod || t.health == "healthy") {
    t.healthFailures++;
    if (t.healthFailures >= std::max<uint64_t>(hc.retries, 1)) {
      t.health = "unhealthy";
      t.unhealthy = true;
      t.error = "unhealthy container";
      unready(t, "unhealthy after " + std::to_string(t.healthFailures) + " failed checks: " + t.healthOutput);
      stopTask(t);
      return;
    }
  }
  t.probeTimer = startTimer(d_.loop, millis(hc.intervalSeconds, 30), [this, taskId] { runHealthCheck(taskId); });
}

// ---- the API --------------------------------------------------------------

namespace {

// The update_config fields a `service update` names, checked and applied.
std::optional<ApiError> applyUpdateConfig(const json& j, runtime::UpdateConfig& c) {
  if (!j.is_object()) return ApiError{ErrorKind::kInvalid, "updateConfig must be an object"};
  for (const auto& [k, v] : j.items()) {
    if (k == "parallelism") {
      if (!v.is_number_unsigned()) return ApiError{ErrorKind::kInvalid, "update parallelism must be a number >= 0"};
      c.parallelism = v.get<uint64_t>();
    } else if (k == "delay" || k == "monitor") {
      if (!v.is_number() || v.get<double>() < 0)
        return ApiError{ErrorKind::kInvalid, "update " + k + " must be a duration >= 0"};
      (k == "delay" ? c.delaySeconds : c.monitorSeconds) = v.get<double>();
    } else if (k == "maxFailureRatio") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
        return ApiError{ErrorKind::kInvalid, "update max failure ratio must be between 0 and 1"};
      c.maxFailureRatio = v.get<double>();
    } else if (k == "order") {
      auto order = v.is_string() ? runtime::parseKind<runtime::UpdateOrder>(v.get<std::string>()) : std::nullopt;
      if (!order)
        return ApiError{ErrorKind::kInvalid, "invalid update order " + v.dump() + ": must be one of " +
                                                 runtime::kindWords<runtime::UpdateOrder>()};
      c.order = *order;
    } else if (k == "failureAction") {
      auto action = v.is_string() ? runtime::parseKind<runtime::FailureAction>(v.get<std::string>()) : std::nullopt;
      if (!action)
        return ApiError{ErrorKind::kInvalid, "invalid update failure action " + v.dump() + ": must be one of " +
                                                 runtime::kindWords<runtime::FailureAction>()};
      c.failureAction = *action;
    } else {
      return ApiError{ErrorKind::kInvalid, "unknown update setting \"" + k + "\""};
    }
  }
  return std::nullopt;
}

}  // namespace

ApiResult<json> Orchestrator::updateService(const std::string& name, const json& body) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  ServiceState* s = m.findService(name);
  if (s == nullptr || s->removed) return ApiError{ErrorKind::kNotFound, "service " + name + " not found"};
  if (!body.is_object()) return ApiError{ErrorKind::kInvalid, "the update must be a JSON object"};
  runtime::ServiceSpec next = s->spec;
  bool force = false;
  for (const auto& [k, v] : body.items()) {
    if (k == "image") {
      if (!v.is_string() || v.get<std::string>().empty())
        return ApiError{ErrorKind::kInvalid, "image must be a non-empty string"};
      auto image = m.d_.images->resolve(v.get<std::string>());
      if (!image.ok()) return ApiError{ErrorKind::kInvalid, image.error().message};
      next.image = v.get<std::string>();
    } else if (k == "envAdd" || k == "envRm") {
      if (!v.is_array()) return ApiError{ErrorKind::kInvalid, k + " must be a list of strings"};
      for (const auto& e : v) {
        if (!e.is_string() || e.get<std::string>().empty())
          return ApiError{ErrorKind::kInvalid, k + " must be a list of strings"};
        std::string text = e.get<std::string>();
        if (k == "envRm") {
          next.environment.erase(text);
          continue;
        }
        auto eq = text.find('=');
        if (eq == 0) return ApiError{ErrorKind::kInvalid, "invalid environment variable " + text};
        next.environment[text.substr(0, eq)] = eq == std::string::npos ? "" : text.substr(eq + 1);
      }
    } else if (k == "replicas") {
      if (!v.is_number_unsigned()) return ApiError{ErrorKind::kInvalid, "replicas must be a number >= 0"};
      if (s->spec.mode == runtime::ServiceMode::kGlobal)
        return ApiError{ErrorKind::kInvalid, "replicas can only be used with replicated mode"};
      if (v.get<uint64_t>() > kMaxReplicas)
        return ApiError{ErrorKind::kInvalid, "replicas " + std::to_string(v.get<uint64_t>()) +
                                                 " is more than this node can address (at most " +
                                                 std::to_string(kMaxReplicas) + ")"};
      next.replicas = v.get<uint64_t>();
    } else if (k == "force") {
      if (!v.is_boolean()) return ApiError{ErrorKind::kInvalid, "force must be true or false"};
      force = v.get<bool>();
    } else if (k == "updateConfig") {
      if (auto err = applyUpdateConfig(v, next.updateConfig)) return *err;
    } else {
      return ApiError{ErrorKind::kInvalid, "unknown service update field \"" + k + "\""};
    }
  }
  runtime::ServiceSpec a = s->spec, b = next;
  a.replicas = b.replicas = 0;
  a.updateConfig = b.updateConfig = {};
  bool tasksChange = force || !(a == b);
  // Saved first: an update the store cannot keep changes nothing.
  runtime::ServiceSpec before = s->spec;
  s->spec = next;
  auto saved = m.persistServiceSpec(*s);
  s->spec = before;
  if (!saved.ok()) return ApiError{ErrorKind::kInternal, saved.error().message};
  if (tasksChange) {
    m.beginUpdate(*s, std::move(next), false);
  } else {
    s->spec = std::move(next);
    s->haltedSlots.clear();
    s->updated = SysClock::now();
    m.persistPreviousSpec(*s);  // the spec it is previous to changed (update_config)
  }
  m.reconcile(*s);
  return json{{"ID", s->id}, {"Warnings", json::array()}};
}

ApiResult<json> Orchestrator::rollbackService(const std::string& name) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  ServiceState* s = m.findService(name);
  if (s == nullptr || s->removed) return ApiError{ErrorKind::kNotFound, "service " + name + " not found"};
  if (!s->previousSpec)
    return ApiError{ErrorKind::kInvalid, "service " + s->name + " has no previous spec to roll back to"};
  if (s->update) s->update->message = "manually requested rollback";
  m.rollback(*s);
  return json{{"ID", s->id}, {"Warnings", json::array()}};
}

}  // namespace skiff::netd
