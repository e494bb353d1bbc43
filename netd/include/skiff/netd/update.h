#pragma once
// The rolling updater: pure logic, as swarm's updater runs a service from
// one spec to the next. The orchestrator keeps one UpdateRun per service
// being updated, shows it what every slot runs now (UpdateSlot), and carries
// out what stepUpdate answers: start a task of the new spec in a slot, drain
// and stop an old one, step again at a time (delay, monitor), or end the
// update (completed, paused, rolled back). No kernel, no loop, no clock of
// its own: tests drive it with a fake `now`.
//
// The rules, from update_config:
//   - slots move in batches of `parallelism` (0: all at once), in slot order;
//     the next batch starts `delay` after the last slot of the previous one
//     is done;
//   - stop-first: the old task is drained and stopped, and only once it is
//     gone does the new one start (the service is one replica short per slot
//     for a moment); start-first: the new task starts next to the old one,
//     which is stopped once the new one is ready (healthy, or accepting on
//     its published port), so the service never shrinks;
//   - a slot is done when its new task is ready and no old task is left
//     running in it (start-first: asked to stop);
//   - a new task that fails before it is ready, or within `monitor` after, is
//     a failure (noteFailure); when failures / slots exceed max_failure_ratio
//     the update pauses, continues or rolls back as failure_action says;
//   - the update completes once every slot is done and the last one has been
//     watched for `monitor`.

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "skiff/runtime/stack.h"

namespace skiff::netd {

using UpdateClock = std::chrono::steady_clock;

// What one slot of the service runs now.
struct UpdateSlot {
  uint64_t slot = 0;
  std::vector<std::string> oldTasks;  // live tasks of an older spec, not yet asked to stop
  bool oldStopping = false;           // an old task was asked to stop and still runs
  std::string newTask;                // the live task of the current spec ("" none)
  bool newReady = false;              // it runs and is in rotation
  UpdateClock::time_point newReadySince{};
  bool restartPending = false;  // the restart policy waits to start it again: do not start
};

enum class UpdateOutcome { kUpdating, kCompleted, kPaused, kRollback };

// The updater's memory for one service, kept between steps.
struct UpdateRun {
  runtime::UpdateConfig config;
  uint64_t slots = 0;               // replicas at the start: the failure ratio's denominator
  std::set<uint64_t> active;        // the batch being updated
  std::set<uint64_t> done;          // slots that run the new spec, ready
  std::set<uint64_t> started;       // slots of the batch whose new task this run asked for
  std::vector<std::string> failed;  // new tasks that failed, in order
  UpdateClock::time_point nextBatchAt{};
  UpdateClock::time_point monitorUntil{};
  UpdateOutcome outcome = UpdateOutcome::kUpdating;
  std::string message;  // why it paused or rolled back
};

struct UpdateStep {
  std::vector<uint64_t> startSlots;               // start a task of the current spec there
  std::vector<std::string> stopTasks;             // drain and stop these old tasks
  std::optional<UpdateClock::time_point> wakeAt;  // step again then, at the latest
  UpdateOutcome outcome = UpdateOutcome::kUpdating;
  std::string message;
};

UpdateRun beginUpdate(const runtime::UpdateConfig& config, uint64_t slots, UpdateClock::time_point now);

// A task of the new spec failed (exited, was rejected, turned unhealthy)
// before it was ready or within monitor after: counts once per task id.
void noteFailure(UpdateRun& run, const std::string& taskId);

// One step: `slots` lists every slot 1..replicas. Deterministic, idempotent
// for equal input (a task asked to stop or to start once is not asked again
// as long as the caller shows it as such).
UpdateStep stepUpdate(UpdateRun& run, const std::vector<UpdateSlot>& slots, UpdateClock::time_point now);

// Docker's UpdateStatus.State words: "updating", "paused", "completed",
// "rollback_started", "rollback_paused", "rollback_completed".
std::string updateStateWord(UpdateOutcome outcome, bool rollback);

}  // namespace skiff::netd
