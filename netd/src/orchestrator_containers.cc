// Lone containers: `skiff run`, `start`, `stop`, `rm`. A container run on its
// own is a one-replica service named after it, in a stack of the same name
// (orchestrator_impl.h, LoneContainer), pinned to the node whose daemon ran
// it. So it goes the way every replica goes — the manager places it, this
// node's agent starts it, its published ports are routing-mesh listeners under
// the same uniqueness rules as services' — and `stack ls` / `service ls` leave
// it out. Stopping it scales it to 0 (stored: it stays stopped across a netd
// restart); starting it is a new task, as a restart is.

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "orchestrator_impl.h"
#include "skiff/common/file.h"
#include "skiff/common/log.h"
#include "skiff/runtime/names.h"

namespace skiff::netd {

namespace fs = std::filesystem;

StackState* Orchestrator::Impl::findLone(const std::string& ref) {
  if (ref.empty()) return nullptr;
  auto named = stacks_.find(ref);
  if (named != stacks_.end() && named->second.lone && !named->second.removed) return &named->second;
  // An id (prefix) of one of its lives, resolved as every container ref is.
  const Task* t = findContainer(ref);
  if (t == nullptr) {
    // The id of a life kept from before a restart, which `ps -a` shows.
    auto kept = endedLone(ref);
    auto st = kept ? stacks_.find(kept->value("name", "")) : stacks_.end();
    return st != stacks_.end() ? &st->second : nullptr;
  }
  if (!isLone(t->stack, t->service)) return nullptr;
  auto st = stacks_.find(t->stack);
  return st != stacks_.end() && st->second.lone && !st->second.removed ? &st->second : nullptr;
}

void Orchestrator::Impl::rememberLoneEnd(const Task& t) {
  const auto now = SysClock::now();
  json row = containerSummary(t);
  row["state"] = "exited";
  row["pid"] = 0;
  row["ports"] = "";
  row["networks"] = json::object();
  json inspect = containerInspect(t);
  inspect["State"]["Status"] = "exited";
  inspect["State"]["Running"] = false;
  inspect["State"]["Pid"] = 0;
  inspect["State"]["FinishedAt"] = rfc3339(now);
  // Its log's tail, where a restart does not remove it (the container's
  // folder goes with its task).
  std::error_code ec;
  const std::string keptLog = d_.dataRoot + "/logs/" + t.service + ".log";
  fs::create_directories(d_.dataRoot + "/logs", ec);
  if (auto st = writeFileAtomic(keptLog, readLogTail(t.spec.logPath), 0600); !st.ok())
    log::warn("netd", "container ", t.service, ": keep its log: ", st.error().message);
  inspect["LogPath"] = keptLog;
  const json kept{
      {"name", t.service},
      {"row", row},
      {"inspect", inspect},
      {"finishedMs", std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()}};
  if (auto st = d_.store->put(kLoneEnded, t.service, kept); !st.ok())
    log::warn("netd", "container ", t.service, ": ", st.error().message);
}

std::optional<json> Orchestrator::Impl::endedLone(const std::string& ref, bool nameOnly) const {
  if (ref.empty()) return std::nullopt;
  auto kept = [&](const std::string& name) -> std::optional<json> {
    auto st = stacks_.find(name);
    if (st == stacks_.end() || !st->second.lone || st->second.removed || node().newestTaskOf(name) != nullptr)
      return std::nullopt;
    auto doc = d_.store->get(kLoneEnded, name);
    if (!doc.ok() || !doc->has_value() || !(**doc).is_object() || !(**doc).contains("row")) return std::nullopt;
    json k = **doc;
    // Another container of that name since (the manager placed it; its node
    // has no task of it yet): not this one's life.
    const Task* placed = newestTaskOf(name);
    if (placed != nullptr && placed->containerId != k["row"].value("id", "")) return std::nullopt;
    const auto finished = SysClock::time_point(std::chrono::milliseconds(k.value("finishedMs", int64_t{0})));
    k["row"]["status"] = exitedStatus(k["inspect"]["State"].value("ExitCode", 0), finished);
    return k;
  };
  // Its name first, then an id prefix, as every container ref.
  if (auto k = kept(ref)) return k;
  if (nameOnly) return std::nullopt;
  for (const auto& [name, st] : stacks_) {
    if (!st.lone) continue;
    auto k = kept(name);
    if (k && (*k)["row"].value("id", "").rfind(ref, 0) == 0) return k;
  }
  return std::nullopt;
}

void Orchestrator::Impl::forgetLoneEnd(const std::string& name) {
  (void)d_.store->erase(kLoneEnded, name);
  std::error_code ec;
  fs::remove(d_.dataRoot + "/logs/" + name + ".log", ec);
}

Status Orchestrator::Impl::storeLone(StackState& st, ServiceState& s, uint64_t replicas, double grace) {
  StackState changed = st;
  runtime::ServiceSpec& spec = changed.spec.services[st.name];
  spec.replicas = replicas;
  spec.stopGracePeriodSeconds = grace;
  if (auto saved = persistStack(changed); !saved.ok()) return saved;
  st.spec = changed.spec;
  s.spec.replicas = replicas;
  s.spec.stopGracePeriodSeconds = grace;
  return okStatus();
}

ApiResult<json> Orchestrator::Impl::setLoneRunning(StackState& st, bool run, std::optional<double> timeout) {
  auto svc = services_.find(st.name);
  if (svc == services_.end() || svc->second.removed)
    return ApiError{ErrorKind::kNotFound, "No such container: " + st.name};
  ServiceState& s = svc->second;
  // The stored spec says whether it runs: a stopped container stays stopped
  // when netd restarts. A stop's timeout holds for that stop; a start brings
  // back the grace it was run with.
  const double grace = run ? st.lone->stopTimeout : timeout.value_or(st.lone->stopTimeout);
  if (auto saved = storeLone(st, s, run ? 1 : 0, grace); !saved.ok())
    return ApiError{ErrorKind::kInternal, saved.error().message};
  s.haltedSlots.clear();
  s.updated = SysClock::now();
  reconcile(s);
  pokeAgent();
  return json{{"name", st.name}};
}

void Orchestrator::Impl::loneEnded(ServiceState& s) {
  auto st = stacks_.find(s.stack);
  if (st == stacks_.end() || !st->second.lone) return;
  if (st->second.lone->autoRemove) {
    // Not here: this runs inside a task's end, which may be inside a
    // reconcile of this very service (a rejected start); the removal erases it.
    if (s.loneTimer != nullptr) return;
    const std::string name = s.name;
    s.loneTimer = startTimer(d_.loop, std::chrono::milliseconds(0), [this, name] {
      auto svc = services_.find(name);
      if (svc != services_.end()) cancelTimer(svc->second.loneTimer);
      auto stack = stacks_.find(name);
      if (stack == stacks_.end() || !stack->second.lone || stack->second.removed) return;
      log::info("netd", "container ", name, " exited: removed (--rm)");
      (void)removeLone(stack->second, stack->second.lone->stopTimeout);
    });
    return;
  }
  // Logged when the store fails; a netd restart would then start it again.
  (void)storeLone(st->second, s, 0, s.spec.stopGracePeriodSeconds);
}

ApiResult<json> Orchestrator::runContainer(const std::string& name, runtime::ServiceSpec spec, bool autoRemove) {
  Impl& m = *impl_;
  if (!m.swarm_ && !m.inSwarm()) {
    return ApiError{ErrorKind::kUnavailable,
                    "skiff runs containers through its swarm, and this node is in none: \"skiff swarm init\" makes "
                    "a swarm of this node alone; then run it again"};
  }
  if (!m.swarm_) {
    return ApiError{ErrorKind::kUnavailable,
                    "this node is a swarm worker: run the container on a manager (it runs on the manager's node)"};
  }
  if (auto st = m.stacks_.find(name); st != m.stacks_.end() && st->second.lone) {
    const Task* newest = m.newestTaskOf(name);
    const std::string id = newest != nullptr ? newest->containerId : name;
    return ApiError{ErrorKind::kConflict,
                    "Conflict. The container name \"/" + name + "\" is already in use by container \"" + id +
                        "\". You have to remove (or rename) that container to be able to reuse that name."};
  }
  if (auto valid = runtime::checkName(runtime::NameKind::kService, name); !valid.ok()) {
    std::string why = valid.error().message;
    if (auto at = why.find("service name"); at != std::string::npos) why.replace(at, 12, "container name");
    return ApiError{ErrorKind::kInvalid, why};
  }
  if (!std::isfinite(spec.stopGracePeriodSeconds) || spec.stopGracePeriodSeconds < 0)
    return ApiError{ErrorKind::kInvalid, "container " + name + ": invalid stop timeout"};
  spec.name = name;
  spec.mode = runtime::ServiceMode::kReplicated;
  spec.replicas = 1;
  // docker run runs where it is asked: this node.
  spec.placementConstraints.push_back("node.id==" + m.nodeId_);
  runtime::StackSpec stack;
  stack.version = "3";
  // --network NAME: an existing (attachable) network, by its own name.
  for (const auto& n : spec.networks) {
    runtime::NetworkSpec net;
    net.name = n.name;
    net.external = true;
    stack.networks[n.name] = net;
  }
  stack.services[name] = spec;
  m.forgetLoneEnd(name);  // a container of this name that is gone: its life is not this one's
  auto deployed = m.deploy(name, stack, LoneContainer{autoRemove, spec.stopGracePeriodSeconds});
  if (auto* err = std::get_if<ApiError>(&deployed)) return *err;
  const Task* newest = m.newestTaskOf(name);
  return json{{"id", newest != nullptr ? newest->containerId : ""}, {"name", name}};
}

ApiResult<json> Orchestrator::startContainer(const std::string& ref) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  StackState* st = m.findLone(ref);
  if (st == nullptr) return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
  if (m.runningNotStopping(st->name)) return json{{"name", st->name}};  // running already: docker says its name too
  return m.setLoneRunning(*st, true, std::nullopt);
}

