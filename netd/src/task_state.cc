#include "skiff/netd/task_state.h"

#include <array>
#include <utility>

namespace skiff::netd {
namespace {
constexpr std::array<std::pair<TaskState, const char*>, 11> kNames{{
    {TaskState::kNew, "New"},
    {TaskState::kPending, "Pending"},
    {TaskState::kAssigned, "Assigned"},
    {TaskState::kPreparing, "Preparing"},
    {TaskState::kStarting, "Starting"},
    {TaskState::kRunning, "Running"},
    {TaskState::kComplete, "Complete"},
    {TaskState::kFailed, "Failed"},
    {TaskState::kShutdown, "Shutdown"},
    {TaskState::kRejected, "Rejected"},
    {TaskState::kOrphaned, "Orphaned"},
}};
}  // namespace

const char* toString(TaskState s) {
  for (const auto& [state, name] : kNames) {
    if (state == s) return name;
  }
  return "Unknown";
}

std::optional<TaskState> parseTaskState(std::string_view name) {
  for (const auto& [state, text] : kNames) {
    if (name == text) return state;
  }
  return std::nullopt;
}

}  // namespace skiff::netd
