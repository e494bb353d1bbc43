#include "skiff/netd/update.h"

#include <algorithm>
#include <map>

namespace skiff::netd {
namespace {

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(std::max(s, 0.0)));
}

bool oldGone(const UpdateSlot& s) { return s.oldTasks.empty() && !s.oldStopping; }

// Carries one slot of the batch forward; true once it is done.
bool advance(UpdateRun& run, const UpdateSlot& s, UpdateStep& step) {
  const bool startFirst = run.config.order == runtime::UpdateOrder::kStartFirst;
  if (startFirst) {
    if (s.newTask.empty() && !s.restartPending && !run.started.count(s.slot)) {
      step.startSlots.push_back(s.slot);
      run.started.insert(s.slot);
      return false;
    }
    if (!s.newReady) return false;
    step.stopTasks.insert(step.stopTasks.end(), s.oldTasks.begin(), s.oldTasks.end());
    return true;  // the old ones are asked to stop: they drain on their own
  }
  if (!oldGone(s)) {
    step.stopTasks.insert(step.stopTasks.end(), s.oldTasks.begin(), s.oldTasks.end());
    return false;
  }
  if (s.newTask.empty()) {
    if (!s.restartPending && !run.started.count(s.slot)) {
      step.startSlots.push_back(s.slot);
      run.started.insert(s.slot);
    }
    return false;
  }
  return s.newReady;
}

}  // namespace

UpdateRun beginUpdate(const runtime::UpdateConfig& config, uint64_t slots, UpdateClock::time_point now) {
  UpdateRun run;
  run.config = config;
  run.slots = slots;
  run.nextBatchAt = now;
  run.monitorUntil = now;
  return run;
}

void noteFailure(UpdateRun& run, const std::string& taskId) {
  if (run.outcome != UpdateOutcome::kUpdating) return;
  if (std::find(run.failed.begin(), run.failed.end(), taskId) == run.failed.end()) run.failed.push_back(taskId);
}

UpdateStep stepUpdate(UpdateRun& run, const std::vector<UpdateSlot>& slots, UpdateClock::time_point now) {
  UpdateStep step;
  if (run.outcome != UpdateOutcome::kUpdating) {
    step.outcome = run.outcome;
    step.message = run.message;
    return step;
  }
  // Failures first: a batch is not carried on past the ratio.
  if (!run.failed.empty() && run.config.failureAction != runtime::FailureAction::kContinue) {
    double ratio = static_cast<double>(run.failed.size()) / static_cast<double>(std::max<uint64_t>(run.slots, 1));
    if (ratio > run.config.maxFailureRatio) {
      bool rollback = run.config.failureAction == runtime::FailureAction::kRollback;
      run.outcome = rollback ? UpdateOutcome::kRollback : UpdateOutcome::kPaused;
      run.message = std::string(rollback ? "update rolled back" : "update paused") +
                    " due to failure or early termination of task " + run.failed.back();
      step.outcome = run.outcome;
      step.message = run.message;
      return step;
    }
  }

  std::map<uint64_t, const UpdateSlot*> bySlot;
  for (const auto& s : slots) bySlot[s.slot] = &s;
  // Slots that left the service (scaled down) are neither waited for nor counted.
  for (auto it = run.active.begin(); it != run.active.end();) {
    it = bySlot.count(*it) ? std::next(it) : run.active.erase(it);
  }

  auto carry = [&] {
    bool batchEnded = false;
    for (auto it = run.active.begin(); it != run.active.end();) {
      const UpdateSlot& s = *bySlot.at(*it);
      if (!advance(run, s, step)) {
        ++it;
        continue;
      }
      run.done.insert(s.slot);
      run.monitorUntil = std::max(run.monitorUntil, s.newReadySince + seconds(run.config.monitorSeconds));
      it = run.active.erase(it);
      batchEnded = run.active.empty();
    }
    if (batchEnded) run.nextBatchAt = now + seconds(run.config.delaySeconds);
  };
  carry();

  if (run.active.empty() && now >= run.nextBatchAt) {
    // The next batch: slots that still run an old task, in slot order.
    // Slots already on the new spec (started fresh, or replaced after a
    // crash) are done without a turn.
    uint64_t room = run.config.parallelism == 0 ? UINT64_MAX : run.config.parallelism;
    for (const auto& [slot, s] : bySlot) {
      if (run.done.count(slot)) continue;
      if (oldGone(*s)) {
        if (s->newReady) {
          run.done.insert(slot);
          run.monitorUntil = std::max(run.monitorUntil, s->newReadySince + seconds(run.config.monitorSeconds));
        }
        continue;
      }
      if (room == 0) break;
      run.active.insert(slot);
      room--;
    }
    carry();
  }

  bool allDone = run.active.empty() && std::all_of(bySlot.begin(), bySlot.end(), [&](const auto& kv) {
                   return run.done.count(kv.first) || (oldGone(*kv.second) && kv.second->newReady);
                 });
  if (allDone) {
    if (now >= run.monitorUntil) {
      run.outcome = UpdateOutcome::kCompleted;
      step.outcome = run.outcome;
      return step;
    }
    step.wakeAt = run.monitorUntil;
    return step;
  }
  if (run.active.empty() && run.nextBatchAt > now) step.wakeAt = run.nextBatchAt;
  return step;
}

std::string updateStateWord(UpdateOutcome outcome, bool rollback) {
  switch (outcome) {
    case UpdateOutcome::kUpdating:
      return rollback ? "rollback_started" : "updating";
    case UpdateOutcome::kCompleted:
      return rollback ? "rollback_completed" : "completed";
    case UpdateOutcome::kPaused:
      return rollback ? "rollback_paused" : "paused";
    case UpdateOutcome::kRollback:
      return "rollback_started";
  }
  return "updating";
}

}  // namespace skiff::netd
