#pragma once
// A task's life, as swarm names it. A task moves forward only: New ->
// Pending (waiting for a node) -> Assigned (a node has it) -> Preparing
// (fetching its image) -> Starting -> Running, and ends in one of Complete,
// Failed, Shutdown, Rejected (it could not start) or Orphaned (its node went
// away). The desired state of a task is Running or Shutdown.

#include <optional>
#include <string_view>

namespace skiff::netd {

enum class TaskState {
  kNew,
  kPending,
  kAssigned,
  kPreparing,
  kStarting,
  kRunning,
  kComplete,
  kFailed,
  kShutdown,
  kRejected,
  kOrphaned,
};

// "Running": the name the API, the CLI and the cluster protocol use.
const char* toString(TaskState s);
// The inverse of toString; nullopt for any other text (a peer's report).
std::optional<TaskState> parseTaskState(std::string_view name);
// Not ended yet: New .. Running.
inline bool isLive(TaskState s) { return s <= TaskState::kRunning; }

}  // namespace skiff::netd
