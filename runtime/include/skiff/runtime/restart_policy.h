#pragma once
// Restart-policy arithmetic, exactly as swarm applies it, as a pure function
// of the policy, the exit, and the restart history (a fake clock in tests).
//
// Swarm semantics (swarmkit manager/orchestrator/restart):
//  - condition none: never restart; on-failure: only when the exit code is not
//    0 (a kill by a signal is 128+signal, so a failure); any: always.
//  - a task that the user or netd stopped (scale down, stack rm, update) is
//    never restarted, whatever the condition.
//  - max_attempts (0 = unlimited) bounds the restarts counted within the last
//    `window` seconds (window 0 = all restarts since the service was deployed).
//  - the restart happens `delay` after the task exited.

#include <chrono>
#include <string>
#include <vector>

#include "skiff/runtime/stack.h"

namespace skiff::runtime {

using RestartClock = std::chrono::steady_clock;

struct TaskExit {
  int exitCode = 0;                   // exit status, or 128+signal
  bool stoppedByUser = false;         // netd/user asked it to stop
  RestartClock::time_point exitedAt;  // when the exit was seen
};

struct RestartDecision {
  bool restart = false;
  RestartClock::time_point at;         // when to start the replacement
  std::chrono::milliseconds after{0};  // at - exitedAt
  std::string reason;                  // why not, for logs and `service ps`
};

// restartTimes: when each earlier restart of this slot happened (any order).
RestartDecision decideRestart(const RestartPolicy& policy, const TaskExit& exit,
                              const std::vector<RestartClock::time_point>& restartTimes);

}  // namespace skiff::runtime
