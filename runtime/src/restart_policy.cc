// Swarm's restart decision as arithmetic over a fake-able clock.

#include "skiff/runtime/restart_policy.h"

#include <algorithm>

namespace skiff::runtime {

RestartDecision decideRestart(const RestartPolicy& policy, const TaskExit& exit,
                              const std::vector<RestartClock::time_point>& restartTimes) {
  RestartDecision d;
  if (exit.stoppedByUser) {
    d.reason = "stopped on request";
    return d;
  }
  if (policy.condition == RestartCondition::kNone) {
    d.reason = "restart condition is none";
    return d;
  }
  if (policy.condition == RestartCondition::kOnFailure && exit.exitCode == 0) {
    d.reason = "exited with code 0 and restart condition is on-failure";
    return d;
  }
  if (policy.maxAttempts > 0) {
    uint64_t counted = 0;
    if (policy.windowSeconds <= 0) {
      counted = restartTimes.size();
    } else {
      const auto window =
          std::chrono::duration_cast<RestartClock::duration>(std::chrono::duration<double>(policy.windowSeconds));
      const auto since = exit.exitedAt - window;
      counted = static_cast<uint64_t>(
          std::count_if(restartTimes.begin(), restartTimes.end(), [&](auto t) { return t >= since; }));
    }
    if (counted >= policy.maxAttempts) {
      d.reason = "reached max_attempts (" + std::to_string(policy.maxAttempts) + ")";
      return d;
    }
  }
  d.restart = true;
  d.after = std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, policy.delaySeconds) * 1000.0 + 0.5));
  d.at = exit.exitedAt + d.after;
  d.reason = "restart after " + std::to_string(d.after.count()) + "ms";
  return d;
}

}  // namespace skiff::runtime