ApiResult<json> Orchestrator::stopContainer(const std::string& ref, std::optional<double> timeoutSeconds,
                                            bool restarting) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  if (timeoutSeconds && (!std::isfinite(*timeoutSeconds) || *timeoutSeconds < 0 || *timeoutSeconds > 86400))
    return ApiError{ErrorKind::kInvalid, "invalid stop timeout " + std::to_string(*timeoutSeconds) + " (0 to 86400 s)"};
  StackState* st = m.findLone(ref);
  if (st == nullptr) return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
  if (st->lone->autoRemove && !restarting)
    return m.removeLone(*st, timeoutSeconds.value_or(st->lone->stopTimeout));  // --rm
  return m.setLoneRunning(*st, false, timeoutSeconds);
}

ApiResult<json> Orchestrator::removeContainer(const std::string& ref, bool force) {
  Impl& m = *impl_;
  if (!m.swarm_) return ApiError{ErrorKind::kUnavailable, kNotManager};
  StackState* st = m.findLone(ref);
  if (st == nullptr) return ApiError{ErrorKind::kNotFound, "No such container: " + ref};
  if (m.runningNotStopping(st->name) && !force) {
    return ApiError{ErrorKind::kConflict, "You cannot remove a running container " + st->name +
                                              ". Stop the container before attempting removal or force remove"};
  }
  // Forced: killed, not asked (docker's rm -f sends SIGKILL).
  return m.removeLone(*st, force ? 0 : st->lone->stopTimeout);
}

ApiResult<json> Orchestrator::Impl::removeLone(StackState& st, double grace) {
  const std::string name = st.name;
  auto svc = services_.find(name);
  st.removed = true;
  // Its node's agent stops it as the stack's spec says. A container whose
  // restore failed has no service: only its record goes.
  st.spec.services[name].stopGracePeriodSeconds = grace;
  if (svc != services_.end()) {
    svc->second.spec.stopGracePeriodSeconds = grace;
    removeService(svc->second);
  }
  finishRemovals();
  pokeAgent();
  return json{{"name", name}};
}

}  // namespace skiff::netd
